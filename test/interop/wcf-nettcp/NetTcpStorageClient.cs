// WCF (Mono) interop client for a metaos storage domain's net.tcp endpoint
// (test/interop/wcf-nettcp.test.ts). Compiled with mcs together with ../wcf/StorageClient.cs, whose
// service and message contracts (IStorage, OpenRequest, …, StorageFault) it reuses; Delete, which
// that contract leaves out, has a contract of its own here on the same port type.
//
// usage: mono NetTcpStorageClient.exe ENDPOINT MODE PATH HEXDATA MISSING_PATH
//   MODE:
//     text    CustomBinding(TextMessageEncoding(Soap12WSAddressing10, UTF-8), TcpTransport): SOAP 1.2
//             text envelopes with WS-Addressing in [MC-NMF] duplex sessions
//     binary  NetTcpBinding(SecurityMode.None): the binary encoding ([MC-NBFX], session dictionary)
// Does Open(CreateNew)/Write/Seek/Read/Close/Delete on PATH, then Open on MISSING_PATH, and prints
// one `key=value` line per observation; exits 0 when every call behaved as expected.
using System;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Text;
using System.Xml;

namespace Metaos.Interop
{
    [MessageContract(WrapperName = "Delete", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class DeleteRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string path;
    }

    [MessageContract(WrapperName = "DeleteResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class DeleteResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
    }

    [ServiceContract(Namespace = Ns.Storage, Name = "StoragePortType")]
    [System.ServiceModel.XmlSerializerFormat(Style = OperationFormatStyle.Document, Use = OperationFormatUse.Literal)]
    public interface IStorageDelete
    {
        [OperationContract(Action = Ns.Storage + "/Delete", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        DeleteResponse Delete(DeleteRequest request);
    }

    static class NetTcpProgram
    {
        static void Out(string key, object value)
        {
            Console.WriteLine(key + "=" + (value == null ? "null" : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)));
        }

        static Binding MakeBinding(string mode)
        {
            var timeout = TimeSpan.FromSeconds(30);
            if (mode == "binary")
            {
                return new NetTcpBinding(SecurityMode.None) { MaxReceivedMessageSize = 16 << 20, SendTimeout = timeout, ReceiveTimeout = timeout, OpenTimeout = timeout, CloseTimeout = timeout };
            }
            var enc = new TextMessageEncodingBindingElement(MessageVersion.Soap12WSAddressing10, Encoding.UTF8);
            var tcp = new TcpTransportBindingElement { MaxReceivedMessageSize = 16 << 20 };
            return new CustomBinding(enc, tcp) { SendTimeout = timeout, ReceiveTimeout = timeout, OpenTimeout = timeout, CloseTimeout = timeout };
        }

        static void Close(object channel, ChannelFactory factory)
        {
            try { ((IClientChannel)channel).Close(); } catch { ((IClientChannel)channel).Abort(); }
            try { factory.Close(); } catch { factory.Abort(); }
        }

        static int Main(string[] args)
        {
            if (args.Length != 5)
            {
                Console.Error.WriteLine("usage: NetTcpStorageClient.exe ENDPOINT text|binary PATH HEXDATA MISSING_PATH");
                return 2;
            }
            string endpoint = args[0], mode = args[1], path = args[2], missing = args[4];
            byte[] data = Program.Unhex(args[3]);
            var binding = MakeBinding(mode);
            var factory = new ChannelFactory<IStorage>(binding, new EndpointAddress(endpoint));
            IStorage storage = factory.CreateChannel();
            Out("mode", mode);
            Out("messageVersion", binding.MessageVersion.ToString().Replace('\n', ' '));
            Out("scheme", binding.Scheme);
            int rc = 0;
            try
            {
                var opened = storage.Open(new OpenRequest { path = path, mode = "CreateNew", access = "ReadWrite", share = "None" });
                Out("open.handle", opened.handle);
                Out("open.timing", opened.ServiceTiming);
                var written = storage.Write(new WriteRequest { handle = opened.handle, data = data });
                Out("write.written", written.written);
                Out("write.position", written.position);
                var sought = storage.Seek(new SeekRequest { handle = opened.handle, offset = 0, origin = "Begin" });
                Out("seek.position", sought.position);
                var read = storage.Read(new ReadRequest { handle = opened.handle, count = data.Length + 100 });
                Out("read.hex", Program.Hex(read.data));
                Out("read.eof", read.eof ? "true" : "false");
                Out("read.timing", read.ServiceTiming);
                storage.Close(new CloseRequest { handle = opened.handle });
                Out("close", "ok");
            }
            catch (Exception e)
            {
                Out("error", e.GetType().FullName + ": " + e.Message.Replace('\n', ' '));
                Console.Error.WriteLine(e);
                rc = 1;
            }

            try
            {
                storage.Open(new OpenRequest { path = missing, mode = "Open", access = "Read", share = "Read" });
                Out("fault.code", "none");
                rc = 1;
            }
            catch (FaultException<StorageFault> f)
            {
                Out("fault.kind", "typed");
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                Out("fault.code", f.Detail == null ? "null" : f.Detail.code);
                Out("fault.message", f.Detail == null ? "null" : f.Detail.message);
            }
            catch (Exception e)
            {
                Out("fault.error", e.GetType().FullName + ": " + e.Message.Replace('\n', ' '));
                Console.Error.WriteLine(e);
                rc = 1;
            }
            Close(storage, factory);

            var deleter = new ChannelFactory<IStorageDelete>(binding, new EndpointAddress(endpoint));
            IStorageDelete del = deleter.CreateChannel();
            try
            {
                var d = del.Delete(new DeleteRequest { path = path });
                Out("delete", "ok");
                Out("delete.timing", d.ServiceTiming);
            }
            catch (Exception e)
            {
                Out("delete.error", e.GetType().FullName + ": " + e.Message.Replace('\n', ' '));
                Console.Error.WriteLine(e);
                rc = 1;
            }
            Close(del, deleter);
            Out("done", rc);
            return rc;
        }
    }
}
