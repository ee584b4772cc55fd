// Interoperability with the npm `soap` package (node-soap), in both directions:
//  (a) a node-soap CLIENT built from a running domain's `?wsdl` round-trips 1 MiB through
//      Open/Write/Seek/Read/Close over the SOAP 1.1 and the SOAP 1.2 port, and gets a typed
//      StorageFault (FILE_NOT_FOUND) for a missing file;
//  (b) a node-soap SERVER built from wsdl/StorageService.wsdl (an in-memory implementation) is
//      called by our own proxy (createStorageProxy, plain base64), over SOAP 1.1 and SOAP 1.2.
import { createCipheriv, createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { createServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import soap from 'soap'
import t, { type Test } from 'tap'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { startTestDomain } from '../helpers/domain.js'

const NS = 'urn:metaos:storage:v1'
const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/'
const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope'
const WSDL_FILE = fileURLToPath(new URL('../../wsdl/StorageService.wsdl', import.meta.url))
const SIZE = 1024 * 1024
const BLOCK = 256 * 1024

/** Deterministic pseudo-random bytes: AES-256-CTR keystream under a fixed key. */
function payload (size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`metaos-interop-${seed}`).digest()
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()])
}
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

// ---------------------------------------------------------------------------------------------
// (a) node-soap client -> metaos domain
// ---------------------------------------------------------------------------------------------

interface NodeSoapCall { result: any, rawResponse: string, soapHeader: any, rawRequest: string } // eslint-disable-line @typescript-eslint/no-explicit-any

/** Calls `operation` on one port of a node-soap client (callback API, so the port can be chosen). */
async function call (port: any, operation: string, args: object): Promise<NodeSoapCall> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return await new Promise((resolve, reject) => {
    port[operation](args, (err: unknown, result: unknown, rawResponse: string, soapHeader: unknown, rawRequest: string) => {
      if (err !== null && err !== undefined) reject(err)
      else resolve({ result, rawResponse, soapHeader, rawRequest })
    }, { timeout: 10_000 })
  })
}

const clientCases = [
  { port: 'StorageSoap11', soap12: false, envNs: SOAP11_NS, seed: 21, status: 500, faultCode: 's:Client' },
  { port: 'StorageSoap12', soap12: true, envNs: SOAP12_NS, seed: 22, status: 500, faultCode: 's:Sender' },
] as const

for (const c of clientCases) {
  t.test(`node-soap client over ${c.port}: 1 MiB round trip and a typed fault`, async (t) => {
    const d = await startTestDomain(t)
    const client = await soap.createClientAsync(`${d.http}?wsdl`, { forceSoap12Headers: c.soap12 })
    // soap:address was rewritten to the address the WSDL was fetched from.
    const ports = client.wsdl.definitions.services.StorageService!.ports
    t.equal(ports[c.port]!.location, d.http, 'soap:address rewritten to the requested address')
    const port = client.StorageService[c.port]
    const data = payload(SIZE, c.seed)
    const remote = `node-soap-${c.port}.bin`

    const open = await call(port, 'Open', { path: remote, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })
    t.match(open.rawRequest, `xmlns:soap="${c.envNs}"`, `the request is a SOAP ${c.soap12 ? '1.2' : '1.1'} envelope`)
    t.match(open.rawResponse, `xmlns:s="${c.envNs}"`, 'the response is in the same SOAP version')
    t.match(open.soapHeader, { ServiceTiming: /^\d+$/ }, 'ServiceTiming header, read by node-soap')
    const handle: string = open.result.handle
    t.type(handle, 'string')
    t.ok(handle.length >= 22, 'opaque handle of at least 128 bits')
    t.same({ length: open.result.length, position: open.result.position }, { length: 0, position: 0 })

    // node-soap sends and returns xsd:base64Binary as base64 strings (it does not convert Buffers).
    for (let off = 0; off < SIZE; off += BLOCK) {
      const w = await call(port, 'Write', { handle, data: data.subarray(off, off + BLOCK).toString('base64') })
      t.same(w.result, { written: BLOCK, position: off + BLOCK }, `Write at ${off}`)
      t.match(w.soapHeader, { ServiceTiming: /^\d+$/ })
    }
    const seek = await call(port, 'Seek', { handle, offset: 0, origin: 'Begin' })
    t.equal(Number(seek.result.position), 0, 'Seek(0, Begin)')

    const chunks: Buffer[] = []
    let eof = false
    for (let i = 0; i < 16 && !eof; i++) {
      const r = await call(port, 'Read', { handle, count: BLOCK })
      t.type(r.result.eof, 'boolean')
      eof = r.result.eof as boolean
      const b64 = r.result.data
      chunks.push(typeof b64 === 'string' ? Buffer.from(b64, 'base64') : Buffer.alloc(0))
    }
    t.ok(eof, 'Read reached eof')
    const back = Buffer.concat(chunks)
    t.equal(back.length, SIZE)
    t.equal(sha256(back), sha256(data), 'SHA-256 of the bytes node-soap read back')
    await call(port, 'Close', { handle })

    const onDisk = join(d.root, remote)
    t.equal(statSync(onDisk).size, SIZE)
    t.equal(sha256(readFileSync(onDisk)), sha256(data), 'SHA-256 of the file in the domain root')

    // The closed handle is gone: a typed INVALID_HANDLE fault.
    const stale = await call(port, 'Read', { handle, count: 1 }).then(() => undefined, (e: unknown) => e)
    t.equal((stale as any)?.root?.Envelope?.Body?.Fault?.[c.soap12 ? 'Detail' : 'detail']?.StorageFault?.code, 'INVALID_HANDLE', 'Read on a closed handle') // eslint-disable-line @typescript-eslint/no-explicit-any

    // A typed fault for a missing file.
    const err = await call(port, 'Open', { path: `missing-${remote}`, mode: 'Open', access: 'Read', share: 'Read' }).then(() => undefined, (e: unknown) => e) as any // eslint-disable-line @typescript-eslint/no-explicit-any
    t.ok(err instanceof Error, 'Open(mode Open) of a missing file faults')
    t.equal(err?.response?.status, c.status, `HTTP ${c.status}`)
    const fault = err?.root?.Envelope?.Body?.Fault
    if (c.soap12) {
      t.equal(fault?.Code?.Value, c.faultCode)
      t.equal(fault?.Detail?.StorageFault?.code, 'FILE_NOT_FOUND', 'Detail/StorageFault/code')
      t.match(fault?.Detail?.StorageFault?.message, /missing-/)
    } else {
      t.equal(fault?.faultcode, c.faultCode)
      t.equal(fault?.detail?.StorageFault?.code, 'FILE_NOT_FOUND', 'detail/StorageFault/code')
      t.match(fault?.detail?.StorageFault?.message, /missing-/)
    }
    t.match(err?.body, `<StorageFault xmlns="${NS}"><code>FILE_NOT_FOUND</code>`, 'the detail element is qualified')
  })
}

t.test('node-soap client: a Caller header it adds binds handles to that caller', async (t) => {
  const d = await startTestDomain(t)
  const owner = await soap.createClientAsync(`${d.http}?wsdl`)
  owner.addSoapHeader('<Caller xmlns="urn:metaos:v1">urn:interop:node-soap-owner</Caller>')
  const other = await soap.createClientAsync(`${d.http}?wsdl`)
  const open = await call(owner.StorageService.StorageSoap11, 'Open', { path: 'owned.bin', mode: 'Create', access: 'ReadWrite', share: 'ReadWrite' })
  t.match(open.rawRequest, /<Caller xmlns="urn:metaos:v1">urn:interop:node-soap-owner<\/Caller>/)
  const handle: string = open.result.handle
  const w = await call(owner.StorageService.StorageSoap11, 'Write', { handle, data: Buffer.from('owned').toString('base64') })
  t.same(w.result, { written: 5, position: 5 })
  const err = await call(other.StorageService.StorageSoap11, 'Write', { handle, data: 'AA==' }).then(() => undefined, (e: unknown) => e) as any // eslint-disable-line @typescript-eslint/no-explicit-any
  t.equal(err?.root?.Envelope?.Body?.Fault?.detail?.StorageFault?.code, 'INVALID_HANDLE', "another caller cannot use the owner's handle")
  await call(owner.StorageService.StorageSoap11, 'Close', { handle })
  t.equal(readFileSync(join(d.root, 'owned.bin'), 'utf8'), 'owned')
})

// ---------------------------------------------------------------------------------------------
// (b) metaos proxy -> node-soap server
// ---------------------------------------------------------------------------------------------

const SERVICE_MICROS = 4242

interface FakeFile { data: Buffer }
interface FakeHandle { file: FakeFile, position: number }

/** A minimal in-memory storage service in node-soap's terms (base64Binary travels as base64 strings). */
function memoryStorage (version: '1.1' | '1.2'): { impl: Record<string, (args: any) => unknown>, files: Map<string, FakeFile> } { // eslint-disable-line @typescript-eslint/no-explicit-any
  const files = new Map<string, FakeFile>()
  const handles = new Map<string, FakeHandle>()
  let next = 0
  const fail = (code: string, message: string): never => {
    // $xml keeps the detail element in our namespace: node-soap would otherwise prefix every
    // element of a SOAP 1.2 Detail with the envelope's prefix.
    const detail = { $xml: `<StorageFault xmlns="${NS}"><code>${code}</code><message>${message}</message></StorageFault>` }
    throw {
      Fault: version === '1.1'
        ? { faultcode: 'soap:Client', faultstring: message, detail, statusCode: 500 }
        : { Code: { Value: 'soap:Sender' }, Reason: { Text: message }, Detail: detail, statusCode: 500 },
    }
  }
  const handleOf = (h: string): FakeHandle => handles.get(h) ?? fail('INVALID_HANDLE', 'no such handle')
  const impl = {
    Open: (a: { path: string, mode: string }) => {
      let f = files.get(a.path)
      if (f === undefined) {
        if (a.mode === 'Open' || a.mode === 'Truncate') fail('FILE_NOT_FOUND', `"${a.path}" does not exist`)
        files.set(a.path, f = { data: Buffer.alloc(0) })
      } else if (a.mode === 'CreateNew') fail('ALREADY_EXISTS', `"${a.path}" exists`)
      else if (a.mode === 'Create' || a.mode === 'Truncate') f.data = Buffer.alloc(0)
      const id = `h${++next}`
      handles.set(id, { file: f, position: 0 })
      return { handle: id, length: f.data.length, position: 0 }
    },
    Write: (a: { handle: string, data: string }) => {
      const h = handleOf(a.handle)
      const bytes = Buffer.from(a.data ?? '', 'base64')
      const end = h.position + bytes.length
      if (end > h.file.data.length) {
        const grown = Buffer.alloc(end)
        h.file.data.copy(grown)
        h.file.data = grown
      }
      bytes.copy(h.file.data, h.position)
      h.position = end
      return { written: bytes.length, position: h.position }
    },
    Seek: (a: { handle: string, offset: number | string, origin: string }) => {
      const h = handleOf(a.handle)
      const base = a.origin === 'Begin' ? 0 : a.origin === 'Current' ? h.position : h.file.data.length
      h.position = base + Number(a.offset)
      return { position: h.position }
    },
    Read: (a: { handle: string, count: number | string }) => {
      const h = handleOf(a.handle)
      const count = Number(a.count)
      const bytes = h.file.data.subarray(h.position, h.position + count)
      h.position += bytes.length
      return { data: bytes.toString('base64'), eof: bytes.length < count }
    },
    Close: (a: { handle: string }) => {
      handleOf(a.handle)
      handles.delete(a.handle)
      return {}
    },
  }
  return { impl, files }
}

async function startNodeSoapServer (t: Test, version: '1.1' | '1.2'): Promise<{ url: string, files: Map<string, FakeFile>, replies: string[] }> {
  const wsdl = readFileSync(WSDL_FILE, 'utf8')
  const { impl, files } = memoryStorage(version)
  const http: HttpServer = createServer((_req, res) => { res.statusCode = 404; res.end() })
  await new Promise<void>((resolve) => { http.listen(0, '127.0.0.1', resolve) })
  t.teardown(async () => { http.closeAllConnections(); await new Promise((resolve) => http.close(resolve)) })
  // Both ports share one path; node-soap binds requests to the first port, and writes the
  // envelope version it is configured for (forceSoap12Headers), whatever the request's version.
  const server = soap.listen(http, {
    path: '/storage',
    services: { StorageService: { StorageSoap11: impl, StorageSoap12: impl } },
    xml: wsdl,
    forceSoap12Headers: version === '1.2',
  })
  server.addSoapHeader(() => `<ServiceTiming xmlns="${NS}">${SERVICE_MICROS}</ServiceTiming>`)
  const replies: string[] = []
  server.log = (type: string, data: unknown) => { if (type === 'replied') replies.push(String(data)) }
  return { url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/storage`, files, replies }
}

for (const version of ['1.1', '1.2'] as const) {
  t.test(`metaos proxy (SOAP ${version}) -> node-soap server: round trip and a typed fault`, async (t) => {
    const s = await startNodeSoapServer(t, version)
    const proxy = createStorageProxy(s.url, { mtomThreshold: false, soapVersion: version, timeoutMs: 10_000 })
    t.teardown(async () => { await proxy.close() })
    const data = payload(SIZE, version === '1.1' ? 31 : 32)

    const open = await proxy.invoke('Open', { path: 'a', mode: 'Create', access: 'ReadWrite', share: 'None' })
    t.same(open.output, { handle: 'h1', length: 0, position: 0 })
    t.equal(open.serviceMicros, SERVICE_MICROS, 'ServiceTiming header sent by node-soap, read by our client')
    t.type(open.totalMicros, 'number')
    const handle = open.output.handle

    for (let off = 0; off < SIZE; off += BLOCK) {
      const w = await proxy.invoke('Write', { handle, data: data.subarray(off, off + BLOCK) })
      t.same(w.output, { written: BLOCK, position: off + BLOCK }, `Write at ${off}`)
    }
    t.equal(sha256(s.files.get('a')!.data), sha256(data), 'node-soap decoded our base64 into the same bytes')

    const seek = await proxy.invoke('Seek', { handle, offset: 0, origin: 'Begin' })
    t.same(seek.output, { position: 0 })
    const chunks: Buffer[] = []
    let eof = false
    for (let i = 0; i < 16 && !eof; i++) {
      const r = await proxy.invoke('Read', { handle, count: BLOCK })
      t.ok(Buffer.isBuffer(r.output.data), 'our client decodes base64Binary into a Buffer')
      chunks.push(r.output.data)
      eof = r.output.eof
    }
    t.ok(eof, 'Read reached eof')
    t.equal(sha256(Buffer.concat(chunks)), sha256(data), 'SHA-256 of the bytes read back through node-soap')
    const closed = await proxy.invoke('Close', { handle })
    t.same(closed.output, {})

    // Typed faults from a foreign server.
    const missing = await proxy.invoke('Open', { path: 'missing', mode: 'Open', access: 'Read', share: 'Read' }).then(() => undefined, (e: unknown) => e)
    t.ok(missing instanceof MetaosError, 'a MetaosError')
    t.equal((missing as MetaosError).code, 'FILE_NOT_FOUND')
    t.equal((missing as MetaosError).faultCode, version === '1.1' ? `{${SOAP11_NS}}Client` : `{${SOAP12_NS}}Sender`)
    const stale = await proxy.invoke('Read', { handle, count: 1 }).then(() => undefined, (e: unknown) => e)
    t.equal((stale as MetaosError).code, 'INVALID_HANDLE')

    // What node-soap actually sent: envelopes of the version asked for, the timing header, a
    // qualified StorageFault detail.
    const envNs = version === '1.1' ? SOAP11_NS : SOAP12_NS
    t.ok(s.replies.length >= 8)
    t.ok(s.replies.every((r) => r.includes(`xmlns:soap="${envNs}"`)), `every reply is a SOAP ${version} envelope`)
    // (node-soap adds its soap headers to responses, not to faults)
    t.ok(s.replies.filter((r) => !r.includes(':Fault>')).every((r) => r.includes(`<ServiceTiming xmlns="${NS}">${SERVICE_MICROS}</ServiceTiming>`)), 'every response has the timing header')
    t.ok(s.replies.some((r) => r.includes(`<StorageFault xmlns="${NS}"><code>FILE_NOT_FOUND</code>`)))
  })
}
