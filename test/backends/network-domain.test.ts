// A real network domain (DESIGN.md §3) reached through createNetworkProxy over HTTP and over the
// Unix-socket bus, against real local servers on 127.0.0.1: TCP echo, 32 connections at once, full
// duplex, half-close, a slow reader that must slow the remote writer (TCP flow control, nothing
// dropped), UDP both ways, Listen/Accept, name resolution, the allow-list (also after resolving
// names), handles bound to their caller, limits, a malformed envelope, idle reaping and draining.
// After every test the engine holds no socket.
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { rmSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { LOOPBACK_ONLY, allowAll, parseAllowList } from '../../security/allow-list.js'
import { startNetworkDomain, type NetworkDomain, type NetworkDomainOptions } from '../../backend-network/network-domain.js'
import { createNetworkProxy, type NetworkHandler, type NetworkOp } from '../../frontend/handlers/network-handler.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

interface TestDomain { readonly domain: NetworkDomain, readonly http: string, readonly bus: string }

async function startDomain (t: Test, options: Partial<NetworkDomainOptions> = {}): Promise<TestDomain> {
  const dir = tempDir(t, 'metaos-net-')
  const domain = await startNetworkDomain({ listen: ['http://127.0.0.1:0', `unix:${join(dir, 'bus.sock')}`], ...options })
  t.teardown(async () => {
    await domain.close(1000)
    rmSync(dir, { recursive: true, force: true })
  })
  return { domain, http: domain.endpoints[0]!, bus: domain.endpoints[1]! }
}

type Call = <K extends NetworkOp>(op: K, input: NetworkOperations[K]['input']) => Promise<NetworkOperations[K]['output']>

function client (t: Test, endpoint: string, caller = 'urn:test:app'): Call & { proxy: NetworkHandler } {
  const proxy = createNetworkProxy(endpoint, { caller })
  t.teardown(async () => { await proxy.close() })
  const call = (async (op, input) => (await proxy.invoke(op, input)).output) as Call
  return Object.assign(call, { proxy })
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok' } catch (e) { return e instanceof MetaosError ? e.code : `untyped: ${String(e)}` }
}

/** Nothing leaks: once the client closed its handles, the engine holds no socket, listener or byte. */
function noLeaks (t: Test, d: TestDomain): void {
  const s = d.domain.engine.stats
  t.same({ sockets: s.sockets, listeners: s.listeners, bufferedBytes: s.bufferedBytes, pendingConnections: s.pendingConnections }, { sockets: 0, listeners: 0, bufferedBytes: 0, pendingConnections: 0 }, 'the engine holds nothing any more')
}

async function listening (t: Test, server: Server): Promise<number> {
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', () => { resolve() }) })
  const sockets = new Set<Socket>()
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
  return (server.address() as { port: number }).port
}

/** A TCP echo server that ends its side when the client ended (so half-close is visible). */
async function echoServer (t: Test): Promise<{ port: number, connections: () => number }> {
  let n = 0
  const server = createServer({ allowHalfOpen: true }, (s) => { n++; s.on('error', () => undefined); s.pipe(s) })
  return { port: await listening(t, server), connections: () => n }
}

async function udpEcho (t: Test): Promise<number> {
  const s = createSocket('udp4')
  s.on('message', (m, from) => { s.send(m, from.port, from.address) })
  await new Promise<void>((resolve) => { s.bind(0, '127.0.0.1', () => { resolve() }) })
  t.teardown(() => { s.close() })
  return s.address().port
}

/** Receives until `n` bytes came (or the stream closed). */
async function receiveExactly (call: Call, socket: string, n: number, maxBytes = 65536): Promise<Buffer> {
  const parts: Buffer[] = []
  let got = 0
  while (got < n) {
    const r = await call('Receive', { socket, maxBytes, timeoutMs: 5000 })
    if (r.closed) break
    parts.push(r.data)
    got += r.data.length
  }
  return Buffer.concat(parts)
}

for (const via of ['http', 'bus'] as const) {
  t.test(`TCP echo over ${via}: Connect, Send, Receive, Batch, GetDomainInfo, Close`, async (t) => {
    const d = await startDomain(t)
    const echo = await echoServer(t)
    const call = client(t, d[via])
    const c = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 2000 })
    t.match(c.socket, /^[A-Za-z0-9_-]{32,}$/, 'an unguessable handle (192 random bits)')
    t.same([c.remoteAddress, c.remotePort, c.localAddress], ['127.0.0.1', echo.port, '127.0.0.1'])
    t.ok(c.localPort > 0)
    t.same(await call('Send', { socket: c.socket, data: Buffer.from('hello, domain') }), { sent: 13 })
    t.equal((await receiveExactly(call, c.socket, 13)).toString(), 'hello, domain', 'the echo came back')
    const big = randomBytes(3 * 1024 * 1024 + 17)
    t.same(await call('Send', { socket: c.socket, data: big }), { sent: big.length }, 'a 3 MiB Send (MTOM) answers once the kernel took it all')
    t.equal(sha256(await receiveExactly(call, c.socket, big.length, 1024 * 1024)), sha256(big), 'and comes back intact')
    const empty = await call('Receive', { socket: c.socket, maxBytes: 100, timeoutMs: 50 })
    t.same([empty.data.length, empty.closed], [0, false], 'nothing waiting: empty data at the timeout')
    const batch = await call('Batch', { op: [{ Send: { socket: c.socket, data: Buffer.from('in a batch') } }, { Receive: { socket: c.socket, maxBytes: 100, timeoutMs: 2000 } }, { Close: { socket: 'nonsense' } }] })
    t.same(batch.result.map((r) => Object.keys(r)[0]), ['SendResponse', 'ReceiveResponse', 'NetworkFault'])
    t.equal((batch.result[1] as { ReceiveResponse: { data: Buffer } }).ReceiveResponse.data.toString(), 'in a batch')
    t.equal((batch.result[2] as { NetworkFault: { code: string } }).NetworkFault.code, 'INVALID_HANDLE', 'a fault inside a Batch is a NetworkFault result')
    const info = await call('GetDomainInfo', {})
    t.equal(info.domainId, d.domain.epr)
    t.same(info.allow.rule, ['127.0.0.0/8:*', '::1/128:*'], 'the default allow-list: loopback only')
    t.same(info.transports.transport, d.domain.endpoints)
    t.equal(info.runtime, `node/${process.versions.node}`)
    t.equal(d.domain.engine.stats.sockets, 1)
    await call('Close', { socket: c.socket })
    noLeaks(t, d)
  })
}

t.test('32 connections at once, each sending and receiving concurrently (full duplex)', async (t) => {
  const d = await startDomain(t)
  const echo = await echoServer(t)
  const SIZE = 256 * 1024
  const results = await Promise.all(Array.from({ length: 32 }, async (_, i) => {
    const call = client(t, i % 2 === 0 ? d.http : d.bus, `urn:test:conn-${i}`)
    const { socket } = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 5000 })
    const data = randomBytes(SIZE)
    const sending = (async () => { for (let off = 0; off < SIZE; off += 16384) await call('Send', { socket, data: data.subarray(off, off + 16384) }) })()
    const back = await receiveExactly(call, socket, SIZE)
    await sending
    await call('Close', { socket })
    return sha256(back) === sha256(data)
  }))
  t.equal(results.filter(Boolean).length, 32, 'every connection got its own bytes back, in order')
  t.equal(echo.connections(), 32)
  noLeaks(t, d)
})

t.test('a Send runs while a Receive waits on the same socket; Receives queue in order', async (t) => {
  const d = await startDomain(t)
  const echo = await echoServer(t)
  const call = client(t, d.http)
  const { socket } = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 2000 })
  const started = Date.now()
  const waiting = call('Receive', { socket, maxBytes: 100, timeoutMs: 10_000 })
  await sleep(100)
  await call('Send', { socket, data: Buffer.from('x') })
  t.equal((await waiting).data.toString(), 'x', 'the waiting Receive got the echo of a Send made meanwhile')
  t.ok(Date.now() - started < 5000, 'without waiting for its timeout')
  await call('Send', { socket, data: Buffer.from('abcdef') })
  await sleep(100)
  const [a, b] = await Promise.all([call('Receive', { socket, maxBytes: 3, timeoutMs: 2000 }), call('Receive', { socket, maxBytes: 3, timeoutMs: 2000 })])
  t.same([a.data.toString(), b.data.toString()], ['abc', 'def'], 'two Receives: one after the other, in order')
  await call('Close', { socket })
  noLeaks(t, d)
})

t.test('half-close: Shutdown, then the echo and the server\'s end arrive (closed after the data)', async (t) => {
  const d = await startDomain(t)
  const echo = await echoServer(t)
  const call = client(t, d.bus)
  const { socket } = await call('Connect', { host: 'localhost', port: echo.port, protocol: 'tcp', timeoutMs: 2000 })
  await call('Send', { socket, data: Buffer.from('last words') })
  await call('Shutdown', { socket })
  t.equal(await codeOf(call('Send', { socket, data: Buffer.from('more') })), 'INVALID_ARGUMENT', 'no Send after Shutdown')
  const parts: string[] = []
  let r
  do {
    r = await call('Receive', { socket, maxBytes: 4, timeoutMs: 2000 })
    parts.push(r.data.toString())
  } while (!r.closed)
  t.equal(parts.join(''), 'last words', 'receiving went on after our FIN')
  t.equal(parts[parts.length - 1], '', 'closed:true comes with no data, after everything before it')
  t.same(await call('Receive', { socket, maxBytes: 4, timeoutMs: 0 }), { data: Buffer.alloc(0), closed: true }, 'and stays closed')
  await call('Close', { socket })
  noLeaks(t, d)
})

t.test('a slow reader slows the remote writer (flow control), and every byte arrives', async (t) => {
  const d = await startDomain(t)
  const LIMIT = d.domain.engine.limits.maxBufferedBytesPerSocket
  const TOTAL = 64 * 1024 * 1024
  const payload = randomBytes(TOTAL)
  let writtenByKernel = 0
  let refusals = 0
  const server = createServer((s) => {
    s.on('error', () => undefined)
    let off = 0
    const pump = (): void => {
      while (off < TOTAL) {
        const chunk = payload.subarray(off, off + 65536)
        off += chunk.length
        const more = s.write(chunk, (e) => { if (e == null) writtenByKernel += chunk.length })
        if (!more) { refusals++; s.once('drain', pump); return }
      }
      s.end()
    }
    pump()
  })
  const port = await listening(t, server)
  const call = client(t, d.http)
  const { socket } = await call('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 2000 })
  await sleep(2000)
  const held = d.domain.engine.stats.bufferedBytes
  t.ok(held <= LIMIT + 65536, `the domain holds ${held} bytes, within ${LIMIT} + one chunk`)
  t.ok(held >= LIMIT / 2, `and it did fill up to its bound (${held})`)
  t.ok(refusals > 0, 'the server\'s write() returned false: it had to wait')
  t.ok(writtenByKernel < TOTAL / 2, `the server got only ${writtenByKernel} of ${TOTAL} bytes out in 2 s`)
  const hash = createHash('sha256')
  let got = 0
  let most = 0
  for (;;) {
    const r = await call('Receive', { socket, maxBytes: 4 * 1024 * 1024, timeoutMs: 5000 })
    if (r.closed) break
    hash.update(r.data)
    got += r.data.length
    most = Math.max(most, d.domain.engine.stats.bufferedBytes)
  }
  t.ok(most <= LIMIT + 65536, `while reading, the domain never held more than ${most} bytes`)
  t.equal(got, TOTAL, 'all 64 MiB arrived')
  t.equal(hash.digest('hex'), sha256(payload), 'byte for byte, in order')
  await call('Close', { socket })
  noLeaks(t, d)
})

t.test('Send answers once the kernel took every byte: a peer that does not read holds it back; Close ends it', async (t) => {
  const d = await startDomain(t)
  const peers: Socket[] = []
  const server = createServer((s) => { s.on('error', () => undefined); s.pause(); peers.push(s) })
  const port = await listening(t, server)
  const call = client(t, d.bus)
  const { socket } = await call('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 1000 })
  const data = randomBytes(32 * 1024 * 1024)
  let sent = false
  const sending = call('Send', { socket, data }).then((r) => { sent = true; return r })
  await sleep(1000)
  t.notOk(sent, 'a 32 MiB Send to a peer that reads nothing has not answered: the kernel could not take it all')
  const hash = createHash('sha256')
  let got = 0
  peers[0]!.on('data', (c: Buffer) => { hash.update(c); got += c.length })
  peers[0]!.resume()
  t.same(await sending, { sent: data.length }, 'once the peer reads, the Send answers with every byte')
  for (let i = 0; i < 200 && got < data.length; i++) await sleep(10)
  t.equal(hash.digest('hex'), sha256(data), 'and the peer got them all, in order')

  peers[0]!.pause()
  const stuck = codeOf(call('Send', { socket, data }))
  await sleep(300)
  await call('Close', { socket })
  t.equal(await stuck, 'INVALID_HANDLE', 'a Send held back when the handle is closed ends with INVALID_HANDLE')
  noLeaks(t, d)
})

t.test('IPv6: TCP over ::1, and UDP to an IPv4 peer from a dual-stack socket', async (t) => {
  const d = await startDomain(t)
  const call = client(t, d.http)
  const server = createServer((s) => { s.on('error', () => undefined); s.pipe(s) })
  await new Promise<void>((resolve) => { server.listen(0, '::1', () => { resolve() }) })
  t.teardown(() => { server.close() })
  const port = (server.address() as { port: number }).port
  const c = await call('Connect', { host: '::1', port, protocol: 'tcp', timeoutMs: 1000 })
  t.same([c.remoteAddress, c.localAddress], ['::1', '::1'])
  await call('Send', { socket: c.socket, data: Buffer.from('six') })
  t.equal((await receiveExactly(call, c.socket, 3)).toString(), 'six')
  await call('Close', { socket: c.socket })
  const l = await call('Listen', { host: '::1', port: 0, protocol: 'tcp', backlog: 0 })
  t.equal(l.address, '::1')
  await call('Close', { socket: l.listener })
  noLeaks(t, d)
})

t.test('UDP: Connect udp to an echo; Listen udp with SendTo/ReceiveFrom; truncation; drops are counted', async (t) => {
  const d = await startDomain(t, { limits: { maxBufferedBytesPerSocket: 8192 } })
  const call = client(t, d.http)
  const echoPort = await udpEcho(t)
  const c = await call('Connect', { host: '127.0.0.1', port: echoPort, protocol: 'udp', timeoutMs: 1000 })
  t.same([c.remoteAddress, c.remotePort], ['127.0.0.1', echoPort])
  t.same(await call('Send', { socket: c.socket, data: Buffer.from('ping') }), { sent: 4 })
  t.same(await call('Receive', { socket: c.socket, maxBytes: 100, timeoutMs: 2000 }), { data: Buffer.from('ping'), closed: false }, 'the datagram came back')
  t.equal(await codeOf(call('SendTo', { socket: c.socket, host: '127.0.0.1', port: echoPort, data: Buffer.from('x') })), 'INVALID_ARGUMENT', 'a connected socket sends with Send')

  const gone = createSocket('udp4')
  await new Promise<void>((resolve) => { gone.bind(0, '127.0.0.1', () => { resolve() }) })
  const gonePort = gone.address().port
  await new Promise<void>((resolve) => { gone.close(() => { resolve() }) })
  const refused = await call('Connect', { host: '127.0.0.1', port: gonePort, protocol: 'udp', timeoutMs: 0 })
  await call('Send', { socket: refused.socket, data: Buffer.from('anyone?') })
  t.equal(await codeOf(call('Receive', { socket: refused.socket, maxBytes: 10, timeoutMs: 1000 })), 'CONNECTION_REFUSED', 'the ICMP port unreachable is reported by the next call')
  t.same((await call('Receive', { socket: refused.socket, maxBytes: 10, timeoutMs: 0 })).data.length, 0, 'once: the socket stays usable')
  await call('Close', { socket: refused.socket })

  const l = await call('Listen', { host: '127.0.0.1', port: 0, protocol: 'udp', backlog: 0 })
  t.equal(l.address, '127.0.0.1')
  const peer: UdpSocket = createSocket('udp4')
  await new Promise<void>((resolve) => { peer.bind(0, '127.0.0.1', () => { resolve() }) })
  t.teardown(() => { peer.close() })
  const fromDomain = new Promise<Buffer>((resolve) => { peer.once('message', (m) => { resolve(m) }) })
  peer.send(Buffer.from('to the domain'), l.port, '127.0.0.1')
  const r = await call('ReceiveFrom', { socket: l.listener, maxBytes: 100, timeoutMs: 2000 })
  t.same(r, { data: Buffer.from('to the domain'), address: '127.0.0.1', port: peer.address().port, truncated: false })
  await call('SendTo', { socket: l.listener, host: r.address!, port: r.port!, data: Buffer.from('and back') })
  t.equal((await fromDomain).toString(), 'and back')
  peer.send(Buffer.alloc(100, 7), l.port, '127.0.0.1')
  const cut = await call('ReceiveFrom', { socket: l.listener, maxBytes: 10, timeoutMs: 2000 })
  t.same([cut.data.length, cut.truncated], [10, true], 'a datagram longer than maxBytes: truncated')
  t.same(await call('ReceiveFrom', { socket: l.listener, maxBytes: 10, timeoutMs: 50 }), { data: Buffer.alloc(0), truncated: false }, 'nothing waiting: no address at the timeout')
  t.equal(await codeOf(call('SendTo', { socket: l.listener, host: '10.255.255.1', port: 53, data: Buffer.from('x') })), 'DESTINATION_NOT_ALLOWED')

  for (let i = 0; i < 40; i++) peer.send(Buffer.alloc(1000, i), l.port, '127.0.0.1')
  await sleep(300)
  const stats = d.domain.engine.stats
  t.ok(stats.droppedDatagrams > 0, `beyond the 8 KiB bound datagrams are dropped and counted (${stats.droppedDatagrams})`)
  t.ok(stats.bufferedBytes <= 8192, `the queue stays within its bound (${stats.bufferedBytes})`)
  let kept = 0
  for (;;) {
    const x = await call('ReceiveFrom', { socket: l.listener, maxBytes: 2000, timeoutMs: 100 })
    if (x.address === undefined) break
    kept++
  }
  t.equal(kept + stats.droppedDatagrams, 40, 'every datagram was either kept or counted as dropped')
  await call('Close', { socket: l.listener })
  await call('Close', { socket: c.socket })
  noLeaks(t, d)
})

t.test('ResolveHost: localhost as the domain sees it', async (t) => {
  const d = await startDomain(t)
  const call = client(t, d.http)
  const r = await call('ResolveHost', { name: 'localhost' })
  t.ok(r.address.some((a) => a === '127.0.0.1' || a === '::1'), `localhost → ${r.address.join(', ')}`)
  t.same(await call('ResolveHost', { name: '127.0.0.9' }), { address: ['127.0.0.9'] }, 'an address is itself')
  t.equal(await codeOf(call('ResolveHost', { name: 'no-such-host.invalid' })), 'NAME_NOT_RESOLVED')
  t.equal(await codeOf(call('ResolveHost', { name: '' })), 'INVALID_ARGUMENT')
})

t.test('Listen + Accept: a local client connects in and bytes go both ways; Close takes waiting connections along', async (t) => {
  const d = await startDomain(t)
  const call = client(t, d.http)
  const l = await call('Listen', { host: '', port: 0, protocol: 'tcp', backlog: 8 })
  t.equal(l.address, '127.0.0.1', 'an empty host listens on 127.0.0.1')
  t.ok(l.port > 0)
  t.same(await call('Accept', { listener: l.listener, timeoutMs: 50 }), {}, 'nobody yet: no socket at the timeout')
  const peer = connect(l.port, '127.0.0.1')
  t.teardown(() => { peer.destroy() })
  let heard = ''
  peer.on('data', (c: Buffer) => { heard += c.toString() })
  peer.write('hello from outside')
  const a = await call('Accept', { listener: l.listener, timeoutMs: 2000 })
  t.ok(a.socket !== undefined)
  t.same([a.remoteAddress, a.remotePort], ['127.0.0.1', peer.localPort])
  t.equal((await receiveExactly(call, a.socket!, 18)).toString(), 'hello from outside')
  await call('Send', { socket: a.socket!, data: Buffer.from('hello from the domain') })
  for (let i = 0; i < 100 && heard.length < 21; i++) await sleep(20)
  t.equal(heard, 'hello from the domain')
  peer.end()
  t.same(await call('Receive', { socket: a.socket!, maxBytes: 100, timeoutMs: 2000 }), { data: Buffer.alloc(0), closed: true }, 'the client\'s end arrives')
  await call('Close', { socket: a.socket! })

  const waiting = [connect(l.port, '127.0.0.1'), connect(l.port, '127.0.0.1')]
  const closed = waiting.map(async (s) => await new Promise<void>((resolve) => { s.on('error', () => undefined); s.on('close', () => { resolve() }) }))
  for (let i = 0; i < 100 && d.domain.engine.stats.pendingConnections < 2; i++) await sleep(10)
  t.equal(d.domain.engine.stats.pendingConnections, 2, 'two connections wait for Accept')
  await call('Close', { socket: l.listener })
  await Promise.all(closed)
  t.pass('closing the listener closed the connections nobody accepted')
  t.equal(await codeOf(connectAndWait(l.port)), 'ECONNREFUSED', 'and nothing listens there any more')
  noLeaks(t, d)
})

async function connectAndWait (port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve() })
    s.once('error', (e: NodeJS.ErrnoException) => { reject(new MetaosError('IO_ERROR', e.code ?? 'error', { cause: e })) })
  }).catch((e: MetaosError) => { throw Object.assign(e, { code: e.message }) })
}

t.test('the allow-list: destinations outside it are refused before any socket opens', async (t) => {
  const echo = await echoServer(t)
  const d = await startDomain(t)
  const call = client(t, d.http)
  t.equal(await codeOf(call('Connect', { host: '10.255.255.1', port: 80, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', '10.255.255.1:80 with the default list')
  t.equal(await codeOf(call('Connect', { host: '0.0.0.0', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', 'the unspecified address (it would reach loopback)')
  t.equal(await codeOf(call('Listen', { host: '0.0.0.0', port: 0, protocol: 'tcp', backlog: 0 })), 'DESTINATION_NOT_ALLOWED', 'listening on every interface is not loopback')

  const narrow = await startDomain(t, { allow: ['127.0.0.2/32:*'] })
  const n = client(t, narrow.http)
  t.same((await n('GetDomainInfo', {})).allow.rule, ['127.0.0.2/32:*'])
  t.equal(await codeOf(n('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', '127.0.0.1 is not 127.0.0.2')
  t.equal(await codeOf(n('Connect', { host: 'localhost', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', 'a name is checked on the addresses it resolves to')
  t.equal(await codeOf(n('Connect', { host: '::ffff:127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', 'and an IPv4-mapped address on its IPv4 address')
  t.equal(await codeOf(n('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'udp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', 'UDP too')
  t.equal(echo.connections(), 0, 'no connection ever reached the server')
  noLeaks(t, narrow)

  const ports = await startDomain(t, { allow: [`127.0.0.1/32:${echo.port}`] })
  const p = client(t, ports.http)
  const ok = await p('Connect', { host: '::ffff:127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  t.pass('the admitted port is reached, also through its IPv4-mapped address')
  t.equal(await codeOf(p('Connect', { host: '127.0.0.1', port: echo.port === 65535 ? 1 : echo.port + 1, protocol: 'tcp', timeoutMs: 1000 })), 'DESTINATION_NOT_ALLOWED', 'another port of the same host is not')
  await p('Close', { socket: ok.socket })
  noLeaks(t, ports)
  noLeaks(t, d)
})

t.test('allow rules: CIDR:PORTS for IPv4 and IPv6, lists and ranges, IPv4-mapped addresses; bad rules are named', async (t) => {
  const p = parseAllowList(['10.1.0.0/16:80,443', '192.168.1.5/32:8000-8100', '[fd00::]/8:22', '::1/128:*', '172.16.0.9:7'])
  const cases: Array<[string, number, boolean]> = [
    ['10.1.2.3', 443, true], ['10.1.2.3', 80, true], ['10.1.2.3', 8080, false], ['10.2.0.1', 80, false],
    ['192.168.1.5', 8000, true], ['192.168.1.5', 8100, true], ['192.168.1.5', 8101, false], ['192.168.1.6', 8050, false],
    ['fd12:3456::1', 22, true], ['fe80::1', 22, false], ['::1', 65535, true], ['[::1]', 1, true],
    ['::ffff:10.1.0.1', 80, true], ['::ffff:a01:1', 443, true], ['172.16.0.9', 7, true], ['172.16.0.10', 7, false],
    ['10.1.2.3', 0, true], ['10.9.9.9', 0, false], ['localhost', 80, false], ['', 80, false],
  ]
  for (const [a, port, want] of cases) t.equal(p.admits(a, port), want, `${a} port ${port} → ${want ? 'admitted' : 'refused'}`)
  t.same(p.rules, ['10.1.0.0/16:80,443', '192.168.1.5/32:8000-8100', '[fd00::]/8:22', '::1/128:*', '172.16.0.9:7'])
  const loop = parseAllowList(LOOPBACK_ONLY)
  t.ok(loop.admits('127.255.0.1', 1) && loop.admits('::1', 9) && loop.admits('::ffff:127.0.0.1', 80), 'the default admits the loopback networks')
  t.notOk(loop.admits('10.0.0.1', 80) || loop.admits('0.0.0.0', 80) || loop.admits('::', 80), 'and nothing else')
  t.ok(allowAll().admits('203.0.113.9', 443))
  for (const bad of ['10.0.0.0/8', '10.0.0.0/33:80', '10.0.0.0/8:0', '10.0.0.0/8:70000', '10.0.0.0/8:90-80', 'example.com/32:80', '10.0.0.0/8:', '::1/129:*', '10.0.0.0/8:80,,443', '']) {
    try {
      parseAllowList(['127.0.0.0/8:*', bad])
      t.fail(`"${bad}" was accepted`)
    } catch (e) {
      t.ok(e instanceof MetaosError && e.code === 'INVALID_ARGUMENT' && e.message.includes(`"${bad}"`), `"${bad}" → INVALID_ARGUMENT naming the rule`)
    }
  }
})

t.test('handles belong to their caller; bad arguments and limits; refused connections', async (t) => {
  const d = await startDomain(t)
  const echo = await echoServer(t)
  const call = client(t, d.http, 'urn:test:owner')
  const other = client(t, d.http, 'other')
  const { socket } = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  t.equal(await codeOf(other('Send', { socket, data: Buffer.from('x') })), 'INVALID_HANDLE', 'another caller\'s handle is unknown to it')
  t.equal(await codeOf(other('Close', { socket })), 'INVALID_HANDLE', 'and it cannot close it')
  t.equal(await codeOf(call('Receive', { socket, maxBytes: 1e9, timeoutMs: 0 })), 'MESSAGE_TOO_LARGE', 'maxBytes over maxReceiveBytes')
  t.equal(await codeOf(call('Receive', { socket, maxBytes: -1, timeoutMs: 0 })), 'INVALID_ARGUMENT')
  t.equal(await codeOf(call('Receive', { socket, maxBytes: 10, timeoutMs: 60_001 })), 'INVALID_ARGUMENT', 'timeoutMs over maxWaitMs')
  t.equal(await codeOf(call('Connect', { host: '127.0.0.1', port: 0, protocol: 'tcp', timeoutMs: 1000 })), 'INVALID_ARGUMENT', 'port 0 is no destination')
  t.equal(await codeOf(call('Connect', { host: '127.0.0.1', port: 70000, protocol: 'tcp', timeoutMs: 1000 })), 'INVALID_ARGUMENT')
  t.equal(await codeOf(call('Accept', { listener: socket, timeoutMs: 0 })), 'INVALID_ARGUMENT', 'Accept on a connection')
  t.equal(await codeOf(call('ReceiveFrom', { socket, maxBytes: 10, timeoutMs: 0 })), 'INVALID_ARGUMENT', 'ReceiveFrom on TCP')
  await call('Close', { socket })
  t.equal(await codeOf(call('Send', { socket, data: Buffer.from('x') })), 'INVALID_HANDLE', 'a closed handle')
  t.equal(await codeOf(call('Close', { socket })), 'INVALID_HANDLE', 'closing twice')

  const dead = createServer()
  const deadPort = await listening(t, dead)
  await new Promise<void>((resolve) => { dead.close(() => { resolve() }) })
  t.equal(await codeOf(call('Connect', { host: '127.0.0.1', port: deadPort, protocol: 'tcp', timeoutMs: 1000 })), 'CONNECTION_REFUSED', 'nothing listening → CONNECTION_REFUSED')
  const rude = createServer((c) => { c.on('error', () => undefined); c.once('data', () => { c.resetAndDestroy() }) })
  const rudePort = await listening(t, rude)
  const r = await call('Connect', { host: '127.0.0.1', port: rudePort, protocol: 'tcp', timeoutMs: 1000 })
  await call('Send', { socket: r.socket, data: Buffer.from('provoke') })
  t.equal(await codeOf(call('Receive', { socket: r.socket, maxBytes: 10, timeoutMs: 2000 })), 'CONNECTION_RESET', 'a reset by the peer is reported by the next Receive')
  t.equal(await codeOf(call('Send', { socket: r.socket, data: Buffer.from('x') })), 'CONNECTION_RESET', 'and by the next Send: the error is kept')
  await call('Close', { socket: r.socket })
  const taken = await call('Listen', { host: '127.0.0.1', port: 0, protocol: 'tcp', backlog: 0 })
  t.equal(await codeOf(call('Listen', { host: '127.0.0.1', port: taken.port, protocol: 'tcp', backlog: 0 })), 'ADDRESS_IN_USE')
  await call('Close', { socket: taken.listener })

  const small = await startDomain(t, { limits: { maxSocketsPerCaller: 2 } })
  const s = client(t, small.http)
  const a = await s('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  const b = await s('Listen', { host: '127.0.0.1', port: 0, protocol: 'udp', backlog: 0 })
  t.equal(await codeOf(s('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })), 'QUOTA_EXCEEDED', 'a third socket for one caller')
  await Promise.all([s('Close', { socket: a.socket }), s('Close', { socket: b.listener })])
  noLeaks(t, small)
  noLeaks(t, d)
})

t.test('Connect honours timeoutMs: a destination that never answers the SYN → TIMED_OUT', async (t) => {
  // A real listener whose process never accepts (its event loop is blocked) and whose accept queue
  // is full: the kernel drops further SYNs, so a connect waits for ever.
  const child = spawn(process.execPath, ['-e', `
    const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
      console.log(s.address().port)
      setTimeout(() => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0), 20)
    })`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const port = Number(await new Promise<string>((resolve) => { child.stdout!.once('data', (c: Buffer) => { resolve(c.toString().trim()) }) }))
  await sleep(100)
  const fillers = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => undefined))
  t.teardown(() => { for (const f of fillers) f.destroy() })
  await sleep(200)
  const d = await startDomain(t)
  const call = client(t, d.http)
  const started = Date.now()
  t.equal(await codeOf(call('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 300 })), 'TIMED_OUT')
  const took = Date.now() - started
  t.ok(took >= 250 && took < 3000, `after about timeoutMs (${took} ms)`)
  noLeaks(t, d)
})

t.test('a malformed envelope gets MALFORMED_MESSAGE and the domain keeps serving', async (t) => {
  const d = await startDomain(t)
  const res = await fetch(d.http, { method: 'POST', headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"urn:metaos:network:v1/Connect"' }, body: '<not really <xml' })
  t.equal(res.status, 500)
  const text = await res.text()
  t.match(text, /<NetworkFault xmlns="urn:metaos:network:v1"><code>MALFORMED_MESSAGE<\/code>/, 'the detail is a NetworkFault with the code')
  const call = client(t, d.http)
  t.equal((await call('GetDomainInfo', {})).domainId, d.domain.epr, 'still serving')
  noLeaks(t, d)
})

t.test('idle sockets and listeners are reaped', async (t) => {
  const d = await startDomain(t, { limits: { idleMs: 200 } })
  const echo = await echoServer(t)
  const call = client(t, d.http)
  const { socket } = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  const busy = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  await call('Listen', { host: '127.0.0.1', port: 0, protocol: 'tcp', backlog: 0 })
  const waiting = call('Receive', { socket: busy.socket, maxBytes: 10, timeoutMs: 1000 })
  await sleep(700)
  t.equal(await codeOf(call('Send', { socket, data: Buffer.from('x') })), 'INVALID_HANDLE', 'a socket unused for longer than idleMs is gone')
  t.same((await waiting).closed, false, 'a socket with a call waiting is not idle')
  await call('Close', { socket: busy.socket })
  noLeaks(t, d)
})

t.test('draining: waiting calls answer at once, then every socket is closed', async (t) => {
  const d = await startDomain(t)
  const echo = await echoServer(t)
  const call = client(t, d.http)
  const { socket } = await call('Connect', { host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 })
  const l = await call('Listen', { host: '127.0.0.1', port: 0, protocol: 'tcp', backlog: 0 })
  const started = Date.now()
  const receiving = call('Receive', { socket, maxBytes: 10, timeoutMs: 30_000 })
  const accepting = call('Accept', { listener: l.listener, timeoutMs: 30_000 })
  await sleep(100)
  await d.domain.close(10_000)
  t.same(await receiving, { data: Buffer.alloc(0), closed: false }, 'the waiting Receive answered as at its timeout')
  t.same(await accepting, {}, 'so did the waiting Accept')
  t.ok(Date.now() - started < 5000, 'the drain did not wait for their 30 s')
  noLeaks(t, d)
  t.equal(await codeOf(d.domain.engine.connect({ host: '127.0.0.1', port: echo.port, protocol: 'tcp', timeoutMs: 1000 }, 'x')), 'DOMAIN_DRAINING')
})
