// `metaos up` as a real process: the demonstration table (local, bus, network; MB/s, channel and
// service time, identical bytes), the WSDL it points to while it runs, and a clean stop on Ctrl-C
// (exit 0, domains stopped, its temporary directory removed). Runs the compiled CLI (dist/).
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { request } from 'node:http'
import { fileURLToPath } from 'node:url'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
// A TMPDIR of this file's own: `metaos up` records where its status is in $TMPDIR, and another
// test file's `metaos up` running at the same time (the dashboard's) must not be the one found.
const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent', TMPDIR: tempDir(t, 'metaos-up-test-') }

interface Exit { code: number | null, signal: NodeJS.Signals | null }

interface Up {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  readonly exited: Promise<Exit>
  /** Resolves when stdout matches `re` (rejects if the process exits or `ms` pass first). */
  readonly waitFor: (re: RegExp, ms: number) => Promise<void>
}

function startUp (t: Test, args: string[]): Up {
  const child = spawn(process.execPath, [CLI, 'up', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV })
  let out = ''
  let err = ''
  const waiters: Array<() => void> = []
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  child.stdout!.on('data', (c: string) => { out += c; for (const w of waiters) w() })
  child.stderr!.on('data', (c: string) => { if (err.length < 1_000_000) err += c })
  const exited = new Promise<Exit>((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  })
  const waitFor = async (re: RegExp, ms: number): Promise<void> => {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => { if (re.test(out)) { clearTimeout(timer); resolve() } }
      const timer = setTimeout(() => { reject(new Error(`metaos up: no ${re} on stdout within ${ms} ms; stdout: ${out}; stderr: ${err.slice(-2000)}`)) }, ms)
      waiters.push(check)
      void exited.then((e) => { clearTimeout(timer); if (!re.test(out)) reject(new Error(`metaos up exited (${e.code ?? e.signal}) before ${re}; stdout: ${out}; stderr: ${err.slice(-2000)}`)) })
      check()
    })
  }
  return { child, stdout: () => out, stderr: () => err, exited, waitFor }
}

interface Printed {
  work: string
  pids: number[]
  /** The bus domain's net.uds endpoint (what the demonstration calls), and its HTTP one on a Unix socket. */
  bus: string
  busHttp: string
  net: string
  wsdlHttp: string
  wsdlSocket: string
}

/** What `up` printed: its work directory, the domains, the WSDL commands. */
function parsePrinted (t: Test, out: string): Printed {
  const work = /^metaos up: starting two storage domains over (\/\S+)\/volume$/m.exec(out)?.[1]
  t.ok(work, 'it says where the volume is')
  t.match(work ?? '', /\/metaos-up-[^/]+$/, 'in a metaos-up-* temporary directory')
  const bus = /^ {2}bus {6}(net\.uds:\/\S+\.sock) {2}\(pid (\d+)\)$/m.exec(out)
  const busHttp = /^ {11}(http\+unix:\/\/\S+\/storage) {2}\(HTTP, for curl and SoapUI\)$/m.exec(out)?.[1]
  t.ok(busHttp, 'the bus domain\'s HTTP socket')
  const net = /^ {2}network {2}(http:\/\/127\.0\.0\.1:\d+\/storage) {2}\(pid (\d+)\)$/m.exec(out)
  t.ok(bus, 'the bus domain\'s endpoint and pid')
  t.ok(net, 'the network domain\'s endpoint and pid')
  const wsdlHttp = /^ {2}curl '(http:\/\/127\.0\.0\.1:\d+\/storage\?wsdl)'$/m.exec(out)?.[1]
  const sock = /^ {2}curl --unix-socket (\/\S+) 'http:\/\/localhost\/storage\?wsdl'$/m.exec(out)?.[1]
  t.equal(wsdlHttp, `${net?.[1]}?wsdl`, 'the printed HTTP WSDL URL is the network domain\'s')
  t.equal(sock === undefined ? undefined : `http+unix://${encodeURIComponent(sock)}/storage`, busHttp, 'the printed socket is the bus domain\'s HTTP one')
  return { work: work ?? '', pids: [Number(bus?.[2]), Number(net?.[2])], bus: bus?.[1] ?? '', busHttp: busHttp ?? '', net: net?.[1] ?? '', wsdlHttp: wsdlHttp ?? '', wsdlSocket: sock ?? '' }
}

function checkTable (t: Test, out: string, mib: number): void {
  t.match(out, new RegExp(`^${mib} MiB written in 64 KiB blocks and read back, FileStream buffer 4096 B:$`, 'm'))
  t.match(out, /^destination\s+write MB\/s\s+read MB\/s\s+channel ms\s+service ms\s+calls\s+bytes$/m, 'the table header')
  for (const dest of ['local', 'bus', 'network']) {
    const m = new RegExp(`^${dest}\\s+(\\d+\\.\\d)\\s+(\\d+\\.\\d)\\s+(\\d+\\.\\d)\\s+(\\d+\\.\\d)\\s+(\\d+)\\s+(\\S+)$`, 'm').exec(out)
    t.ok(m, `a row for ${dest}`)
    if (m === null) continue
    const [writeMBs, readMBs, channelMs, serviceMs, calls] = m.slice(1, 6).map(Number) as [number, number, number, number, number]
    t.ok(writeMBs > 0 && readMBs > 0, `${dest}: write ${writeMBs} MB/s, read ${readMBs} MB/s`)
    t.ok(channelMs >= 0 && serviceMs >= 0, `${dest}: channel ${channelMs} ms, service ${serviceMs} ms`)
    if (dest !== 'local') t.ok(channelMs + serviceMs > 0, `${dest}: the remote calls took measurable time`)
    // 64 KiB blocks through a 4 KiB buffer: one Write and one Read per block, plus two Opens and two Closes.
    t.equal(calls, 2 * (mib * 1024 / 64) + 4, `${dest}: ${calls} calls`)
    t.equal(m[6], 'identical', `${dest}: bytes identical`)
  }
  t.match(out, /^All bytes checked \(SHA-256 [0-9a-f]{16}…\) on every destination\.$/m)
  // The network domain: a NetSocket to an echo server through the local kernel, the bus and HTTP.
  t.match(out, /^A network domain: net-gateway \(pid \d+\) on net\.uds:\/\S+\.sock, http\+unix:\/\/\S+\/network, http:\/\/127\.0\.0\.1:\d+\/network$/m, 'it starts a network domain, on the bus (net.uds and HTTP) and HTTP')
  for (const dest of ['local', 'bus', 'network']) {
    const m = new RegExp(`^${dest}\\s+(\\d+)\\s+(\\d+\\.\\d)\\s+(\\S+)$`, 'm').exec(out.slice(out.indexOf('A NetSocket')))
    t.ok(m !== null && Number(m[1]) > 0 && Number(m[2]) > 0, `sockets through ${dest}: ${m?.[1]} round trips/s, ${m?.[2]} MB/s`)
    t.equal(m?.[3], 'identical', `sockets through ${dest}: the echoed bytes are identical`)
  }
  t.match(out, /^ {2}curl 'http:\/\/127\.0\.0\.1:\d+\/network\?wsdl'$/m, 'the network WSDL')
}

function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch { return false }
}

async function getWsdl (target: { url: string } | { socketPath: string }): Promise<{ status: number, body: string }> {
  return await new Promise((resolve, reject) => {
    const where = 'url' in target
      ? { host: new URL(target.url).hostname, port: Number(new URL(target.url).port), path: new URL(target.url).pathname + new URL(target.url).search }
      : { socketPath: target.socketPath, path: '/storage?wsdl' }
    const req = request({ ...where, method: 'GET', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function locations (wsdl: string): string[] {
  return [...wsdl.matchAll(/<soap(?:12)?:address\s+location="([^"]*)"/g)].map((m) => m[1]!)
}

t.test('metaos up --once --size 2: the table, identical bytes, exit 0, nothing left behind', async (t) => {
  const up = startUp(t, ['--once', '--size', '2'])
  const timer = setTimeout(() => { up.child.kill('SIGKILL') }, 60_000)
  const exit = await up.exited
  clearTimeout(timer)
  t.same(exit, { code: 0, signal: null }, `exit 0 within 60 s (stderr: ${up.stderr().slice(-500)})`)
  const out = up.stdout()
  const p = parsePrinted(t, out)
  checkTable(t, out, 2)
  t.notMatch(out, /Press Ctrl-C/, '--once does not wait')
  t.notOk(existsSync(p.work), `its temporary directory ${p.work} is removed`)
  for (const pid of p.pids) t.notOk(alive(pid), `domain process ${pid} is gone`)
})

t.test('metaos up --once --bus unix: the bus domain called over HTTP on its Unix socket, net.uds beside it', async (t) => {
  const up = startUp(t, ['--once', '--size', '1', '--bus', 'unix'])
  const timer = setTimeout(() => { up.child.kill('SIGKILL') }, 60_000)
  const exit = await up.exited
  clearTimeout(timer)
  t.same(exit, { code: 0, signal: null }, `exit 0 (stderr: ${up.stderr().slice(-500)})`)
  const out = up.stdout()
  t.match(out, /^ {2}bus {6}http\+unix:\/\/\S+\.http\.sock\/storage {2}\(pid \d+\)\n {11}net\.uds:\/\S+\.sock {2}\(net\.uds\)$/m, 'the bus line is the HTTP socket, then the net.uds one')
  t.match(out, /^A network domain: net-gateway \(pid \d+\) on http\+unix:\/\/\S+\/network, net\.uds:\/\S+\.sock, http:/m, 'the network domain too')
  for (const dest of ['local', 'bus', 'network']) t.match(out, new RegExp(`^${dest} .* identical$`, 'm'), `${dest}: bytes identical`)
})

t.test('metaos up (running): the printed WSDL URLs answer; Ctrl-C stops it cleanly', async (t) => {
  const up = startUp(t, ['--size', '1'])
  await up.waitFor(/Press Ctrl-C/, 30_000)
  const out = up.stdout()
  const p = parsePrinted(t, out)
  checkTable(t, out, 1)
  t.ok(existsSync(p.work), 'the work directory exists while it runs')
  for (const pid of p.pids) t.ok(alive(pid), `domain process ${pid} runs`)

  const viaHttp = await getWsdl({ url: p.wsdlHttp })
  t.equal(viaHttp.status, 200, `GET ${p.wsdlHttp}`)
  t.match(viaHttp.body, /<wsdl:definitions[^>]*targetNamespace="urn:metaos:storage:v1"/, 'it is the storage WSDL')
  t.same(locations(viaHttp.body), [p.net, p.net], 'its soap:address and soap12:address are the network endpoint')

  const viaSocket = await getWsdl({ socketPath: p.wsdlSocket })
  t.equal(viaSocket.status, 200, 'GET ?wsdl over the printed Unix socket')
  t.match(viaSocket.body, /<wsdl:definitions[^>]*targetNamespace="urn:metaos:storage:v1"/)
  t.same(locations(viaSocket.body), [p.busHttp, p.busHttp], 'over the socket, the addresses are its HTTP endpoint')

  // Both domains serve the same volume: what the demo wrote through one, the other lists.
  const infos = []
  for (const ep of [p.bus, p.busHttp, p.net]) {
    const proxy = createStorageProxy(ep)
    try {
      infos.push((await proxy.invoke('GetDomainInfo', {})).output)
      const list = (await proxy.invoke('ListDirectory', { path: '.' })).output.entry
      t.same(list.map((e) => [e.name, e.length]).sort(), [['.metaos-probe', 0], ['demo-bus.bin', 1048576], ['demo-moving.bin', 1048576], ['demo-net.bin', 1048576]], `${ep}: the demo's files, 1 MiB each, and the probes' empty sample file`)
    } finally { await proxy.close() }
  }
  t.equal(infos[0]!.volume, infos[2]!.volume, 'one volume for both domains')
  t.equal(infos[0]!.domainId, infos[1]!.domainId, 'the bus domain\'s two sockets are one domain')
  t.not(infos[0]!.domainId, infos[2]!.domainId, 'two domains')
  t.same(infos.map((i) => i.hosting), ['process', 'process', 'process'])

  t.match(out, /^Live migration: a stream written through the supervised dispatcher moved from (bus|net)-domain to (bus|net)-domain at 0\.5 MiB \(the call that moved took \d+\.\d ms\); bytes identical\.$/m, 'a live stream moved between the domains')

  // metaos status: the domains; then one killed from outside is isolated, restarted and readmitted.
  const status = async (...args: string[]): Promise<string> => (await promisify(execFile)(process.execPath, [CLI, 'status', ...args], { env: ENV, timeout: 10_000 })).stdout
  interface S { domains: Array<{ name: string, state: string, pid: number, restarts: number, epr: string, endpoints: string[] }>, pmt: Array<{ epr: string, state: string }>, decisions: Array<{ epr: string, to: string, reason: string }> }
  const first = JSON.parse(await status('--json')) as S
  t.same(first.domains.slice(0, 2).map((d) => [d.name, d.state, d.pid]), [['bus-domain', 'running', p.pids[0]], ['net-domain', 'running', p.pids[1]]], 'metaos status --json: both storage domains running, with the printed pids')
  t.same(first.domains.slice(2).map((d) => [d.name, d.state]), [['net-gateway', 'running']], 'and the network domain')
  t.same(first.domains[0]!.endpoints, [p.bus, p.busHttp], 'the bus domain\'s endpoints: net.uds first, then HTTP on its Unix socket')
  t.match(first.domains[2]!.endpoints[0], /^net\.uds:\//, 'the network domain is on the bus by net.uds too')
  t.match(await status(), new RegExp(`^\\s*bus-domain .*${p.bus.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`, 'm'), 'metaos status shows the bus domain at its net.uds endpoint')
  p.pids.push(first.domains[2]!.pid)
  process.kill(p.pids[1]!, 'SIGKILL')
  let s = first
  for (let i = 0; i < 100; i++) {
    s = JSON.parse(await status('--json')) as S
    const net = s.domains.find((d) => d.name === 'net-domain')!
    if (net.restarts === 1 && net.state === 'running' && s.pmt.find((r) => r.epr === net.epr)?.state === 'healthy') break
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  const net = s.domains.find((d) => d.name === 'net-domain')!
  t.ok(s.decisions.some((d) => d.epr === net.epr && d.to === 'isolated' && /process exited \(SIGKILL\)/.test(d.reason)), 'the supervisor isolated the killed domain, saying why')
  t.ok(net.restarts === 1 && net.state === 'running' && net.pid !== p.pids[1], `restarted (pid ${net.pid})`)
  t.equal(s.pmt.find((r) => r.epr === net.epr)?.state, 'healthy', 'and readmitted')
  t.match(await status(), /supervisor decisions\n.*\n.*net-domain\s+healthy\s+suspect\s+process exited \(SIGKILL\)/, 'metaos status prints the decision and its reason')
  p.pids.push(net.pid)

  // Its Prometheus endpoint: the frontend's series, with the probes and the supervisor's decisions counted.
  const metricsUrl = /^Metrics \(Prometheus\): (\S+)$/m.exec(up.stdout())?.[1]
  t.ok(metricsUrl, 'metaos up prints its metrics URL')
  const text = await (await fetch(metricsUrl!)).text()
  const sample = (name: string, labels: Record<string, string>): number => {
    for (const line of text.split('\n')) {
      if (!line.startsWith(name + '{')) continue
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
    return NaN
  }
  t.ok(sample('metaos_frontend_probes_total', { epr: net.epr, result: 'success' }) > 0, 'probes of the domain counted')
  t.equal(sample('metaos_frontend_supervisor_decisions_total', { epr: net.epr, to: 'isolated' }), s.decisions.filter((d) => d.epr === net.epr && d.to === 'isolated').length, 'isolations counted as the supervisor decided them')
  t.equal(sample('metaos_frontend_supervisor_decisions_total', { epr: net.epr, to: 'healthy' }), s.decisions.filter((d) => d.epr === net.epr && d.to === 'healthy').length, 'readmissions too')
  t.equal(sample('metaos_frontend_stream_moves_total', { kind: 'migration' }), 1, 'the demo\'s live migration counted')
  t.match(text, /^process_cpu_seconds_total /m, 'and the process metrics')

  up.child.kill('SIGINT')
  const timer = setTimeout(() => { up.child.kill('SIGKILL') }, 20_000)
  const exit = await up.exited
  clearTimeout(timer)
  t.same(exit, { code: 0, signal: null }, 'Ctrl-C → exit 0')
  t.match(up.stdout(), /stopping…\n$/, 'it says it stops')
  t.notOk(existsSync(p.work), `its temporary directory ${p.work} is removed`)
  t.notOk(existsSync(p.wsdlSocket), 'and with it the bus socket')
  for (const pid of p.pids) t.notOk(alive(pid), `domain process ${pid} is gone`)
})
