// gSOAP interop client for the metaos network service (test/interop/network.test.ts).
//
// Built at test time against code that wsdl2h + soapcpp2 generate from the domain's own WSDL
// (the schema namespace is bound to the prefix `net` and each binding gets its own proxy class:
// `wsdl2h -t typemap.dat -Nsvc`, `soapcpp2 -j -C -x`), so nothing generated is checked in.
//
// usage: client ENDPOINT 1.1|1.2 ECHO_PORT HEXDATA
// Connects (tcp) to 127.0.0.1:ECHO_PORT through the domain, Sends HEXDATA, Receives until every
// byte came back, Closes, then Receives on the closed handle (which must fault INVALID_HANDLE);
// prints one `key=value` line per observation and exits 0 when every call behaved as expected.
#include "soapNetworkSoap11BindingProxy.h"
#include "soapNetworkSoap12BindingProxy.h"
#include "NetworkSoap11Binding.nsmap"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static std::string hex(const unsigned char *p, size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; i++) { s += digits[p[i] >> 4]; s += digits[p[i] & 15]; }
  return s;
}

static std::vector<unsigned char> unhex(const char *s) {
  std::vector<unsigned char> v;
  for (size_t i = 0; s[i] && s[i + 1]; i += 2) {
    unsigned int b;
    std::sscanf(s + i, "%2x", &b);
    v.push_back((unsigned char)b);
  }
  return v;
}

static void timing(struct soap *soap, const char *op) {
  if (soap->header != NULL && soap->header->net__ServiceTiming != NULL)
    std::printf("%s.timing=%lld\n", op, (long long)*soap->header->net__ServiceTiming);
  else
    std::printf("%s.timing=missing\n", op);
}

static int failed(struct soap *soap, const char *op) {
  std::printf("%s.error=%d\n", op, soap->error);
  std::fflush(stdout);
  soap_print_fault(soap, stderr);
  soap_print_fault_location(soap, stderr);
  return 1;
}

template <class Proxy>
static int run(Proxy &proxy, int echoPort, const std::vector<unsigned char> &data) {
  struct soap *soap = proxy.soap;

  _net__Connect connect;
  connect.host = "127.0.0.1";
  connect.port = echoPort;
  connect.protocol = net__Protocol__tcp;
  connect.timeoutMs = 5000;
  _net__ConnectResponse connected;
  if (proxy.Connect(&connect, connected) != SOAP_OK) return failed(soap, "connect");
  std::printf("response.soapVersion=%d\n", (int)soap->version);
  std::printf("connect.socket=%s\nconnect.remoteAddress=%s\nconnect.remotePort=%d\n", connected.socket.c_str(), connected.remoteAddress.c_str(), connected.remotePort);
  timing(soap, "connect");
  const std::string socket = connected.socket;

  _net__Send send;
  send.socket = socket;
  send.data.__ptr = const_cast<unsigned char *>(data.data());
  send.data.__size = (int)data.size();
  _net__SendResponse sent;
  if (proxy.Send(&send, sent) != SOAP_OK) return failed(soap, "send");
  std::printf("send.sent=%d\n", sent.sent);
  timing(soap, "send");

  std::vector<unsigned char> echoed;
  int receives = 0;
  bool closed = false;
  while (echoed.size() < data.size() && !closed && receives < 100) {
    _net__Receive receive;
    receive.socket = socket;
    receive.maxBytes = 65536;
    receive.timeoutMs = 2000;
    _net__ReceiveResponse got;
    if (proxy.Receive(&receive, got) != SOAP_OK) return failed(soap, "receive");
    receives++;
    if (got.data.__ptr != NULL) echoed.insert(echoed.end(), got.data.__ptr, got.data.__ptr + got.data.__size);
    closed = got.closed;
    timing(soap, "receive");
  }
  std::printf("receive.hex=%s\nreceive.count=%d\nreceive.closed=%s\n", hex(echoed.data(), echoed.size()).c_str(), receives, closed ? "true" : "false");

  _net__Close close;
  close.socket = socket;
  _net__CloseResponse done;
  if (proxy.Close(&close, done) != SOAP_OK) return failed(soap, "close");
  std::printf("close=ok\n");
  timing(soap, "close");

  // The handle is gone once closed: a typed NetworkFault with INVALID_HANDLE.
  _net__Receive stale;
  stale.socket = socket;
  stale.maxBytes = 16;
  stale.timeoutMs = 100;
  _net__ReceiveResponse none;
  int rc = proxy.Receive(&stale, none);
  std::printf("fault.rc=%d\n", rc);
  if (rc == SOAP_OK) { std::printf("fault.code=none\n"); return 1; }
  std::printf("fault.soapVersion=%d\n", (int)soap->version);
  const char **code = soap_faultcode(soap);
  std::printf("fault.soapCode=%s\n", code != NULL && *code != NULL ? *code : "none");
  SOAP_ENV__Detail *detail = NULL;
  if (soap->fault != NULL) detail = soap->fault->detail != NULL ? soap->fault->detail : soap->fault->SOAP_ENV__Detail;
  if (detail == NULL || detail->net__NetworkFault == NULL) {
    std::printf("fault.code=none\n");
    const char *any = soap_fault_detail(soap);
    std::printf("fault.detailXml=%s\n", any != NULL ? any : "none");
    return 1;
  }
  std::printf("fault.code=%s\nfault.message=%s\n", soap_net__FaultCode2s(soap, detail->net__NetworkFault->code), detail->net__NetworkFault->message.c_str());
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ENDPOINT 1.1|1.2 ECHO_PORT HEXDATA\n", argv[0]);
    return 2;
  }
  const char *endpoint = argv[1];
  const bool soap12 = std::strcmp(argv[2], "1.2") == 0;
  const int echoPort = std::atoi(argv[3]);
  const std::vector<unsigned char> data = unhex(argv[4]);
  int rc;
  if (soap12) {
    NetworkSoap12BindingProxy proxy(endpoint);
    proxy.soap->recv_timeout = proxy.soap->send_timeout = proxy.soap->connect_timeout = 20;
    rc = run(proxy, echoPort, data);
    proxy.destroy();
  } else {
    NetworkSoap11BindingProxy proxy(endpoint);
    proxy.soap->recv_timeout = proxy.soap->send_timeout = proxy.soap->connect_timeout = 20;
    // wsdl2h imports soap12.h for the WSDL's SOAP 1.2 binding, which makes SOAP 1.2 the envelope of
    // every generated proxy, the SOAP 1.1 binding's too (the generated table lists the 1.2 envelope
    // first, and the proxy resets the table on each call); give this one a SOAP 1.1 table as its
    // binding says. The storage gSOAP client does the same.
    static const struct Namespace soap11[] = {
      { "SOAP-ENV", "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/*/soap-envelope", NULL },
      { "SOAP-ENC", "http://schemas.xmlsoap.org/soap/encoding/", "http://www.w3.org/*/soap-encoding", NULL },
      { "xsi", "http://www.w3.org/2001/XMLSchema-instance", "http://www.w3.org/*/XMLSchema-instance", NULL },
      { "xsd", "http://www.w3.org/2001/XMLSchema", "http://www.w3.org/*/XMLSchema", NULL },
      { "net", "urn:metaos:network:v1", NULL, NULL },
      { NULL, NULL, NULL, NULL }
    };
    soap_set_namespaces(proxy.soap, soap11);
    rc = run(proxy, echoPort, data);
    proxy.destroy();
  }
  std::printf("done=%d\n", rc);
  return rc;
}
