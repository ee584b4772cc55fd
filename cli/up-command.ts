// `metaos up` (and `npm start`): the embedded default. Starts two storage domains as local
// processes on one volume through the domain manager — one on a Unix socket (the paper's co-hosted
// bus), one on HTTP at 127.0.0.1 — writes and reads back a file through FileStream to the local
// kernel, the bus and the network, checks every byte, prints what each path cost, moves a live
// stream from one domain to the other, and where the WSDL is. While it runs, a supervisor watches
// the domains (a domain that dies is isolated and restarted) and `metaos status` shows it all.
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStream } from '../frontend/api/file-stream.js'
import { closeSharedProxies } from '../frontend/handlers/storage-proxy.js'
import { LocalCluster } from '../frontend/assembly/local-cluster.js'
import { ContainerDriver } from '../domains/container-driver.js'
import { DomainManager, type ManagedDomain } from '../domains/domain-manager.js'
import { VmDriver } from '../vm/vm-driver.js'
import { parseEndpoint } from '../soap-runtime/endpoint.js'
import { createLogger } from '../soap-runtime/logger.js'
import { serveStatus, STATUS_FILE } from './status-command.js'
import { clusterControl } from '../frontend/assembly/cluster-control.js'
import { createFrontendMetrics, type FrontendMetrics } from '../frontend/assembly/frontend-metrics.js'
import { PmtHistory } from '../dashboard/pmt-history.js'
import type { VulnerabilityFeed } from '../frontend/placement/vulnerability-feed.js'
import type { RulesEngine } from '../frontend/placement/rules-engine.js'
import { configFromEnvironment, type MetaosConfig } from '../frontend/assembly/configuration.js'
import type { DispatcherOptions } from '../frontend/placement/dispatcher.js'
import { flag, integer, number, parseOptions } from './options.js'
import { hosting as hostingKind, port } from './option-kinds.js'
import { rulesFile, watchedFeedFile } from './placement-kinds.js'
import { COORDINATION_OPTIONS, coordinationArgs, coordinationOf } from './coordination-options.js'
import type { Coordination } from '../coordination/api.js'
import { createServer } from 'node:net'
import { NetSocket } from '../frontend/api/net-socket.js'
import { closeSharedNetworkProxies } from '../frontend/handlers/network-handler.js'
import { ProcessDriver } from '../domains/process-driver.js'

const HELP = `usage: metaos up [--size MB] [--buffer BYTES] [--once] [--status-port N] [--hosting KIND] [--rules FILE] [--feed PATH] [--coordination URL]

Starts two storage domains as local processes (one reached over a Unix socket, the "bus";
one over HTTP on 127.0.0.1), writes and reads back a file through FileStream to the local
kernel, the bus and the network, checks every byte, and prints throughput, channel time and
service time per destination; then moves a live stream from one domain to the other. The
domains then keep running, supervised (a domain that dies is isolated and restarted; see
\`metaos status\`, or the live dashboard it prints the URL of), until Ctrl-C, unless --once.

  --size MB        size of the file written to each destination (default 16)
  --buffer BYTES   FileStream buffer, the paper's "cache" (default 4096)
  --once           stop the domains and exit after the demonstration
  --status-port N  port on 127.0.0.1 of the live dashboard (/) and the status JSON (/status)
                   (default: any free port)
  --hosting KIND   what runs the two storage domains: process (default), container (Docker and
                   the images of docker/build-images.sh) or vm (QEMU guests booting another
                   Linux kernel, vm/build-image.sh; under emulation each boot takes ~15 s)
  --rules FILE     placement rules for the supervised dispatcher (docs/rules.md); the dashboard
                   shows which fired for each placement
  --feed PATH      vulnerability feed, a file or a directory (docs/vulnerability-feed.md): OSV
                   records, a Debian Security Tracker export or the operator's format; a domain
                   it matches is lowered (a tier down, its score cut by the severity) or
                   excluded (the supervisor isolates it and moves its streams off)
  --coordination URL  etcd://HOST:PORT[,HOST:PORT…] or etcds://…: the storage domains hold
                   leases and register their opens there, the dispatcher keeps its streams'
                   owners and epochs there (docs/coordination.md); for etcds://
                   --coordination-ca FILE, --coordination-cert FILE, --coordination-key FILE;
                   --coordination-ttl N: the leases' TTL in seconds (default 3)
  --help           this text

METAOS_CONFIG=FILE (docs/configuration.md): its "rules", "feed" and "placement" apply to the
supervised dispatcher (--rules and --feed win over the file's); "trust" and "exchange" concern
discovered domains and are not used here.
`

interface Row { destination: string, endpoint: string, writeMBs: number, readMBs: number, channelMs: number, serviceMs: number, calls: number, ok: boolean }

/** The options of `metaos up` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  size: { kind: number(0, 4096, { above: true, takes: 'a number of MB above 0, at most 4096' }) },
  buffer: { kind: integer(0, Number.MAX_SAFE_INTEGER, 'a whole number of bytes') },
  once: flag,
  'status-port': { kind: port },
  hosting: { kind: hostingKind },
  rules: { kind: rulesFile },
  feed: { kind: watchedFeedFile },
  ...COORDINATION_OPTIONS,
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const feed = values.feed
  const placement = withConfig(values.rules, feed)
  if (typeof placement === 'string') { feed?.close(); process.stderr.write(`metaos up: ${placement}\n`); return 2 }

  const work = mkdtempSync(join(tmpdir(), 'metaos-up-'))
  mkdirSync(join(work, 'local'))
  const level = process.env.METAOS_LOG_LEVEL ?? 'warn'
  const logger = createLogger('metaos-up', level)
  const hosting = values.hosting ?? 'process'
  // The network domain stays a process on this host: its sockets reach this host's services, which
  // a guest behind restricted user-mode networking cannot.
  const up: Up = { work, root: join(work, 'volume'), level, logger, placement, ...(hosting === 'process' ? {} : { processes: new DomainManager({ logger, driver: new ProcessDriver({ logger }) }) }) }
  try {
    const client = await coordinationOf(values, logger)
    if (client !== undefined) up.coordination = { client, domainArgs: coordinationArgs(values) }
    return await demonstrate(up, { hosting, sizeMB: values.size ?? 16, bufferSize: values.buffer ?? 4096, once: values.once === true, statusPort: values['status-port'] ?? 0 })
  } finally {
    await cleanup(up)
  }
}

/** What `metaos up` runs and closes at the end: made as the demonstration goes. */
interface Up {
  readonly work: string
  /** The volume's directory. */
  readonly root: string
  readonly level: string
  readonly logger: ReturnType<typeof createLogger>
  readonly placement: Exclude<ReturnType<typeof withConfig>, string>
  /** Runs the network domain when the storage domains are not processes. */
  readonly processes?: DomainManager
  cluster?: LocalCluster
  /** --coordination: the frontend's client and what gives each domain its lease. */
  coordination?: { readonly client: Coordination, readonly domainArgs: readonly string[] }
  status?: { url: string, dashboardUrl: string, close: () => Promise<void> }
  history?: PmtHistory
  metrics?: FrontendMetrics
}

async function cleanup (up: Up): Promise<void> {
  up.placement.dispatcher.feed?.close()
  up.history?.stop()
  up.metrics?.close()
  await up.status?.close()
  await closeSharedProxies()
  await closeSharedNetworkProxies()
  await up.processes?.close(2000)
  await up.cluster?.close()
  await up.coordination?.client.close()
  rmSync(up.work, { recursive: true, force: true })
}

/** The demonstration: files through each destination, a live migration, sockets; then, unless `once`, the domains supervised until Ctrl-C. The exit code. */
async function demonstrate (up: Up, o: { hosting: 'process' | 'container' | 'vm', sizeMB: number, bufferSize: number, once: boolean, statusPort: number }): Promise<number> {
  const { work, root, level } = up
  const bufferSize = o.bufferSize
  const { cluster, bus, net } = await startCluster(up, o.hosting)
  const data = randomBytes(Math.round(o.sizeMB * 1024 * 1024))
  const expected = sha256(data)
  const rows: Row[] = []
  for (const [destination, endpoint, file, onDisk] of [
    ['local', 'local', join(work, 'local', 'demo.bin'), join(work, 'local', 'demo.bin')],
    ['bus', bus, 'demo-bus.bin', join(root, 'demo-bus.bin')],
    ['network', net, 'demo-net.bin', join(root, 'demo-net.bin')],
  ] as const) {
    rows.push(await exercise(destination, endpoint, file, onDisk, data, expected, bufferSize))
  }
  process.stdout.write(table(rows, data.length, bufferSize))
  const failed = rows.filter((r) => !r.ok)
  if (failed.length > 0) { process.stdout.write(`\nBYTES DIFFER for ${failed.map((r) => r.destination).join(', ')}\n`); return 1 }
  const moved = await migrateLive(cluster, data, expected, bufferSize)
  process.stdout.write(`\nLive migration: a stream written through the supervised dispatcher moved from ${moved.from} to ${moved.to} at ${moved.atMiB} MiB (the call that moved took ${moved.stallMs.toFixed(1)} ms); bytes ${moved.ok ? 'identical' : 'DIFFER'}.\n`)
  if (!moved.ok) return 1
  const gw = await (up.processes ?? cluster.manager).start({ service: 'network', name: 'net-gateway', root: '', listen: [`unix:${join(work, 'net-gateway.sock')}`, 'http://127.0.0.1:0'], env: { METAOS_LOG_LEVEL: level } })
  process.stdout.write(`\nA network domain: net-gateway (pid ${gw.pid}) on ${gw.endpoints.join(' and ')}\n`)
  const sockets = await exerciseSockets([['local', 'local'], ['bus', gw.endpoints[0]!], ['network', gw.endpoints[1]!]])
  process.stdout.write(socketTable(sockets))
  if (sockets.some((r) => !r.ok)) { process.stdout.write('\nSOCKET BYTES DIFFER\n'); return 1 }
  const sockPath = parseEndpoint(bus).socketPath!
  process.stdout.write(`\nAll bytes checked (SHA-256 ${expected.slice(0, 16)}…) on every destination.\n\nWSDL of the storage service (import it into SoapUI, zeep, wsdl2h, svcutil):\n` +
    `  curl '${net}?wsdl'\n  curl --unix-socket ${sockPath} 'http://localhost/storage?wsdl'\n` +
    `WSDL of the network service:\n  curl '${gw.endpoints[1]!}?wsdl'\n`)
  if (o.once) return 0
  await serveUntilStopped(up, cluster, o.statusPort)
  return 0
}

/** The two storage domains under a supervised dispatcher, the dashboard's history and the metrics; says where they are. */
async function startCluster (up: Up, hosting: 'process' | 'container' | 'vm'): Promise<{ cluster: LocalCluster, bus: string, net: string }> {
  const { logger, placement } = up
  process.stdout.write(`metaos up: starting two storage domains over ${up.root}${hosting === 'process' ? '' : hosting === 'vm' ? ' (virtual machines)' : ' (containers)'}\n`)
  const driver = hosting === 'vm' ? new VmDriver({ logger }) : hosting === 'container' ? new ContainerDriver({ logger }) : undefined
  const { dispatcher } = placement
  const cluster = up.cluster = await LocalCluster.start({ dir: up.work, volume: 'demo', domains: ['bus', 'http'], names: ['bus-domain', 'net-domain'], logLevel: up.level, logger, dispatcher, ...(dispatcher.feed === undefined ? {} : { supervisor: { feed: dispatcher.feed } }), ...(driver === undefined ? {} : { driver }), ...(up.coordination === undefined ? {} : { coordination: up.coordination }) })
  // The dashboard's charts start with the cluster, so they show the demonstration's traffic too.
  const history = up.history = new PmtHistory({ pmt: cluster.pmt })
  // Prometheus metrics of this frontend (calls, probes, scores and their parts, decisions, moves), served at /metrics.
  up.metrics = createFrontendMetrics({ pmt: cluster.pmt, supervisor: cluster.supervisor, dispatchers: [cluster.dispatcher], processMetrics: true })
  history.start()
  const [busD, netD] = [await cluster.get(0), await cluster.get(1)]
  const [bus, net] = [busD.endpoints[0]!, netD.endpoints[0]!]
  const facts = (d: ManagedDomain): string => `pid ${d.pid}${d.hosting === undefined ? '' : `, ${d.hosting.kind} on ${d.hosting.kernel.sysname} ${d.hosting.kernel.release}`}`
  process.stdout.write(`  bus      ${bus}  (${facts(busD)})\n  network  ${net}  (${facts(netD)})\n\n`)
  if (placement.note !== '') process.stdout.write(`${placement.note}\n`)
  const { pmt } = cluster
  const affected = (d: ManagedDomain): string => dispatcher.feed!.affecting(pmt.row(d.epr)!).map((v) => `${v.id} (${v.action})`).join(', ') || 'not affected'
  if (dispatcher.feed !== undefined) process.stdout.write(`Vulnerability feed: ${[busD, netD].map((d) => `${d.name} ${affected(d)}`).join('; ')}\n`)
  const skipped = dispatcher.feed?.problems.length ?? 0
  if (skipped > 0) process.stdout.write(`Vulnerability feed: ${skipped} record${skipped === 1 ? '' : 's'} or file${skipped === 1 ? '' : 's'} skipped as malformed (why: on stderr, at warn)\n`)
  if (placement.note !== '') process.stdout.write('\n')
  return { cluster, bus, net }
}

/** Serves the status, dashboard and metrics on 127.0.0.1 and waits for Ctrl-C (or SIGTERM). */
async function serveUntilStopped (up: Up, cluster: LocalCluster, statusPort: number): Promise<void> {
  // The control endpoint's token (`metaos domain`, the dashboard's actions): printed, and kept 0600 in STATUS_FILE.
  const token = randomBytes(24).toString('base64url')
  const status = up.status = await serveStatus(async () => ({ ...(await cluster.status()), pid: process.pid }), statusPort, { history: up.history, metrics: up.metrics, control: { domains: clusterControl(cluster), token } })
  process.stdout.write(`\nStatus (domains, PMT, supervisor decisions, streams): metaos status   (or curl ${status.url})\n`)
  process.stdout.write(`Metrics (Prometheus): ${status.url.replace(/\/status$/, '/metrics')}\n`)
  process.stdout.write(`Dashboard: ${status.dashboardUrl}\n`)
  process.stdout.write(`Control token (metaos domain, the dashboard's actions): ${token}   (also in ${STATUS_FILE}, mode 0600)\n`)
  process.stdout.write(`Dashboard with the domain actions: ${status.dashboardUrl}#token=${token}\n`)
  process.stdout.write('\nThe domains keep running, supervised. Press Ctrl-C to stop them.\n')
  await new Promise<void>((resolve) => { process.once('SIGINT', resolve); process.once('SIGTERM', resolve) })
  process.stdout.write('\nstopping…\n')
}

async function exercise (destination: string, endpoint: string, file: string, onDisk: string, data: Buffer, expected: string, bufferSize: number): Promise<Row> {
  const block = 64 * 1024
  const t0 = performance.now()
  const w = await FileStream.open(file, { mode: 'Create', access: 'Write', destination: endpoint, bufferSize })
  for (let off = 0; off < data.length; off += block) await w.write(data, off, Math.min(block, data.length - off))
  await w.close()
  const t1 = performance.now()
  const r = await FileStream.open(file, { mode: 'Open', access: 'Read', destination: endpoint, bufferSize })
  const back = Buffer.allocUnsafe(data.length)
  let n = 0
  for (;;) {
    const k = await r.read(back, n, Math.min(block, back.length - n))
    if (k === 0 || n + k === back.length) { n += k; break }
    n += k
  }
  await r.close()
  const t2 = performance.now()
  const ok = n === data.length && sha256(back) === expected && sha256(readFileSync(onDisk)) === expected
  const mb = data.length / (1024 * 1024)
  return {
    destination,
    endpoint,
    writeMBs: mb / ((t1 - t0) / 1000),
    readMBs: mb / ((t2 - t1) / 1000),
    channelMs: (w.stats.channelMicros + r.stats.channelMicros) / 1000,
    serviceMs: (w.stats.serviceMicros + r.stats.serviceMicros) / 1000,
    calls: w.stats.calls + r.stats.calls,
    ok,
  }
}

interface SocketRow { destination: string, rttPerSec: number, mbPerSec: number, ok: boolean }

/** Through each destination, a NetSocket to an echo server in this process: 200 small round trips, then 4 MiB echoed; bytes checked. */
async function exerciseSockets (destinations: Array<[string, string]>): Promise<SocketRow[]> {
  const server = createServer({ allowHalfOpen: true }, (s) => { s.pipe(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  const payload = randomBytes(4 * 1024 * 1024)
  const rows: SocketRow[] = []
  try {
    for (const [name, destination] of destinations) {
      const s = await new Promise<NetSocket>((resolve, reject) => { const x = NetSocket.connect({ host: '127.0.0.1', port, destination }, () => { resolve(x) }); x.once('error', reject) })
      const chunks: Buffer[] = []
      let got = 0
      let want = 0
      let wake: (() => void) | undefined
      s.on('data', (c: Buffer) => { chunks.push(c); got += c.length; if (got >= want) wake?.() })
      const echo = async (b: Buffer): Promise<void> => { want += b.length; const done = new Promise<void>((resolve) => { wake = resolve }); s.write(b); if (got < want) await done }
      const t0 = performance.now()
      for (let i = 0; i < 200; i++) await echo(Buffer.from('ping'))
      const t1 = performance.now()
      await echo(payload)
      const t2 = performance.now()
      s.destroy()
      const back = Buffer.concat(chunks).subarray(800)
      rows.push({ destination: name, rttPerSec: 200 / ((t1 - t0) / 1000), mbPerSec: 4 / ((t2 - t1) / 1000), ok: back.equals(payload) })
    }
  } finally {
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  }
  return rows
}

function socketTable (rows: SocketRow[]): string {
  const body = rows.map((r) => [r.destination, r.rttPerSec.toFixed(0), r.mbPerSec.toFixed(1), r.ok ? 'identical' : 'DIFFER'])
  const head = ['destination', 'round trips/s', 'echo MB/s', 'bytes']
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ') + '\n'
  return '\nA NetSocket to a TCP echo server, through each destination (200 round trips, then 4 MiB echoed):\n\n' + line(head) + body.map(line).join('')
}

/** Writes the file through the supervised dispatcher and moves the stream to the other domain halfway. */
async function migrateLive (c: LocalCluster, data: Buffer, expected: string, bufferSize: number): Promise<{ from: string, to: string, atMiB: number, stallMs: number, ok: boolean }> {
  const block = 64 * 1024
  const w = await FileStream.open('demo-moving.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize })
  const id = c.dispatcher.affinity.entries()[0]!.id
  const half = Math.floor(data.length / 2 / block) * block
  const names = new Map((await c.manager.list()).map((d) => [d.epr, d.name]))
  let ev: Awaited<ReturnType<typeof c.dispatcher.migrate>>
  for (let off = 0; off < data.length; off += block) {
    if (off === half) {
      const from = c.dispatcher.affinity.lookup(id)!
      ev = await c.dispatcher.migrate(id, 'demonstration', [...names.keys()].find((e) => e !== from))
    }
    await w.write(data, off, Math.min(block, data.length - off))
  }
  await w.close()
  const ok = sha256(readFileSync(join(c.root, 'demo-moving.bin'))) === expected
  return { from: names.get(ev!.from) ?? ev!.from, to: names.get(ev!.to) ?? ev!.to, atMiB: half / 1048576, stallMs: ev!.stallMs, ok }
}

/** The dispatcher's rules, feed and policy: --rules and --feed, else METAOS_CONFIG's; what is in force, said in one line. A string: the config's error. */
function withConfig (rules: RulesEngine | undefined, feed: VulnerabilityFeed | undefined): { dispatcher: Omit<DispatcherOptions, 'volume'>, note: string } | string {
  let config: MetaosConfig | undefined
  try { config = configFromEnvironment(process.env, { watchFeed: feed === undefined }) } catch (e) { return (e as Error).message }
  if (feed !== undefined) config?.feed?.close()
  const r = rules ?? config?.rules
  const f = feed ?? config?.feed
  const d = { ...(config?.policy === undefined ? {} : { policy: config.policy }), ...(config?.sharpness === undefined ? {} : { sharpness: config.sharpness }), ...(r === undefined ? {} : { rules: r }), ...(f === undefined ? {} : { feed: f }) }
  const parts = [
    r === undefined ? '' : `${r.rules.length} rule${r.rules.length === 1 ? '' : 's'} (${rules === undefined ? 'METAOS_CONFIG' : '--rules'})`,
    f === undefined ? '' : `a vulnerability feed of ${f.vulnerabilities.length} entr${f.vulnerabilities.length === 1 ? 'y' : 'ies'} (${feed === undefined ? 'METAOS_CONFIG' : '--feed'})`,
    config === undefined ? '' : `policy ${d.policy ?? 'best'}; ${config.source}${config.trust !== undefined || config.exchange !== undefined ? ' ("trust" and "exchange" do not apply to the demo\'s domains)' : ''}`,
  ].filter((p) => p !== '')
  return { dispatcher: d, note: parts.length === 0 ? '' : `Placement: ${parts.join(', ')}` }
}

function sha256 (b: Buffer): string { return createHash('sha256').update(b).digest('hex') }

function table (rows: Row[], bytes: number, bufferSize: number): string {
  const head = ['destination', 'write MB/s', 'read MB/s', 'channel ms', 'service ms', 'calls', 'bytes']
  const body = rows.map((r) => [r.destination, r.writeMBs.toFixed(1), r.readMBs.toFixed(1), r.channelMs.toFixed(1), r.serviceMs.toFixed(1), String(r.calls), r.ok ? 'identical' : 'DIFFER'])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ') + '\n'
  return `${(bytes / 1048576).toFixed(0)} MiB written in 64 KiB blocks and read back, FileStream buffer ${bufferSize} B:\n\n` + line(head) + body.map(line).join('')
}
