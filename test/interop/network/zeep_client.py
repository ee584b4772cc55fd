#!/usr/bin/python3
"""Interop peer for test/interop/network.test.ts: python-zeep as a client of a metaos network domain.

Usage: /usr/bin/python3 zeep_client.py WSDL_URL PORT_NAME ECHO_PORT PAYLOAD_HEX

Loads the WSDL from the domain's ?wsdl URL and binds port PORT_NAME (NetworkSoap11 or
NetworkSoap12) of service NetworkService with client.bind, then:
  Connect(127.0.0.1, ECHO_PORT, tcp), Send the payload, Receive (timeoutMs 2000) until every byte
  came back, Shutdown, Receive until closed, Close;
  ResolveHost('localhost');
  Connect to 10.255.255.1:80 (outside the default allow-list) and Receive on a made-up socket,
  both of which must fault.
Prints one JSON object on stdout describing what happened; the TypeScript test asserts on it.
Exits 1 (still printing JSON with "error") when something unexpected is raised.
"""
import binascii
import json
import sys
import traceback

from lxml import etree
import zeep
from zeep.exceptions import Fault

NS = 'urn:metaos:network:v1'


def text_of(el, local):
    """Text of {NS}local: el itself or its first such descendant (None when absent)."""
    if el is None:
        return None
    if el.tag == '{%s}%s' % (NS, local):
        return el.text
    found = el.find('.//{%s}%s' % (NS, local))
    return None if found is None else found.text


def split(result):
    """zeep returns {'header': …, 'body': …} when the output declares a SOAP header."""
    header = getattr(result, 'header', None) if result is not None else None
    timing = header['ServiceTiming'] if header is not None and 'ServiceTiming' in header else None
    body = getattr(result, 'body', result) if result is not None else None
    return body, timing


def fault_of(call):
    """Runs call, which must raise a zeep Fault; describes the fault (None when nothing was raised)."""
    try:
        call()
        return None
    except Fault as f:
        detail = f.detail
        return {
            'code': f.code,
            'message': f.message,
            'detailTag': None if detail is None else detail.tag,
            'detailXml': None if detail is None else etree.tostring(detail).decode('utf-8'),
            'networkFaultCode': text_of(detail, 'code'),
            'networkFaultMessage': text_of(detail, 'message'),
        }


def main():
    wsdl_url, port_name, echo_port, payload_hex = sys.argv[1:5]
    payload = binascii.unhexlify(payload_hex)
    out = {'port': port_name, 'zeep': zeep.__version__}

    client = zeep.Client(wsdl_url)
    svc = client.bind('NetworkService', port_name)
    out['address'] = svc._binding_options['address']
    name = svc._binding.name
    out['binding'] = name.text if hasattr(name, 'text') else str(name)
    timings = []

    body, timing = split(svc.Connect(host='127.0.0.1', port=int(echo_port), protocol='tcp', timeoutMs=5000))
    timings.append(timing)
    sock = body.socket
    out['connect'] = {
        'socketLength': len(sock),
        'localAddress': body.localAddress, 'localPort': int(body.localPort),
        'remoteAddress': body.remoteAddress, 'remotePort': int(body.remotePort),
    }

    body, timing = split(svc.Send(socket=sock, data=payload))
    timings.append(timing)
    out['sent'] = int(body.sent)

    echoed = b''
    receives = 0
    while len(echoed) < len(payload) and receives < 100:
        body, timing = split(svc.Receive(socket=sock, maxBytes=65536, timeoutMs=2000))
        timings.append(timing)
        receives += 1
        echoed += body.data or b''
        if body.closed:
            break
    out['echoHex'] = binascii.hexlify(echoed).decode('ascii')
    out['echoReceives'] = receives

    body, timing = split(svc.Shutdown(socket=sock))
    timings.append(timing)
    out['shutdown'] = 'ok'

    # The echo server ends its side once ours ended: Receive reports closed (and no more bytes).
    after = b''
    closed = False
    waits = 0
    while not closed and waits < 20:
        body, timing = split(svc.Receive(socket=sock, maxBytes=65536, timeoutMs=2000))
        timings.append(timing)
        waits += 1
        after += body.data or b''
        closed = bool(body.closed)
    out['closed'] = closed
    out['bytesAfterShutdown'] = len(after)
    out['closeReceives'] = waits

    body, timing = split(svc.Close(socket=sock))
    timings.append(timing)
    out['close'] = 'ok'

    body, timing = split(svc.ResolveHost(name='localhost'))
    timings.append(timing)
    out['resolved'] = list(body.address or [])
    out['timings'] = timings

    out['notAllowed'] = fault_of(lambda: svc.Connect(host='10.255.255.1', port=80, protocol='tcp', timeoutMs=2000))
    out['invalidHandle'] = fault_of(lambda: svc.Receive(socket='made-up-socket-handle', maxBytes=16, timeoutMs=100))
    print(json.dumps(out))


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # report, so the test shows what broke rather than a bare exit status
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e), 'traceback': traceback.format_exc()}))
        sys.exit(1)
