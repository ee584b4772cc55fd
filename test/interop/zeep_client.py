#!/usr/bin/python3
"""Interop peer for test/interop/zeep.test.ts: python-zeep as a client of a metaos storage domain.

Usage: /usr/bin/python3 zeep_client.py WSDL_URL PORT_NAME REMOTE_PATH PAYLOAD_FILE BLOCK

Loads the WSDL from the domain's ?wsdl URL and binds port PORT_NAME (StorageSoap11 or
StorageSoap12) of service StorageService, then:
  Open(REMOTE_PATH, CreateNew, ReadWrite, None), Write the bytes of PAYLOAD_FILE in blocks of BLOCK,
  Seek(0, Begin), Read (count BLOCK) until eof, Close;
  Open('missing-' + REMOTE_PATH, Open, Read, Read), which must fault.
Prints one JSON object on stdout describing what happened; the TypeScript test asserts on it.
Exits 1 (still printing JSON with "error") when something unexpected is raised.
"""
import hashlib
import json
import sys
import traceback

from lxml import etree
import zeep
from zeep.exceptions import Fault

NS = 'urn:metaos:storage:v1'


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
    timing = None
    header = getattr(result, 'header', None) if result is not None else None
    if header is not None:
        timing = header['ServiceTiming'] if 'ServiceTiming' in header else None
    body = getattr(result, 'body', result) if result is not None else None
    return body, timing


def main():
    wsdl_url, port_name, remote_path, payload_file, block = sys.argv[1:6]
    block = int(block)
    with open(payload_file, 'rb') as f:
        payload = f.read()
    out = {'port': port_name, 'zeep': zeep.__version__}

    client = zeep.Client(wsdl_url, service_name='StorageService', port_name=port_name)
    svc = client.service
    out['address'] = svc._binding_options['address']
    out['binding'] = svc._binding.name.text if hasattr(svc._binding.name, 'text') else str(svc._binding.name)
    timings = []

    body, timing = split(svc.Open(path=remote_path, mode='CreateNew', access='ReadWrite', share='None'))
    timings.append(timing)
    handle = body.handle
    out['open'] = {'handleLength': len(handle), 'length': int(body.length), 'position': int(body.position)}

    writes = []
    for off in range(0, len(payload), block):
        body, timing = split(svc.Write(handle=handle, data=payload[off:off + block]))
        timings.append(timing)
        writes.append({'written': int(body.written), 'position': int(body.position)})
    out['writes'] = writes

    body, timing = split(svc.Seek(handle=handle, offset=0, origin='Begin'))
    timings.append(timing)
    out['seekPosition'] = int(body.position)

    chunks = []
    eofs = []
    while len(chunks) <= 10000:
        body, timing = split(svc.Read(handle=handle, count=block))
        timings.append(timing)
        data = body.data or b''
        chunks.append(data)
        eofs.append(bool(body.eof))
        if body.eof or len(data) == 0:
            break
    back = b''.join(chunks)
    out['reads'] = len(chunks)
    out['eofs'] = eofs
    out['readLength'] = len(back)
    out['readSha256'] = hashlib.sha256(back).hexdigest()

    body, timing = split(svc.Close(handle=handle))
    timings.append(timing)
    out['timings'] = timings

    try:
        svc.Open(path='missing-' + remote_path, mode='Open', access='Read', share='Read')
        out['fault'] = None
    except Fault as f:
        detail = f.detail
        out['fault'] = {
            'message': f.message,
            'code': f.code,
            'detailTag': None if detail is None else detail.tag,
            'detailXml': None if detail is None else etree.tostring(detail).decode('utf-8'),
            'storageFaultCode': text_of(detail, 'code'),
            'storageFaultMessage': text_of(detail, 'message'),
        }
    print(json.dumps(out))


if __name__ == '__main__':
    try:
        main()
    except Exception as e:  # report, so the test shows what broke rather than a bare exit status
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e), 'traceback': traceback.format_exc()}))
        sys.exit(1)
