// Pushed receives through the network dispatcher (docs/transports.md, "Pushed receives"): real
// `metaos network` processes on net.uds (and one on HTTP), measured in a PMT, a NetSocket placed by
// a NetworkDispatcher. Over two net.uds domains a socket echoes 1 MiB by pushes (SHA-256 equal, no
// Receive call reaches either domain), and so does a connection accepted by a NetServer through
// the dispatcher; a dispatcher over an HTTP domain and a net.uds one reads with Receive from the
// first and by pushes from the second; SIGKILL of the domain holding a pushed socket fails it with
// CONNECTION_LOST, the dispatcher reports it lost and the domain suspect, and a new connection goes
// to the other domain, pushed too.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { NetSocket } from '../../frontend/api/net-socket.js'
import { NetServer } from '../../frontend/api/net-server.js'
import { createNetworkProxy, type NetworkHandler } from '../../frontend/handlers/network-handler.js'
import { NetworkDispatcher } from '../../frontend/placement/network-dispatcher.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { RulesEngine, validateRules } from '../../frontend/placement/rules-engine.js'
import type { MetaosError } from '../../soap-runtime/errors.js'
import { tempDir } from '../helpers/temp-dir.js'

const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
const MIB = 1024 * 1024
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function echoServer (t: Test): Promise<number> {
  const conns = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (s) => { conns.add(s); s.once('close', () => conns.delete(s)); s.on('error', () => {}); s.pipe(s) })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => { for (const c of conns) c.destroy(); await new Promise((resolve) => server.close(resolve)) })
  return (server.address() as AddressInfo).port
}

interface Domains {
  readonly dispatcher: NetworkDispatcher
  readonly pmt: PerformanceMappingTable
  readonly procs: DomainProcess[]
  /** Operations each domain was called with, by EPR. */
  readonly ops: Map<string, string[]>
}

/** Domain processes listening on `listeners` (one each), tracked in a PMT behind a dispatcher; every call to a domain is recorded. */
async function domains (t: Test, listeners: string[], rules?: RulesEngine): Promise<Domains> {
  const procs = await Promise.all(listeners.map(async (l, i) => await spawnDomain(['network', '--name', `p${i}`, '--listen', l], { env: ENV })))
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, NetworkHandler>()
  const ops = new Map<string, string[]>()
  for (const d of procs) {
    const proxy = createNetworkProxy(d.ready.endpoints[0]!)
    const seen: string[] = []
    ops.set(d.ready.epr, seen)
    const recorded: NetworkHandler = { ...proxy, invoke: async (op, input) => { seen.push(op); return await proxy.invoke(op, input) } }
    handlers.set(d.ready.epr, perf.trackNetwork({ epr: d.ready.epr, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'network' }, recorded))
  }
  t.teardown(async () => {
    perf.stop()
    for (const h of handlers.values()) await h.close()
    for (const d of procs) await d.stop(2000)
  })
  for (const epr of handlers.keys()) await perf.probe(epr)
  for (const o of ops.values()) o.length = 0
  return { dispatcher: new NetworkDispatcher(pmt, handlers, rules === undefined ? {} : { rules }), pmt, procs, ops }
}

async function connected (s: NetSocket): Promise<NetSocket> {
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  return s
}

/** Writes `data`, ends, and returns what came back until the peer ended. */
async function echoAll (s: NetSocket, data: Buffer): Promise<Buffer> {
  const parts: Buffer[] = []
  s.on('data', (c: Buffer) => { parts.push(c) })
  const ended = once(s, 'end')
  s.end(data)
  await ended
  return Buffer.concat(parts)
}

const handleOf = (d: NetworkDispatcher, epr: string): string => [...d.affinity].find(([, e]) => e === epr)![0]

t.test('two domains on net.uds: a socket placed by the dispatcher is pushed its data', async (t) => {
  const dir = tempDir(t, 'metaos-dpush-')
  const port = await echoServer(t)
  const { dispatcher, ops } = await domains(t, [`net.uds:${join(dir, 'a.sock')}`, `net.uds:${join(dir, 'b.sock')}`])
  const data = randomBytes(MIB)
  const s = await connected(NetSocket.connect({ host: '127.0.0.1', port, destination: dispatcher }))
  const [[socket, holder]] = [...dispatcher.affinity]
  t.ok(dispatcher.pushes.carries!(socket!), 'the dispatcher carries the pushes of the socket on a net.uds domain')
  const back = await echoAll(s, data)
  t.equal(back.length, data.length, 'every byte came back')
  t.equal(sha(back), sha(data), 'SHA-256 equal')
  const all = [...ops.values()].flat()
  t.notOk(all.includes('Receive'), 'no Receive call on either domain', { ops: all })
  t.ok(ops.get(holder!)!.includes('Subscribe'), 'the domain holding the socket was asked to push')
  t.notOk(dispatcher.pushes.carries!('forged-0123'), 'a socket the dispatcher does not hold is carried by no channel')
  t.throws(() => dispatcher.pushes.attach('forged-0123', { received: () => {}, lost: () => {} }), { code: 'NOT_SUPPORTED' }, 'nor can its pushes be attached')
  s.destroy()
  await once(s, 'close')
  for (let i = 0; i < 50 && dispatcher.affinity.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(dispatcher.affinity.size, 0, 'closed: out of the affinity table')

  t.test('a connection accepted by a NetServer through the dispatcher is pushed too', async (t) => {
    for (const o of ops.values()) o.length = 0
    const server = new NetServer({ destination: dispatcher })
    const echoed = new Promise<Buffer>((resolve, reject) => {
      server.on('connection', (c: NetSocket) => { c.on('error', reject); c.pipe(c) })
      server.on('error', reject)
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as AddressInfo).port
        const c = connect(port, '127.0.0.1')
        const parts: Buffer[] = []
        c.on('data', (b: Buffer) => { parts.push(b) })
        c.on('end', () => { resolve(Buffer.concat(parts)) })
        c.on('error', reject)
        c.end(data)
      })
    })
    t.teardown(async () => { await new Promise((resolve) => server.close(resolve)) })
    const back = await echoed
    t.equal(sha(back), sha(data), 'what the remote sent came back through the accepted socket, SHA-256 equal')
    const all = [...ops.values()].flat()
    t.ok(all.includes('Accept') && all.includes('Subscribe'), 'accepted, then subscribed', { ops: all })
    t.notOk(all.includes('Receive'), 'no Receive call')
  })
})

t.test('an HTTP domain and a net.uds one: Receive on the first, pushes on the second', async (t) => {
  const dir = tempDir(t, 'metaos-dpush-')
  const [toHttp, toBus] = [await echoServer(t), await echoServer(t)]
  const rules = new RulesEngine(validateRules({ rules: [
    { name: 'http', when: { op: ['Connect'], pathPrefix: `127.0.0.1:${toHttp}` }, choose: { transport: 'http' } },
    { name: 'bus', when: { op: ['Connect'], pathPrefix: `127.0.0.1:${toBus}` }, choose: { transport: 'bus' } },
  ] }))
  const { dispatcher, ops, procs } = await domains(t, ['http://127.0.0.1:0', `net.uds:${join(dir, 'n.sock')}`], rules)
  const [http, bus] = procs.map((d) => d.ready.epr) as [string, string]
  const data = randomBytes(MIB)
  const a = await connected(NetSocket.connect({ host: '127.0.0.1', port: toHttp, destination: dispatcher }))
  const b = await connected(NetSocket.connect({ host: '127.0.0.1', port: toBus, destination: dispatcher }))
  t.notOk(dispatcher.pushes.carries!(handleOf(dispatcher, http)), 'the socket on the HTTP domain is carried by no push channel')
  t.ok(dispatcher.pushes.carries!(handleOf(dispatcher, bus)), 'the one on the net.uds domain is')
  const [backA, backB] = await Promise.all([echoAll(a, data), echoAll(b, data)])
  t.equal(sha(backA), sha(data), 'through HTTP: SHA-256 equal')
  t.equal(sha(backB), sha(data), 'through net.uds: SHA-256 equal')
  t.ok(ops.get(http)!.includes('Receive'), 'the HTTP domain was read with Receive')
  t.notOk(ops.get(http)!.includes('Subscribe'), 'and never asked to push')
  t.ok(ops.get(bus)!.includes('Subscribe'), 'the net.uds domain pushed')
  t.notOk(ops.get(bus)!.includes('Receive'), 'with no Receive call')
  a.destroy()
  b.destroy()
})

t.test('SIGKILL of the domain holding a pushed socket: CONNECTION_LOST; the next connection goes to the other, pushed', async (t) => {
  const dir = tempDir(t, 'metaos-dpush-')
  const port = await echoServer(t)
  const { dispatcher, pmt, procs, ops } = await domains(t, [`net.uds:${join(dir, 'a.sock')}`, `net.uds:${join(dir, 'b.sock')}`])
  const s = await connected(NetSocket.connect({ host: '127.0.0.1', port, destination: dispatcher }))
  const parts: Buffer[] = []
  s.on('data', (c: Buffer) => { parts.push(c) })
  s.write('hello')
  while (Buffer.concat(parts).toString() !== 'hello') await once(s, 'data')
  const [[socket, holder]] = [...dispatcher.affinity]
  t.ok(ops.get(holder!)!.includes('Subscribe') && !ops.get(holder!)!.includes('Receive'), 'read by pushes')
  const lost = once(dispatcher, 'lost') as Promise<[{ socket: string, epr: string, reason: string }]>
  const failed = once(s, 'error') as Promise<[MetaosError]>
  procs.find((d) => d.ready.epr === holder)!.child.kill('SIGKILL')
  const [err] = await failed
  t.equal(err.code, 'CONNECTION_LOST', `the application gets CONNECTION_LOST (${err.message.slice(0, 80)}…)`)
  const [ev] = await lost
  t.same([ev.socket, ev.epr], [socket, holder], 'the dispatcher reports the socket lost with its domain')
  t.equal(dispatcher.affinity.size, 0, 'the lost socket left the affinity table')
  t.equal(pmt.row(holder!)!.state, 'suspect', 'the domain is suspect')

  for (const o of ops.values()) o.length = 0
  const b = await connected(NetSocket.connect({ host: '127.0.0.1', port, destination: dispatcher }))
  const other = [...dispatcher.affinity.values()][0]
  t.not(other, holder, 'a new connection goes to the healthy domain')
  const data = randomBytes(256 * 1024)
  t.equal(sha(await echoAll(b, data)), sha(data), 'and is echoed, SHA-256 equal')
  t.ok(ops.get(other!)!.includes('Subscribe') && !ops.get(other!)!.includes('Receive'), 'by pushes')
  b.destroy()
})
