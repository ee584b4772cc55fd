// The binary encoding on net.uds and net.tcp ([MC-NMF] sessions with [MC-NBFX] envelopes and
// [MC-NBFSE] session strings, what NetTcpBinding sends) against a real storage domain: a proxy's
// Open/Write/Seek/Read/Close/Delete with bytes from 0 to 1 MiB compared by SHA-256, the bytes on the
// wire as they are in both directions (no base64, no XML text: seen through a relay), many calls in
// flight on one session from several streams, typed faults, Batch, a domain serving binary and text
// sessions side by side, a proxy given a binary reply it cannot decode, and the network contract.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { startNetworkDomain } from '../../backend-network/network-domain.js'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { createNetworkProxy } from '../../frontend/handlers/network-handler.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { readEnvelope } from '../../soap-runtime/envelope.js'
import { compileBinaryCodecs, decodeEnvelope, encodeEnvelope, NbfxReaderSession, NbfxWriterSession } from '../../soap-runtime/nbfx/index.js'
import { envelopeHeader, PREAMBLE_ACK_RECORD, RecordReader, RecordType } from '../../soap-runtime/nmf/records.js'
import { StorageServiceDescriptor } from '../../wsdl/generated/storage-service.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

async function framedDomain (t: Test): Promise<{ d: StorageDomain, dir: string, root: string, uds: string, tcp: string }> {
  const dir = tempDir(t, 'metaos-nmf-bin-')
  const root = join(dir, 'root')
  mkdirSync(root)
  const d = await startStorageDomain({ root, listen: [`net.uds:${join(dir, 'd.sock')}`, 'net.tcp://127.0.0.1:0'] })
  t.teardown(async () => { await d.close(500) })
  return { d, dir, root, uds: d.endpoints[0]!, tcp: d.endpoints[1]! }
}

/** A Unix-socket relay in front of `target` that keeps what went each way. */
async function capturingRelay (t: Test, target: string, path: string): Promise<{ up: () => Buffer, down: () => Buffer }> {
  const up: Buffer[] = []
  const down: Buffer[] = []
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connect(target)
    sockets.add(client).add(upstream)
    client.on('data', (c: Buffer) => { up.push(c); upstream.write(c) })
    upstream.on('data', (c: Buffer) => { down.push(c); client.write(c) })
    client.on('close', () => { upstream.destroy() })
    upstream.on('close', () => { client.destroy() })
    client.on('error', () => {})
    upstream.on('error', () => {})
  })
  await new Promise<void>((resolve) => { server.listen(path, resolve) })
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
  return { up: () => Buffer.concat(up), down: () => Buffer.concat(down) }
}

for (const kind of ['uds', 'tcp'] as const) {
  t.test(`net.${kind}, binary: Open/Write/Seek/Read/Close/Delete, 0 B to 1 MiB by SHA-256`, async (t) => {
    const { d, root, uds, tcp } = await framedDomain(t)
    const p = createStorageProxy(kind === 'uds' ? uds : tcp) // binary: the default
    t.teardown(async () => { await p.close() })
    for (const size of [0, 1, 512, 4096, 65_536, 300_001, 1024 * 1024]) {
      const data = randomBytes(size)
      const path = `f-${size}.bin`
      const o = await p.invoke('Open', { path, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })
      const w = await p.invoke('Write', { handle: o.output.handle, data })
      t.equal(w.output.written, size, `${size} B: Write wrote them all`)
      t.type(w.serviceMicros, 'number', 'the ServiceTiming header is read')
      await p.invoke('Seek', { handle: o.output.handle, offset: 0, origin: 'Begin' })
      const r = await p.invoke('Read', { handle: o.output.handle, count: size + 10 })
      t.equal(sha(r.output.data), sha(data), `${size} B: Read returns them (SHA-256)`)
      t.ok(Buffer.isBuffer(r.output.data), 'as a Buffer')
      await p.invoke('Close', { handle: o.output.handle })
      t.equal(sha(readFileSync(join(root, path))), sha(data), `${size} B: SHA-256 of the file on disk`)
      await p.invoke('Delete', { path })
    }
    await t.rejects(p.invoke('Open', { path: 'missing', mode: 'Open', access: 'Read', share: 'Read' }), { code: 'FILE_NOT_FOUND' }, 'a StorageFault arrives as its code')
    await t.rejects(p.invoke('Write', { handle: 'no-such-handle', data: Buffer.alloc(3) }), { code: 'INVALID_HANDLE' })
    t.equal(d.host.framedSessions, 1, 'all on one session')
  })
}

t.test('the bytes travel as they are, both ways: no base64, no XML text', async (t) => {
  const { dir, uds } = await framedDomain(t)
  const relay = await capturingRelay(t, uds.slice('net.uds:'.length), join(dir, 'relay.sock'))
  const data = randomBytes(65_536)
  const b64 = data.subarray(0, 3000).toString('base64')
  for (const encoding of ['binary', 'binary-sessionless', 'text'] as const) {
    const start = relay.up().length
    const p = createStorageProxy(`net.uds:${join(dir, 'relay.sock')}`, { encoding })
    const o = await p.invoke('Open', { path: `raw-${encoding}.bin`, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })
    const before = { up: relay.up().length, down: relay.down().length }
    await p.invoke('Write', { handle: o.output.handle, data })
    await p.invoke('Seek', { handle: o.output.handle, offset: 0, origin: 'Begin' })
    t.equal(sha((await p.invoke('Read', { handle: o.output.handle, count: data.length })).output.data), sha(data))
    await p.invoke('Close', { handle: o.output.handle })
    await p.close()
    const up = relay.up().subarray(before.up)
    const down = relay.down().subarray(before.down)
    if (encoding !== 'text') {
      // The preamble's Known Encoding record (0x03): 0x08 with session strings (NetTcpBinding's), 0x07 without.
      // Version 00 01 00, Mode 01 02 (duplex), Via 02 <length> <URI>, then the encoding.
      const preamble = relay.up().subarray(start)
      const long = (preamble[6]! & 0x80) !== 0 // the Via's length, MB32: one byte below 128, two up to 16383
      const via = long ? 8 + ((preamble[6]! & 0x7f) | (preamble[7]! << 7)) : 7 + preamble[6]!
      t.same([...preamble.subarray(via, via + 2)], [0x03, encoding === 'binary' ? 0x08 : 0x07], `${encoding}: the preamble names Known Encoding 0x0${encoding === 'binary' ? 8 : 7}`)
      t.ok(up.includes(data), 'binary: Write\'s bytes go to the domain as they are')
      t.ok(down.includes(data), 'binary: Read\'s bytes come back as they are')
      t.notOk(up.includes(Buffer.from(b64)) || down.includes(Buffer.from(b64)), 'binary: never as base64')
      t.notOk(up.includes(Buffer.from('<s:Envelope')) || down.includes(Buffer.from('<s:Envelope')), 'binary: no XML text')
      t.ok(up.length < data.length + 2048 && down.length < data.length + 2048, 'binary: little beyond the bytes', { up: up.length, down: down.length })
    } else {
      t.ok(up.includes(Buffer.from(b64)) && down.includes(Buffer.from(b64)), 'text: the bytes as base64, both ways')
    }
  }
})

t.test('many calls in flight on one binary session, from several streams', async (t) => {
  const { d, tcp } = await framedDomain(t)
  const p = createStorageProxy(tcp)
  t.teardown(async () => { await p.close() })
  const streams = 16
  const files = Array.from({ length: streams }, (_, i) => ({ path: `s${i}.bin`, data: randomBytes(4096 + i * 3001) }))
  // Each stream writes its file in pieces, all streams at once, then reads it back in pieces.
  const got = await Promise.all(files.map(async ({ path, data }) => {
    const h = (await p.invoke('Open', { path, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })).output.handle
    for (let at = 0; at < data.length; at += 1500) await p.invoke('Write', { handle: h, data: data.subarray(at, at + 1500) })
    await p.invoke('Seek', { handle: h, offset: 0, origin: 'Begin' })
    const parts: Buffer[] = []
    for (;;) {
      const r = await p.invoke('Read', { handle: h, count: 2000 })
      if (r.output.data.length === 0) break
      parts.push(r.output.data)
    }
    await p.invoke('Close', { handle: h })
    return Buffer.concat(parts)
  }))
  for (let i = 0; i < streams; i++) t.equal(sha(got[i]!), sha(files[i]!.data), `stream ${i}: its bytes (SHA-256)`)
  t.equal(d.host.framedSessions, 1, `${streams} streams, one session`)
  // Hundreds at once: the session dictionary of each direction grows with the calls and stays in step.
  const infos = await Promise.all(Array.from({ length: 300 }, async () => (await p.invoke('GetDomainInfo', {})).output.volume))
  t.ok(infos.every((v) => v === d.volume), '300 concurrent calls answered')
  await Promise.all(files.map(async ({ path }) => await p.invoke('Delete', { path })))
})

t.test('a domain serves binary and text sessions side by side; a bad encoding name is refused', async (t) => {
  const { uds, tcp } = await framedDomain(t)
  const bin = createStorageProxy(uds)
  const text = createStorageProxy(uds, { encoding: 'text' })
  const sessionless = createStorageProxy(tcp, { encoding: 'binary-sessionless' })
  t.teardown(async () => { await bin.close(); await text.close(); await sessionless.close() })
  const o = await bin.invoke('Open', { path: 'both.bin', mode: 'CreateNew', access: 'ReadWrite', share: 'ReadWrite' })
  const o2 = await text.invoke('Open', { path: 'both.bin', mode: 'Open', access: 'Read', share: 'ReadWrite' })
  await bin.invoke('Write', { handle: o.output.handle, data: Buffer.from('written in binary') })
  t.equal((await text.invoke('Read', { handle: o2.output.handle, count: 100 })).output.data.toString(), 'written in binary', 'a text session reads what a binary one wrote')
  const o3 = await sessionless.invoke('Open', { path: 'both.bin', mode: 'Open', access: 'Read', share: 'ReadWrite' })
  t.equal((await sessionless.invoke('Read', { handle: o3.output.handle, count: 100 })).output.data.toString(), 'written in binary', 'and a binary session without session strings (0x07) over net.tcp')
  await t.rejects(sessionless.invoke('Read', { handle: 'not-a-handle', count: 1 }), { code: 'INVALID_HANDLE' }, 'its faults arrive typed')
  const bad = createStorageProxy(tcp, { encoding: 'nope' })
  await t.rejects(bad.invoke('GetDomainInfo', {}), { code: 'INVALID_ARGUMENT', message: /no framed encoding "nope"/ })
  await bad.close()
})

t.test('Batch over a binary session: results and faults in order', async (t) => {
  const { root, uds } = await framedDomain(t)
  const p = createStorageProxy(uds)
  t.teardown(async () => { await p.close() })
  const { output: o } = await p.invoke('Open', { path: 'batch.bin', mode: 'Create', access: 'ReadWrite', share: 'None' })
  const data = randomBytes(3000)
  const r = await p.invoke('Batch', {
    op: [
      { Write: { handle: o.handle, data } },
      { Read: { handle: 'not-a-handle', count: 1 } },
      { Seek: { handle: o.handle, offset: 0, origin: 'Begin' } },
      { Read: { handle: o.handle, count: 5000 } },
      { Close: { handle: o.handle } },
    ],
  })
  const res = r.output.result
  t.same(res[0], { WriteResponse: { written: 3000, position: 3000 } })
  t.equal((res[1] as { StorageFault: { code: string } }).StorageFault.code, 'INVALID_HANDLE')
  t.equal(sha((res[3] as { ReadResponse: { data: Buffer } }).ReadResponse.data), sha(data), 'the batched Read returns the bytes')
  t.same(res[4], { CloseResponse: {} })
  t.equal(sha(readFileSync(join(root, 'batch.bin'))), sha(data))
})

t.test('a binary reply the proxy cannot decode fails its session with PROTOCOL_ERROR; the next call opens another', async (t) => {
  // A framed peer of our own: its first session answers with a dictionary id it never defined, the second properly.
  const dir = tempDir(t, 'metaos-nmf-bin-peer-')
  const path = join(dir, 'peer.sock')
  let sessions = 0
  const server = createServer((socket) => {
    const n = ++sessions
    const reader = new RecordReader({ maxEnvelopeBytes: 1 << 20 })
    const inbound = new NbfxReaderSession()
    const outbound = new NbfxWriterSession()
    socket.on('error', () => {})
    socket.on('data', (c: Buffer) => {
      reader.push(c)
      for (let r = reader.next(); r !== undefined; r = reader.next()) {
        if (r.type === RecordType.PreambleEnd) socket.write(PREAMBLE_ACK_RECORD)
        if (r.type !== RecordType.SizedEnvelope) continue
        const id = readEnvelope(decodeEnvelope(r.payload, inbound), new Set()).addressing?.messageId
        const reply = n === 1
          ? { chunks: [Buffer.of(0x00, 0x42, 0x63, 0x01)], length: 4 }
          : encodeEnvelope({ action: 'urn:metaos:storage:v1/DeleteResponse', relatesTo: id, body: { element: 'DeleteResponse', value: {} } }, compileBinaryCodecs(StorageServiceDescriptor), outbound)
        socket.write(Buffer.concat([envelopeHeader(reply.length), ...reply.chunks]))
      }
    })
  })
  await new Promise<void>((resolve) => { server.listen(path, resolve) })
  t.teardown(() => { server.close() })
  const p = createStorageProxy(`net.uds:${path}`)
  t.teardown(async () => { await p.close() })
  await t.rejects(p.invoke('Delete', { path: 'x' }), { code: 'PROTOCOL_ERROR', message: /session dictionary id 99 is not defined/ })
  t.same((await p.invoke('Delete', { path: 'y' })).output, {}, 'the next call is answered on a new session')
  t.equal(sessions, 2)
})

t.test('the network contract over binary sessions: an echo through a network domain by SHA-256, a typed NetworkFault', async (t) => {
  const dir = tempDir(t, 'metaos-nmf-bin-net-')
  const echo = createServer((s) => { s.on('error', () => {}); s.pipe(s) })
  await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { echo.close() })
  const d = await startNetworkDomain({ listen: [`net.uds:${join(dir, 'n.sock')}`, 'net.tcp://127.0.0.1:0'] })
  t.teardown(async () => { await d.close(500) })
  for (const ep of d.endpoints) {
    const p = createNetworkProxy(ep, { caller: 'urn:test:app' })
    const c = (await p.invoke('Connect', { host: '127.0.0.1', port: (echo.address() as { port: number }).port, protocol: 'tcp', timeoutMs: 2000 })).output
    const data = randomBytes(200_000)
    t.same((await p.invoke('Send', { socket: c.socket, data })).output, { sent: data.length })
    const parts: Buffer[] = []
    for (let n = 0; n < data.length;) {
      const r = (await p.invoke('Receive', { socket: c.socket, maxBytes: 65_536, timeoutMs: 5000 })).output
      if (r.data.length === 0) break
      parts.push(r.data)
      n += r.data.length
    }
    t.equal(sha(Buffer.concat(parts)), sha(data), `${ep.split(':')[0]}: the echo returns the bytes sent`)
    await p.invoke('Close', { socket: c.socket })
    await t.rejects(p.invoke('Send', { socket: 'no-such-socket', data: Buffer.alloc(1) }), { code: 'INVALID_HANDLE' })
    await p.close()
  }
})
