// WCF Discovery as Mono 6.8 ships it (System.ServiceModel.Discovery), against metaos; compiled with
// mcs and driven by test/interop/discovery-wcf.test.ts. Prints key=value lines on stdout.
//
//   find SECONDS          DiscoveryClient(new UdpDiscoveryEndpoint(DiscoveryVersion.WSDiscovery11))
//                         .Find(FindCriteria { ContractTypeNames = {urn:metaos:v1}StorageDomain })
//   probe SECONDS         the same Probe, written by Mono's own WS-Discovery 1.1 serializer
//                         (FindCriteria11), multicast from a plain UdpClient; each answer is read
//                         with the message contract Mono's DiscoveryClient callback would be given
//                         (MessageContracts11.FindResponse, internal: reached by reflection) — as
//                         sent, and again without its AppSequence header
//   announce URL SECONDS  a ServiceHost at URL announced with ServiceDiscoveryBehavior and a
//                         UdpAnnouncementEndpoint (Hello when opened, Bye when closed)
//   discoverable URL SECONDS  a ServiceHost at URL with ServiceDiscoveryBehavior and a
//                         UdpDiscoveryEndpoint (answers Probe and Resolve)
using System;
using System.Collections;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.ServiceModel;
using System.ServiceModel.Channels;
using System.ServiceModel.Description;
using System.ServiceModel.Discovery;
using System.ServiceModel.Discovery.Version11;
using System.Text;
using System.Threading;
using System.Xml;

[ServiceContract (Name = "Echo", Namespace = "urn:metaos:interop")]
public interface IEcho {
  [OperationContract] string Echo (string s);
}

public class EchoService : IEcho {
  public string Echo (string s) { return s; }
}

class ProbeBody : BodyWriter {
  readonly FindCriteria11 criteria;
  public ProbeBody (FindCriteria11 criteria) : base (true) { this.criteria = criteria; }
  protected override void OnWriteBodyContents (XmlDictionaryWriter w) {
    w.WriteStartElement ("Probe", DiscoveryVersion.WSDiscovery11.Namespace);
    criteria.WriteXml (w);
    w.WriteEndElement ();
  }
}

public static class MetaosDiscovery {
  static readonly XmlQualifiedName StorageDomain = new XmlQualifiedName ("StorageDomain", "urn:metaos:v1");

  static string Describe (Exception e) {
    while (e is TargetInvocationException && e.InnerException != null) e = e.InnerException;
    var s = e.GetType ().FullName + ": " + e.Message;
    for (var i = e.InnerException; i != null; i = i.InnerException) s += " <- " + i.GetType ().FullName + ": " + i.Message;
    return s.Replace ("\n", " ").Replace ("\r", "");
  }

  static void Print (EndpointDiscoveryMetadata e) {
    Console.WriteLine ("epr=" + e.Address.Uri);
    foreach (var u in e.ListenUris) Console.WriteLine ("listenUri=" + u);
    foreach (var t in e.ContractTypeNames) Console.WriteLine ("type={" + t.Namespace + "}" + t.Name);
    foreach (var s in e.Scopes) Console.WriteLine ("scope=" + s);
    Console.WriteLine ("metadataVersion=" + e.Version);
  }

  static FindCriteria Criteria (double seconds) {
    var criteria = new FindCriteria ();
    criteria.ContractTypeNames.Add (StorageDomain);
    criteria.Duration = TimeSpan.FromSeconds (seconds);
    return criteria;
  }

  static int Find (double seconds) {
    var client = new DiscoveryClient (new UdpDiscoveryEndpoint (DiscoveryVersion.WSDiscovery11));
    // Which runtime channel the DiscoveryClient's inner DuplexClientBase got: only a duplex one
    // runs the receive loop that would deliver ProbeMatches to its callback.
    var inner = typeof (DiscoveryClient).GetField ("client", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue (client);
    var channel = inner?.GetType ().GetProperty ("InnerChannel")?.GetValue (inner);
    Console.WriteLine ("duplexChannel=" + (channel is IDuplexContextChannel));
    var response = client.Find (Criteria (seconds));
    Console.WriteLine ("found=" + response.Endpoints.Count);
    foreach (var e in response.Endpoints) Print (e);
    return 0;
  }

  static int Probe (double seconds) {
    var version = DiscoveryVersion.WSDiscovery11;
    var probe = Message.CreateMessage (MessageVersion.Soap12WSAddressing10, version.Namespace + "/Probe", new ProbeBody (FindCriteria11.FromFindCriteria (Criteria (seconds))));
    var id = new UniqueId (Guid.NewGuid ());
    probe.Headers.MessageId = id;
    probe.Headers.To = new Uri ("urn:docs-oasis-open-org:ws-dd:ns:discovery:2009:01");
    probe.Headers.ReplyTo = new EndpointAddress (EndpointAddress.AnonymousUri);
    var encoder = new TextMessageEncodingBindingElement (MessageVersion.Soap12WSAddressing10, Encoding.UTF8).CreateMessageEncoderFactory ().Encoder;
    var ms = new MemoryStream ();
    encoder.WriteMessage (probe, ms);
    var bytes = ms.ToArray ();

    var contractType = typeof (FindCriteria11).Assembly.GetType ("System.ServiceModel.Discovery.Version11.MessageContracts11+FindResponse", true);
    var converter = TypedMessageConverter.Create (contractType, version.Namespace + "/ProbeMatches");

    int found = 0;
    using (var udp = new UdpClient (new IPEndPoint (IPAddress.Any, 0))) {
      udp.Client.ReceiveTimeout = 200;
      udp.Send (bytes, bytes.Length, new IPEndPoint (IPAddress.Parse ("239.255.255.250"), 3702));
      var seen = new HashSet<string> ();
      var deadline = DateTime.UtcNow.AddSeconds (seconds);
      while (DateTime.UtcNow < deadline) {
        byte [] data;
        var from = new IPEndPoint (IPAddress.Any, 0);
        try { data = udp.Receive (ref from); } catch (SocketException) { continue; }
        Message reply;
        try { reply = encoder.ReadMessage (new ArraySegment<byte> (data), BufferManager.CreateBufferManager (0, 0)); }
        catch (Exception e) { Console.WriteLine ("unreadable=" + Describe (e)); continue; }
        if (reply.Headers.Action != version.Namespace + "/ProbeMatches" || reply.Headers.RelatesTo != id) continue;
        if (!seen.Add (reply.Headers.MessageId.ToString ())) continue;
        Console.WriteLine ("from=" + from.Address);
        // Read from the datagram each time: Mono's MessageBuffer (CreateBufferedCopy) loses the
        // namespace declarations of s:Envelope and s:Body, so QNames in Types using a prefix
        // declared there would no longer resolve in the copy.
        object contract;
        try {
          contract = converter.FromMessage (reply);
          Console.WriteLine ("accepted=as sent");
        } catch (Exception e) {
          Console.WriteLine ("rejected=" + Describe (e));
          var stripped = encoder.ReadMessage (new ArraySegment<byte> (data), BufferManager.CreateBufferManager (0, 0));
          stripped.Headers.RemoveAll ("AppSequence", version.Namespace);
          try {
            contract = converter.FromMessage (stripped);
            Console.WriteLine ("accepted=without AppSequence");
          } catch (Exception e2) {
            Console.WriteLine ("rejectedWithoutAppSequence=" + Describe (e2));
            continue;
          }
        }
        var seq = contractType.GetProperty ("MessageSequence").GetValue (contract) as DiscoveryMessageSequence11;
        if (seq != null) {
          var s = seq.ToDiscoveryMessageSequence ();
          Console.WriteLine ("appSequence=" + s.InstanceId + "/" + s.MessageNumber);
        }
        foreach (EndpointDiscoveryMetadata11 m in (IEnumerable) contractType.GetProperty ("Body").GetValue (contract)) {
          found++;
          Print (m.ToEndpointDiscoveryMetadata ());
        }
      }
    }
    Console.WriteLine ("found=" + found);
    return 0;
  }

  static int Serve (string url, double seconds, bool announce) {
    var host = new ServiceHost (typeof (EchoService), new Uri (url));
    var endpoint = host.AddServiceEndpoint (typeof (IEcho), new BasicHttpBinding (), "");
    var edb = new EndpointDiscoveryBehavior ();
    edb.Scopes.Add (new Uri ("metaos://interop/mono"));
    endpoint.Behaviors.Add (edb);
    var sdb = new ServiceDiscoveryBehavior ();
    if (announce) sdb.AnnouncementEndpoints.Add (new UdpAnnouncementEndpoint (DiscoveryVersion.WSDiscovery11));
    host.Description.Behaviors.Add (sdb);
    if (!announce) host.AddServiceEndpoint (new UdpDiscoveryEndpoint (DiscoveryVersion.WSDiscovery11));
    host.Open ();
    Console.WriteLine ("opened=" + url);
    Thread.Sleep (TimeSpan.FromSeconds (seconds));
    host.Close ();
    Console.WriteLine ("closed=" + url);
    return 0;
  }

  public static int Main (string [] args) {
    var code = Run (args);
    // Mono 6.8 sometimes takes ~26 s to exit after Main returns once a DiscoveryClient has run
    // (its shutdown waits on WCF's worker threads); exit at once instead.
    Console.Out.Flush ();
    Console.Error.Flush ();
    Environment.Exit (code);
    return code;
  }

  static int Run (string [] args) {
    try {
      var mode = args.Length > 0 ? args [0] : "";
      var seconds = double.Parse (args.Length > 1 ? args [args.Length - 1] : "3", CultureInfo.InvariantCulture);
      switch (mode) {
      case "find": return Find (seconds);
      case "probe": return Probe (seconds);
      case "announce": return Serve (args [1], seconds, true);
      case "discoverable": return Serve (args [1], seconds, false);
      default: Console.Error.WriteLine ("usage: find|probe SECONDS | announce|discoverable URL SECONDS"); return 2;
      }
    } catch (Exception e) {
      Console.WriteLine ("error=" + Describe (e));
      Console.Error.WriteLine (e);
      return 1;
    }
  }
}
