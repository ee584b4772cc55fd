// The hostile corpus, framing part: raw bytes against a real storage domain's net.uds and net.tcp
// listeners ([MC-NMF]). A bad preamble, an unknown record type, records out of order, a 2^31 size
// prefix, a 200 MB envelope over the quota, truncated records, an envelope that is not XML, a
// preamble that never ends, thousands of idle sessions, too many sessions from one peer, more
// bytes held than the budget, binary envelopes that do not decode (a dictionary id out of range, a
// record truncated inside its sized envelope): each gets its Fault record (or a SOAP fault, or a closed socket),
// memory stays bounded, and the domain keeps serving others — checked with a proxy's round trip.
import t, { type Test } from 'tap'
import { mkdirSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { startStorageDomain, type StorageDomain, type StorageDomainOptions } from '../../backend-storage/storage-domain.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { envelopeHeader, RecordType, stringRecord } from '../../soap-runtime/nmf/records.js'
import { decodeEnvelope, NbfxReaderSession, NbfxWriterSession } from '../../soap-runtime/nbfx/index.js'
import { readEnvelope, readFault } from '../../soap-runtime/envelope.js'
import { binaryPreamble, binaryStorageCall, faultName, rawSession, storageCall, textPreamble, type RawSession } from '../helpers/nmf-raw.js'
import { tempDir } from '../helpers/temp-dir.js'

async function framedDomain (t: Test, options: Partial<StorageDomainOptions> = {}): Promise<{ d: StorageDomain, uds: string, tcp: string }> {
  const dir = tempDir(t, 'metaos-hostile-nmf-')
  mkdirSync(join(dir, 'root'))
  const d = await startStorageDomain({ root: join(dir, 'root'), listen: [`net.uds:${join(dir, 'd.sock')}`, 'net.tcp://127.0.0.1:0'], ...options })
  t.teardown(async () => { await d.close(500) })
  return { d, uds: d.endpoints[0]!, tcp: d.endpoints[1]! }
}

/** The domain still serves: a proxy's round trip on a fresh session. */
async function stillServes (t: Test, endpoint: string, d: StorageDomain): Promise<void> {
  const p = createStorageProxy(endpoint, { timeoutMs: 10_000 })
  try {
    t.equal((await p.invoke('GetDomainInfo', {})).output.volume, d.volume, `${endpoint.split(':')[0]}: the domain keeps serving others`)
  } finally { await p.close() }
}

async function until (what: () => boolean, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms
  while (!what() && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 50))
  return what()
}

t.test('malformed framing: each gets its Fault record and a closed socket', async (t) => {
  const { d, uds, tcp } = await framedDomain(t)
  const preamble = (ep: string): Buffer => textPreamble(ep).subarray(0, -1) // without Preamble End
  const cases: Array<[string, string, Buffer, string]> = [
    ['an HTTP request on net.tcp', tcp, Buffer.from('GET /storage?wsdl HTTP/1.1\r\nHost: x\r\n\r\n'), 'InvalidRecordSequence'],
    ['an unknown record type after the preamble', uds, Buffer.concat([textPreamble(uds), Buffer.of(0x42)]), 'InvalidRecordSequence'],
    ['an envelope before Preamble End', tcp, Buffer.concat([preamble(tcp), storageCall('GetDomainInfo', 'urn:uuid:1', tcp)]), 'InvalidRecordSequence'],
    ['a Preamble Ack from the initiator', uds, Buffer.concat([textPreamble(uds), Buffer.of(RecordType.PreambleAck)]), 'InvalidRecordSequence'],
    ['a 2^31 size prefix', uds, Buffer.concat([textPreamble(uds), Buffer.of(0x06, 0x80, 0x80, 0x80, 0x80, 0x08)]), 'MaxMessageSizeExceededFault'],
    ['a size past five octets', tcp, Buffer.concat([textPreamble(tcp), Buffer.of(0x06, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)]), 'InvalidRecordSequence'],
    ['a Via over 2048 octets', tcp, Buffer.concat([Buffer.of(0, 1, 0, 1, 2), stringRecord(RecordType.Via, `net.tcp://x/${'a'.repeat(5000)}`)]), 'ViaTooLong'],
    ['a Via that is not UTF-8', uds, Buffer.of(0, 1, 0, 1, 2, RecordType.Via, 2, 0xc3, 0x28), 'InvalidRecordSequence'],
  ]
  for (const [what, ep, bytes, fault] of cases) {
    const s = await rawSession(ep)
    s.send(bytes)
    const first = await s.next()
    const r = first !== 'closed' && first !== 'timeout' && first.type === RecordType.PreambleAck ? await s.next() : first
    t.equal(faultName(r), fault, `${what}: ${fault}`)
    t.equal(await s.next(), 'closed', `${what}: the socket closes`)
  }
  await stillServes(t, uds, d)
  await stillServes(t, tcp, d)
})

t.test('a 200 MB envelope over the 64 MiB quota is refused on its size, before its bytes are held', async (t) => {
  const { d, uds } = await framedDomain(t)
  const before = process.memoryUsage().rss
  const s = await rawSession(uds)
  s.send(textPreamble(uds))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  s.send(envelopeHeader(200 * 1024 * 1024))
  const filler = Buffer.alloc(1024 * 1024, 0x3c)
  for (let i = 0; i < 8; i++) s.send(filler)
  t.equal(faultName(await s.next()), 'MaxMessageSizeExceededFault')
  t.equal(await s.next(), 'closed')
  t.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'the domain did not hold the envelope', { grewMiB: (process.memoryUsage().rss - before) >> 20 })
  await stillServes(t, uds, d)
})

t.test('an envelope over a small quota: MESSAGE_TOO_LARGE for the proxy\'s call, a Fault record for a raw peer', async (t) => {
  const { d, uds, tcp } = await framedDomain(t, { limits: { maxMessageBytes: 64 * 1024 } })
  const p = createStorageProxy(tcp)
  t.teardown(async () => { await p.close() })
  const o = await p.invoke('Open', { path: 'big.bin', mode: 'Create', access: 'Write', share: 'None' })
  await t.rejects(p.invoke('Write', { handle: o.output.handle, data: Buffer.alloc(100_000) }), { code: 'MESSAGE_TOO_LARGE' })
  const s = await rawSession(uds)
  s.send(Buffer.concat([textPreamble(uds), envelopeHeader(65 * 1024 + 1)]))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  t.equal(faultName(await s.next()), 'MaxMessageSizeExceededFault')
  await stillServes(t, uds, d)
})

t.test('truncated records: a peer that leaves mid-record costs nothing, one that stalls holds up no one else', async (t) => {
  const { d, uds, tcp } = await framedDomain(t)
  const gone = await rawSession(tcp)
  gone.send(Buffer.concat([textPreamble(tcp), storageCall('GetDomainInfo', 'urn:uuid:1', tcp).subarray(0, 100)]))
  t.same(await gone.next(), { type: RecordType.PreambleAck })
  gone.socket.destroy()
  const stalled = await rawSession(uds)
  stalled.send(Buffer.concat([textPreamble(uds), storageCall('GetDomainInfo', 'urn:uuid:2', uds).subarray(0, 60)]))
  t.same(await stalled.next(), { type: RecordType.PreambleAck })
  await stillServes(t, uds, d)
  t.ok(await until(() => d.host.framedSessions === 1), 'only the stalled session is left')
  stalled.send(storageCall('GetDomainInfo', 'urn:uuid:2', uds).subarray(60))
  const r = await stalled.next()
  t.ok(r !== 'closed' && r !== 'timeout' && r.type === RecordType.SizedEnvelope, 'its rest arrives: it is answered')
  stalled.socket.destroy()
})

t.test('an envelope that is not XML gets a SOAP fault; the session goes on', async (t) => {
  const { uds } = await framedDomain(t)
  const s = await rawSession(uds)
  const junk = Buffer.from('<<<not xml')
  s.send(Buffer.concat([textPreamble(uds), envelopeHeader(junk.length), junk]))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  const r = await s.next()
  t.ok(r !== 'closed' && r !== 'timeout' && r.type === RecordType.SizedEnvelope && /MALFORMED_MESSAGE/.test(r.payload.toString()), 'a StorageFault MALFORMED_MESSAGE')
  s.send(storageCall('GetDomainInfo', 'urn:uuid:3', uds))
  const next = await s.next()
  t.ok(next !== 'closed' && next !== 'timeout' && next.type === RecordType.SizedEnvelope && /GetDomainInfoResponse/.test(next.payload.toString()), 'the next call on the session is answered')
  s.socket.destroy()
})

/** The next record is a binary envelope holding a StorageFault: its code. */
async function binaryFaultCode (s: RawSession, reader: NbfxReaderSession): Promise<string | undefined> {
  const r = await s.next()
  if (r === 'closed' || r === 'timeout' || r.type !== RecordType.SizedEnvelope) return `not an envelope: ${JSON.stringify(r)}`
  const env = readEnvelope(decodeEnvelope(r.payload, reader), new Set())
  return readFault(env.body, '{urn:metaos:storage:v1}StorageFault').detail?.children.find((c) => c.local === 'code')?.text
}

t.test('malformed binary envelopes: a MALFORMED_MESSAGE fault, then the session ends cleanly', async (t) => {
  const { d, uds, tcp } = await framedDomain(t)
  const writer = new NbfxWriterSession()
  const write = binaryStorageCall('Write', { handle: 'h', data: Buffer.alloc(5000, 7) }, 'urn:uuid:00000000-0000-4000-8000-000000000001', tcp, writer)
  const payload = write.subarray(3) // without its record header: 0x06 and a two-octet size
  t.ok(envelopeHeader(payload.length).equals(write.subarray(0, 3)), 'the record header is three octets')
  const truncated = payload.subarray(0, payload.length - 1000) // without its last 1000 bytes: it ends inside the Bytes record
  const cases: Array<[string, string, Buffer]> = [
    ['a session dictionary id the session never defined', uds, Buffer.of(0x00, 0x42, 0x63, 0x01)],
    ['a static dictionary id out of range', tcp, Buffer.of(0x00, 0x42, 0xce, 0x07, 0x01)],
    ['a string table larger than its envelope', uds, Buffer.of(0x7f, 0x03, 0x61, 0x62, 0x63)],
    ['a record truncated inside its sized envelope', tcp, truncated],
    ['an envelope of text on a binary session', uds, Buffer.from('<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>')],
  ]
  for (const [what, ep, payload] of cases) {
    const s = await rawSession(ep)
    s.send(Buffer.concat([binaryPreamble(ep), envelopeHeader(payload.length), payload]))
    t.same(await s.next(), { type: RecordType.PreambleAck }, `${what}: the session opens`)
    t.equal(await binaryFaultCode(s, new NbfxReaderSession()), 'MALFORMED_MESSAGE', `${what}: a binary StorageFault MALFORMED_MESSAGE`)
    t.same(await s.next(), { type: RecordType.End }, `${what}: then End`)
    t.equal(await s.next(), 'closed', `${what}: the socket closes`)
  }
  // Envelopes pipelined after the bad one are not read: the session's dictionary is not trusted any more.
  const s = await rawSession(uds)
  const ok = binaryStorageCall('GetDomainInfo', {}, 'urn:uuid:00000000-0000-4000-8000-000000000002', uds, new NbfxWriterSession())
  s.send(Buffer.concat([binaryPreamble(uds), envelopeHeader(4), Buffer.of(0x00, 0x42, 0x63, 0x01), ok]))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  t.equal(await binaryFaultCode(s, new NbfxReaderSession()), 'MALFORMED_MESSAGE')
  const next = await s.next()
  t.ok(next === 'closed' || (typeof next !== 'string' && (next.type === RecordType.End || faultName(next) === 'InvalidRecordSequence')), 'the next envelope ends the session (End or a framing fault), never answered', { next })
  s.socket.destroy()
  await stillServes(t, uds, d)
  await stillServes(t, tcp, d)
})

t.test('a binary session answers a raw peer with its own session strings, in step both ways', async (t) => {
  const { uds, d } = await framedDomain(t)
  const s = await rawSession(uds)
  const writer = new NbfxWriterSession()
  const reader = new NbfxReaderSession()
  s.send(binaryPreamble(uds))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  for (let i = 1; i <= 3; i++) {
    s.send(binaryStorageCall('GetDomainInfo', {}, `urn:uuid:00000000-0000-4000-8000-00000000001${i}`, uds, writer))
    const r = await s.next()
    if (r === 'closed' || r === 'timeout' || r.type !== RecordType.SizedEnvelope) { t.fail(`call ${i}: ${JSON.stringify(r)}`); return }
    const env = readEnvelope(decodeEnvelope(r.payload, reader), new Set())
    t.equal(env.body.local, 'GetDomainInfoResponse', `call ${i}: answered`)
    t.equal(env.addressing?.relatesTo, `urn:uuid:00000000-0000-4000-8000-00000000001${i}`, `call ${i}: RelatesTo its MessageID`)
    t.equal(env.body.children.find((c) => c.local === 'volume')?.text, d.volume)
    if (i > 1) t.equal(r.payload[0], 0, `call ${i}: the answer's string table is empty (the strings were sent with the first)`)
  }
  s.socket.destroy()
})

t.test('a preamble that never ends is closed at its deadline', async (t) => {
  const { d, tcp } = await framedDomain(t, { limits: { headersTimeoutMs: 300 } })
  const s = await rawSession(tcp)
  s.send([0, 1, 0, 1, 2])
  t.equal(await s.next(5000), 'closed', 'closed without a Preamble Ack')
  await stillServes(t, tcp, d)
})

t.test('thousands of idle sessions: over the cap refused at once, the rest closed by the deadlines; memory bounded', async (t) => {
  const { d, uds } = await framedDomain(t, { limits: { maxConnections: 500, headersTimeoutMs: 1000, sessionIdleTimeoutMs: 1000 } })
  const path = uds.slice('net.uds:'.length)
  const before = process.memoryUsage().rss
  const sockets = await Promise.all(Array.from({ length: 2000 }, async (_, i) => await new Promise<{ closed: Promise<void> }>((resolve) => {
    const s = connect(path)
    s.on('error', () => {})
    s.resume()
    const closed = new Promise<void>((resolve) => { s.once('close', () => { resolve() }) })
    s.once('connect', () => { if (i % 2 === 0) s.write(textPreamble(uds)); resolve({ closed }) })
    s.once('error', () => { resolve({ closed }) })
  })))
  let most = 0
  const watch = setInterval(() => { most = Math.max(most, d.host.framedSessions) }, 5)
  await Promise.all(sockets.map(async (s) => { await s.closed }))
  clearInterval(watch)
  t.ok(most > 0 && most <= 500, `at most 500 sessions held at once (${most})`)
  t.pass('every one of the 2000 sockets was closed by the domain')
  t.ok(await until(() => d.host.framedSessions === 0), 'no session left')
  t.ok(process.memoryUsage().rss - before < 128 * 1024 * 1024, 'memory bounded', { grewMiB: (process.memoryUsage().rss - before) >> 20 })
  await stillServes(t, uds, d)
})

t.test('too many sessions from one peer: ServerTooBusy', async (t) => {
  const { d, tcp } = await framedDomain(t, { limits: { maxConnectionsPerPeer: 10 } })
  const held = await Promise.all(Array.from({ length: 10 }, async () => await rawSession(tcp)))
  const over = await rawSession(tcp)
  t.equal(faultName(await over.next()), 'ServerTooBusy')
  t.equal(await over.next(), 'closed')
  for (const s of held) s.socket.destroy()
  t.ok(await until(() => d.host.framedSessions === 0), 'the held ones are gone')
  await stillServes(t, tcp, d)
})

t.test('more request bytes held than the budget: ServerTooBusy, and the budget is given back', async (t) => {
  const { d, uds } = await framedDomain(t, { limits: { maxBufferedBytes: 1024 * 1024, maxMessageBytes: 4 * 1024 * 1024 } })
  const peers = await Promise.all(Array.from({ length: 3 }, async () => await rawSession(uds)))
  const part = Buffer.alloc(600 * 1024, 0x20)
  const faults: Array<string | undefined> = []
  for (const s of peers) {
    s.send(Buffer.concat([textPreamble(uds), envelopeHeader(3 * 1024 * 1024), part]))
    t.same(await s.next(), { type: RecordType.PreambleAck })
  }
  for (const s of peers) faults.push(faultName(await s.next(1500)))
  t.ok(faults.includes('ServerTooBusy'), 'a session past the budget gets ServerTooBusy', { faults })
  for (const s of peers) s.socket.destroy()
  t.ok(await until(() => d.host.framedSessions === 0))
  await stillServes(t, uds, d)
})
