// Benchmark peer "mono-wcf": the paper's own stack. One executable, two modes:
//   StorageBench.exe serve <port|0> <file> [tuned]   self-hosted WCF service (ServiceHost +
//       BasicHttpBinding on http://127.0.0.1:<port>/) whose Write(offset, data) writes the bytes
//       into one FileStream kept open; prints one ready JSON line, stops on stdin EOF or a kill.
//   StorageBench.exe client <url> <bytes> <seconds> [tuned]   calls Write with payloads of <bytes>
//       one at a time for <seconds> after a warm-up and prints
//       { "calls", "seconds", "bytes", "p50ms", "p99ms" } on one line.
// "tuned" fixes the client's System.Net settings (Nagle off, no Expect: 100-continue, more
// connections per host). Both modes raise the message and array quotas: with WCF's defaults
// (MaxReceivedMessageSize 64 KiB, ReaderQuotas.MaxArrayLength 16 KiB) payloads from 16 KiB up are
// refused, so there would be nothing to compare. It measures; it must not interpret.
using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Threading;
using System.Xml;

[ServiceContract(Namespace = "urn:metaos:bench")]
public interface IStorageBench
{
    [OperationContract]
    long Write(long offset, byte[] data);
}

[ServiceBehavior(InstanceContextMode = InstanceContextMode.Single, ConcurrencyMode = ConcurrencyMode.Single)]
public class StorageBenchService : IStorageBench
{
    readonly FileStream file;
    public StorageBenchService(FileStream file) { this.file = file; }

    public long Write(long offset, byte[] data)
    {
        file.Seek(offset, SeekOrigin.Begin);
        file.Write(data, 0, data.Length);
        return file.Position;
    }
}

public static class StorageBench
{
    const int Quota = 64 * 1024 * 1024;
    const long Wrap = 64L * 1024 * 1024;

    static BasicHttpBinding Binding()
    {
        var b = new BasicHttpBinding(BasicHttpSecurityMode.None);
        b.MaxReceivedMessageSize = Quota;
        b.MaxBufferSize = Quota;
        b.MaxBufferPoolSize = Quota;
        b.TransferMode = TransferMode.Buffered;
        b.ReaderQuotas = new XmlDictionaryReaderQuotas { MaxArrayLength = Quota, MaxStringContentLength = Quota, MaxBytesPerRead = Quota, MaxDepth = 64, MaxNameTableCharCount = Quota };
        b.SendTimeout = b.ReceiveTimeout = TimeSpan.FromMinutes(2);
        return b;
    }

    static void Tune()
    {
        ServicePointManager.UseNagleAlgorithm = false;
        ServicePointManager.Expect100Continue = false;
        ServicePointManager.DefaultConnectionLimit = 64;
    }

    static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    static int Serve(string[] args)
    {
        int port = int.Parse(args[1], CultureInfo.InvariantCulture);
        if (port == 0) port = FreePort();
        bool tuned = args.Length > 3 && args[3] == "tuned";
        if (tuned) Tune();
        var file = new FileStream(args[2], FileMode.Create, FileAccess.Write, FileShare.Read, 4096);
        string url = "http://127.0.0.1:" + port.ToString(CultureInfo.InvariantCulture) + "/";
        if (tuned) return ServeChannel(url, file);
        var host = new ServiceHost(new StorageBenchService(file), new Uri(url));
        host.AddServiceEndpoint(typeof(IStorageBench), Binding(), "");
        host.Open();
        Console.WriteLine("{\"event\":\"ready\",\"service\":\"mono-wcf\",\"endpoints\":[\"" + url + "\"]}");
        Console.Out.Flush();
        // The parent ends us by closing stdin (or by a signal).
        while (Console.In.ReadLine() != null) { }
        host.Close();
        file.Dispose();
        return 0;
    }

    const string Ns = "urn:metaos:bench";

    // The tuned service: the same BasicHttpBinding stack (Mono's HttpListener transport and text
    // encoder, same wire format) driven by one reply channel of our own, not by ServiceHost. Mono's
    // ChannelDispatcher accepts reply channels in a loop that sleeps 100 ms before each accept
    // (ListenerLoopManager.LoopCore, "Thread.Sleep (100)"), which caps a ServiceHost near 10
    // requests/s per client; no binding or ServicePointManager setting reaches that loop.
    static int ServeChannel(string url, FileStream file)
    {
        var listener = Binding().BuildChannelListener<IReplyChannel>(new Uri(url), new BindingParameterCollection());
        listener.Open();
        var service = new StorageBenchService(file);
        var loop = new Thread(() =>
        {
            var ch = listener.AcceptChannel();
            ch.Open();
            while (true)
            {
                RequestContext rc;
                if (!ch.TryReceiveRequest(TimeSpan.FromMinutes(10), out rc) || rc == null) continue;
                long offset = 0;
                byte[] data = new byte[0];
                using (var r = rc.RequestMessage.GetReaderAtBodyContents())
                {
                    r.ReadStartElement("Write", Ns);
                    while (r.MoveToContent() == XmlNodeType.Element)
                    {
                        if (r.LocalName == "offset") offset = r.ReadElementContentAsLong();
                        else if (r.LocalName == "data") data = Convert.FromBase64String(r.ReadElementContentAsString());
                        else r.Skip();
                    }
                }
                long pos = service.Write(offset, data);
                rc.Reply(Message.CreateMessage(MessageVersion.Soap11, Ns + "/IStorageBench/WriteResponse", new WriteResponseBody(pos)));
                rc.Close();
            }
        });
        loop.IsBackground = true;
        loop.Start();
        Console.WriteLine("{\"event\":\"ready\",\"service\":\"mono-wcf\",\"endpoints\":[\"" + url + "\"]}");
        Console.Out.Flush();
        while (Console.In.ReadLine() != null) { }
        listener.Abort();
        file.Dispose();
        return 0;
    }

    class WriteResponseBody : BodyWriter
    {
        readonly long pos;
        public WriteResponseBody(long pos) : base(true) { this.pos = pos; }
        protected override void OnWriteBodyContents(XmlDictionaryWriter w)
        {
            w.WriteStartElement("WriteResponse", Ns);
            w.WriteStartElement("WriteResult", Ns);
            w.WriteValue(pos);
            w.WriteEndElement();
            w.WriteEndElement();
        }
    }

    static int Client(string[] args)
    {
        string url = args[1];
        int size = int.Parse(args[2], CultureInfo.InvariantCulture);
        double seconds = double.Parse(args[3], CultureInfo.InvariantCulture);
        bool tuned = args.Length > 4 && args[4] == "tuned";
        if (tuned) Tune();
        var factory = new ChannelFactory<IStorageBench>(Binding(), new EndpointAddress(url));
        var ch = factory.CreateChannel();
        ((IClientChannel)ch).Open();
        var payload = new byte[size];
        for (int i = 0; i < size; i++) payload[i] = 0x5a;
        long offset = 0;
        for (int i = 0; i < 10; i++) { ch.Write(offset, payload); offset = (offset + size) % Wrap; }
        var lat = new List<double>();
        var total = Stopwatch.StartNew();
        long limit = (long)(seconds * Stopwatch.Frequency);
        while (total.ElapsedTicks < limit)
        {
            long t0 = total.ElapsedTicks;
            ch.Write(offset, payload);
            lat.Add((total.ElapsedTicks - t0) * 1000.0 / Stopwatch.Frequency);
            offset = (offset + size) % Wrap;
        }
        double elapsed = total.ElapsedTicks / (double)Stopwatch.Frequency;
        ((IClientChannel)ch).Close();
        factory.Close();
        lat.Sort();
        Func<double, double> q = f => lat.Count == 0 ? 0 : lat[Math.Min(lat.Count - 1, (int)(f * lat.Count))];
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Format(inv, "{{ \"calls\": {0}, \"seconds\": {1:R}, \"bytes\": {2}, \"p50ms\": {3:R}, \"p99ms\": {4:R} }}",
            lat.Count, elapsed, (long)lat.Count * size, q(0.5), q(0.99)));
        return 0;
    }

    public static int Main(string[] args)
    {
        try
        {
            if (args.Length >= 3 && args[0] == "serve") return Serve(args);
            if (args.Length >= 4 && args[0] == "client") return Client(args);
            Console.Error.WriteLine("usage: StorageBench.exe serve <port|0> <file> [tuned] | client <url> <bytes> <seconds> [tuned]");
            return 2;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("error: " + e);
            return 1;
        }
    }
}
