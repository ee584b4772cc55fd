// WCF interop client for the metaos storage service (test/interop/wcf.test.ts), built with Mono's mcs.
//
// A hand-written service contract, as svcutil would write it for a document/literal wrapped WSDL:
// message contracts whose wrapper elements and members are the WSDL's elements (namespace
// urn:metaos:storage:v1, qualified), XmlSerializer format, the ServiceTiming SOAP header as a
// message header of every response, and StorageFault as a typed fault.
//
// usage: mono StorageClient.exe ENDPOINT soap11|soap12 PATH HEXDATA MISSING_PATH
//   soap11: BasicHttpBinding (SOAP 1.1, what WCF basicHttpBinding speaks)
//   soap12: a CustomBinding of TextMessageEncoding(Soap12, no addressing) over HTTP
// Does Open(CreateNew)/Write/Seek/Read/Close on PATH, then Open on MISSING_PATH, and prints one
// `key=value` line per observation; exits 0 when every call behaved as expected.
using System;
using System.Runtime.Serialization;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Text;
using System.Xml;
using System.Xml.Serialization;

namespace Metaos.Interop
{
    static class Ns { public const string Storage = "urn:metaos:storage:v1"; }

    [DataContract(Name = "StorageFault", Namespace = Ns.Storage)]
    [XmlRoot("StorageFault", Namespace = Ns.Storage)]
    [XmlType(AnonymousType = true, Namespace = Ns.Storage)]
    public class StorageFault
    {
        [DataMember(Name = "code", Order = 0)]
        [XmlElement("code", Order = 0)]
        public string code;

        [DataMember(Name = "message", Order = 1)]
        [XmlElement("message", Order = 1)]
        public string message;
    }

    [MessageContract(WrapperName = "Open", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class OpenRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string path;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public string mode;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 2)] public string access;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 3)] public string share;
    }

    [MessageContract(WrapperName = "OpenResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class OpenResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public long length;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 2)] public long position;
    }

    [MessageContract(WrapperName = "Write", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class WriteRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] [XmlElement(DataType = "base64Binary")] public byte[] data;
    }

    [MessageContract(WrapperName = "WriteResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class WriteResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public int written;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public long position;
    }

    [MessageContract(WrapperName = "Seek", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class SeekRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public long offset;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 2)] public string origin;
    }

    [MessageContract(WrapperName = "SeekResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class SeekResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public long position;
    }

    [MessageContract(WrapperName = "Read", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class ReadRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public int count;
    }

    [MessageContract(WrapperName = "ReadResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class ReadResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] [XmlElement(DataType = "base64Binary")] public byte[] data;
        [MessageBodyMember(Namespace = Ns.Storage, Order = 1)] public bool eof;
    }

    [MessageContract(WrapperName = "Close", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class CloseRequest
    {
        [MessageBodyMember(Namespace = Ns.Storage, Order = 0)] public string handle;
    }

    [MessageContract(WrapperName = "CloseResponse", WrapperNamespace = Ns.Storage, IsWrapped = true)]
    public class CloseResponse
    {
        [MessageHeader(Namespace = Ns.Storage)] public long ServiceTiming;
    }

    [ServiceContract(Namespace = Ns.Storage, Name = "StoragePortType")]
    [XmlSerializerFormat(Style = OperationFormatStyle.Document, Use = OperationFormatUse.Literal)]
    public interface IStorage
    {
        [OperationContract(Action = Ns.Storage + "/Open", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        OpenResponse Open(OpenRequest request);

        [OperationContract(Action = Ns.Storage + "/Write", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        WriteResponse Write(WriteRequest request);

        [OperationContract(Action = Ns.Storage + "/Seek", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        SeekResponse Seek(SeekRequest request);

        [OperationContract(Action = Ns.Storage + "/Read", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        ReadResponse Read(ReadRequest request);

        [OperationContract(Action = Ns.Storage + "/Close", ReplyAction = "*")]
        [FaultContract(typeof(StorageFault), Action = Ns.Storage + "/Fault", Name = "StorageFault", Namespace = Ns.Storage)]
        CloseResponse Close(CloseRequest request);
    }

    static class Program
    {
        // internal: the https client (security-wcf/SecureStorageClient.cs), compiled with this file, uses them too.
        internal static string Hex(byte[] b)
        {
            if (b == null) return "";
            var sb = new StringBuilder(b.Length * 2);
            foreach (var x in b) sb.Append(x.ToString("x2"));
            return sb.ToString();
        }

        internal static byte[] Unhex(string s)
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
            if (args.Length != 5)
            {
                Console.Error.WriteLine("usage: StorageClient.exe ENDPOINT soap11|soap12 PATH HEXDATA MISSING_PATH");
                return 2;
            }
            string endpoint = args[0], kind = args[1], path = args[2], missing = args[4];
            byte[] data = Unhex(args[3]);
            var factory = new ChannelFactory<IStorage>(MakeBinding(kind), new EndpointAddress(endpoint));
            IStorage storage = factory.CreateChannel();
            Out("binding", kind);
            Out("messageVersion", factory.Endpoint.Binding.MessageVersion.Envelope.ToString());
            int rc = 0;
            try
            {
                var opened = storage.Open(new OpenRequest { path = path, mode = "CreateNew", access = "ReadWrite", share = "None" });
                Out("open.handle", opened.handle);
                Out("open.length", opened.length);
                Out("open.position", opened.position);
                Out("open.timing", opened.ServiceTiming);

                var written = storage.Write(new WriteRequest { handle = opened.handle, data = data });
                Out("write.written", written.written);
                Out("write.position", written.position);
                Out("write.timing", written.ServiceTiming);

                var sought = storage.Seek(new SeekRequest { handle = opened.handle, offset = 0, origin = "Begin" });
                Out("seek.position", sought.position);

                var read = storage.Read(new ReadRequest { handle = opened.handle, count = data.Length + 100 });
                Out("read.hex", Hex(read.data));
                Out("read.size", read.data == null ? -1 : read.data.Length);
                Out("read.eof", read.eof ? "true" : "false");
                Out("read.timing", read.ServiceTiming);

                var closed = storage.Close(new CloseRequest { handle = opened.handle });
                Out("close", "ok");
                Out("close.timing", closed.ServiceTiming);
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
                Out("fault.reason", f.Reason == null ? "null" : f.Reason.ToString());
                Out("fault.code", f.Detail == null ? "null" : f.Detail.code);
                Out("fault.message", f.Detail == null ? "null" : f.Detail.message);
            }
            catch (FaultException f)
            {
                // Not mapped to the fault contract: read the detail from the MessageFault instead.
                Out("fault.kind", "untyped:" + f.GetType().FullName);
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                Out("fault.reason", f.Reason == null ? "null" : f.Reason.ToString());
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
                            if (r.NodeType != XmlNodeType.Element || r.NamespaceURI != Ns.Storage) continue;
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

            try { ((IClientChannel)storage).Close(); } catch { ((IClientChannel)storage).Abort(); }
            try { factory.Close(); } catch { factory.Abort(); }
            Out("done", rc);
            return rc;
        }
    }
}
