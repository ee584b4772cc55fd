// net.uds and net.tcp ([MC-NMF] duplex sessions, SOAP 1.2 binary and text) against a real storage domain:
// proxies do whole round trips (SHA-256 of the bytes on disk), many calls ride one session at once,
// a raw peer's pipelined calls come back by RelatesTo, the preamble's refusals are Fault records
// with the [MC-NMF] fault names, an idle or draining domain ends its sessions with End, and a
// session lost mid-call fails that call with TRANSPORT_ERROR while the next one reconnects.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { startStorageDomain, type StorageDomain, type StorageDomainOptions } from '../../backend-storage/storage-domain.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { envelopeHeader, PREAMBLE_ACK_RECORD, RecordReader, RecordType, stringRecord } from '../../soap-runtime/nmf/records.js'
import { firstElementText } from '../../soap-runtime/nmf/encoding.js'
import { loadDomainSecurity } from '../../security/domain-security.js'
import { faultName, rawSession, storageCall, textPreamble } from '../helpers/nmf-raw.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

async function framedDomain (t: Test, options: Partial<StorageDomainOptions> = {}): Promise<{ d: StorageDomain, root: string, uds: string, tcp: string }> {
  const dir = tempDir(t, 'metaos-nmf-')
  const root = join(dir, 'root')
  mkdirSync(root)
  const d = await startStorageDomain({ root, listen: [`net.uds:${join(dir, 'd.sock')}`, 'net.tcp://127.0.0.1:0'], ...options })
  t.teardown(async () => { await d.close(500) })
  return { d, root, uds: d.endpoints[0]!, tcp: d.endpoints[1]! }
}

t.test('the ready endpoints are net.uds:/path and net.tcp://HOST:PORT/storage', async (t) => {
  const { d, uds, tcp } = await framedDomain(t)
  t.match(uds, /^net\.uds:\/.*\/d\.sock$/)
  t.match(tcp, /^net\.tcp:\/\/127\.0\.0\.1:\d+\/storage$/)
  const p = createStorageProxy(tcp)
  t.teardown(async () => { await p.close() })
  const info = await p.invoke('GetDomainInfo', {})
  t.same(info.output.transports.transport, d.endpoints, 'GetDomainInfo lists them')
})

for (const [kind, encoding] of [['uds', 'binary'], ['tcp', 'binary'], ['uds', 'text'], ['tcp', 'text']] as const) {
  t.test(`a proxy over net.${kind} (${encoding}): whole round trips, many calls on one session`, async (t) => {
    const { d, root, uds, tcp } = await framedDomain(t)
    const p = createStorageProxy(kind === 'uds' ? uds : tcp, { encoding })
    t.teardown(async () => { await p.close() })
    const data = randomBytes(300_000)
    const o = await p.invoke('Open', { path: 'f.bin', mode: 'CreateNew', access: 'ReadWrite', share: 'ReadWrite' })
    t.match(o.requestId, /^urn:uuid:/, 'the call\'s request id is its MessageID')
    t.type(o.serviceMicros, 'number', 'the ServiceTiming header is read')
    // 64 streams at once, each with a handle of its own writing its slice.
    const chunk = Math.ceil(data.length / 64)
    const handles = await Promise.all(Array.from({ length: 64 }, async () => (await p.invoke('Open', { path: 'f.bin', mode: 'Open', access: 'Write', share: 'ReadWrite' })).output.handle))
    t.equal(d.host.framedSessions, 1, '65 calls, one session')
    await Promise.all(handles.map(async (h, i) => {
      await p.invoke('Seek', { handle: h, offset: i * chunk, origin: 'Begin' })
      await p.invoke('Write', { handle: h, data: data.subarray(i * chunk, (i + 1) * chunk) })
      await p.invoke('Close', { handle: h })
    }))
    const r = await p.invoke('Read', { handle: o.output.handle, count: data.length + 10 })
    t.equal(sha(r.output.data), sha(data), 'Read returns the bytes written by 64 concurrent streams')
    t.equal(sha(readFileSync(join(root, 'f.bin'))), sha(data), 'SHA-256 of the file on disk')
    await t.rejects(p.invoke('Open', { path: 'missing', mode: 'Open', access: 'Read', share: 'Read' }), { code: 'FILE_NOT_FOUND' }, 'a StorageFault arrives as its code')
    await p.invoke('Close', { handle: o.output.handle })
    await p.invoke('Delete', { path: 'f.bin' })
    t.equal(d.host.framedSessions, 1, 'still one session')
  })
}

t.test('a raw peer pipelines three calls in one write and gets each reply by RelatesTo, then End', async (t) => {
  const { tcp } = await framedDomain(t)
  const s = await rawSession(tcp)
  s.send(textPreamble(tcp))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  const ids = ['urn:uuid:00000000-0000-4000-8000-00000000000a', 'urn:uuid:00000000-0000-4000-8000-00000000000b', 'urn:uuid:00000000-0000-4000-8000-00000000000c']
  s.send(Buffer.concat(ids.map((id) => storageCall('GetDomainInfo', id, tcp))))
  const related: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = await s.next()
    if (typeof r === 'string' || r.type !== RecordType.SizedEnvelope) { t.fail(`a reply, got ${JSON.stringify(r)}`); return }
    t.match(r.payload.toString(), /GetDomainInfoResponse/)
    related.push(firstElementText(r.payload, 'RelatesTo')!)
  }
  t.same(related.sort(), ids, 'every MessageID answered once')
  s.send([RecordType.End])
  t.same(await s.next(), { type: RecordType.End }, 'End is answered with End')
  t.equal(await s.next(), 'closed', 'and the domain closes the socket')
})

t.test('the preamble\'s refusals are Fault records, then the socket closes', async (t) => {
  const { uds, tcp } = await framedDomain(t)
  const head = (via: string, mode = 2, version = [1, 0]): Buffer => Buffer.concat([Buffer.of(0, version[0]!, version[1]!, 1, mode), stringRecord(RecordType.Via, via)])
  const cases: Array<[string, string, Buffer, string]> = [
    ['version 2.0', tcp, Buffer.concat([head(tcp, 2, [2, 0]), Buffer.of(3, 3, 0x0c)]), 'UnsupportedVersion'],
    ['singleton mode', tcp, Buffer.concat([head(tcp, 1), Buffer.of(3, 3, 0x0c)]), 'UnsupportedMode'],
    ['a Via to another service', tcp, Buffer.concat([head(tcp.replace('/storage', '/network')), Buffer.of(3, 3, 0x0c)]), 'EndpointNotFound'],
    ['a Via of another scheme', uds, Buffer.concat([head('http://127.0.0.1/storage'), Buffer.of(3, 3, 0x0c)]), 'EndpointNotFound'],
    ['UTF-16 text', tcp, Buffer.concat([head(tcp), Buffer.of(3, 4, 0x0c)]), 'ContentTypeInvalid'],
    ['an unknown content type', uds, Buffer.concat([head(uds), stringRecord(4, 'application/x-nothing'), Buffer.of(0x0c)]), 'ContentTypeInvalid'],
    ['a TLS upgrade on a domain without a certificate', tcp, Buffer.concat([head(tcp), Buffer.of(3, 3), stringRecord(9, 'application/ssl-tls'), Buffer.of(0x0c)]), 'UpgradeInvalid'],
    ['a Negotiate (SSPI) upgrade', uds, Buffer.concat([head(uds), Buffer.of(3, 3), stringRecord(9, 'application/negotiate'), Buffer.of(0x0c)]), 'UpgradeInvalid'],
    ['records out of order', tcp, Buffer.concat([Buffer.of(1, 2), head(tcp)]), 'InvalidRecordSequence'],
  ]
  for (const [what, ep, bytes, fault] of cases) {
    const s = await rawSession(ep)
    s.send(bytes)
    const r = await s.next()
    t.equal(faultName(r), fault, `${what}: ${fault}`)
    t.equal(await s.next(), 'closed', `${what}: the socket closes`)
  }
  const ok = await rawSession(uds)
  ok.send(Buffer.concat([head(uds), stringRecord(4, 'application/soap+xml; charset=utf-8'), Buffer.of(0x0c)]))
  t.same(await ok.next(), { type: RecordType.PreambleAck }, 'an Extensible Encoding record naming SOAP 1.2 text is taken')
  ok.socket.destroy()
})

t.test('an idle session is ended with End; the proxy opens another for its next call', async (t) => {
  const { d, uds } = await framedDomain(t, { limits: { sessionIdleTimeoutMs: 300 } })
  const s = await rawSession(uds)
  s.send(textPreamble(uds))
  t.same(await s.next(), { type: RecordType.PreambleAck })
  t.same(await s.next(5000), { type: RecordType.End }, 'the domain ends an idle session')
  t.equal(await s.next(), 'closed')
  const p = createStorageProxy(uds)
  t.teardown(async () => { await p.close() })
  await p.invoke('GetDomainInfo', {})
  await new Promise((resolve) => setTimeout(resolve, 800))
  t.equal(d.host.framedSessions, 0, 'the proxy\'s idle session was ended too')
  const again = await p.invoke('GetDomainInfo', {})
  t.equal(again.output.volume, d.volume, 'the next call reconnects transparently')
})

t.test('a draining domain finishes the call in flight, then ends the session', async (t) => {
  const { d, uds } = await framedDomain(t)
  const p = createStorageProxy(uds)
  t.teardown(async () => { await p.close() })
  await p.invoke('GetDomainInfo', {})
  d.faults.delayMs = 400
  const inFlight = p.invoke('GetDomainInfo', {})
  await new Promise((resolve) => setTimeout(resolve, 100))
  await d.close(5000)
  t.equal((await inFlight).output.volume, d.volume, 'the call in flight is answered')
  await t.rejects(p.invoke('GetDomainInfo', {}), { code: 'TRANSPORT_ERROR' }, 'afterwards: nothing listens')
})

t.test('a session lost mid-call fails that call with TRANSPORT_ERROR; the next call opens a new one', async (t) => {
  // A framed peer of our own: its first session dies on the first envelope, the second answers in reverse order.
  const dir = tempDir(t, 'metaos-nmf-lost-')
  const path = join(dir, 'peer.sock')
  let sessions = 0
  const server = createServer((socket) => {
    const n = ++sessions
    const reader = new RecordReader({ maxEnvelopeBytes: 1 << 20 })
    const held: string[] = []
    socket.on('error', () => {})
    socket.on('data', (c: Buffer) => {
      reader.push(c)
      for (let r = reader.next(); r !== undefined; r = reader.next()) {
        if (r.type === RecordType.PreambleEnd) socket.write(PREAMBLE_ACK_RECORD)
        if (r.type !== RecordType.SizedEnvelope) continue
        if (n === 1) { socket.destroy(); return }
        held.push(firstElementText(r.payload, 'MessageID')!)
        if (held.length < 3) continue
        for (const id of held.reverse()) {
          const xml = Buffer.from(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header><a:RelatesTo>${id}</a:RelatesTo></s:Header><s:Body><DeleteResponse xmlns="urn:metaos:storage:v1"/></s:Body></s:Envelope>`)
          socket.write(Buffer.concat([envelopeHeader(xml.length), xml]))
        }
      }
    })
  })
  await new Promise<void>((resolve) => { server.listen(path, resolve) })
  t.teardown(() => { server.close() })
  const p = createStorageProxy(`net.uds:${path}`, { encoding: 'text' }) // this peer answers in text
  t.teardown(async () => { await p.close() })
  const lost = await p.invoke('Delete', { path: 'x' }).catch((e: unknown) => e)
  t.ok(lost instanceof MetaosError && lost.code === 'TRANSPORT_ERROR', 'the call in flight fails with TRANSPORT_ERROR', { got: String(lost) })
  const three = await Promise.all(['a', 'b', 'c'].map(async (x) => await p.invoke('Delete', { path: x })))
  t.equal(three.length, 3, 'three calls answered in reverse order, each with its own reply')
  t.equal(sessions, 2, 'on a second session')
})

t.test('authentication: net.uds is the local bus, net.tcp is plain', async (t) => {
  const dir = tempDir(t, 'metaos-nmf-auth-')
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: [{ name: 'alice', password: 'correct horse battery', paths: ['*'] }], local: { paths: ['*'] } }), { mode: 0o600 })
  const { uds, tcp } = await framedDomain(t, { security: loadDomainSecurity({ auth: join(dir, 'policy.json') }) })
  const call = async (ep: string, o: Parameters<typeof createStorageProxy>[1] = {}): Promise<string> => {
    const p = createStorageProxy(ep, o)
    try { await p.invoke('GetDomainInfo', {}); return 'ok' } catch (e) { return (e as MetaosError).code } finally { await p.close() }
  }
  t.equal(await call(uds), 'ok', 'net.uds without credentials: the policy\'s local identity')
  t.equal(await call(tcp), 'UNAUTHORIZED', 'net.tcp without credentials')
  t.equal(await call(tcp, { credentials: { username: 'alice', password: 'correct horse battery' } }), 'ok', 'net.tcp with a PasswordDigest UsernameToken')
  t.equal(await call(tcp, { credentials: { username: 'alice', password: 'correct horse battery', passwordType: 'text' } }), 'UNAUTHORIZED', 'PasswordText is refused over plain net.tcp')
})
