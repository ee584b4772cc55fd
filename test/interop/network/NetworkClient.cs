// WCF interop client for the metaos network service (test/interop/network.test.ts), built with
// Mono's mcs, on the pattern of the storage one (test/interop/wcf/StorageClient.cs).
//
// A hand-written service contract, as svcutil would write it for a document/literal wrapped WSDL:
// message contracts whose wrapper elements and members are the WSDL's elements (namespace
// urn:metaos:network:v1, qualified), XmlSerializer format, the ServiceTiming SOAP header as a
// message header of every response, and NetworkFault as a typed fault.
//
// usage: mono NetworkClient.exe ENDPOINT soap11|soap12 ECHO_PORT HEXDATA
//   soap11: BasicHttpBinding (SOAP 1.1, what WCF basicHttpBinding speaks)
//   soap12: a CustomBinding of TextMessageEncoding(Soap12, no addressing) over HTTP
// Connects (tcp) to 127.0.0.1:ECHO_PORT through the domain, Sends HEXDATA, Receives until every
// byte came back, Closes, then Receives on the closed handle (which must fault INVALID_HANDLE);
// prints one `key=value` line per observation and exits 0 when every call behaved as expected.
using System;
using System.IO;
using System.Runtime.Serialization;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Text;
using System.Xml;
using System.Xml.Serialization;

namespace Metaos.Interop
{
    static class Ns { public const string Network = "urn:metaos:network:v1"; }

    // Mono reads fault details with the DataContractSerializer whatever the operation's format:
    // without [DataContract] it falls back to ExceptionDetail and throws SerializationException.
    [DataContract(Name = "NetworkFault", Namespace = Ns.Network)]
    [XmlRoot("NetworkFault", Namespace = Ns.Network)]
    [XmlType(AnonymousType = true, Namespace = Ns.Network)]
    public class NetworkFault
    {
        [DataMember(Name = "code", Order = 0)]
        [XmlElement("code", Order = 0)]
        public string code;

        [DataMember(Name = "message", Order = 1)]
        [XmlElement("message", Order = 1)]
        public string message;
    }

    [MessageContract(WrapperName = "Connect", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class ConnectRequest
    {
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public string host;
        [MessageBodyMember(Namespace = Ns.Network, Order = 1)] public int port;
        [MessageBodyMember(Namespace = Ns.Network, Order = 2)] public string protocol;
        [MessageBodyMember(Namespace = Ns.Network, Order = 3)] public int timeoutMs;
    }

    [MessageContract(WrapperName = "ConnectResponse", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class ConnectResponse
    {
        [MessageHeader(Namespace = Ns.Network)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public string socket;
        [MessageBodyMember(Namespace = Ns.Network, Order = 1)] public string localAddress;
        [MessageBodyMember(Namespace = Ns.Network, Order = 2)] public int localPort;
        [MessageBodyMember(Namespace = Ns.Network, Order = 3)] public string remoteAddress;
        [MessageBodyMember(Namespace = Ns.Network, Order = 4)] public int remotePort;
    }

    [MessageContract(WrapperName = "Send", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class SendRequest
    {
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public string socket;
        [MessageBodyMember(Namespace = Ns.Network, Order = 1)] [XmlElement(DataType = "base64Binary")] public byte[] data;
    }

    [MessageContract(WrapperName = "SendResponse", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class SendResponse
    {
        [MessageHeader(Namespace = Ns.Network)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public int sent;
    }

    [MessageContract(WrapperName = "Receive", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class ReceiveRequest
    {
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public string socket;
        [MessageBodyMember(Namespace = Ns.Network, Order = 1)] public int maxBytes;
        [MessageBodyMember(Namespace = Ns.Network, Order = 2)] public int timeoutMs;
    }

    [MessageContract(WrapperName = "ReceiveResponse", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class ReceiveResponse
    {
        [MessageHeader(Namespace = Ns.Network)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] [XmlElement(DataType = "base64Binary")] public byte[] data;
        [MessageBodyMember(Namespace = Ns.Network, Order = 1)] public bool closed;
    }

    [MessageContract(WrapperName = "Close", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class CloseRequest
    {
        [MessageBodyMember(Namespace = Ns.Network, Order = 0)] public string socket;
    }

    [MessageContract(WrapperName = "CloseResponse", WrapperNamespace = Ns.Network, IsWrapped = true)]
    public class CloseResponse
    {
        [MessageHeader(Namespace = Ns.Network)] public long ServiceTiming;
    }

    [ServiceContract(Namespace = Ns.Network, Name = "NetworkPortType")]
    [XmlSerializerFormat(Style = OperationFormatStyle.Document, Use = OperationFormatUse.Literal)]
    public interface INetwork
    {
        [OperationContract(Action = Ns.Network + "/Connect", ReplyAction = "*")]
        [FaultContract(typeof(NetworkFault), Action = Ns.Network + "/Fault", Name = "NetworkFault", Namespace = Ns.Network)]
        ConnectResponse Connect(ConnectRequest request);

        [OperationContract(Action = Ns.Network + "/Send", ReplyAction = "*")]
        [FaultContract(typeof(NetworkFault), Action = Ns.Network + "/Fault", Name = "NetworkFault", Namespace = Ns.Network)]
        SendResponse Send(SendRequest request);

        [OperationContract(Action = Ns.Network + "/Receive", ReplyAction = "*")]
        [FaultContract(typeof(NetworkFault), Action = Ns.Network + "/Fault", Name = "NetworkFault", Namespace = Ns.Network)]
        ReceiveResponse Receive(ReceiveRequest request);

        [OperationContract(Action = Ns.Network + "/Close", ReplyAction = "*")]
        [FaultContract(typeof(NetworkFault), Action = Ns.Network + "/Fault", Name = "NetworkFault", Namespace = Ns.Network)]
        CloseResponse Close(CloseRequest request);
    }

    static class Program
    {
        static string Hex(byte[] b)
        {
            if (b == null) return "";
            var sb = new StringBuilder(b.Length * 2);
            foreach (var x in b) sb.Append(x.ToString("x2"));
            return sb.ToString();
        }

        static byte[] Unhex(string s)
        {
            var b = new byte[s.Length / 2];
            for (int i = 0; i < b.Length; i++) b[i] = Convert.ToByte(s.Substring(2 * i, 2), 16);
            return b;
        }

        static void Out(string key, object value)
        {
            Console.WriteLine(key + "=" + (value == null ? "null" : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture)));
        }

        static Binding MakeBinding(string kind)
        {
            var timeout = TimeSpan.FromSeconds(30);
            if (kind == "soap12")
            {
                var enc = new TextMessageEncodingBindingElement(MessageVersion.Soap12, Encoding.UTF8);
                var http = new HttpTransportBindingElement { MaxReceivedMessageSize = 16 << 20 };
                return new CustomBinding(enc, http) { SendTimeout = timeout, ReceiveTimeout = timeout, OpenTimeout = timeout, CloseTimeout = timeout };
            }
            return new BasicHttpBinding { MaxReceivedMessageSize = 16 << 20, SendTimeout = timeout, ReceiveTimeout = timeout, OpenTimeout = timeout, CloseTimeout = timeout };
        }

        static int Main(string[] args)
        {
            if (args.Length != 4)
            {
                Console.Error.WriteLine("usage: NetworkClient.exe ENDPOINT soap11|soap12 ECHO_PORT HEXDATA");
                return 2;
            }
            string endpoint = args[0], kind = args[1];
            int echoPort = int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture);
            byte[] data = Unhex(args[3]);
            var factory = new ChannelFactory<INetwork>(MakeBinding(kind), new EndpointAddress(endpoint));
            INetwork network = factory.CreateChannel();
            Out("binding", kind);
            Out("messageVersion", factory.Endpoint.Binding.MessageVersion.Envelope.ToString());
            int rc = 0;
            string socket = null;
            try
            {
                var connected = network.Connect(new ConnectRequest { host = "127.0.0.1", port = echoPort, protocol = "tcp", timeoutMs = 5000 });
                socket = connected.socket;
                Out("connect.socket", connected.socket);
                Out("connect.remoteAddress", connected.remoteAddress);
                Out("connect.remotePort", connected.remotePort);
                Out("connect.timing", connected.ServiceTiming);

                var sent = network.Send(new SendRequest { socket = socket, data = data });
                Out("send.sent", sent.sent);
                Out("send.timing", sent.ServiceTiming);

                var echoed = new MemoryStream();
                int receives = 0;
                bool closed = false;
                long lastTiming = -1;
                while (echoed.Length < data.Length && !closed && receives < 100)
                {
                    var got = network.Receive(new ReceiveRequest { socket = socket, maxBytes = 65536, timeoutMs = 2000 });
                    receives++;
                    if (got.data != null) echoed.Write(got.data, 0, got.data.Length);
                    closed = got.closed;
                    lastTiming = got.ServiceTiming;
                }
                Out("receive.hex", Hex(echoed.ToArray()));
                Out("receive.count", receives);
                Out("receive.closed", closed ? "true" : "false");
                Out("receive.timing", lastTiming);

                var done = network.Close(new CloseRequest { socket = socket });
                Out("close", "ok");
                Out("close.timing", done.ServiceTiming);
            }
            catch (Exception e)
            {
                Out("error", e.GetType().FullName + ": " + e.Message.Replace('\n', ' '));
                Console.Error.WriteLine(e);
                rc = 1;
            }

            // The handle is gone once closed: a typed NetworkFault with INVALID_HANDLE.
            try
            {
                network.Receive(new ReceiveRequest { socket = socket ?? "made-up-socket-handle", maxBytes = 16, timeoutMs = 100 });
                Out("fault.code", "none");
                rc = 1;
            }
            catch (FaultException<NetworkFault> f)
            {
                Out("fault.kind", "typed");
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                Out("fault.code", f.Detail == null ? "null" : f.Detail.code);
                Out("fault.message", f.Detail == null ? "null" : f.Detail.message);
            }
            catch (FaultException f)
            {
                // Not mapped to the fault contract: read the detail from the MessageFault instead.
                Out("fault.kind", "untyped:" + f.GetType().FullName);
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                MessageFault mf = f.CreateMessageFault();
                if (!mf.HasDetail) { Out("fault.code", "none"); rc = 1; }
                else
                {
                    using (XmlDictionaryReader r = mf.GetReaderAtDetailContents())
                    {
                        Out("fault.detailElement", "{" + r.NamespaceURI + "}" + r.LocalName);
                        string code = null, message = null;
                        while (r.Read())
                        {
                            if (r.NodeType != XmlNodeType.Element || r.NamespaceURI != Ns.Network) continue;
                            if (r.LocalName == "code") code = r.ReadElementContentAsString();
                            else if (r.LocalName == "message") message = r.ReadElementContentAsString();
                        }
                        Out("fault.code", code);
                        Out("fault.message", message);
                    }
                }
            }
            catch (Exception e)
            {
                Out("fault.error", e.GetType().FullName + ": " + e.Message.Replace('\n', ' '));
                Console.Error.WriteLine(e);
                rc = 1;
            }

            try { ((IClientChannel)network).Close(); } catch { ((IClientChannel)network).Abort(); }
            try { factory.Close(); } catch { factory.Abort(); }
            Out("done", rc);
            return rc;
        }
    }
}
