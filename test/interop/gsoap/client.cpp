// gSOAP interop client for the metaos storage service (test/interop/gsoap.test.ts).
//
// Built at test time against code that wsdl2h + soapcpp2 generate from the domain's own WSDL
// (the schema namespace is bound to the prefix `st` and each binding gets its own proxy class:
// `wsdl2h -t typemap.dat -Nsvc`, `soapcpp2 -j -C -x`), so nothing generated is checked in.
//
// usage: client ENDPOINT 1.1|1.2 PATH HEXDATA MISSING_PATH
// Does Open(CreateNew)/Write/Seek/Read/Read(at eof)/Close on PATH, then Open on MISSING_PATH,
// and prints one `key=value` line per observation; exits 0 when every call behaved as expected.
#include "soapStorageSoap11BindingProxy.h"
#include "soapStorageSoap12BindingProxy.h"
#include "StorageSoap11Binding.nsmap"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

static std::string hex(const unsigned char *p, int n) {
  static const char digits[] = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; i++) { s += digits[p[i] >> 4]; s += digits[p[i] & 15]; }
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
  if (soap->header != NULL && soap->header->st__ServiceTiming != NULL)
    std::printf("%s.timing=%lld\n", op, (long long)*soap->header->st__ServiceTiming);
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
static int run(Proxy &proxy, const char *path, const std::vector<unsigned char> &data, const char *missing) {
  struct soap *soap = proxy.soap;

  _st__Open open;
  open.path = path;
  open.mode = st__FileMode__CreateNew;
  open.access = st__FileAccess__ReadWrite;
  open.share = st__FileShare__None;
  _st__OpenResponse opened;
  if (proxy.Open(&open, opened) != SOAP_OK) return failed(soap, "open");
  std::printf("response.soapVersion=%d\n", (int)soap->version);
  std::printf("open.handle=%s\nopen.length=%lld\nopen.position=%lld\n", opened.handle.c_str(), (long long)opened.length, (long long)opened.position);
  timing(soap, "open");
  const std::string handle = opened.handle;

  _st__Write write;
  write.handle = handle;
  write.data.__ptr = const_cast<unsigned char *>(data.data());
  write.data.__size = (int)data.size();
  _st__WriteResponse written;
  if (proxy.Write(&write, written) != SOAP_OK) return failed(soap, "write");
  std::printf("write.written=%d\nwrite.position=%lld\n", written.written, (long long)written.position);
  timing(soap, "write");

  _st__Seek seek;
  seek.handle = handle;
  seek.offset = 0;
  seek.origin = st__SeekOrigin__Begin;
  _st__SeekResponse sought;
  if (proxy.Seek(&seek, sought) != SOAP_OK) return failed(soap, "seek");
  std::printf("seek.position=%lld\n", (long long)sought.position);

  _st__Read read;
  read.handle = handle;
  read.count = (int)data.size() + 100;
  _st__ReadResponse got;
  if (proxy.Read(&read, got) != SOAP_OK) return failed(soap, "read");
  std::printf("read.hex=%s\nread.size=%d\nread.eof=%s\n", hex(got.data.__ptr, got.data.__size).c_str(), got.data.__size, got.eof ? "true" : "false");
  timing(soap, "read");

  _st__ReadResponse atEnd;
  if (proxy.Read(&read, atEnd) != SOAP_OK) return failed(soap, "read2");
  std::printf("read2.size=%d\nread2.eof=%s\n", atEnd.data.__size, atEnd.eof ? "true" : "false");

  _st__Close close;
  close.handle = handle;
  _st__CloseResponse closed;
  if (proxy.Close(&close, closed) != SOAP_OK) return failed(soap, "close");
  std::printf("close=ok\n");
  timing(soap, "close");

  _st__Open openMissing;
  openMissing.path = missing;
  openMissing.mode = st__FileMode__Open;
  openMissing.access = st__FileAccess__Read;
  openMissing.share = st__FileShare__Read;
  _st__OpenResponse none;
  int rc = proxy.Open(&openMissing, none);
  std::printf("fault.rc=%d\n", rc);
  if (rc == SOAP_OK) { std::printf("fault.code=none\n"); return 1; }
  std::printf("fault.soapVersion=%d\n", (int)soap->version);
  const char *subcode = soap_fault_subcode(soap);
  const char **code = soap_faultcode(soap);
  std::printf("fault.soapCode=%s\n", code != NULL && *code != NULL ? *code : "none");
  std::printf("fault.subcode=%s\n", subcode != NULL ? subcode : "none");
  const char *reason = soap_fault_string(soap);
  std::printf("fault.string=%s\n", reason != NULL ? reason : "none");
  timing(soap, "fault");
  SOAP_ENV__Detail *detail = NULL;
  if (soap->fault != NULL) detail = soap->fault->detail != NULL ? soap->fault->detail : soap->fault->SOAP_ENV__Detail;
  if (detail == NULL || detail->st__StorageFault == NULL) {
    std::printf("fault.code=none\n");
    const char *any = soap_fault_detail(soap);
    std::printf("fault.detailXml=%s\n", any != NULL ? any : "none");
    return 1;
  }
  std::printf("fault.code=%s\nfault.message=%s\n", soap_st__FaultCode2s(soap, detail->st__StorageFault->code), detail->st__StorageFault->message.c_str());
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s ENDPOINT 1.1|1.2 PATH HEXDATA MISSING_PATH\n", argv[0]);
    return 2;
  }
  const char *endpoint = argv[1];
  const bool soap12 = std::strcmp(argv[2], "1.2") == 0;
  const std::vector<unsigned char> data = unhex(argv[4]);
  int rc;
  if (soap12) {
    StorageSoap12BindingProxy proxy(endpoint);
    proxy.soap->recv_timeout = proxy.soap->send_timeout = proxy.soap->connect_timeout = 20;
    rc = run(proxy, argv[3], data, argv[5]);
    proxy.destroy();
  } else {
    StorageSoap11BindingProxy proxy(endpoint);
    proxy.soap->recv_timeout = proxy.soap->send_timeout = proxy.soap->connect_timeout = 20;
    // wsdl2h imports soap12.h for the WSDL's SOAP 1.2 binding, which makes SOAP 1.2 the envelope of
    // every generated proxy, the SOAP 1.1 binding's too (soap_set_version(soap, 1) does not stick:
    // the proxy resets the namespace table); give this one a SOAP 1.1 table as its binding says.
    static const struct Namespace soap11[] = {
      { "SOAP-ENV", "http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/*/soap-envelope", NULL },
      { "SOAP-ENC", "http://schemas.xmlsoap.org/soap/encoding/", "http://www.w3.org/*/soap-encoding", NULL },
      { "xsi", "http://www.w3.org/2001/XMLSchema-instance", "http://www.w3.org/*/XMLSchema-instance", NULL },
      { "xsd", "http://www.w3.org/2001/XMLSchema", "http://www.w3.org/*/XMLSchema", NULL },
      { "st", "urn:metaos:storage:v1", NULL, NULL },
      { NULL, NULL, NULL, NULL }
    };
    soap_set_namespaces(proxy.soap, soap11);
    rc = run(proxy, argv[3], data, argv[5]);
    proxy.destroy();
  }
  std::printf("done=%d\n", rc);
  return rc;
}
