// A WCF (Mono) storage SERVICE with metaos's StorageService contract on net.tcp, for metaos's own
// client to call (test/interop/wcf-nettcp-service.test.ts): the other direction of
// NetTcpStorageClient.cs. Compiled with mcs together with ../wcf/StorageClient.cs and
// NetTcpStorageClient.cs, whose message contracts (OpenRequest, …, DeleteRequest) and StorageFault
// it serves; the service contract here adds the reply actions metaos's domains send
// (ACTION + "Response") and GetLength/Flush, which a metaos FileStream may call.
//
// usage: mono NetTcpStorageService.exe ROOT BINARY_PORT|0 TEXT_PORT|0 [BINARY_ADDRESS TEXT_ADDRESS]
//   Self-hosted with ServiceHost: NetTcpBinding(SecurityMode.None) (binary, [MC-NBFX]/[MC-NBFSE]) on
//   net.tcp://127.0.0.1:BINARY_PORT/storage and a CustomBinding of
//   TextMessageEncoding(Soap12WSAddressing10) + TcpTransport on net.tcp://127.0.0.1:TEXT_PORT/storage
//   (Mono's TcpChannelListener holds its port alone: one port per endpoint). Quotas raised as
//   benchmarks/peers/wcf/StorageBench.cs raises them. Files live under ROOT, one FileStream per
//   handle; a failure is a FaultException<StorageFault> with metaos's fault codes. Prints one ready
//   JSON line with both endpoints; stops on stdin EOF. With BINARY_ADDRESS and TEXT_ADDRESS the
//   endpoints have those logical addresses (what callers put in Via and To: a relay's, say) and
//   listen on the ports (WCF's listenUri): Mono drops, without a reply, a message whose To is not
//   its endpoint's address.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Text;
using System.Xml;

namespace Metaos.Interop
{
    [MessageContract(WrapperName = "GetLength", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class GetLengthRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
    }

    [MessageContract(WrapperName = "GetLengthResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class GetLengthResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public long length;
    }

    [MessageContract(WrapperName = "Flush", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class FlushRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public bool flushToDisk;
    }

    [MessageContract(WrapperName = "FlushResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class FlushResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
    }

    [ServiceContract(Namespace = Ns.Storage, Name = "StoragePortType")]
    [XmlSerializerFormat(Style = OperationFormatStyle.Document, Use = OperationFormatUse.Literal)]
    public interface IStorageService
    {
        [OperationContract(Action = Ns.Storage + "/Open", ReplyAction = Ns.Storage + "/OpenResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        OpenResponse Open(OpenRequest request);

        [OperationContract(Action = Ns.Storage + "/Write", ReplyAction = Ns.Storage + "/WriteResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        WriteResponse Write(WriteRequest request);

        [OperationContract(Action = Ns.Storage + "/Seek", ReplyAction = Ns.Storage + "/SeekResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        SeekResponse Seek(SeekRequest request);

        [OperationContract(Action = Ns.Storage + "/Read", ReplyAction = Ns.Storage + "/ReadResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        ReadResponse Read(ReadRequest request);

        [OperationContract(Action = Ns.Storage + "/Flush", ReplyAction = Ns.Storage + "/FlushResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        FlushResponse Flush(FlushRequest request);

        [OperationContract(Action = Ns.Storage + "/GetLength", ReplyAction = Ns.Storage + "/GetLengthResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        GetLengthResponse GetLength(GetLengthRequest request);

        [OperationContract(Action = Ns.Storage + "/Close", ReplyAction = Ns.Storage + "/CloseResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        CloseResponse Close(CloseRequest request);

        [OperationContract(Action = Ns.Storage + "/Delete", ReplyAction = Ns.Storage + "/DeleteResponse")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        DeleteResponse Delete(DeleteRequest request);
    }

    [ServiceBehavior(InstanceContextMode = InstanceContextMode.Single, ConcurrencyMode = ConcurrencyMode.Single, IncludeExceptionDetailInFaults = true)]
    public class FileStorageService : IStorageService
    {
        readonly string root;
        readonly Dictionary<string, FileStream> handles = new Dictionary<string, FileStream>();
        public FileStorageService(string root) { this.root = Path.GetFullPath(root); }

        static FaultException<StorageFault> Fault(string code, string message)
        {
            return new FaultException<StorageFault>(new StorageFault { code = code, message = message }, new FaultReason(message), FaultCode.CreateSenderFaultCode(null));
        }

        string Resolve(string path)
        {
            string full = Path.GetFullPath(Path.Combine(root, (path ?? "").TrimStart('/')));
            if (full != root && !full.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal)) throw Fault("PATH_OUTSIDE_ROOT", path + " is outside the root");
            return full;
        }

        FileStream Handle(string handle)
        {
            FileStream f;
            if (handle == null || !handles.TryGetValue(handle, out f)) throw Fault("INVALID_HANDLE", "no open handle " + handle);
            return f;
        }

        static T Parse<T>(string value, string what) where T : struct
        {
            T v;
            if (value == null || !Enum.TryParse(value, false, out v)) throw Fault("INVALID_ARGUMENT", "bad " + what + ": " + value);
            return v;
        }

        // Runs one operation: its time as the ServiceTiming header; .NET's I/O exceptions as StorageFaults.
        static T Timed<T>(Func<T> op, Action<T, long> timing)
        {
            var sw = Stopwatch.StartNew();
            T r;
            try { r = op(); }
            catch (FaultException) { throw; }
            catch (FileNotFoundException e) { throw Fault("FILE_NOT_FOUND", e.Message); }
            catch (DirectoryNotFoundException e) { throw Fault("FILE_NOT_FOUND", e.Message); }
            catch (UnauthorizedAccessException e) { throw Fault("ACCESS_DENIED", e.Message); }
            catch (ArgumentException e) { throw Fault("INVALID_ARGUMENT", e.Message); }
            catch (IOException e) { throw Fault("IO_ERROR", e.Message); }
            timing(r, sw.ElapsedTicks * 1000000L / Stopwatch.Frequency);
            return r;
        }

        public OpenResponse Open(OpenRequest q)
        {
            return Timed(() =>
            {
                string full = Resolve(q.path);
                var mode = Parse<FileMode>(q.mode, "mode");
                if (mode == FileMode.CreateNew && File.Exists(full)) throw Fault("ALREADY_EXISTS", q.path + " exists");
                if ((mode == FileMode.Open || mode == FileMode.Truncate) && !File.Exists(full)) throw Fault("FILE_NOT_FOUND", q.path + " does not exist");
                var f = new FileStream(full, mode, Parse<FileAccess>(q.access, "access"), Parse<FileShare>(q.share, "share"));
                string handle = Guid.NewGuid().ToString("N");
                handles[handle] = f;
                return new OpenResponse { handle = handle, length = f.Length, position = f.Position };
            }, (r, us) => r.ServiceTiming = us);
        }

        public WriteResponse Write(WriteRequest q)
        {
            return Timed(() =>
            {
                var f = Handle(q.handle);
                byte[] data = q.data ?? new byte[0];
                f.Write(data, 0, data.Length);
                return new WriteResponse { written = data.Length, position = f.Position };
            }, (r, us) => r.ServiceTiming = us);
        }

        public SeekResponse Seek(SeekRequest q)
        {
            return Timed(() => new SeekResponse { position = Handle(q.handle).Seek(q.offset, Parse<SeekOrigin>(q.origin, "origin")) }, (r, us) => r.ServiceTiming = us);
        }

        public ReadResponse Read(ReadRequest q)
        {
            return Timed(() =>
            {
                var f = Handle(q.handle);
                if (q.count < 0) throw Fault("INVALID_ARGUMENT", "count < 0");
                var buf = new byte[(int)Math.Min(q.count, Math.Max(0, f.Length - f.Position))];
                int n = 0;
                while (n < buf.Length) { int k = f.Read(buf, n, buf.Length - n); if (k == 0) break; n += k; }
                if (n < buf.Length) Array.Resize(ref buf, n);
                return new ReadResponse { data = buf, eof = f.Position >= f.Length };
            }, (r, us) => r.ServiceTiming = us);
        }

        public FlushResponse Flush(FlushRequest q)
        {
            return Timed(() => { Handle(q.handle).Flush(q.flushToDisk); return new FlushResponse(); }, (r, us) => r.ServiceTiming = us);
        }

        public GetLengthResponse GetLength(GetLengthRequest q)
        {
            return Timed(() => new GetLengthResponse { length = Handle(q.handle).Length }, (r, us) => r.ServiceTiming = us);
        }

        public CloseResponse Close(CloseRequest q)
        {
            return Timed(() => { Handle(q.handle).Dispose(); handles.Remove(q.handle); return new CloseResponse(); }, (r, us) => r.ServiceTiming = us);
        }

        public DeleteResponse Delete(DeleteRequest q)
        {
            return Timed(() =>
            {
                string full = Resolve(q.path);
                if (!File.Exists(full)) throw Fault("FILE_NOT_FOUND", q.path + " does not exist");
                File.Delete(full);
                return new DeleteResponse();
            }, (r, us) => r.ServiceTiming = us);
        }
    }

    static class NetTcpServiceProgram
    {
        const int Quota = 64 * 1024 * 1024;

        static XmlDictionaryReaderQuotas Quotas()
        {
            return new XmlDictionaryReaderQuotas { MaxArrayLength = Quota, MaxStringContentLength = Quota, MaxBytesPerRead = Quota, MaxDepth = 64, MaxNameTableCharCount = Quota };
        }

        static Binding BinaryBinding()
        {
            var b = new NetTcpBinding(SecurityMode.None) { MaxReceivedMessageSize = Quota, MaxBufferSize = Quota, MaxBufferPoolSize = Quota, ReaderQuotas = Quotas() };
            b.SendTimeout = b.ReceiveTimeout = TimeSpan.FromMinutes(2);
            return b;
        }

        static Binding TextBinding()
        {
            var enc = new TextMessageEncodingBindingElement(MessageVersion.Soap12WSAddressing10, Encoding.UTF8) { ReaderQuotas = Quotas() };
            var tcp = new TcpTransportBindingElement { MaxReceivedMessageSize = Quota, MaxBufferSize = Quota, MaxBufferPoolSize = Quota };
            var b = new CustomBinding(enc, tcp);
            b.SendTimeout = b.ReceiveTimeout = TimeSpan.FromMinutes(2);
            return b;
        }

        static int Port(string arg)
        {
            int port = int.Parse(arg, CultureInfo.InvariantCulture);
            if (port != 0) return port;
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        static int Main(string[] args)
        {
            if (args.Length != 3 && args.Length != 5)
            {
                Console.Error.WriteLine("usage: NetTcpStorageService.exe ROOT BINARY_PORT|0 TEXT_PORT|0 [BINARY_ADDRESS TEXT_ADDRESS]");
                return 2;
            }
            try
            {
                string binary = "net.tcp://127.0.0.1:" + Port(args[1]).ToString(CultureInfo.InvariantCulture) + "/storage";
                string text = "net.tcp://127.0.0.1:" + Port(args[2]).ToString(CultureInfo.InvariantCulture) + "/storage";
                var host = new ServiceHost(new FileStorageService(args[0]));
                string binaryAddress = args.Length == 5 ? args[3] : binary, textAddress = args.Length == 5 ? args[4] : text;
                host.AddServiceEndpoint(typeof(IStorageService), BinaryBinding(), binaryAddress, new Uri(binary));
                host.AddServiceEndpoint(typeof(IStorageService), TextBinding(), textAddress, new Uri(text));
                host.Open();
                Console.WriteLine("{\"event\":\"ready\",\"service\":\"mono-wcf-nettcp\",\"binary\":\"" + binaryAddress + "\",\"text\":\"" + textAddress +
                    "\",\"listen\":{\"binary\":\"" + binary + "\",\"text\":\"" + text + "\"}}");
                Console.Out.Flush();
                while (Console.In.ReadLine() != null) { }
                host.Close(TimeSpan.FromSeconds(5));
                return 0;
            }
            catch (Exception e)
            {
                Console.Error.WriteLine("error: " + e);
                return 1;
            }
        }
    }
}
