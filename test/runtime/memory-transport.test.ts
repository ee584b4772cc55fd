// The in-memory transport: a typed client over it, against a real storage domain's host, gets the
// same results and faults as over HTTP (the same script on both, outcomes compared; the same fault
// bytes for the same bad message). A dispatcher built alone from a service description (no host,
// no socket) takes its fault element and codes from that description, runs its inspectors, and
// the transport says TIMED_OUT, MESSAGE_TOO_LARGE and TRANSPORT_ERROR as the HTTP one does.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createClient, withRequestId, type SoapClient } from '../../soap-runtime/client.js'
import { MessageDispatcher } from '../../soap-runtime/dispatcher.js'
import { FAULT_CODES, MetaosError, NETWORK_FAULT_CODES } from '../../soap-runtime/errors.js'
import { createHttpTransport } from '../../soap-runtime/http-transport.js'
import type { CallOutcome } from '../../soap-runtime/inspectors.js'
import { createMemoryTransport } from '../../soap-runtime/memory-transport.js'
import { STORAGE_PATH } from '../../wsdl/contracts.js'
import { NetworkServiceDescriptor, type NetworkOperations } from '../../wsdl/generated/network-service.js'
import { PerformanceServiceDescriptor, type PerformanceOperations } from '../../wsdl/generated/performance-service.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import { startTestDomain } from '../helpers/domain.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
type Storage = SoapClient<StorageOperations>

/** Handles, bytes and times made comparable: what differs between two runs by design. */
function normalize (v: unknown, key = ''): unknown {
  if (Buffer.isBuffer(v)) return `sha256:${sha(v)}`
  if (v instanceof Date) return 'a date'
  if (key === 'handle' && typeof v === 'string') return 'a handle'
  if (Array.isArray(v)) return v.map((x) => normalize(x))
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, normalize(x, k)]))
  return v
}

/** One script of calls; each outcome is the normalized output, or the fault (code, SOAP code, message). */
async function script (c: Storage, name: string, data: Buffer): Promise<unknown[]> {
  const out: unknown[] = []
  const call = async <K extends keyof StorageOperations & string>(op: K, input: StorageOperations[K]['input']): Promise<StorageOperations[K]['output'] | undefined> => {
    try {
      const r = await c.invoke(op, input)
      out.push({ op, output: normalize(r.output), timed: r.serviceMicros !== undefined })
      return r.output
    } catch (e) {
      const err = e as MetaosError
      out.push({ op, fault: { code: err.code, faultCode: err.faultCode, message: err.message.replaceAll(name, 'NAME') } })
      return undefined
    }
  }
  const { handle } = (await call('Open', { path: `${name}.bin`, mode: 'CreateNew', access: 'ReadWrite', share: 'None' }))!
  await call('Open', { path: `${name}.bin`, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })
  await call('Write', { handle, data })
  await call('Seek', { handle, offset: 0, origin: 'Begin' })
  await call('Read', { handle, count: data.length + 10 })
  await call('Batch', { op: [{ Write: { handle, data: Buffer.from('tail') } }, { Read: { handle: 'not-a-handle', count: 1 } }, { GetLength: { handle } }] })
  await call('SetLength', { handle, length: 50_000 })
  await call('GetLength', { handle })
  await call('Close', { handle })
  await call('Read', { handle, count: 1 })
  await call('Open', { path: 'missing/nope.bin', mode: 'Open', access: 'Read', share: 'Read' })
  await call('Open', { path: '../escape.bin', mode: 'Create', access: 'Write', share: 'None' })
  await call('Seek', { handle, offset: 0, origin: 'Begin' })
  await call('GetFileInfo', { path: `${name}.bin` })
  await call('Delete', { path: `${name}.bin` })
  await call('GetFileInfo', { path: `${name}.bin` })
  return out
}

t.test('a typed client over the in-memory transport gets what it gets over HTTP', async (t) => {
  const d = await startTestDomain(t)
  const data = randomBytes(100_000)
  for (const soapVersion of ['1.1', '1.2'] as const) {
    for (const mtomThreshold of [1024, false] as const) {
      const o = { timingHeader: 'ServiceTiming', caller: 'urn:test:same', soapVersion, mtomThreshold }
      const overHttp = createClient<StorageOperations>(StorageServiceDescriptor, createHttpTransport(d.http, STORAGE_PATH), o)
      const inMemory = createClient<StorageOperations>(StorageServiceDescriptor, createMemoryTransport(d.domain.host), o)
      const label = `SOAP ${soapVersion}, ${mtomThreshold === false ? 'base64' : 'MTOM'}`
      const viaHttp = await script(overHttp, 'over-http', data)
      const viaMemory = await script(inMemory, 'in-memory', data)
      t.same(viaMemory, viaHttp, `${label}: the same outputs and faults, call by call`)
      t.equal(viaMemory.length, 16, `${label}: every call of the script ran`)
      t.ok(viaMemory.some((x) => (x as { fault?: { code: string } }).fault?.code === 'PATH_OUTSIDE_ROOT'), `${label}: faults are among them`)
      t.equal(inMemory.address, 'memory:StorageService')
      await overHttp.close()
      await inMemory.close()
    }
  }

  await t.test('the bytes land on disk, the caller owns its handles, the request id travels', async (t) => {
    const c = createClient<StorageOperations>(StorageServiceDescriptor, createMemoryTransport(d.domain.host), { timingHeader: 'ServiceTiming', caller: 'urn:test:owner' })
    t.teardown(c.close)
    const { output: o } = await c.invoke('Open', { path: 'disk.bin', mode: 'Create', access: 'Write', share: 'None' })
    const r = await withRequestId('mem-req-1', async () => await c.invoke('Write', { handle: o.handle, data }))
    t.equal(r.requestId, 'mem-req-1')
    await c.invoke('Close', { handle: o.handle })
    t.equal(sha(readFileSync(join(d.root, 'disk.bin'))), sha(data), 'written through the in-memory transport, byte for byte')
    const other = createHttpTransport(d.http, STORAGE_PATH)
    t.teardown(other.close)
    const { output: o2 } = await c.invoke('Open', { path: 'disk.bin', mode: 'Open', access: 'Read', share: 'Read' })
    const http = createClient<StorageOperations>(StorageServiceDescriptor, other, { caller: 'urn:test:owner' })
    await t.rejects(http.invoke('Read', { handle: o2.handle, count: 1 }), { code: 'INVALID_HANDLE' }, 'the same Caller over HTTP is another peer: not the handle\'s owner')
    await c.invoke('Close', { handle: o2.handle })
  })

  await t.test('the same bad message gets the same fault bytes', async (t) => {
    const bad = Buffer.from('<Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><Nothing xmlns="urn:x"/></Body></Envelope>')
    const headers = { 'Content-Type': 'text/xml; charset=utf-8', 'X-Request-Id': 'raw-1' }
    const mem = await createMemoryTransport(d.domain.host).send({ chunks: [bad], length: bad.length, headers, timeoutMs: 5000 })
    const http = await createHttpTransport(d.http, STORAGE_PATH).send({ chunks: [bad], length: bad.length, headers, timeoutMs: 5000 })
    const untimed = (b: Buffer): string => b.toString().replace(/(<ServiceTiming[^>]*>)\d+</, '$1N<')
    t.equal(mem.status, 500)
    t.equal(mem.status, http.status)
    t.equal(mem.contentType, http.contentType)
    t.equal(mem.requestId, 'raw-1', 'the request id is echoed')
    t.equal(untimed(mem.body), untimed(http.body), 'byte for byte, but for the service time')
    t.match(mem.body.toString(), /<code>MALFORMED_MESSAGE<\/code>/)
  })

  await t.test('the domain\'s metrics count the calls under transport="memory"', async (t) => {
    const text = await d.domain.metrics.text()
    t.match(text, /metaos_domain_calls_total\{operation="Open",transport="memory"\} \d+/)
    t.match(text, /metaos_domain_calls_total\{operation="Open",transport="http"\} \d+/)
  })
})

t.test('a dispatcher alone: fault element and codes from the service description', async (t) => {
  // TIMED_OUT: a code the network contract has and the storage contract lacks.
  const fail = async (): Promise<never> => { throw new MetaosError('TIMED_OUT', 'failed as told') }
  const storage = new MessageDispatcher({ descriptor: StorageServiceDescriptor, implementation: { GetDomainInfo: fail, Delete: fail }, timingHeader: 'ServiceTiming' })
  t.equal(storage.faultElement, 'StorageFault')
  t.same([...storage.faultCodes!].sort(), [...FAULT_CODES].sort(), 'the storage contract\'s codes, read from its descriptor')
  const s = createClient<StorageOperations>(StorageServiceDescriptor, createMemoryTransport(storage))
  await t.rejects(s.invoke('GetDomainInfo', {}), { code: 'IO_ERROR', message: 'failed as told' }, 'a code the storage contract lacks goes as IO_ERROR')
  const b = await s.invoke('Batch', { op: [{ Delete: { path: 'x' } }] })
  t.same(b.output.result, [{ StorageFault: { code: 'IO_ERROR', message: 'failed as told' } }], 'in a Batch too')
  await t.rejects(s.invoke('Open', { path: 'x', mode: 'Open', access: 'Read', share: 'Read' }), { code: 'MALFORMED_MESSAGE' }, 'an operation left out')

  const network = new MessageDispatcher({ descriptor: NetworkServiceDescriptor, implementation: { ResolveHost: fail }, timingHeader: 'ServiceTiming' })
  t.equal(network.faultElement, 'NetworkFault')
  t.same([...network.faultCodes!].sort(), [...NETWORK_FAULT_CODES].sort())
  const n = createClient<NetworkOperations>(NetworkServiceDescriptor, createMemoryTransport(network))
  await t.rejects(n.invoke('ResolveHost', { name: 'x' }), { code: 'TIMED_OUT' }, 'the network contract has TIMED_OUT')

  const performance = new MessageDispatcher({ descriptor: PerformanceServiceDescriptor, implementation: { ExchangeTable: fail }, timingHeader: 'ServiceTiming' })
  t.equal(performance.faultCodes, undefined, 'PerformanceFault\'s code is a plain string: any code')
  const p = createClient<PerformanceOperations>(PerformanceServiceDescriptor, createMemoryTransport(performance))
  await t.rejects(p.invoke('ExchangeTable', { moduleId: 'm', row: [] }), { code: 'TIMED_OUT' })
})

t.test('inspectors see every call; the transport times out, refuses big messages, closes', async (t) => {
  const seen: CallOutcome[] = []
  const dispatcher = new MessageDispatcher({
    descriptor: StorageServiceDescriptor,
    implementation: {
      GetLength: async (i: { handle: string }, ctx) => ({ length: ctx.caller.length + i.handle.length }),
      Flush: async () => await new Promise(() => {}), // never answers
    },
    timingHeader: 'ServiceTiming',
    limits: { maxMessageBytes: 4096 },
    inspectors: [{
      received: (call) => {
        if (call.caller.startsWith('anonymous@')) throw new MetaosError('UNAUTHORIZED', 'say who you are')
        call.caller = `seen:${call.caller}`
        return undefined
      },
      completed: (o) => { seen.push(o) },
    }],
  })
  const named = createClient<StorageOperations>(StorageServiceDescriptor, createMemoryTransport(dispatcher), { caller: 'abc', timeoutMs: 200 })
  t.equal((await named.invoke('GetLength', { handle: 'h' })).output.length, 'seen:abc@memory'.length + 1, 'the inspector said who the caller is')
  const anonymous = createMemoryTransport(dispatcher)
  const env = Buffer.from('<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetLength xmlns="urn:metaos:storage:v1"><handle>h</handle></GetLength></s:Body></s:Envelope>')
  const refused = await anonymous.send({ chunks: [env], length: env.length, headers: { 'content-type': 'text/xml' }, timeoutMs: 1000 })
  t.match(refused.body.toString(), /<code>UNAUTHORIZED<\/code>/, 'an inspector refuses before the implementation runs')
  await t.rejects(named.invoke('Write', { handle: 'h', data: Buffer.alloc(10_000) }), { code: 'MESSAGE_TOO_LARGE' }, 'over the dispatcher\'s message limit')
  await t.rejects(named.invoke('Flush', { handle: 'h', flushToDisk: false }), { code: 'TIMED_OUT' }, 'no answer within the client\'s timeout')
  t.same(seen.map((o) => [o.operation, o.faultCode, o.origin.transport, o.refused === true]), [
    ['GetLength', undefined, 'memory', false],
    ['GetLength', 'UNAUTHORIZED', 'memory', false],
    ['?', 'MESSAGE_TOO_LARGE', 'memory', true],
  ], 'the inspector saw each answered call')
  await named.close()
  await t.rejects(named.invoke('GetLength', { handle: 'h' }), { code: 'TRANSPORT_ERROR' }, 'a closed transport says so')
})
