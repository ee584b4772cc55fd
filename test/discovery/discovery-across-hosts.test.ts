// WS-Discovery across hosts (issue #3, "Across hosts"): "hosts" are network namespaces joined by
// Linux bridges, inside this file's own `unshare --net` namespace, with addresses from 10.77.0.0/16
// only inside them and no default route anywhere, so nothing can leave.
//
//   br0 (10.77.0.0/24): A 10.77.0.1, B 10.77.0.2, P 10.77.0.254
//   br1 (10.77.1.0/24): C 10.77.1.1, P 10.77.1.254
//
// P is the "proxy host": it forwards unicast between the segments (ip_forward=1) but no multicast
// (Linux forwards multicast only with a multicast router, and WS-Discovery sends with TTL 1).
//
// 1. One segment: a storage domain in A announces itself; a client in B finds it by its Hello alone,
//    does a FileStream round trip through it, and drops it when it says Bye.
// 2. Two segments: the multicast of A never reaches C (a plain probe from C finds nothing, the
//    same probe from B does); a discovery proxy in P hears A's Hello and answers C's probes over
//    SOAP/HTTP — a client configured with the proxy, and one that learns of it by its suppression
//    Hello, both find A's domain, use it, see it gone after its Bye, and go back to ad hoc mode
//    when the proxy says Bye.
import { isolateNetwork, netnsAvailable } from '../helpers/netns.js'
import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { partMissing } from '../helpers/require-part.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const CLI = join(ROOT, 'dist', 'cli', 'metaos.js')
const INDEX = pathToFileURL(join(ROOT, 'dist', 'index.js')).href
const DISCOVERY = pathToFileURL(join(ROOT, 'dist', 'discovery', 'index.js')).href
const STORAGE_TYPE = '{urn:metaos:v1}StorageDomain'
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const now = (): number => performance.timeOrigin + performance.now()
const ms = (x: number): string => `${x.toFixed(1)} ms`

// The processes in the hosts run the product, not the test: without tap's coverage hook
// (NODE_OPTIONS), so that the times measured are the product's.
const { NODE_OPTIONS: _nodeOptions, ...CHILD_ENV } = { ...process.env, METAOS_LOG_LEVEL: process.env.METAOS_LOG_LEVEL ?? 'silent' }

// ---------------------------------------------------------------------------------------------
// The client that runs inside a host (plain ESM against dist/, written to a temporary directory).
// Protocol: one JSON line per event on stdout ({ event, t, … }, t = epoch ms); commands on stdin.
//   segment IFACE             registry client: waits for a domain's Hello, round trip, waits for its Bye
//   configured IFACE PROXY    probe-only client with the proxy configured (useProxy), probes once
//   managed IFACE             registry client that learns the proxy from its suppression Hello, probes
//                             through it, round trip; stdin "gone EPR" probes until EPR is no longer
//                             listed; "quit" exits
const CLIENT = `
import { createHash, randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { FileStream, closeSharedProxies } from ${JSON.stringify(INDEX)}
import { DiscoveryClient } from ${JSON.stringify(DISCOVERY)}
const TYPE = ${JSON.stringify(STORAGE_TYPE)}
const [role, iface, arg] = process.argv.slice(2)
const now = () => performance.timeOrigin + performance.now()
const out = (event, o = {}) => process.stdout.write(JSON.stringify({ event, t: now(), ...o }) + '\\n')
const sha = (b) => createHash('sha256').update(b).digest('hex')
const sleep = (n) => new Promise((resolve) => setTimeout(resolve, n))
const brief = (d) => ({ epr: d.epr, xaddrs: d.xaddrs, from: d.from, version: d.version })
const lines = []
const waiting = []
createInterface({ input: process.stdin }).on('line', (l) => { const w = waiting.shift(); if (w) w(l); else lines.push(l) })
const command = () => lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiting.push(resolve))

async function roundTrip (url, file) {
  const data = randomBytes(256 * 1024)
  const opened = now()
  const w = await FileStream.open(file, { mode: 'Create', destination: url })
  await w.write(data)
  const written = now()
  await w.close()
  const r = await FileStream.open(file, { mode: 'Open', access: 'Read', destination: url })
  const back = Buffer.alloc(data.length + 1)
  let n = 0
  for (let k; (k = await r.read(back, n, back.length - n)) > 0;) n += k
  await r.close()
  await closeSharedProxies()
  return { opened, written, sent: sha(data), back: sha(back.subarray(0, n)), bytes: n }
}

try {
  if (role === 'segment') {
    const client = new DiscoveryClient({ listen: true, interfaces: [iface], filter: { types: [TYPE] } })
    client.on('added', (d) => out('added', brief(d)))
    client.on('removed', (d) => out('removed', brief(d)))
    await client.start()
    out('ready')
    const d = await client.waitFor(() => true, 15000)
    if (d === undefined) throw new Error('no storage domain said Hello within 15 s')
    const gone = new Promise((resolve) => client.on('removed', (x) => { if (x.epr === d.epr) resolve() }))
    const url = d.xaddrs.find((x) => x.startsWith('http://'))
    out('roundtrip', { epr: d.epr, url, ...await roundTrip(url, 'across-segment.bin') })
    await gone
    await client.close()
  } else if (role === 'configured') {
    const client = new DiscoveryClient({ interfaces: [iface] })
    client.useProxy(JSON.parse(arg))
    await client.start()
    const found = await client.probe({ types: [TYPE], timeoutMs: 3000 })
    out('found', { targets: found.map(brief), viaProxy: client.proxy !== undefined })
    await client.close()
  } else if (role === 'managed') {
    const client = new DiscoveryClient({ listen: true, interfaces: [iface], filter: { types: [TYPE] } })
    client.on('proxy', (p) => out('proxy', { epr: p?.epr ?? null, xaddrs: p?.xaddrs ?? [] }))
    client.on('added', (d) => out('added', brief(d)))
    await client.start()
    out('ready')
    for (const end = now() + 5000; client.proxy === undefined && now() < end;) await sleep(20)
    if (client.proxy === undefined) throw new Error('no discovery proxy made itself known within 5 s')
    let found = []
    for (const end = now() + 5000; found.length === 0 && now() < end;) {
      found = await client.probe({ types: [TYPE], timeoutMs: 2000 })
      if (found.length === 0) await sleep(50)
    }
    out('found', { targets: found.map(brief), viaProxy: client.proxy !== undefined })
    if (found.length === 0) throw new Error('the proxy listed no storage domain within 5 s')
    const url = found[0].xaddrs.find((x) => x.startsWith('http://'))
    out('roundtrip', { epr: found[0].epr, url, ...await roundTrip(url, 'across-proxy.bin') })
    for (let c; (c = await command()) !== 'quit';) {
      const [verb, epr] = c.split(' ')
      if (verb !== 'gone') continue
      const start = now()
      let listed = true
      let viaProxy = true
      for (const end = start + 5000; listed && now() < end;) {
        listed = (await client.probe({ types: [TYPE], timeoutMs: 2000 })).some((x) => x.epr === epr)
        viaProxy &&= client.proxy !== undefined
        if (listed) await sleep(20)
      }
      out('gone', { ok: !listed, viaProxy, ms: now() - start })
    }
    await client.close()
  }
  process.exit(0)
} catch (e) {
  out('error', { message: String(e?.stack ?? e) })
  process.exit(1)
}
`

// ---------------------------------------------------------------------------------------------
// Hosts: named network namespaces, unique per run, all deleted at the end (they are bind mounts
// under /var/run/netns, shared with the parent's mount namespace).

const RUN = `mh-${process.pid}-${randomBytes(2).toString('hex')}`
const created: string[] = []
const children = new Set<ChildProcess>()

function run (cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()} (exit ${r.status})`)
  return r.stdout
}
const ip = (...args: string[]): string => run('ip', args)
/** Processes in the hosts die with this one, even if it is killed (util-linux setpriv, when present). */
const DIE_WITH_US = spawnSync('setpriv', ['--pdeathsig', 'KILL', 'true']).status === 0 ? ['setpriv', '--pdeathsig', 'KILL'] : []
const inHost = (host: Host, args: string[]): string[] => ['netns', 'exec', host.ns, ...DIE_WITH_US, process.execPath, ...args]
/** Writes a sysctl inside a netns (`ip netns exec` remounts /sys; /proc/sys/net is per netns). */
const sysctl = (ns: string, key: string, value: string): string => ip('netns', 'exec', ns, 'sh', '-c', `echo ${value} > /proc/sys/${key.replaceAll('.', '/')}`)

function cleanupSync (): void {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  for (const ns of created.splice(0)) spawnSync('ip', ['netns', 'del', ns])
}

/** Netns left by an earlier run of this file that was killed (its pid is gone). */
function sweepStale (): void {
  let names: string[] = []
  try { names = readdirSync('/var/run/netns') } catch { return }
  for (const n of names) {
    const m = /^mh-(\d+)-[0-9a-f]{4}-[a-z]$/.exec(n)
    if (m === null || Number(m[1]) === process.pid) continue
    try { process.kill(Number(m[1]), 0) } catch {
      for (const pid of spawnSync('ip', ['netns', 'pids', n], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try { process.kill(Number(pid), 'SIGKILL') } catch {}
      }
      spawnSync('ip', ['netns', 'del', n])
    }
  }
}

interface Host { readonly ns: string, readonly addr: Record<string, string> }

/** A host: a netns with lo up and one veth per segment (eth0, eth1, … inside, enslaved to the bridge outside). */
function addHost (letter: string, links: ReadonlyArray<{ bridge: string, cidr: string }>): Host {
  const ns = `${RUN}-${letter}`
  ip('netns', 'add', ns)
  created.push(ns)
  ip('-n', ns, 'link', 'set', 'lo', 'up')
  // Link-local IPv6 usable at once (no duplicate address detection), so IPv6 discovery runs too.
  sysctl(ns, 'net.ipv6.conf.default.accept_dad', '0')
  const addr: Record<string, string> = {}
  links.forEach((l, i) => {
    const outer = `v${letter}${i}`
    const inner = `eth${i}`
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns)
    ip('link', 'set', outer, 'master', l.bridge, 'up')
    ip('-n', ns, 'addr', 'add', l.cidr, 'dev', inner)
    ip('-n', ns, 'link', 'set', inner, 'up')
    addr[inner] = l.cidr.split('/')[0]!
  })
  ip('-n', ns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0')
  return { ns, addr }
}

function addBridge (name: string): void {
  // No IGMP snooping: the bridge floods multicast to every port, as a dumb switch would.
  ip('link', 'add', name, 'type', 'bridge', 'mcast_snooping', '0')
  ip('link', 'set', name, 'up')
}

// ---------------------------------------------------------------------------------------------
// Processes in hosts, speaking JSON lines.

interface Line { event?: string, t?: number, [k: string]: unknown }

class HostProcess {
  readonly child: ChildProcess
  readonly lines: Line[] = []
  readonly stderr: string[] = []
  readonly started = now()
  closed = false
  readonly exited: Promise<number | null>
  readonly #waiters = new Set<() => void>()

  constructor (readonly t: Test, readonly label: string, host: Host, args: string[]) {
    this.child = spawn('ip', inHost(host, args), { stdio: ['pipe', 'pipe', 'pipe'], env: CHILD_ENV })
    children.add(this.child)
    this.exited = new Promise((resolve) => { this.child.on('close', (code) => { this.closed = true; for (const w of this.#waiters) w(); resolve(code) }) })
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      let v: Line
      try { v = JSON.parse(l) as Line } catch { v = { event: 'text', text: l } }
      this.lines.push({ ...v, received: now() })
      for (const w of this.#waiters) w()
    })
    createInterface({ input: this.child.stderr! }).on('line', (l) => { this.stderr.push(l); if (this.stderr.length > 200) this.stderr.shift() })
    t.teardown(async () => { await this.stop('SIGKILL') })
  }

  /** The first line (in order of arrival) with this event that `accept` takes. */
  async next (event: string, timeoutMs: number, accept: (l: Line) => boolean = () => true): Promise<Line> {
    const find = (): Line | undefined => this.lines.find((l) => l.event === event && accept(l))
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        const l = find()
        if (l !== undefined) { done(); resolve(l); return }
        if (this.lines.some((x) => x.event === 'error') || this.closed) { done(); reject(this.#failure(`ended before "${event}"`)) }
      }
      const timer = setTimeout(() => { done(); reject(this.#failure(`no "${event}" within ${timeoutMs} ms`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.#waiters.delete(check) }
      this.#waiters.add(check)
      check()
    })
  }

  #failure (what: string): Error {
    return new Error(`${this.label} ${what}; stdout: ${JSON.stringify(this.lines)}; stderr: ${this.stderr.slice(-20).join('\n')}`)
  }

  send (command: string): void { this.child.stdin!.write(command + '\n') }

  async stop (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal)
    return await this.exited
  }
}

/** Runs a command in a host to completion (stdout returned). */
async function runIn (host: Host, args: string[], timeoutMs = 10_000): Promise<string> {
  const child = spawn('ip', inHost(host, args), { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV })
  children.add(child)
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const code = await new Promise<number | null>((resolve) => { child.on('exit', (c) => { resolve(c) }) })
  clearTimeout(timer)
  if (code !== 0) throw new Error(`${args.join(' ')} in ${host.ns} exited ${code}: ${err}`)
  return out
}

interface Listed { epr: string, xaddrs: string[], from: string }
async function discoverIn (host: Host, iface: string): Promise<Listed[]> {
  return JSON.parse(await runIn(host, [CLI, 'discover', '--json', '--type', 'StorageDomain', '--interface', iface, '--timeout', '1500'])) as Listed[]
}

// ---------------------------------------------------------------------------------------------

if (!netnsAvailable()) {
  t.plan(0, partMissing('network namespaces', '`unshare --net` or `ip` fails (needs root)', 'apt-get install iproute2 util-linux, as root'))
} else {
  await isolateNetwork()
  await main()
}

async function main (): Promise<void> {
  // Can this kernel and iproute2 make named netns, bridges and veth pairs here?
  const probeNs = `${RUN}-z`
  const can = spawnSync('ip', ['netns', 'add', probeNs], { encoding: 'utf8' })
  spawnSync('ip', ['netns', 'del', probeNs])
  const canBridge = spawnSync('ip', ['link', 'add', 'mhprobe', 'type', 'bridge'], { encoding: 'utf8' })
  spawnSync('ip', ['link', 'del', 'mhprobe'])
  if (can.status !== 0 || canBridge.status !== 0) {
    t.plan(0, partMissing('named network namespaces and bridges', `ip netns add: ${can.stderr.trim() || 'ok'}; ip link add type bridge: ${canBridge.stderr.trim() || 'ok'}`, 'apt-get install iproute2, as root'))
    return
  }
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: build first (npx tsc -p .)`)

  process.once('exit', cleanupSync)
  sweepStale()
  const work = mkdtempSync(join(tmpdir(), 'metaos-across-'))
  t.teardown(async () => {
    await Promise.all([...children].map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return
      c.kill('SIGKILL')
      await new Promise((resolve) => { c.once('exit', resolve) })
    }))
    cleanupSync()
    rmSync(work, { recursive: true, force: true })
  })
  const client = join(work, 'client.mjs')
  writeFileSync(client, CLIENT)

  // The outer namespace (this file's own) only switches frames: no addresses, no IPv6 on its ports.
  writeFileSync('/proc/sys/net/ipv6/conf/default/disable_ipv6', '1')
  addBridge('br0')
  addBridge('br1')
  const A = addHost('a', [{ bridge: 'br0', cidr: '10.77.0.1/24' }])
  const B = addHost('b', [{ bridge: 'br0', cidr: '10.77.0.2/24' }])
  const P = addHost('p', [{ bridge: 'br0', cidr: '10.77.0.254/24' }, { bridge: 'br1', cidr: '10.77.1.254/24' }])
  const C = addHost('c', [{ bridge: 'br1', cidr: '10.77.1.1/24' }])
  // Unicast between the segments through P (the FileStream of scenario 2); multicast stays put.
  sysctl(P.ns, 'net.ipv4.ip_forward', '1')
  ip('-n', A.ns, 'route', 'add', '10.77.1.0/24', 'via', '10.77.0.254')
  ip('-n', C.ns, 'route', 'add', '10.77.0.0/24', 'via', '10.77.1.254')
  t.equal(ip('-n', P.ns, 'route', 'show', 'default').trim(), '', 'no default route in the proxy host')
  for (const h of [A, B, C]) t.equal(ip('-n', h.ns, 'route', 'show', 'default').trim(), '', `no default route in ${h.ns}`)

  const startDomain = async (t: Test, name: string): Promise<{ proc: HostProcess, root: string, epr: string, endpoints: string[], ready: number }> => {
    const root = join(work, name)
    mkdirSync(root)
    const proc = new HostProcess(t, `storage domain in ${A.ns}`, A, [CLI, 'storage', '--root', root, '--name', name, '--listen', 'http://10.77.0.1:0', '--allow-insecure', '--announce', '--interface', 'eth0'])
    const ready = await proc.next('ready', 10_000)
    return { proc, root, epr: ready.epr as string, endpoints: ready.endpoints as string[], ready: ready.received as number }
  }

  await t.test('one segment: found by its Hello in another host, used, removed after its Bye', async (t) => {
    const b = new HostProcess(t, `client in ${B.ns}`, B, [client, 'segment', 'eth0'])
    await b.next('ready', 10_000)
    const d = await startDomain(t, 'segment')
    t.match(d.endpoints[0], /^http:\/\/10\.77\.0\.1:\d+\/storage$/, 'the domain listens in host A')

    const added = await b.next('added', 10_000, (l) => l.epr === d.epr)
    t.same(added.xaddrs, d.endpoints, 'host B learned the XAddrs from the Hello')
    t.equal(added.from, '10.77.0.1', 'the Hello came from host A')
    const rt = await b.next('roundtrip', 10_000)
    t.equal(rt.url, d.endpoints[0], 'round trip through the discovered XAddr')
    t.equal(rt.bytes, 256 * 1024, '256 KiB read back')
    t.equal(rt.back, rt.sent, 'read back what was written (SHA-256)')
    t.equal(sha(readFileSync(join(d.root, 'across-segment.bin'))), rt.sent, 'the file on disk in host A has the SHA-256 written from host B')

    const term = now()
    d.proc.child.kill('SIGTERM')
    const removed = await b.next('removed', 10_000, (l) => l.epr === d.epr)
    t.equal(await d.proc.exited, 0, 'the domain exits 0 after SIGTERM')
    t.equal(await b.exited, 0, 'the client exits 0')

    t.comment(`across hosts, one segment: domain start (spawn) → first FileStream write done in host B: ${ms((rt.written as number) - d.proc.started)}` +
      ` (spawn → ready ${ms(d.ready - d.proc.started)}, ready → added in B ${ms((added.t as number) - d.ready)}, added → open ${ms((rt.opened as number) - (added.t as number))}, open → 256 KiB written ${ms((rt.written as number) - (rt.opened as number))})`)
    t.comment(`across hosts, one segment: SIGTERM → removed from host B's registry: ${ms((removed.t as number) - term)}`)
  })

  await t.test('two segments, multicast blocked: found and used through the discovery proxy', async (t) => {
    const proxy = new HostProcess(t, `discovery proxy in ${P.ns}`, P, [CLI, 'discovery-proxy', '--listen', 'http://10.77.1.254:0', '--interface', 'eth0', '--interface', 'eth1'])
    const pr = await proxy.next('ready', 10_000)
    const proxyUrl = (pr.endpoints as string[])[0]!
    t.match(proxyUrl, /^http:\/\/10\.77\.1\.254:\d+\/discovery$/, 'the proxy serves SOAP/HTTP on the C side')
    const d = await startDomain(t, 'proxied')

    const descriptor = { epr: pr.epr, xaddrs: [proxyUrl], types: [], scopes: [], metadataVersion: 1, version: '1.1', from: '', lastSeen: Date.now() }
    const configured = new HostProcess(t, `configured client in ${C.ns}`, C, [client, 'configured', 'eth0', JSON.stringify(descriptor)])
    const [fromB, fromC, viaConfigured] = await Promise.all([discoverIn(B, 'eth0'), discoverIn(C, 'eth0'), configured.next('found', 10_000)])
    t.ok(fromB.some((x) => x.epr === d.epr), 'control: a plain multicast probe on A\'s segment (from B) finds the domain')
    t.same(fromC, [], 'a plain multicast probe from C finds nothing: multicast does not cross P')
    t.ok(viaConfigured.viaProxy, 'the configured client probed through the proxy (no fallback to multicast)')
    t.same((viaConfigured.targets as Listed[]).map((x) => [x.epr, x.xaddrs]), [[d.epr, d.endpoints]], 'the configured client found A\'s domain through the proxy')
    t.equal(await configured.exited, 0, 'the configured client exits 0')

    const m = new HostProcess(t, `managed client in ${C.ns}`, C, [client, 'managed', 'eth0'])
    const learned = await m.next('proxy', 10_000)
    t.same([learned.epr, learned.xaddrs], [pr.epr, [proxyUrl]], 'the client in C learned of the proxy (suppression Hello) and switched to managed mode')
    const found = await m.next('found', 10_000)
    t.ok(found.viaProxy, 'still in managed mode after probing')
    t.same((found.targets as Listed[]).map((x) => x.epr), [d.epr], 'found A\'s domain through the proxy')
    const rt = await m.next('roundtrip', 10_000)
    t.equal(rt.url, d.endpoints[0], 'round trip through the XAddr the proxy listed')
    t.equal(rt.back, rt.sent, 'FileStream round trip from C to A (unicast routed by P), SHA-256')
    t.equal(sha(readFileSync(join(d.root, 'across-proxy.bin'))), rt.sent, 'the file on disk in host A has the SHA-256 written from host C')

    const term = now()
    t.equal(await d.proc.stop('SIGTERM'), 0, 'the domain exits 0 after SIGTERM')
    m.send(`gone ${d.epr}`)
    const gone = await m.next('gone', 10_000)
    t.ok(gone.ok, 'after its Bye the proxy no longer lists the domain')
    t.ok(gone.viaProxy, 'asked through the proxy')

    const proxyTerm = now()
    t.equal(await proxy.stop('SIGTERM'), 0, 'the proxy exits 0 after SIGTERM')
    const adhoc = await m.next('proxy', 10_000, (l) => l.epr === null)
    t.ok(adhoc, 'the proxy\'s Bye puts the client back in ad hoc mode')
    m.send('quit')
    t.equal(await m.exited, 0, 'the managed client exits 0')

    t.comment(`across hosts, through the proxy: client start in host C (spawn) → first FileStream write done: ${ms((rt.written as number) - m.started)}` +
      ` (spawn → proxy learned ${ms((learned.t as number) - m.started)}, → found through it ${ms((found.t as number) - (learned.t as number))}, → 256 KiB written ${ms((rt.written as number) - (found.t as number))})`)
    t.comment(`across hosts, through the proxy: domain SIGTERM → no longer listed by the proxy: ${ms((gone.t as number) - term)}; proxy SIGTERM → client back to ad hoc: ${ms((adhoc.t as number) - proxyTerm)}`)
  })
}
