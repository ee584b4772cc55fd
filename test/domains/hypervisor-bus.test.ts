// The hypervisor bus end to end with real sockets: clients → host listener → "QEMU" (a Unix-socket
// server standing in for the chardev, whose accepted socket is the guest's link) → guest → a real
// node:http domain on a Unix socket. Bytes are checked by SHA-256 both ways; link drops, garbage on
// the link, a missing domain socket and a client that stops reading are checked by their outcome.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { Agent, createServer as createHttpServer, request, type IncomingMessage, type ServerResponse } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  encodeFrame, FrameParser, FrameType, HypervisorBusGuest, HypervisorBusHost, MAX_DATA,
  type Frame,
} from '../../vm/hypervisor-bus.js'
import { findVirtioPort, PipeLink } from '../../vm/virtio-port.js'
import { MetaosError } from '../../soap-runtime/errors.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const MIB = 1024 * 1024

function tmp (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-hvbus-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

async function within<T> (p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`timed out: ${what}`)) }, ms) })
  try { return await Promise.race([p, timeout]) } finally { clearTimeout(timer) }
}

/** The domain: POST /echo answers the request body and its SHA-256; GET /hang never answers; GET /big?mib=N streams N MiB. */
async function startDomain (t: Test, path: string): Promise<{ server: Server, hung: ServerResponse[], big: { sent: number } }> {
  const hung: ServerResponse[] = []
  const big = { sent: 0 }
  const server = createHttpServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/hang') { hung.push(res); return }
    if (req.url?.startsWith('/big') === true) {
      const total = Number(new URL(req.url, 'http://x').searchParams.get('mib')) * MIB
      res.writeHead(200, { 'Content-Length': total })
      const block = Buffer.alloc(MAX_DATA, 7)
      for (let sent = 0; sent < total; sent += block.length) {
        big.sent = sent
        if (!res.write(block)) await once(res, 'drain')
        if (res.destroyed) return
      }
      big.sent = total
      res.end()
      return
    }
    const parts: Buffer[] = []
    for await (const c of req) parts.push(c as Buffer)
    const body = Buffer.concat(parts)
    res.writeHead(200, { 'X-Sha256': sha(body), 'Content-Length': body.length })
    res.end(body)
  })
  await new Promise<void>((resolve) => { server.listen(path, resolve) })
  t.teardown(async () => {
    for (const r of hung) r.destroy()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  return { server, hung, big }
}

interface Rig {
  dir: string
  listenPath: string
  linkPath: string
  host: HypervisorBusHost
  guests: HypervisorBusGuest[]
  /** The sockets the stand-in "QEMU" accepted (the guest ends of the link). */
  links: Socket[]
  domain: Awaited<ReturnType<typeof startDomain>>
  startQemu: () => Promise<void>
  stopQemu: () => Promise<void>
}

async function rig (t: Test, o: { qemu?: boolean, domainPath?: string } = {}): Promise<Rig> {
  const dir = tmp(t)
  const domainSock = join(dir, 'domain.sock')
  const domain = await startDomain(t, domainSock)
  const linkPath = join(dir, 'link.sock')
  const listenPath = join(dir, 'bus.sock')
  const guests: HypervisorBusGuest[] = []
  const links: Socket[] = []
  let qemu: Server | undefined
  const startQemu = async (): Promise<void> => {
    qemu = createServer((s) => {
      links.push(s)
      guests.push(new HypervisorBusGuest({ link: s, connectPath: o.domainPath ?? domainSock }))
    })
    await new Promise<void>((resolve) => { qemu!.listen(linkPath, resolve) })
  }
  const stopQemu = async (): Promise<void> => {
    const q = qemu
    qemu = undefined
    if (q === undefined) return
    for (const s of links) s.destroy()
    await new Promise((resolve) => q.close(resolve))
  }
  const host = new HypervisorBusHost({ listenPath, linkPath, reconnectMs: 30 })
  t.teardown(async () => {
    await host.close()
    await stopQemu()
    for (const g of guests) g.close()
  })
  if (o.qemu !== false) await startQemu()
  await host.start()
  if (o.qemu !== false) await linkUp(host)
  return { dir, listenPath, linkPath, host, guests, links, domain, startQemu, stopQemu }
}

async function linkUp (host: HypervisorBusHost): Promise<void> {
  if (!host.stats.linkUp) await within(once(host, 'link-up'), 5000, 'link-up')
}

interface Reply { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer }
function call (socketPath: string, o: { method?: string, path: string, body?: Buffer, agent?: Agent | false }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: o.method ?? 'POST', path: o.path, agent: o.agent ?? false, headers: o.body === undefined ? {} : { 'Content-Length': o.body.length } }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (c: Buffer) => parts.push(c))
      res.on('end', () => { resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

t.test('frames split across chunks and several in one chunk parse the same', async (t) => {
  const frames = [
    encodeFrame(FrameType.HELLO, 0, Buffer.from([1, 9, 8, 7, 6])),
    encodeFrame(FrameType.OPEN, 3),
    encodeFrame(FrameType.DATA, 3, randomBytes(MAX_DATA)),
    encodeFrame(FrameType.DATA, 3, Buffer.from('x')),
    encodeFrame(FrameType.END, 3),
    encodeFrame(FrameType.CLOSE, 0xffffffff, Buffer.from('ECONNREFUSED')),
  ]
  const all = Buffer.concat(frames)
  const parseIn = (chunks: Buffer[]): Frame[] => {
    const p = new FrameParser()
    const out: Frame[] = []
    for (const c of chunks) { p.push(c); for (let f = p.next(); f !== undefined; f = p.next()) out.push(f) }
    return out
  }
  const whole = parseIn([all])
  t.same(whole.map((f) => [f.type, f.channel, f.payload.length]), [[1, 0, 5], [2, 3, 0], [3, 3, MAX_DATA], [3, 3, 1], [4, 3, 0], [5, 0xffffffff, 12]])
  t.equal(sha(whole[2]!.payload), sha(frames[2]!.subarray(9)))
  const bytewise = parseIn([...all].map((b) => Buffer.of(b)))
  t.same(bytewise.map((f) => sha(f.payload)), whole.map((f) => sha(f.payload)), 'one byte at a time')
  const odd = parseIn([all.subarray(0, 5), all.subarray(5, 20), all.subarray(20, 70_000), all.subarray(70_000)])
  t.same(odd.map((f) => sha(f.payload)), whole.map((f) => sha(f.payload)), 'split at odd places')

  for (const bad of [Buffer.from([99, 0, 0, 0, 1, 0, 0, 0, 0]), encodeFrame(FrameType.DATA, 1).fill(0xff, 5), encodeFrame(FrameType.DATA, 0, Buffer.from('x'))]) {
    const p = new FrameParser()
    p.push(bad)
    let err: unknown
    try { p.next() } catch (e) { err = e }
    t.ok(err instanceof MetaosError && err.code === 'PROTOCOL_ERROR', `PROTOCOL_ERROR for ${bad.toString('hex').slice(0, 18)}`)
  }
})

t.test('concurrent requests through the bus: keep-alive and agent:false, 1 B to 5 MiB both ways', async (t) => {
  const r = await rig(t)
  const agent = new Agent({ keepAlive: true, maxSockets: 6 })
  t.teardown(() => { agent.destroy() })
  const sizes = [1, 1000, MAX_DATA, MAX_DATA + 1, 5 * MIB]
  const jobs: Array<Promise<void>> = []
  for (let i = 0; i < 60; i++) {
    const body = randomBytes(sizes[i % sizes.length]!)
    const viaAgent = i % 2 === 0
    jobs.push(call(r.listenPath, { path: '/echo', body, agent: viaAgent ? agent : false }).then((res) => {
      if (res.status !== 200 || res.headers['x-sha256'] !== sha(body) || sha(res.body) !== sha(body)) {
        throw new Error(`request ${i} (${body.length} B, ${viaAgent ? 'keep-alive' : 'agent:false'}) came back wrong`)
      }
    }))
  }
  await within(Promise.all(jobs), 20_000, 'all requests')
  t.pass('60 concurrent requests answered byte for byte')
  agent.destroy()
  // The closes cross the bus as frames: wait for them (up to 5 s), never for a fixed time.
  for (const end = Date.now() + 5000; r.host.stats.channels > 0 && Date.now() < end;) await sleep(20)
  t.equal(r.host.stats.channels, 0, 'every channel is gone once the clients closed')
  t.ok(r.host.stats.framesIn > 0 && r.host.stats.bytesOut > 5 * MIB, 'stats count the traffic')
})

t.test('half-close: the client ends its side and the domain still answers', async (t) => {
  const r = await rig(t)
  const s = connect({ path: r.listenPath, allowHalfOpen: true })
  const body = randomBytes(200_000)
  s.write(`POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`)
  s.end(body)
  const parts: Buffer[] = []
  s.on('data', (c: Buffer) => parts.push(c))
  await within(once(s, 'end'), 5000, 'response after half-close')
  const raw = Buffer.concat(parts)
  const at = raw.indexOf('\r\n\r\n')
  t.match(raw.subarray(0, at).toString(), /^HTTP\/1\.1 200/)
  t.match(raw.subarray(0, at).toString(), new RegExp(`x-sha256: ${sha(body)}`, 'i'))
  t.equal(sha(raw.subarray(at + 4)), sha(body), 'the whole body came back after our FIN')
  s.destroy()
})

t.test('no domain socket in the guest: the client connection is closed promptly', async (t) => {
  const r = await rig(t, { domainPath: '/nonexistent/metaos-domain.sock' })
  const started = Date.now()
  const err = await within(call(r.listenPath, { path: '/echo', body: Buffer.from('hi') }).then(() => undefined, (e: NodeJS.ErrnoException) => e), 3000, 'reset')
  t.equal(err?.code, 'ECONNRESET', 'the client sees a reset')
  t.ok(Date.now() - started < 2000, 'promptly')
  await sleep(50)
  t.equal(r.host.stats.channels, 0)
  // The bus itself is fine: the guest keeps serving.
  t.ok(r.host.stats.linkUp)
})

t.test('link drop mid-request: clients see an error at once, the host reconnects, new requests succeed', async (t) => {
  const r = await rig(t)
  const hanging = call(r.listenPath, { method: 'GET', path: '/hang' }).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  while (r.domain.hung.length === 0) await sleep(5)
  const down = once(r.host, 'link-down')
  const started = Date.now()
  await r.stopQemu() // QEMU exits
  const err = await within(hanging, 2000, 'client error after link drop')
  t.equal(err?.code, 'ECONNRESET')
  t.ok(Date.now() - started < 1500, 'promptly')
  await within(down, 2000, 'link-down')
  t.equal(r.host.stats.channels, 0)
  t.equal(r.guests[0]!.stats.channels, 0, 'the old guest dropped its channels too')
  await sleep(150) // a few failed reconnects (ENOENT)
  await r.startQemu() // QEMU restarts
  await linkUp(r.host)
  const body = randomBytes(300_000)
  const res = await within(call(r.listenPath, { path: '/echo', body }), 5000, 'request after reconnect')
  t.equal(sha(res.body), sha(body))
  t.equal(r.guests.length, 2, 'served by the new guest')
})

t.test('a client that connects before the link is up is served once it comes up', async (t) => {
  const r = await rig(t, { qemu: false })
  t.notOk(r.host.stats.linkUp)
  const body = randomBytes(100_000)
  let done = false
  const res = call(r.listenPath, { path: '/echo', body }).finally(() => { done = true })
  await sleep(300)
  t.notOk(done, 'the client waits rather than being refused')
  t.equal(r.host.stats.queued, 1)
  await r.startQemu()
  const out = await within(res, 5000, 'queued request')
  t.equal(sha(out.body), sha(body))
  t.equal(r.host.stats.queued, 0)
})

t.test('garbage from the guest: the host resets the link and recovers', async (t) => {
  const r = await rig(t)
  for (const garbage of [Buffer.from([0x63, 0, 0, 0, 1, 0, 0, 0, 4, 1, 2, 3, 4]), encodeFrame(FrameType.DATA, 1).fill(0x7f, 5)]) {
    const n = r.links.length
    const down = once(r.host, 'link-down')
    r.links[n - 1]!.write(garbage) // the stand-in writes between the guest's frames
    await within(down, 2000, 'link-down after garbage')
    await linkUp(r.host)
    t.equal(r.links.length, n + 1, 'the host reconnected')
    const body = randomBytes(70_000)
    const res = await within(call(r.listenPath, { path: '/echo', body }), 5000, 'request after recovery')
    t.equal(sha(res.body), sha(body))
  }
})

t.test('garbage to the guest: it survives, asks for a new HELLO and serves again', async (t) => {
  const dir = tmp(t)
  await startDomain(t, join(dir, 'domain.sock'))
  const linkPath = join(dir, 'link.sock')
  let guest: HypervisorBusGuest | undefined
  const qemu = createServer((s) => { guest = new HypervisorBusGuest({ link: s, connectPath: join(dir, 'domain.sock') }) })
  await new Promise<void>((resolve) => { qemu.listen(linkPath, resolve) })
  const hostEnd = connect(linkPath)
  t.teardown(async () => { hostEnd.destroy(); guest?.close(); await new Promise((resolve) => qemu.close(resolve)) })
  const parser = new FrameParser()
  const got: Frame[] = []
  hostEnd.on('data', (c: Buffer) => { parser.push(c); for (let f = parser.next(); f !== undefined; f = parser.next()) got.push({ ...f, payload: Buffer.from(f.payload) }) })
  const waitFor = async (pred: (f: Frame) => boolean, what: string): Promise<Frame> => {
    for (let i = 0; i < 400; i++) {
      const k = got.findIndex(pred)
      if (k >= 0) return got.splice(k, 1)[0]!
      await sleep(5)
    }
    throw new Error(`no frame: ${what}`)
  }
  const reset = (f: Frame): boolean => f.type === FrameType.HELLO && f.payload.subarray(1).equals(Buffer.alloc(4))
  await waitFor(reset, 'the guest says it starts fresh')
  hostEnd.write(Buffer.concat([Buffer.from([0xff, 0xee]), randomBytes(300)]))
  await waitFor(reset, 'the guest asks for a new HELLO after garbage')
  const nonce = Buffer.from([1, 2, 3, 4])
  hostEnd.write(Buffer.concat([randomBytes(50), encodeFrame(FrameType.HELLO, 0, Buffer.from([1, ...nonce]))]))
  const hello = await waitFor((f) => f.type === FrameType.HELLO && f.payload.subarray(1).equals(nonce), 'HELLO echo')
  t.same([...hello.payload], [1, 1, 2, 3, 4], 'the guest resynchronised on the HELLO and echoed the nonce')
  hostEnd.write(encodeFrame(FrameType.DATA, 7, Buffer.from('stale')))
  const closed = await waitFor((f) => f.type === FrameType.CLOSE && f.channel === 7, 'CLOSE for an unknown channel')
  t.ok(closed, 'DATA for an unknown channel is answered with CLOSE')
  const body = Buffer.from('hello guest')
  hostEnd.write(Buffer.concat([
    encodeFrame(FrameType.OPEN, 9),
    encodeFrame(FrameType.DATA, 9, Buffer.from(`POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body.toString()}`)),
  ]))
  await waitFor((f) => f.type === FrameType.END && f.channel === 9, 'END after the response')
  const data = got.filter((f) => f.type === FrameType.DATA && f.channel === 9).map((f) => f.payload.toString()).join('')
  t.match(data, /^HTTP\/1\.1 200/)
  t.ok(data.endsWith('hello guest'))
})

t.test('backpressure: a client that stops reading a 64 MiB response keeps the bus bounded', async (t) => {
  const r = await rig(t)
  const s = connect({ path: r.listenPath })
  s.write('GET /big?mib=64 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  s.pause() // and read nothing
  let maxBuffered = 0
  for (let i = 0; i < 40; i++) {
    await sleep(20)
    maxBuffered = Math.max(maxBuffered, r.host.stats.buffered, r.links[0]!.writableLength)
  }
  t.ok(r.domain.big.sent > 0, 'the domain started sending')
  t.ok(r.domain.big.sent < 8 * MIB, `the domain is held back (${r.domain.big.sent} B sent)`)
  t.ok(maxBuffered < 1 * MIB, `write buffers stay bounded (${maxBuffered} B at most)`)
  // Now read it all: nothing was lost while we stalled.
  const h = createHash('sha256')
  let head: Buffer | undefined = Buffer.alloc(0)
  let bodyBytes = 0
  s.on('data', (c: Buffer) => {
    if (head !== undefined) {
      head = Buffer.concat([head, c])
      const at = head.indexOf('\r\n\r\n')
      if (at < 0) return
      c = head.subarray(at + 4)
      head = undefined
    }
    bodyBytes += c.length
    h.update(c)
  })
  s.resume()
  await within(once(s, 'end'), 15_000, '64 MiB read')
  t.equal(bodyBytes, 64 * MIB)
  const want = createHash('sha256')
  const block = Buffer.alloc(MAX_DATA, 7)
  for (let i = 0; i < 1024; i++) want.update(block)
  t.equal(h.digest('hex'), want.digest('hex'), 'every byte arrived')
  s.destroy()
})

t.test('findVirtioPort reads the port names from sysfs', async (t) => {
  const sys = tmp(t)
  for (const [dev, name] of [['vport0p1', 'org.qemu.guest_agent.0'], ['vport1p1', 'org.metaos.control'], ['vport1p2', 'org.metaos.bus']]) {
    mkdirSync(join(sys, dev))
    writeFileSync(join(sys, dev, 'name'), `${name}\n`)
  }
  mkdirSync(join(sys, 'vport2p1')) // a port with no name file yet
  t.equal(await findVirtioPort('org.metaos.bus', sys), '/dev/vport1p2')
  t.equal(await findVirtioPort('org.metaos.control', sys), '/dev/vport1p1')
  t.equal(await findVirtioPort('org.metaos', sys), undefined, 'names match exactly')
  t.equal(await findVirtioPort('org.metaos.bus', join(sys, 'missing')), undefined)
  await t.rejects(findVirtioPort(''), { code: 'INVALID_ARGUMENT' })
})

t.test('PipeLink: a FIFO carries bytes both ways; EOF is a host disconnection, not the end', async (t) => {
  const dir = tmp(t)
  const fifo = join(dir, 'port')
  execFileSync('mkfifo', [fifo])
  const link = new PipeLink(fifo)
  link.write(encodeFrame(FrameType.OPEN, 5)) // written to the FIFO, read back by the same link
  const [c] = await within(once(link, 'data'), 2000, 'loopback data') as [Buffer]
  t.same([...c], [...encodeFrame(FrameType.OPEN, 5)])
  const waker = openSync(fifo, 'r+')
  writeSync(waker, 'more')
  const [d] = await within(once(link, 'data'), 2000, 'data from another writer') as [Buffer]
  t.equal(d.toString(), 'more')
  link.destroy()
  await within(once(link, 'close'), 2000, 'close')
  closeSync(waker)

  const file = join(dir, 'plain')
  writeFileSync(file, 'abc')
  const flink = new PipeLink(file, { retryMs: 20 })
  let disconnections = 0
  flink.on('host-disconnected', () => { disconnections++ })
  let seen = ''
  flink.on('data', (b: Buffer) => { seen += b.toString() })
  await sleep(300)
  t.equal(seen, 'abc')
  t.ok(disconnections >= 1, 'the end of what there is to read is a disconnection')
  appendFileSync(file, 'def')
  await sleep(300)
  t.equal(seen, 'abcdef', 'the stream did not end: later bytes are read')
  t.notOk(flink.readableEnded)
  flink.destroy()
  await within(once(flink, 'close'), 2000, 'file link close')
  t.ok(existsSync(file))
})

t.test('the guest loses sync while the link is up: the host handshakes again without reconnecting', async (t) => {
  // A relay stands in for QEMU here so the test can inject bytes on the host → guest direction.
  const dir = tmp(t)
  const domainSock = join(dir, 'domain.sock')
  await startDomain(t, domainSock)
  const guestSide = join(dir, 'guest-side.sock')
  let guest: HypervisorBusGuest | undefined
  const guestServer = createServer((s) => { guest = new HypervisorBusGuest({ link: s, connectPath: domainSock }) })
  await new Promise<void>((resolve) => { guestServer.listen(guestSide, resolve) })
  let toGuest: Socket | undefined
  let hostConns = 0
  const relay = createServer((h) => {
    hostConns++
    const g = connect(guestSide)
    toGuest = g
    h.pipe(g).pipe(h)
    h.on('close', () => g.destroy())
    g.on('close', () => h.destroy())
  })
  const linkPath = join(dir, 'link.sock')
  await new Promise<void>((resolve) => { relay.listen(linkPath, resolve) })
  const host = new HypervisorBusHost({ listenPath: join(dir, 'bus.sock'), linkPath, reconnectMs: 30 })
  t.teardown(async () => {
    await host.close()
    toGuest?.destroy()
    guest?.close()
    await new Promise((resolve) => relay.close(resolve))
    await new Promise((resolve) => guestServer.close(resolve))
  })
  await host.start()
  await linkUp(host)
  const hanging = call(join(dir, 'bus.sock'), { method: 'GET', path: '/hang' }).then(() => undefined, (e: NodeJS.ErrnoException) => e)
  while (host.stats.channels === 0) await sleep(5)
  const down = once(host, 'link-down')
  const up = once(host, 'link-up')
  toGuest!.write(Buffer.from([0x42, 0, 0, 0, 0, 0, 0, 0, 0])) // garbage only the guest sees
  await within(down, 2000, 'link-down after the guest lost sync')
  t.equal((await within(hanging, 2000, 'client reset'))?.code, 'ECONNRESET', 'channels of the old session are reset')
  await within(up, 3000, 'link-up after a new HELLO')
  t.equal(hostConns, 1, 'the same link connection')
  const body = randomBytes(100_000)
  const res = await within(call(join(dir, 'bus.sock'), { path: '/echo', body }), 5000, 'request after re-handshake')
  t.equal(sha(res.body), sha(body))
})

t.test('the listener: mode 0600, a stale socket file is replaced, the file is removed on close; a queued client is dropped after queueMs', async (t) => {
  const dir = tmp(t)
  const listenPath = join(dir, 'bus.sock')
  const stale = createServer()
  await new Promise<void>((resolve) => { stale.listen(listenPath, resolve) })
  const busy = new HypervisorBusHost({ listenPath, linkPath: join(dir, 'nothing.sock') })
  await t.rejects(busy.start(), { code: 'ALREADY_EXISTS' }, 'a live listener is not replaced')
  await busy.close()
  stale.close()
  await once(stale, 'close')
  // Leave the socket file behind as a crashed process would.
  const script = `require('node:net').createServer().listen(${JSON.stringify(listenPath)}, () => process.kill(process.pid, 'SIGKILL'))`
  try { execFileSync(process.execPath, ['-e', script], { stdio: 'ignore' }) } catch { /* killed, as intended */ }
  t.ok(existsSync(listenPath), 'a stale socket file is there')
  const host = new HypervisorBusHost({ listenPath, linkPath: join(dir, 'nothing.sock'), reconnectMs: 20, queueMs: 200 })
  await host.start()
  t.equal(statSync(listenPath).mode & 0o777, 0o600, 'the bus socket is for this user only')
  const c = connect(listenPath)
  c.on('error', () => {})
  const started = Date.now()
  await within(once(c, 'close'), 2000, 'queued client dropped')
  t.ok(Date.now() - started >= 150, 'it waited for the link first')
  await sleep(20)
  t.equal(host.stats.queued, 0)
  await host.close()
  t.notOk(existsSync(listenPath), 'the socket file is gone after close()')
})
