// The .NET binary XML reader and writer as Mono ships them (System.Runtime.Serialization's
// XmlDictionaryReader.CreateBinaryReader / XmlDictionaryWriter.CreateBinaryWriter, with the static
// dictionary of Mono's System.ServiceModel), for test/interop/nbfx-mono.test.ts:
//   NbfxPeer.exe dict                          prints Mono's static dictionary: "id<TAB>string" lines
//   NbfxPeer.exe read session|plain FILE…      reads each message (a session's: string table first)
//                                              and prints "xml=<base64 of its XML text>" per message
//   NbfxPeer.exe write session|plain DIR       writes request-1.bin, request-2.bin (SOAP 1.2 +
//                                              WS-Addressing Write requests) and typed.bin (every
//                                              typed record) into DIR, each with DIR/NAME.xml, the
//                                              text Mono itself reads from it
// A session message starts with its [MC-NBFSE] string table, as WCF's binary session encoder
// writes it; Mono leaves that to its TCP transport, so this program writes and reads it itself.
using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.Text;
using System.Xml;

class RecordingSession : XmlBinaryWriterSession {
  public readonly List<string> Added = new List<string>();
  public override bool TryAdd(XmlDictionaryString value, out int key) {
    if (!base.TryAdd(value, out key)) return false;
    Added.Add(value.Value);
    return true;
  }
}

class WriteBody : BodyWriter {
  readonly XmlDictionary names; readonly byte[] data;
  public WriteBody(XmlDictionary names, byte[] data) : base(true) { this.names = names; this.data = data; }
  protected override void OnWriteBodyContents(XmlDictionaryWriter w) {
    XmlDictionaryString ns = names.Add("urn:metaos:storage:v1");
    w.WriteStartElement(names.Add("Write"), ns);
    w.WriteStartElement(names.Add("handle"), ns); w.WriteString("h:0123456789abcdef"); w.WriteEndElement();
    w.WriteStartElement(names.Add("data"), ns); w.WriteBase64(data, 0, data.Length); w.WriteEndElement();
    w.WriteEndElement();
  }
}

static class P {
  static XmlDictionary SoapDictionary() {
    var asm = typeof(Message).Assembly;
    var t = asm.GetType("System.ServiceModel.Constants");
    return (XmlDictionary)t.GetProperty("SoapDictionary", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public).GetValue(null);
  }

  static int ReadMb32(byte[] b, ref int pos) {
    int v = 0;
    for (int i = 0; ; i++) { int x = b[pos++]; v |= (x & 0x7f) << (7 * i); if ((x & 0x80) == 0) return v; }
  }

  static void WriteMb32(Stream s, int v) {
    while (v >= 0x80) { s.WriteByte((byte)((v & 0x7f) | 0x80)); v >>= 7; }
    s.WriteByte((byte)v);
  }

  static string ToXml(byte[] b, int offset, XmlDictionary dict, XmlBinaryReaderSession session) {
    var r = XmlDictionaryReader.CreateBinaryReader(b, offset, b.Length - offset, dict, XmlDictionaryReaderQuotas.Max, session);
    var sb = new StringBuilder();
    using (var w = XmlWriter.Create(sb, new XmlWriterSettings { OmitXmlDeclaration = true })) {
      r.MoveToContent();
      w.WriteNode(r, true);
    }
    return sb.ToString();
  }

  static int Read(bool session, string[] files) {
    var dict = SoapDictionary();
    var rs = new XmlBinaryReaderSession();
    int next = 0;
    foreach (var f in files) {
      var b = File.ReadAllBytes(f);
      int pos = 0;
      if (session) {
        int size = ReadMb32(b, ref pos);
        int end = pos + size;
        while (pos < end) { int n = ReadMb32(b, ref pos); rs.Add(next++, Encoding.UTF8.GetString(b, pos, n)); pos += n; }
      }
      Console.WriteLine("xml=" + Convert.ToBase64String(Encoding.UTF8.GetBytes(ToXml(b, pos, dict, session ? rs : null))));
    }
    return 0;
  }

  /** One message: the string table of what it added to the session (session mode), then its records. */
  static void Save(string dir, string name, bool session, RecordingSession ws, Action<XmlDictionaryWriter> write) {
    var dict = SoapDictionary();
    var body = new MemoryStream();
    int before = ws.Added.Count;
    using (var w = XmlDictionaryWriter.CreateBinaryWriter(body, dict, session ? ws : null, false)) write(w);
    var file = new MemoryStream();
    if (session) {
      var table = new MemoryStream();
      for (int i = before; i < ws.Added.Count; i++) { var s = Encoding.UTF8.GetBytes(ws.Added[i]); WriteMb32(table, s.Length); table.Write(s, 0, s.Length); }
      WriteMb32(file, (int)table.Length);
      table.WriteTo(file);
    }
    int offset = (int)file.Length;
    body.WriteTo(file);
    var bytes = file.ToArray();
    File.WriteAllBytes(Path.Combine(dir, name + ".bin"), bytes);
    // Mono's own reading of what it wrote (a fresh reader session per message file: the table is cumulative only across files in Read).
    var rs = new XmlBinaryReaderSession();
    for (int i = 0; i < ws.Added.Count; i++) rs.Add(i, ws.Added[i]);
    File.WriteAllText(Path.Combine(dir, name + ".xml"), ToXml(bytes, offset, dict, session ? rs : null));
  }

  static byte[] Pattern(int n) { var b = new byte[n]; for (int i = 0; i < n; i++) b[i] = (byte)(i * 31 + 7); return b; }

  static void Request(XmlDictionaryWriter w, XmlDictionary names, byte[] data, string id) {
    var msg = Message.CreateMessage(MessageVersion.Soap12WSAddressing10, "urn:metaos:storage:v1/Write", new WriteBody(names, data));
    msg.Headers.MessageId = new UniqueId(new Guid(id));
    msg.Headers.ReplyTo = new EndpointAddress("http://www.w3.org/2005/08/addressing/anonymous");
    msg.Headers.To = new Uri("net.tcp://127.0.0.1:9/storage");
    msg.Headers.Add(MessageHeader.CreateHeader("Caller", "urn:metaos:v1", "urn:uuid:mono-peer"));
    msg.WriteMessage(w);
  }

  static void Typed(XmlDictionaryWriter w, XmlDictionary names) {
    var ns = names.Add("urn:test:typed");
    w.WriteStartElement("t", names.Add("Values"), ns);
    w.WriteXmlnsAttribute("p", "urn:test:p");
    w.WriteStartAttribute("p", "attr", "urn:test:p"); w.WriteValue(42); w.WriteEndAttribute();
    w.WriteAttributeString("plain", "v<&\"");
    Action<string, Action> el = (name, body) => { w.WriteStartElement("t", names.Add(name), ns); body(); w.WriteEndElement(); };
    el("zero", () => w.WriteValue(0)); el("one", () => w.WriteValue(1));
    el("i8", () => w.WriteValue(-5)); el("i16", () => w.WriteValue(300)); el("i32", () => w.WriteValue(-70000));
    el("i64", () => w.WriteValue(5000000000L)); el("f", () => w.WriteValue(1.5f)); el("f2", () => w.WriteValue(0.1f));
    el("d", () => w.WriteValue(0.1)); el("dinf", () => w.WriteValue(double.NegativeInfinity)); el("dnan", () => w.WriteValue(double.NaN));
    el("dec", () => w.WriteValue(-123.4500m)); el("bool", () => w.WriteValue(true)); el("boolf", () => w.WriteValue(false));
    el("dt", () => w.WriteValue(new DateTime(2020, 1, 2, 3, 4, 5, DateTimeKind.Utc).AddTicks(1234567)));
    el("dtu", () => w.WriteValue(new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Unspecified)));
    el("ts", () => w.WriteValue(new TimeSpan(1, 2, 3, 4, 500))); el("tsneg", () => w.WriteValue(TimeSpan.FromMinutes(-90)));
    el("ts0", () => w.WriteValue(TimeSpan.Zero));
    el("guid", () => w.WriteValue(new Guid("0f8fad5b-d9cb-469f-a165-70867728950e")));
    el("uid", () => w.WriteValue(new UniqueId(new Guid("c0ffee00-1234-5678-9abc-def012345678"))));
    el("bytes", () => { var b = Pattern(300); w.WriteBase64(b, 0, b.Length); });
    el("empty", () => w.WriteString(""));
    el("str", () => w.WriteString("h\u00e9llo <&> \u4e16\u754c \ud83d\ude00"));
    el("long", () => w.WriteString(new string('x', 70000)));
    el("qname", () => w.WriteQualifiedName(names.Add("Local"), ns));
    el("dict", () => w.WriteString(names.Add("a dictionary string")));
    w.WriteComment("a comment");
    w.WriteArray("t", names.Add("int"), ns, new int[] { 1, -2, 300000 }, 0, 3);
    w.WriteArray("t", names.Add("dbl"), ns, new double[] { 0.5, -1e300 }, 0, 2);
    w.WriteArray("t", names.Add("flag"), ns, new bool[] { true, false }, 0, 2);
    w.WriteEndElement();
  }

  static int Write(bool session, string dir) {
    var names = new XmlDictionary();
    var ws = new RecordingSession();
    Save(dir, "request-1", session, ws, w => Request(w, names, Encoding.ASCII.GetBytes("hello"), "0f8fad5b-d9cb-469f-a165-70867728950e"));
    Save(dir, "request-2", session, ws, w => Request(w, names, Pattern(100000), "7c9e6679-7425-40de-944b-e07fc1f90ae7"));
    Save(dir, "typed", session, ws, w => Typed(w, names));
    return 0;
  }

  static int Main(string[] a) {
    try {
      if (a[0] == "dict") {
        var d = SoapDictionary(); XmlDictionaryString s;
        for (int i = 0; d.TryLookup(i, out s); i++) Console.WriteLine((i * 2) + "\t" + s.Value);
        return 0;
      }
      if (a[0] == "read") { var files = new string[a.Length - 2]; Array.Copy(a, 2, files, 0, files.Length); return Read(a[1] == "session", files); }
      if (a[0] == "write") return Write(a[1] == "session", a[2]);
      Console.Error.WriteLine("usage: NbfxPeer.exe dict | read session|plain FILE... | write session|plain DIR");
      return 2;
    } catch (Exception e) {
      Console.WriteLine("error=" + e.GetType().Name + ": " + e.Message.Replace("\n", " "));
      return 1;
    }
  }
}
