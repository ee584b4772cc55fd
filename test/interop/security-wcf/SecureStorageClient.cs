// WCF (Mono) interop client for an https:// metaos storage domain with authentication
// (test/interop/security-wcf.test.ts). Compiled with mcs together with ../wcf/StorageClient.cs,
// whose service and message contracts (IStorage, OpenRequest, …, StorageFault) it reuses.
//
// usage: mono SecureStorageClient.exe ENDPOINT MODE PATH HEXDATA USER PASSWORD CA_CRT P12 P12_PASSWORD
//   MODE:
//     basic-username   BasicHttpBinding(TransportWithMessageCredential), Message.ClientCredentialType
//                      = UserName: WS-Security UsernameToken (PasswordText) + wsu:Timestamp over TLS
//     custom-username  CustomBinding(SecurityBindingElement.CreateUserNameOverTransportBindingElement(),
//                      TextMessageEncoding(Soap11), HttpsTransport)
//     custom-username-nots   the same with IncludeTimestamp = false
//     custom-username-unsecured  the same with EnableUnsecuredResponse = true (not in Mono: reported)
//     transport-cert   BasicHttpBinding(Transport), Transport.ClientCredentialType = Certificate, the
//                      client certificate from P12 (mutual TLS, no UsernameToken)
//     transport-none   BasicHttpBinding(Transport), no credentials at all
// The private CA is trusted through ServicePointManager.ServerCertificateValidationCallback: the
// server's chain must end in CA_CRT (an X509Chain with CA_CRT in its ExtraStore, unknown-root
// allowed, then the root's thumbprint compared), and the host name must match (no other errors).
// Does Open(CreateNew)/Write/Seek/Read/Close on PATH (unless PATH is "-"), then, when it faults,
// prints the StorageFault code. One `key=value` line per observation.
using System;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.ServiceModel.Security;
using System.Text;
using System.Xml;

namespace Metaos.Interop
{
    /// <summary>A wsse:Security header with a UsernameToken (PasswordDigest, or PasswordText) and a wsu:Timestamp, written by hand.</summary>
    class UsernameTokenHeader : MessageHeader
    {
        const string Wsse = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
        const string Wsu = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
        const string Profile = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0";
        readonly string user, password;
        readonly bool text;
        public UsernameTokenHeader(string user, string password, bool text) { this.user = user; this.password = password; this.text = text; }
        public override string Name { get { return "Security"; } }
        public override string Namespace { get { return Wsse; } }
        public override bool MustUnderstand { get { return true; } }
        protected override void OnWriteStartHeader(XmlDictionaryWriter w, MessageVersion v)
        {
            w.WriteStartElement("wsse", Name, Namespace);
            w.WriteXmlnsAttribute("wsu", Wsu);
        }
        protected override void OnWriteHeaderContents(XmlDictionaryWriter w, MessageVersion v)
        {
            var now = DateTime.UtcNow;
            string created = now.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture);
            var nonce = new byte[16];
            using (var rng = System.Security.Cryptography.RandomNumberGenerator.Create()) rng.GetBytes(nonce);
            w.WriteStartElement("wsu", "Timestamp", Wsu);
            w.WriteElementString("wsu", "Created", Wsu, created);
            w.WriteElementString("wsu", "Expires", Wsu, now.AddMinutes(5).ToString("yyyy-MM-ddTHH:mm:ss.fffZ", System.Globalization.CultureInfo.InvariantCulture));
            w.WriteEndElement();
            w.WriteStartElement("wsse", "UsernameToken", Wsse);
            w.WriteElementString("wsse", "Username", Wsse, user);
            w.WriteStartElement("wsse", "Password", Wsse);
            w.WriteAttributeString("Type", Profile + (text ? "#PasswordText" : "#PasswordDigest"));
            if (text) w.WriteString(password);
            else
            {
                byte[] c = Encoding.UTF8.GetBytes(created), p = Encoding.UTF8.GetBytes(password);
                var all = new byte[nonce.Length + c.Length + p.Length];
                Buffer.BlockCopy(nonce, 0, all, 0, nonce.Length);
                Buffer.BlockCopy(c, 0, all, nonce.Length, c.Length);
                Buffer.BlockCopy(p, 0, all, nonce.Length + c.Length, p.Length);
                using (var sha1 = System.Security.Cryptography.SHA1.Create()) w.WriteString(Convert.ToBase64String(sha1.ComputeHash(all)));
            }
            w.WriteEndElement();
            w.WriteStartElement("wsse", "Nonce", Wsse);
            w.WriteAttributeString("EncodingType", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary");
            w.WriteString(Convert.ToBase64String(nonce));
            w.WriteEndElement();
            w.WriteElementString("wsu", "Created", Wsu, created);
            w.WriteEndElement();
        }
    }

    /// <summary>Adds a fresh UsernameTokenHeader to every request (the Mono stand-in for TransportWithMessageCredential).</summary>
    class UsernameTokenBehavior : System.ServiceModel.Description.IEndpointBehavior, System.ServiceModel.Dispatcher.IClientMessageInspector
    {
        readonly string user, password;
        readonly bool text;
        public UsernameTokenBehavior(string user, string password, bool text) { this.user = user; this.password = password; this.text = text; }
        public void AddBindingParameters(System.ServiceModel.Description.ServiceEndpoint e, BindingParameterCollection p) { }
        public void ApplyClientBehavior(System.ServiceModel.Description.ServiceEndpoint e, System.ServiceModel.Dispatcher.ClientRuntime r) { r.MessageInspectors.Add(this); }
        public void ApplyDispatchBehavior(System.ServiceModel.Description.ServiceEndpoint e, System.ServiceModel.Dispatcher.EndpointDispatcher d) { }
        public void Validate(System.ServiceModel.Description.ServiceEndpoint e) { }
        public object BeforeSendRequest(ref Message request, IClientChannel channel)
        {
            request.Headers.Add(new UsernameTokenHeader(user, password, text));
            return null;
        }
        public void AfterReceiveReply(ref Message reply, object state)
        {
            // The domain answers a secured request with a wsse:Security header holding a wsu:Timestamp.
            int i = reply.Headers.FindHeader("Security", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd");
            Console.WriteLine("reply.securityHeader=" + (i >= 0 ? "present" : "absent"));
            // (No UnderstoodHeaders.Add: Mono's MessageHeaders.UnderstoodHeaders throws NotImplementedException,
            // and it is not needed: the reply's header does not carry mustUnderstand.)
        }
    }

    static class SecureProgram
    {
        static void Out(string key, object value)
        {
            Console.WriteLine(key + "=" + (value == null ? "null" : Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture).Replace('\n', ' ').Replace('\r', ' ')));
        }

        static Binding MakeBinding(string mode)
        {
            var timeout = TimeSpan.FromSeconds(20);
            Binding b;
            switch (mode)
            {
                case "basic-username":
                {
                    var basic = new BasicHttpBinding(BasicHttpSecurityMode.TransportWithMessageCredential) { MaxReceivedMessageSize = 16 << 20 };
                    basic.Security.Message.ClientCredentialType = BasicHttpMessageCredentialType.UserName;
                    b = basic;
                    break;
                }
                case "custom-username":
                case "custom-username-nots":
                case "custom-username-unsecured":
                {
                    var sec = SecurityBindingElement.CreateUserNameOverTransportBindingElement();
                    sec.MessageSecurityVersion = MessageSecurityVersion.WSSecurity10WSTrustFebruary2005WSSecureConversationFebruary2005WSSecurityPolicy11BasicSecurityProfile10;
                    if (mode == "custom-username-nots") sec.IncludeTimestamp = false;
                    if (mode == "custom-username-unsecured")
                    {
                        // .NET 4.0 SP1+ has SecurityBindingElement.EnableUnsecuredResponse; set it by
                        // reflection so this compiles (and reports) on a runtime without it.
                        var p = typeof(SecurityBindingElement).GetProperty("EnableUnsecuredResponse");
                        Out("enableUnsecuredResponse", p == null ? "absent" : "present");
                        if (p != null) p.SetValue(sec, true, null);
                    }
                    var enc = new TextMessageEncodingBindingElement(MessageVersion.Soap11, Encoding.UTF8);
                    var https = new HttpsTransportBindingElement { MaxReceivedMessageSize = 16 << 20 };
                    b = new CustomBinding(sec, enc, https);
                    break;
                }
                case "transport-cert":
                case "transport-none":
                case "transport-header":
                case "transport-header-text":
                {
                    var basic = new BasicHttpBinding(BasicHttpSecurityMode.Transport) { MaxReceivedMessageSize = 16 << 20 };
                    basic.Security.Transport.ClientCredentialType = mode == "transport-cert" ? HttpClientCredentialType.Certificate : HttpClientCredentialType.None;
                    b = basic;
                    break;
                }
                default:
                    throw new ArgumentException("unknown mode " + mode);
            }
            b.SendTimeout = timeout; b.ReceiveTimeout = timeout; b.OpenTimeout = timeout; b.CloseTimeout = timeout;
            return b;
        }

        static int Main(string[] args)
        {
            if (args.Length != 9)
            {
                Console.Error.WriteLine("usage: SecureStorageClient.exe ENDPOINT MODE PATH HEXDATA USER PASSWORD CA_CRT P12 P12_PASSWORD");
                return 2;
            }
            string endpoint = args[0], mode = args[1], path = args[2], user = args[4], password = args[5];
            byte[] data = Program.Unhex(args[3]);
            var ca = new X509Certificate2(args[6]);
            int validations = 0;
            ServicePointManager.ServerCertificateValidationCallback = (sender, certificate, chain, errors) =>
            {
                validations++;
                // Only "the root is not in the machine's store" may be wrong, and the root must be our CA.
                if ((errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None) { Out("tls.policyErrors", errors); return false; }
                var c = new X509Chain();
                c.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                c.ChainPolicy.VerificationFlags = X509VerificationFlags.AllowUnknownCertificateAuthority;
                c.ChainPolicy.ExtraStore.Add(ca);
                bool built = c.Build(new X509Certificate2(certificate));
                var root = c.ChainElements.Count == 0 ? null : c.ChainElements[c.ChainElements.Count - 1].Certificate;
                bool ours = root != null && root.Thumbprint == ca.Thumbprint;
                Out("tls.chain", (built ? "built" : "not-built") + ",length=" + c.ChainElements.Count + ",root=" + (ours ? "ca" : "other"));
                if (!built)
                    foreach (var s in c.ChainStatus) Out("tls.chainStatus", s.Status + ": " + s.StatusInformation);
                return built && ours;
            };

            Binding binding;
            try { binding = MakeBinding(mode); }
            catch (Exception e) { Out("error", "binding: " + e.GetType().FullName + ": " + e.Message); return 1; }
            var factory = new ChannelFactory<IStorage>(binding, new EndpointAddress(endpoint));
            if (mode.Contains("username"))
            {
                factory.Credentials.UserName.UserName = user;
                factory.Credentials.UserName.Password = password;
            }
            if (mode == "transport-cert")
            {
                var cert = new X509Certificate2(args[7], args[8], X509KeyStorageFlags.Exportable);
                Out("clientCert.subject", cert.Subject);
                Out("clientCert.hasPrivateKey", cert.HasPrivateKey);
                factory.Credentials.ClientCertificate.Certificate = cert;
            }
            if (mode.StartsWith("transport-header")) factory.Endpoint.Behaviors.Add(new UsernameTokenBehavior(user, password, mode == "transport-header-text"));
            Out("mode", mode);
            int rc = 0;
            IStorage storage = null;
            try
            {
                Out("binding", binding.GetType().Name + ":" + binding.MessageVersion);
                storage = factory.CreateChannel();
                var opened = storage.Open(new OpenRequest { path = path, mode = "CreateNew", access = "ReadWrite", share = "None" });
                Out("open.handle", opened.handle);
                Out("open.timing", opened.ServiceTiming);
                var written = storage.Write(new WriteRequest { handle = opened.handle, data = data });
                Out("write.written", written.written);
                var sought = storage.Seek(new SeekRequest { handle = opened.handle, offset = 0, origin = "Begin" });
                Out("seek.position", sought.position);
                var read = storage.Read(new ReadRequest { handle = opened.handle, count = data.Length + 100 });
                Out("read.hex", Program.Hex(read.data));
                Out("read.eof", read.eof ? "true" : "false");
                storage.Close(new CloseRequest { handle = opened.handle });
                Out("close", "ok");
            }
            catch (FaultException<StorageFault> f)
            {
                Out("fault.kind", "typed");
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                Out("fault.code", f.Detail == null ? "null" : f.Detail.code);
                Out("fault.message", f.Detail == null ? "null" : f.Detail.message);
                rc = 3;
            }
            catch (FaultException f)
            {
                Out("fault.kind", "untyped:" + f.GetType().FullName);
                Out("fault.soapCode", f.Code == null ? "null" : f.Code.Name);
                Out("fault.reason", f.Reason == null ? "null" : f.Reason.ToString());
                MessageFault mf = f.CreateMessageFault();
                if (mf.HasDetail)
                {
                    using (XmlDictionaryReader r = mf.GetReaderAtDetailContents())
                    {
                        while (r.Read())
                        {
                            if (r.NodeType != XmlNodeType.Element || r.NamespaceURI != "urn:metaos:storage:v1") continue;
                            if (r.LocalName == "code") Out("fault.code", r.ReadElementContentAsString());
                            else if (r.LocalName == "message") Out("fault.message", r.ReadElementContentAsString());
                        }
                    }
                }
                rc = 3;
            }
            catch (Exception e)
            {
                Out("error", e.GetType().FullName + ": " + e.Message);
                for (var inner = e.InnerException; inner != null; inner = inner.InnerException)
                    Out("error.inner", inner.GetType().FullName + ": " + inner.Message);
                Console.Error.WriteLine(e);
                rc = 1;
            }
            Out("tls.validations", validations);
            if (storage != null) try { ((IClientChannel)storage).Close(); } catch { ((IClientChannel)storage).Abort(); }
            try { factory.Close(); } catch { try { factory.Abort(); } catch (Exception e) { Out("factory.abort", e.GetType().FullName); } }
            Out("done", rc);
            return rc;
        }
    }
}
