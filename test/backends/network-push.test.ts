// Pushed receives (NetworkService.wsdl: Subscribe, Grant and the callback Received; docs/transports.md)
// through a real `metaos network` process on net.uds, against real TCP servers on 127.0.0.1: a
// NetSocket echoes 10 MiB by pushes (no Receive call) with SHA-256 equal; a slow reader leaves the
// domain a bounded number of bytes (its own gauges: buffered ≤ the per-socket bound plus one read,
// unacknowledged ≤ the window) while TCP flow control holds the remote sender back; a session cut
// mid-stream ends the NetSocket with CONNECTION_LOST and the domain closes the connection; a
// callback sent to the domain, Subscribe over HTTP, and Grant or Subscribe for a forged handle
// each get a fault and the domain goes on serving.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { NetSocket } from '../../frontend/api/net-socket.js'
import { createNetworkProxy, createPushRegistry, RECEIVED_ACTION, type NetworkHandler } from '../../frontend/handlers/network-handler.js'
import { receivedEnvelope } from '../../backend-network/push-subscription.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { envelopeHeader, RecordType } from '../../soap-runtime/nmf/records.js'
import { rawSession, textPreamble } from '../helpers/nmf-raw.js'
import { tempDir } from '../helpers/temp-dir.js'

const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
const MIB = 1024 * 1024
const MAX_BUFFERED = 256 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

interface Domain { readonly d: DomainProcess, readonly uds: string, readonly http: string, readonly tcp: string, readonly dir: string }

async function startDomain (t: Test): Promise<Domain> {
  const dir = tempDir(t, 'metaos-push-')
  const d = await spawnDomain(['network', '--listen', `net.uds:${join(dir, 'n.sock')}`, '--listen', 'http://127.0.0.1:0', '--listen', 'net.tcp://127.0.0.1:0', '--metrics-listen', 'http://127.0.0.1:0', '--max-buffered-bytes', String(MAX_BUFFERED)], { env: ENV })
  t.teardown(async () => { await d.stop() })
  return { d, uds: d.ready.endpoints[0]!, http: d.ready.endpoints[1]!, tcp: d.ready.endpoints[2]!, dir }
}

/** The domain's gauges, from its --metrics-listen endpoint. */
async function gauges (d: Domain): Promise<Record<string, number>> {
  const text = await (await fetch((d.d.ready as unknown as { metrics: string }).metrics)).text()
  const out: Record<string, number> = {}
  for (const m of text.matchAll(/^(metaos_network_[a-z_]+)(?:\{[^}]*\})? (\S+)$/gm)) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2])
  return out
}

/** The gauges once `done` holds of them (they are read at most every 100 ms), or the last ones read. */
async function gaugesWhen (d: Domain, done: (g: Record<string, number>) => boolean): Promise<Record<string, number>> {
  let g = await gauges(d)
  for (let i = 0; i < 100 && !done(g); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    g = await gauges(d)
  }
  return g
}

async function serve (t: Test, onConnection: (s: Socket) => void): Promise<number> {
  const conns = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (s) => { conns.add(s); s.once('close', () => conns.delete(s)); s.on('error', () => {}); onConnection(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => { for (const c of conns) c.destroy(); await new Promise((resolve) => server.close(resolve)) })
  return (server.address() as AddressInfo).port
}

/** A proxy to the domain that records the operations called through it (pushes stay on). */
function recorded (t: Test, endpoint: string, encoding?: string): { handler: NetworkHandler, ops: string[] } {
  const proxy = createNetworkProxy(endpoint, encoding === undefined ? {} : { encoding })
  t.teardown(async () => { await proxy.close() })
  const ops: string[] = []
  return { ops, handler: { ...proxy, invoke: async (op, input) => { ops.push(op); return await proxy.invoke(op, input) } } }
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok' } catch (e) { return e instanceof MetaosError ? e.code : `untyped: ${String(e)}` }
}

t.test('pushed receives over net.uds', async (t) => {
  const dom = await startDomain(t)

  t.test('a NetSocket echoes 10 MiB through the domain by pushes, SHA-256 equal', async (t) => {
    const port = await serve(t, (s) => { s.pipe(s) })
    const { handler, ops } = recorded(t, dom.uds)
    t.ok(handler.pushes !== undefined, 'a proxy on net.uds serves pushes')
    const data = randomBytes(10 * MIB)
    const sock = NetSocket.connect({ host: '127.0.0.1', port, destination: handler })
    const back = createHash('sha256')
    let n = 0
    sock.on('data', (c: Buffer) => { back.update(c); n += c.length })
    await once(sock, 'connect')
    for (let off = 0; off < data.length; off += 256 * 1024) if (!sock.write(data.subarray(off, off + 256 * 1024))) await once(sock, 'drain')
    sock.end()
    await once(sock, 'end')
    t.equal(n, data.length, 'every byte came back')
    t.equal(back.digest('hex'), sha(data), 'SHA-256 equal')
    t.notOk(ops.includes('Receive'), 'no Receive call: the data was pushed')
    t.ok(ops.includes('Subscribe'), 'one Subscribe')
    t.ok(ops.filter((o) => o === 'Grant').length >= 10, 'credit granted back as it was read', { grants: ops.filter((o) => o === 'Grant').length })
    sock.destroy()
    await once(sock, 'close')
    const g = await gaugesWhen(dom, (g) => g.metaos_network_push_subscriptions === 0)
    t.equal(g.metaos_network_push_subscriptions, 0, 'no subscription is left')
  })

  for (const [name, encoding] of [['net.tcp, text', undefined], ['net.uds, binary', 'binary']] as const) t.test(`${name}: 1 MiB echoed by pushes`, async (t) => {
    const port = await serve(t, (s) => { s.pipe(s) })
    const { handler, ops } = recorded(t, encoding === undefined ? dom.tcp : dom.uds, encoding)
    const data = randomBytes(MIB)
    const sock = NetSocket.connect({ host: '127.0.0.1', port, destination: handler })
    const parts: Buffer[] = []
    sock.on('data', (c: Buffer) => { parts.push(c) })
    await once(sock, 'connect')
    sock.end(data)
    await once(sock, 'end')
    t.equal(sha(Buffer.concat(parts)), sha(data), 'SHA-256 equal')
    t.notOk(ops.includes('Receive'), 'pushed, no Receive')
    sock.destroy()
  })

  t.test('what Subscribe, Grant and Receive refuse on a subscribed or unsuitable handle', async (t) => {
    const port = await serve(t, () => {})
    const { handler } = recorded(t, dom.uds)
    const c = (await handler.invoke('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 5000 })).output.socket
    t.equal(await codeOf(handler.invoke('Grant', { socket: c, bytes: 10 })), 'INVALID_ARGUMENT', 'Grant before Subscribe')
    t.same((await handler.invoke('Subscribe', { socket: c, window: 64 * MIB })).output.window, 16 * MIB, 'a window over the domain\'s limit is lowered to it')
    t.equal(await codeOf(handler.invoke('Subscribe', { socket: c, window: 1024 })), 'INVALID_ARGUMENT', 'a second Subscribe')
    t.equal(await codeOf(handler.invoke('Receive', { socket: c, maxBytes: 10, timeoutMs: 0 })), 'INVALID_ARGUMENT', 'Receive on a subscribed connection')
    t.equal(await codeOf(handler.invoke('Grant', { socket: c, bytes: 0 })), 'INVALID_ARGUMENT', 'a Grant of 0 bytes')
    await handler.invoke('Close', { socket: c })
    const u = (await handler.invoke('Listen', { host: '127.0.0.1', port: 0, protocol: 'udp', backlog: 0 })).output.listener
    t.equal(await codeOf(handler.invoke('Subscribe', { socket: u, window: 1024 })), 'INVALID_ARGUMENT', 'Subscribe on a UDP socket')
    await handler.invoke('Close', { socket: u })
    t.equal((await gaugesWhen(dom, (g) => g.metaos_network_push_subscriptions === 0)).metaos_network_push_subscriptions, 0, 'Close ended the subscription')
  })

  t.test('a slow reader: the domain holds at most its buffer bound plus the window; the remote sender waits', async (t) => {
    const total = 16 * MIB
    const payload = randomBytes(total)
    let remote: Socket | undefined
    const port = await serve(t, (s) => { remote = s; s.end(payload) })
    const { handler } = recorded(t, dom.uds)
    const window = 128 * 1024
    const sock = NetSocket.connect({ host: '127.0.0.1', port, destination: handler, readableHighWaterMark: window })
    await once(sock, 'connect')
    sock.pause()
    sock.read(0) // starts reading: Subscribe with a window of readableHighWaterMark
    // Wait until the pressure reached the remote sender and the domain's gauges are steady (no timing asserted).
    let last = ''
    let g: Record<string, number> = {}
    for (let i = 0; i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      g = await gauges(dom)
      const now = `${g.metaos_network_buffered_bytes}/${g.metaos_network_push_unacknowledged_bytes}`
      if (g.metaos_network_push_subscriptions === 1 && g.metaos_network_push_unacknowledged_bytes! > 0 && remote !== undefined && remote.writableLength > 0 && now === last) break
      last = now
    }
    t.ok(remote !== undefined && remote.writableLength > 0, 'the remote sender still holds bytes it cannot send (TCP flow control)', { remoteHolds: remote?.writableLength })
    t.ok(g.metaos_network_buffered_bytes! <= MAX_BUFFERED + 64 * 1024, 'the connection buffer stays at its bound (plus one read)', { buffered: g.metaos_network_buffered_bytes })
    t.ok(g.metaos_network_push_unacknowledged_bytes! <= window, 'pushed and unacknowledged bytes stay within the window', { unacknowledged: g.metaos_network_push_unacknowledged_bytes })
    t.equal(g.metaos_network_push_subscriptions, 1, 'one subscription')
    const h = createHash('sha256')
    let n = 0
    sock.on('data', (c: Buffer) => { h.update(c); n += c.length })
    sock.resume()
    await once(sock, 'end')
    t.equal(n, total, 'once read, every byte arrives')
    t.equal(h.digest('hex'), sha(payload), 'SHA-256 equal')
    sock.destroy()
  })

  t.test('a caller that stops reading its session: pushes wait for the session to drain, the remote waits', async (t) => {
    const N = 'urn:metaos:network:v1'
    const call = (op: string, id: string, body: string): Buffer => {
      const xml = Buffer.from(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>` +
        `<a:Action s:mustUnderstand="1">${N}/${op}</a:Action><a:MessageID>${id}</a:MessageID><a:To s:mustUnderstand="1">${dom.uds}</a:To>` +
        `</s:Header><s:Body><${op} xmlns="${N}">${body}</${op}></s:Body></s:Envelope>`)
      return Buffer.concat([envelopeHeader(xml.length), xml])
    }
    let remote: Socket | undefined
    const chunk = randomBytes(256 * 1024)
    const port = await serve(t, (s) => { remote = s; const more = (): void => { while (s.write(chunk)); }; s.on('drain', more); more() })
    const s = await rawSession(dom.uds)
    t.teardown(() => { s.socket.destroy() })
    s.send(Buffer.concat([textPreamble(dom.uds), call('Connect', 'urn:uuid:c', `<host>127.0.0.1</host><port>${port}</port><protocol>tcp</protocol><timeoutMs>5000</timeoutMs>`)]))
    await s.next() // Preamble Ack
    const r = await s.next()
    const handle = typeof r === 'string' ? '' : /<socket>([^<]+)<\/socket>/.exec(r.payload.toString('utf8'))?.[1] ?? ''
    t.ok(handle.length > 0, 'connected')
    s.socket.pause() // and never read again
    s.send(call('Subscribe', 'urn:uuid:s', `<socket>${handle}</socket><window>${16 * MIB}</window>`))
    let g: Record<string, number> = {}
    let last = ''
    for (let i = 0; i < 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      g = await gauges(dom)
      const now = `${g.metaos_network_buffered_bytes}/${g.metaos_network_push_unacknowledged_bytes}`
      if (g.metaos_network_push_unacknowledged_bytes! > 0 && remote !== undefined && remote.writableLength > 0 && now === last) break
      last = now
    }
    t.equal(g.metaos_network_push_subscriptions, 1, 'subscribed with a 16 MiB window')
    t.ok(g.metaos_network_push_unacknowledged_bytes! < 8 * MIB, 'pushes stopped at the session\'s high-water mark, far below the window', { unacknowledged: g.metaos_network_push_unacknowledged_bytes })
    t.ok(g.metaos_network_buffered_bytes! <= MAX_BUFFERED + 64 * 1024, 'the connection buffer at its bound', { buffered: g.metaos_network_buffered_bytes })
    t.ok(remote!.writableLength > 0, 'the remote sender waits (TCP flow control)')
    s.socket.destroy()
    const after = await gaugesWhen(dom, (g) => g.metaos_network_open_sockets === 0)
    t.same([after.metaos_network_push_subscriptions, after.metaos_network_open_sockets], [0, 0], 'the session gone, the domain closed the connection')
  })

  t.test('the session cut mid-stream: CONNECTION_LOST, and the domain closes the connection', async (t) => {
    // A relay in front of the domain's socket: cutting it loses the proxy's session.
    const relayPath = join(dom.dir, 'relay.sock')
    const pairs = new Set<Socket>()
    const relay = createServer((c) => {
      const up = connect(dom.uds.slice('net.uds:'.length))
      pairs.add(c).add(up)
      c.on('error', () => {}); up.on('error', () => {})
      c.pipe(up); up.pipe(c)
    })
    relay.listen(relayPath)
    await once(relay, 'listening')
    t.teardown(async () => { for (const s of pairs) s.destroy(); await new Promise((resolve) => relay.close(resolve)) })
    let remoteClosed: Promise<void> | undefined
    const port = await serve(t, (s) => {
      remoteClosed = new Promise((resolve) => { s.once('close', () => { resolve() }) })
      const chunk = randomBytes(64 * 1024)
      const more = (): void => { while (s.write(chunk)); }
      s.on('drain', more)
      more()
    })
    const { handler } = recorded(t, `net.uds:${relayPath}`)
    const sock = NetSocket.connect({ host: '127.0.0.1', port, destination: handler })
    const failed = once(sock, 'error')
    await once(sock, 'data')
    t.equal((await gaugesWhen(dom, (g) => g.metaos_network_push_subscriptions === 1)).metaos_network_push_subscriptions, 1, 'subscribed')
    for (const s of pairs) s.destroy()
    const [err] = await failed as [MetaosError]
    t.equal(err.code, 'CONNECTION_LOST', 'the NetSocket fails with CONNECTION_LOST')
    await remoteClosed
    t.pass('the domain closed the connection to the remote')
    const g = await gaugesWhen(dom, (g) => g.metaos_network_open_sockets === 0)
    t.same([g.metaos_network_push_subscriptions, g.metaos_network_open_sockets], [0, 0], 'no subscription, no socket left')
  })

  t.test('hostile: a callback sent to the domain, pushes over HTTP, forged handles', async (t) => {
    // The callback message a client sends to the server: a SOAP fault, the session goes on.
    const s = await rawSession(dom.uds)
    t.teardown(() => { s.socket.destroy() })
    const cb = Buffer.from(receivedEnvelope({ socket: 'forged', seq: 1, data: Buffer.from('x'), closed: false }).toString('utf8').replace('<a:To ', '<a:MessageID xmlns:a="http://www.w3.org/2005/08/addressing">urn:uuid:1</a:MessageID><a:To '))
    s.send(Buffer.concat([textPreamble(dom.uds), envelopeHeader(cb.length), cb]))
    const ack = await s.next()
    t.ok(typeof ack !== 'string' && ack.type === RecordType.PreambleAck, 'the preamble is acknowledged')
    const fault = await s.next()
    t.comment(typeof fault === 'string' ? fault : `record 0x${fault.type.toString(16)} ${fault.type === RecordType.Fault ? fault.text : ''}`)
    t.ok(typeof fault !== 'string' && fault.type === RecordType.SizedEnvelope, 'an envelope comes back')
    const text = typeof fault === 'string' ? '' : fault.payload.toString('utf8')
    t.match(text, /Fault/, 'a SOAP fault')
    t.match(text, /MALFORMED_MESSAGE/, 'with MALFORMED_MESSAGE: Received is not an operation of the domain')
    t.match(text, /RelatesTo[^>]*>urn:uuid:1</, 'related to the message')

    const uds = recorded(t, dom.uds).handler
    const http = recorded(t, dom.http).handler
    t.equal(http.pushes, undefined, 'a proxy over HTTP reads with Receive')
    t.equal(await codeOf(uds.invoke('Grant', { socket: 'forged-0123456789', bytes: 10 })), 'INVALID_HANDLE', 'Grant for a forged handle: INVALID_HANDLE')
    t.equal(await codeOf(uds.invoke('Subscribe', { socket: 'forged-0123456789', window: 10 })), 'INVALID_HANDLE', 'Subscribe for a forged handle: INVALID_HANDLE')
    const port = await serve(t, (c) => { c.end('hello') })
    const c = (await http.invoke('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 5000 })).output.socket
    t.equal(await codeOf(http.invoke('Subscribe', { socket: c, window: 1024 })), 'INVALID_ARGUMENT', 'Subscribe over HTTP: INVALID_ARGUMENT')
    t.same((await http.invoke('Receive', { socket: c, maxBytes: 100, timeoutMs: 5000 })).output.data.toString(), 'hello', 'Receive over HTTP still reads')
    await http.invoke('Close', { socket: c })
    t.ok((await uds.invoke('GetDomainInfo', {})).output.domainId.length > 0, 'the domain keeps serving')
  })
})

t.test('a push for a socket nobody attached is taken and dropped', async (t) => {
  const { channel, callbacks } = createPushRegistry()
  let got = 0
  const detach = channel.attach('mine', { received: () => { got++ }, lost: () => {} })
  t.ok(callbacks.active(), 'expects pushes while a receiver is attached')
  t.equal(callbacks.message(receivedEnvelope({ socket: 'forged', seq: 1, data: Buffer.from('x'), closed: false })), true, 'a Received for an unknown socket is a callback, taken')
  t.equal(got, 0, 'and given to nobody')
  t.equal(callbacks.message(receivedEnvelope({ socket: 'mine', seq: 1, data: Buffer.from('x'), closed: false })), true)
  t.equal(got, 1, 'the attached receiver gets its own')
  t.equal(RECEIVED_ACTION, 'urn:metaos:network:v1/NetworkCallback/Received')
  detach()
  t.notOk(callbacks.active(), 'nothing expected once detached')
})
