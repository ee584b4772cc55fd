#!/usr/bin/python3
"""Interop peer for test/interop/security-zeep.test.ts: python-zeep over HTTPS with WS-Security.

Usage: /usr/bin/python3 security_zeep_client.py WSDL_URL CA_FILE USER PASSWORD CERT KEY PAYLOAD_FILE

The domain is an https:// storage domain with an access policy; every session verifies the server
against CA_FILE (a requests Session with verify=CA_FILE). Scenarios, each a fresh zeep.Client:
  digest:   UsernameToken(USER, PASSWORD, use_digest=True): Open(digest.bin, CreateNew)/Write/Seek/Read/Close
  text:     UsernameToken(USER, PASSWORD, use_digest=False) (PasswordText, allowed over TLS): same on text.bin
  cert:     no UsernameToken, the client certificate (session.cert = (CERT, KEY)): same on cert.bin
  wrong:    UsernameToken(USER, 'wrong-' + PASSWORD, digest): Open(wrong.bin, CreateNew) must fault
  none:     no credentials at all: Open(none.bin, CreateNew) must fault
Prints one JSON object on stdout; the TypeScript test asserts on it (and on the files on disk).
Exits 1 (still printing JSON with "error") when something unexpected is raised.
"""
import hashlib
import json
import sys
import traceback

import requests
import zeep
from zeep.exceptions import Fault
from zeep.transports import Transport
from zeep.wsse.username import UsernameToken

from zeep_client import text_of  # the plain-http interop client, beside this file

NS = 'urn:metaos:storage:v1'
BLOCK = 256 * 1024


def body_of(result):
    return getattr(result, 'body', result)


def client(wsdl_url, ca, wsse=None, cert=None):
    session = requests.Session()
    # requests < 2.32 lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment override
    # session.verify (psf/requests#3829): without this the private CA is silently not used.
    session.trust_env = False
    session.verify = ca
    if cert is not None:
        session.cert = cert
    c = zeep.Client(wsdl_url, service_name='StorageService', port_name='StorageSoap11',
                    transport=Transport(session=session, timeout=20), wsse=wsse)
    return c


def round_trip(c, remote, payload):
    svc = c.service
    out = {'address': svc._binding_options['address']}
    body = body_of(svc.Open(path=remote, mode='CreateNew', access='ReadWrite', share='None'))
    handle = body.handle
    written = 0
    for off in range(0, len(payload), BLOCK):
        w = body_of(svc.Write(handle=handle, data=payload[off:off + BLOCK]))
        written += int(w.written)
    out['written'] = written
    out['seek'] = int(body_of(svc.Seek(handle=handle, offset=0, origin='Begin')).position)
    chunks = []
    for _ in range(10000):
        r = body_of(svc.Read(handle=handle, count=BLOCK))
        chunks.append(r.data or b'')
        if r.eof or not r.data:
            break
    back = b''.join(chunks)
    svc.Close(handle=handle)
    out['readLength'] = len(back)
    out['readSha256'] = hashlib.sha256(back).hexdigest()
    return out


def expect_fault(c, remote):
    try:
        c.service.Open(path=remote, mode='CreateNew', access='ReadWrite', share='None')
        return {'fault': None}
    except Fault as f:
        return {'fault': {'message': f.message, 'code': f.code,
                          'storageFaultCode': text_of(f.detail, 'code'),
                          'storageFaultMessage': text_of(f.detail, 'message')}}


def main():
    wsdl_url, ca, user, password, cert, key, payload_file = sys.argv[1:8]
    with open(payload_file, 'rb') as f:
        payload = f.read()
    out = {'zeep': zeep.__version__}
    out['digest'] = round_trip(client(wsdl_url, ca, UsernameToken(user, password, use_digest=True)), 'digest.bin', payload)
    out['text'] = round_trip(client(wsdl_url, ca, UsernameToken(user, password, use_digest=False)), 'text.bin', payload)
    out['cert'] = round_trip(client(wsdl_url, ca, cert=(cert, key)), 'cert.bin', payload)
    out['wrong'] = expect_fault(client(wsdl_url, ca, UsernameToken(user, 'wrong-' + password, use_digest=True)), 'wrong.bin')
    out['none'] = expect_fault(client(wsdl_url, ca), 'none.bin')
    # The CA really is checked: a session that trusts only the system store refuses the domain.
    try:
        client(wsdl_url, True)
        out['untrusted'] = 'accepted'
    except requests.exceptions.SSLError as e:
        out['untrusted'] = 'SSLError'
    print(json.dumps(out))


if __name__ == '__main__':
    try:
        main()
    except Exception as e:
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e), 'traceback': traceback.format_exc()}))
        sys.exit(1)
