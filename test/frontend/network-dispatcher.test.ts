// Sockets placed by the network dispatcher on network domain processes measured in a PMT: a
// connection goes to a usable domain and keeps to it; when that domain is killed, the connection
// fails with CONNECTION_LOST (a TCP connection cannot move to another kernel) and the next one goes
// to the healthy domain; probes connect and close to the configured target.
import t, { type Test } from 'tap'
import { createServer, type Server } from 'node:net'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { NetworkDispatcher } from '../../frontend/placement/network-dispatcher.js'
import { createNetworkProxy, type NetworkHandler } from '../../frontend/handlers/network-handler.js'
import { NetSocket } from '../../frontend/api/net-socket.js'
import { tempDir } from '../helpers/temp-dir.js'

async function echoServer (t: Test): Promise<{ port: number, accepted: () => number }> {
  let accepted = 0
  const server: Server = createServer({ allowHalfOpen: true }, (s) => { accepted++; s.pipe(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { server.close() })
  return { port: (server.address() as { port: number }).port, accepted: () => accepted }
}

async function echoOnce (s: NetSocket, msg: string): Promise<string> {
  const back = new Promise<string>((resolve, reject) => {
    let got = ''
    const onData = (c: Buffer): void => { got += c.toString(); if (got.length >= msg.length) { s.off('data', onData); resolve(got) } }
    s.on('data', onData)
    s.once('error', reject)
  })
  s.write(msg)
  return await back
}

t.test('placement, affinity, CONNECTION_LOST, new connections elsewhere', async (t) => {
  const echo = await echoServer(t)
  const dir = tempDir(t, 'metaos-netdisp-')
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const domains: DomainProcess[] = [
    await spawnDomain(['network', '--name', 'n1', '--listen', 'http://127.0.0.1:0'], { env }),
    await spawnDomain(['network', '--name', 'n2', '--listen', `unix:${join(dir, 'n2.sock')}`], { env }),
  ]
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 200 })
  const handlers = new Map<string, NetworkHandler>()
  for (const d of domains) handlers.set(d.ready.epr, perf.trackNetwork({ epr: d.ready.epr, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'network' }, createNetworkProxy(d.ready.endpoints[0]!), { host: '127.0.0.1', port: echo.port }))
  t.teardown(async () => {
    perf.stop()
    for (const h of handlers.values()) await h.close()
    for (const d of domains) await d.stop(2000)
    rmSync(dir, { recursive: true, force: true })
  })
  const before = echo.accepted()
  for (const epr of handlers.keys()) await perf.probe(epr)
  t.equal(echo.accepted() - before, 2, 'each probe connected to the configured target (and closed)')
  t.ok([...handlers.keys()].every((e) => pmt.row(e)!.measures.probedAt !== undefined), 'both domains measured')

  const d = new NetworkDispatcher(pmt, handlers)
  const a = NetSocket.connect({ host: '127.0.0.1', port: echo.port, destination: d })
  await new Promise((resolve) => a.once('connect', resolve))
  t.equal(await echoOnce(a, 'hello'), 'hello', 'echoed through the chosen domain')
  const holder = [...d.affinity.values()][0]!
  t.equal(d.affinity.size, 1, 'one socket in the affinity table')
  t.equal(await echoOnce(a, 'again'), 'again', 'and its calls stay on it')

  // The domain holding the connection dies.
  const lost = new Promise<NodeJS.ErrnoException>((resolve) => a.once('error', resolve))
  domains.find((x) => x.ready.epr === holder)!.child.kill('SIGKILL')
  a.write('into the void')
  const err = await lost
  t.equal(err.code, 'CONNECTION_LOST', `the application gets CONNECTION_LOST (${err.message.slice(0, 80)}…)`)
  t.equal(pmt.row(holder)!.state, 'suspect', 'the domain is suspect')
  t.equal(d.affinity.size, 0, 'the lost socket left the affinity table')

  const b = NetSocket.connect({ host: '127.0.0.1', port: echo.port, destination: d })
  await new Promise((resolve, reject) => { b.once('connect', resolve); b.once('error', reject) })
  t.equal(await echoOnce(b, 'elsewhere'), 'elsewhere', 'a new connection goes to the healthy domain')
  t.not([...d.affinity.values()][0], holder)
  b.destroy()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(d.affinity.size, 0, 'closed: out of the affinity table')
})

t.test('rules place connections: by destination (host:port) and by transport', async (t) => {
  const { RulesEngine, validateRules } = await import('../../frontend/placement/rules-engine.js')
  const { LocalNetworkHandler } = await import('../../frontend/handlers/local-network-handler.js')
  const echo = await echoServer(t)
  const d = await spawnDomain(['network', '--name', 'ruled', '--listen', 'http://127.0.0.1:0'], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const local = new LocalNetworkHandler()
  const handlers = new Map<string, NetworkHandler>([
    ['local', perf.trackNetwork({ epr: 'local', endpoints: ['local'], hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'network' }, local)],
    [d.ready.epr, perf.trackNetwork({ epr: d.ready.epr, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'network' }, createNetworkProxy(d.ready.endpoints[0]!))],
  ])
  t.teardown(async () => { for (const h of handlers.values()) await h.close(); await d.stop() })
  for (const epr of handlers.keys()) await perf.probe(epr)
  const rules = new RulesEngine(validateRules({ rules: [
    { name: 'the echo service goes through a domain', when: { op: ['Connect'], pathPrefix: `127.0.0.1:${echo.port}` }, choose: { transport: 'http' } },
    { name: 'the local kernel first', prefer: { transport: 'local' } },
  ] }))
  const disp = new NetworkDispatcher(pmt, handlers, { rules })
  const p = disp.place({ op: 'Connect', path: `127.0.0.1:${echo.port}` })
  t.equal(p.chosen, d.ready.epr, 'the rule for the echo service chose the domain')
  t.same(p.fired, ['the echo service goes through a domain', 'the local kernel first'])
  t.equal(disp.place({ op: 'ResolveHost', path: 'localhost' }).chosen, 'local', 'anything else: the local kernel first')
  const s = NetSocket.connect({ host: '127.0.0.1', port: echo.port, destination: disp })
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  t.equal(await echoOnce(s, 'ruled'), 'ruled')
  t.equal([...disp.affinity.values()][0], d.ready.epr, 'the connection was placed by the rule')
  s.destroy()
})
