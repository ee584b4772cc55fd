// `metaos bench` / `npm run bench -- …`: the benchmark runner's command line. Progress goes to
// stderr (a bar on a terminal, plain lines otherwise); results to stdout and to --json.
// Ctrl-C stops after the current measurement and keeps what was measured.
import { runPeersSuite, peersMarkdown, peersTable, PEERS } from '../benchmarks/peers-suite.js'
import { runCharSuite, charTable } from '../benchmarks/char-suite.js'
import { runPlacementSuite, placementTable } from '../benchmarks/placement-suite.js'
import { runForecastSuite, forecastTable } from '../benchmarks/placement-forecast.js'
import { runAffinitySuite, affinityTable } from '../benchmarks/placement-affinity.js'
import { runSupervisionSuite, supervisionTable } from '../benchmarks/supervision-suite.js'
import { runNetworkSuite, networkTable } from '../benchmarks/network-suite.js'
import { runContainerSuite, containerTable } from '../benchmarks/container-suite.js'
import { runSecuritySuite, securityTable, securityMarkdown } from '../benchmarks/security-suite.js'
import { runSwarmSuite, swarmTable } from '../benchmarks/swarm-suite.js'
import { runCoordinationSuite, coordinationTable } from '../benchmarks/coordination-suite.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { machine, machineLine, portableCommand } from '../benchmarks/report.js'
import { flag, integer, listOf, number, oneOf, parseOptions, size, text, type Kind, type OptionValues } from './options.js'
import { runPaperSuite, PAPER_HOSTINGS, DEFAULT_PAPER_HOSTINGS, DEFAULT_SIZES, PAPER_SIZES, DEFAULT_CACHES, type PaperHosting, type PaperMode, type PaperResult } from '../benchmarks/paper-suite.js'
import { paperCsv, paperMarkdown } from '../benchmarks/paper-report.js'
import { paperSvgs } from '../benchmarks/paper-svg.js'

const HELP = `usage: metaos bench [--suite quick|paper|peers|calls|char|placement|network|containers|supervision|security|swarm|coordination] [options]

Benchmarks, side by side in one run (read the ratios: this machine is shared and noisy).

  --suite quick    (default; also --quick) about a minute: the paper's protocol on 1 MB files
                   (local, process-bus, process-http; caches 512 B and 4 KB; char and block;
                   1 warm-up + 2 runs) and the peers at 512 B and 64 KiB (0.5 s each)
                   --json/--md FILE, --svg DIR as below
  --suite paper    the paper's protocol (DESIGN.md §7): sequential write then read of each file
                   size, by characters (WriteByte/ReadByte through a FileStream whose buffer is
                   the cache) and by blocks (Write/Read calls of the cache size), per hosting,
                   faithful and exception-less; 1 warm-up + N runs, mean ± sd, outliers named
                   --hostings LIST  local,process-bus,process-net.uds,process-http,container-http,
                                    container-bus,vm-http,vm-bus (process-bus: HTTP over the
                                    domain's Unix socket; process-net.uds: its net.uds one; default the paper's four: local,process-bus,
                                    process-http,container-http, and the VMs when KVM works;
                                    containers need Docker and the images, VMs qemu)
                   --sizes LIST     file sizes (default 1m,10m: 49 min on 2 cores here; "paper" =
                                    1m,10m,50m,100m, the paper's grid: ~12 h at this call cost)
                   --caches LIST    cache sizes (default 512,1k,4k)
                   --modes LIST     char,block (default both)
                   --runs N         measured runs per case (default 10)
                   --json/--csv/--md FILE  the rows, one CSV line per case, the Table-1 layout
                   --svg DIR        charts: throughput by file size per hosting, channel vs
                                    service time stacked (one SVG per operation and mode)
  --suite peers    single Write round trips, one call at a time: local fs (the limit), metaos
                   (local handler, bus, HTTP, net.uds and net.tcp in binary and text), bare
                   node:http over TCP and a Unix socket (the protocol floors), the npm soap
                   package, Mono WCF basicHttpBinding (stock, client-tuned, tuned) and Mono's
                   net.tcp service called by metaos's proxy (binary and text; skipped, saying
                   why, without Mono); calls/s, MB/s, p50/p99 and each one's ratio to metaos/http
                   (--sizes 512,4k,64k,1m --seconds 2 --rounds 4 --peers LIST --json/--md FILE)
  --suite calls    the same without Mono (--peers local-fs,metaos,bare-http,soap)
  --suite char     the char mode (writeByte/readByte through a FileStream cache) and 4 KiB
                   sequential block reads, faithful vs exception-less, local kernel, net.uds,
                   the bus and HTTP, beside node:fs alone; MB/s, median of the rounds
                   (--file-size 4m, --cache 512, --rounds 3; --baseline DIST: another build's
                   dist, e.g. main's, measured beside this one, A/B alternated)
  --suite placement  streams over three domains of different real speed (0, 2, 8 ms service
                   delay): the share each gets, and how fast it moves when the fastest slows
                   down and recovers; policies best and weighted; probe overhead
                   (--seconds S per phase, default 6). Then isolation before the SLA
                   breaks: a domain whose delay ramps 0 → 50 ms over 10 s, with the
                   forecast and with the reactive SLA rule alone; false isolations of a
                   healthy noisy domain over 5×S seconds. Then placement churn of 4
                   concurrent tasks with thread affinity and without
  --suite network  TCP echo round trips/s and bulk MB/s: direct node:net, NetSocket on the
                   local kernel, through a network domain over the bus and over HTTP
                   (--seconds S of round trips per path and round, --rounds N, default 1 and 3)
  --suite containers  one storage domain as a process and as a container (Docker engine and
                   images needed: bash docker/build-images.sh): Write round trips/s and MB/s
                   over HTTP and the bus, start→ready (--seconds S, --rounds N: 1 and 3)
  --suite supervision  faults (kill -9, SIGSTOP, delay, closed listener, restart) hitting the
                   domain of a stream: stall, bytes lost, time to isolation; the failover
                   stall without fencing, fenced, and fenced with coordination (etcd, when
                   installed); \`metaos domain migrate\` during a write (a process domain:
                   clone + stream migration + stop; a VM domain, where QEMU is installed:
                   QEMU's live migration, its downtime); and what supervision costs when
                   nothing fails (--file-size 64m, --rounds 10)
  --suite security  what TLS and authentication cost: one storage domain process per
                   configuration (http, https TLS 1.3, https + mutual TLS, https + UsernameToken
                   digest and text, http + UsernameToken digest, the bus): 4 KiB Write round
                   trips (calls/s, p50/p99) and 1 MiB Writes (MB/s), ratios to http; and a new
                   connection per call (handshake) over http, https and mutual TLS
                   (--seconds S per configuration and kind, --rounds N: 2 and 4; --json/--md FILE)
  --suite swarm    a local swarm of three nodes (docker/swarm/local-swarm.sh; root and docker.io
                   needed, about 2 min): 4 KiB Write round trips (calls/s, p50/p99) and 1 MiB
                   Writes (MB/s) from a container on node1's overlay to the storage domain of the
                   same node and of another node, and from the client namespace to a node's port;
                   the stall of a write whose node is killed, and whose link is cut, mid-write
                   (--seconds S per target and round, --rounds N: 2 and 3; --file-size 100m)
  --suite coordination  what coordination through etcd costs (etcd-server needed): storage
                   domain processes of one volume without coordination and with it on an
                   etcd of 1 and of 3 members on loopback: Open (FileShare.None), Close and
                   4 KiB Writes, p50/p99 and ratios to plain, in ABBA rounds (--rounds N: 10;
                   --runs N: opens and writes per configuration and round, 200;
                   --etcd-tmpfs: each etcd also with its members' data on /dev/shm, beside
                   the disk's rows, so etcd's fsyncs are told apart from the rest)
  --sizes LIST     payload sizes of peers and calls, e.g. 512,4k,64k,1m (default 512,4k,64k,1m)
  --peers LIST     local-fs,metaos,bare-http,soap,mono-wcf (default all)
  --seconds S      measured seconds per peer and size (default 2)
  --rounds N       interleaved rounds the seconds are split into (default 4)
  --json FILE      write {"machine":…,"rows":[…]} (DESIGN.md §7)
  --md FILE        write the tables as a Markdown page
  --help           this text
`

/** How this run was asked for, recorded with its results. */
let invocation = 'metaos bench'

/** A suite's results as JSON: the machine and the command first, so a report can say where they come from. */
function writeResult (file: string, body: object): void {
  writeFileSync(file, JSON.stringify({ machine: machine(), command: invocation, ...body }, null, 2) + '\n')
}

const SUITES = ['quick', 'paper', 'peers', 'calls', 'char', 'placement', 'network', 'containers', 'supervision', 'security', 'swarm', 'coordination'] as const
const sizeList = listOf(size)
/** Sizes, or "paper": the paper's grid. */
const sizes: Kind<number[]> = { takes: `${sizeList.takes}, or paper`, parse: (v) => v === 'paper' ? PAPER_SIZES : sizeList.parse(v), refuses: sizeList.refuses }
const positive = integer(1)

/** The options of `metaos bench` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  quick: flag,
  suite: { kind: oneOf(SUITES) },
  sizes: { kind: sizes },
  peers: { kind: listOf(oneOf(PEERS)) },
  seconds: { kind: number(0, Infinity, { above: true }) },
  rounds: { kind: positive },
  json: { kind: text('an output file') },
  csv: { kind: text('an output file') },
  md: { kind: text('an output file') },
  svg: { kind: text('an output directory') },
  hostings: { kind: listOf(oneOf(PAPER_HOSTINGS)) },
  caches: { kind: listOf(size) },
  modes: { kind: listOf(oneOf(['char', 'block'])) },
  runs: { kind: positive },
  'file-size': { kind: size },
  cache: { kind: size },
  baseline: { kind: text('a built dist directory') },
  'etcd-tmpfs': flag,
} as const
type Values = OptionValues<typeof OPTIONS>

/** `--suite swarm`: a local swarm of three nodes (docker/swarm/), round trips and failover. */
async function swarm (values: { seconds?: number, rounds?: number, 'file-size'?: number, json?: string }): Promise<number> {
  const r = await runSwarmSuite({ seconds: values.seconds ?? 2, rounds: values.rounds ?? 3, fileBytes: values['file-size'] ?? 100 * 1048576, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
  process.stdout.write(swarmTable(r))
  if (values.json !== undefined) { writeResult(values.json, { swarm: r }); process.stdout.write(`\nwrote ${values.json}\n`) }
  return 0
}

/** `--suite coordination`: Open, Close and Write with and without etcd, in ABBA rounds. */
async function coordination (values: { rounds?: number, runs?: number, json?: string, 'etcd-tmpfs'?: boolean }): Promise<number> {
  let stop = false
  process.once('SIGINT', () => { stop = true })
  const n = values.runs ?? 200
  const r = await runCoordinationSuite({ rounds: values.rounds ?? 10, opens: n, writes: n, tmpfs: values['etcd-tmpfs'] === true, shouldStop: () => stop, onProgress: (d, t, l) => { process.stderr.write(`${d + 1}/${t} ${l}\n`) } })
  process.stdout.write(coordinationTable(r))
  if (values.json !== undefined) { writeResult(values.json, { coordination: r }); process.stdout.write(`\nwrote ${values.json}\n`) }
  return r.stopped ? 130 : 0
}

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  invocation = `metaos bench ${portableCommand(argv, process.cwd())}`.trim()
  if (values.suite === 'paper') return await paper(values)
  if (values.suite === 'char') {
    const rows = await runCharSuite({ fileBytes: values['file-size'] ?? 4 * 1048576, cacheBytes: values.cache ?? 512, rounds: values.rounds ?? 3, ...(values.baseline === undefined ? {} : { baseline: values.baseline }), onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(charTable(rows))
    if (values.json !== undefined) { writeResult(values.json, { rows, ...(values.baseline === undefined ? {} : { baseline: 'the baseline build given with --baseline (before), this build (after)' }) }); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'placement') return await placement(values)
  if (values.suite === 'network') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const rows = await runNetworkSuite({ seconds: values.seconds ?? 1, rounds: values.rounds ?? 3, shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(networkTable(rows))
    if (values.json !== undefined) { writeResult(values.json, { network: rows }); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'containers') {
    const rows = await runContainerSuite({ seconds: values.seconds ?? 1, rounds: values.rounds ?? 3, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(containerTable(rows))
    if (values.json !== undefined) { writeResult(values.json, { containers: rows }); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'supervision') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const r = await runSupervisionSuite({ fileBytes: values['file-size'] ?? 64 * 1048576, rounds: values.rounds ?? 10, shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(supervisionTable(r))
    if (values.json !== undefined) { writeResult(values.json, { supervision: r }); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'security') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const r = await runSecuritySuite({ seconds: values.seconds ?? 2, rounds: values.rounds ?? 4, shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(securityTable(r))
    if (values.json !== undefined) { writeResult(values.json, { security: r }); process.stdout.write(`\nwrote ${values.json}\n`) }
    if (values.md !== undefined) { const m = machine(); writeFileSync(values.md, `# Security\n\nGenerated by \`${invocation}\` on ${String(m.date)}: ${machineLine(m)}. Do not edit by hand: run the command again.\n\n${securityMarkdown(r)}`); process.stdout.write(`wrote ${values.md}\n`) }
    return r.stopped ? 130 : 0
  }
  if (values.suite === 'swarm') return await swarm(values)
  if (values.suite === 'coordination') return await coordination(values)
  const suite = values.suite ?? 'quick'
  if (suite === 'quick') return await quick(values)
  const sizes = values.sizes ?? [512, 4096, 65536, 1048576]
  const peers = new Set<string>(values.peers ?? (suite === 'calls' ? ['local-fs', 'metaos', 'bare-http', 'soap'] : PEERS))
  if (suite === 'calls') peers.delete('mono-wcf')
  let stop = false
  const onSigint = (): void => { stop = true; process.stderr.write('\nstopping after the current measurement…\n') }
  process.once('SIGINT', onSigint)
  const m = machine()
  process.stdout.write(`metaos bench --suite ${suite} on ${String(m.cpu)} (${String(m.cores)} cores), Node ${process.version}\n`)
  const res = await runPeersSuite({
    sizes,
    peers,
    seconds: values.seconds ?? 2,
    rounds: values.rounds ?? 4,
    shouldStop: () => stop,
    onProgress: progress(Date.now(), (d, n) => `${d}/${n}`, (d, n, l) => `${d + 1}/${n} ${l}\n`),
  })
  process.removeListener('SIGINT', onSigint)
  if (process.stderr.isTTY) process.stderr.write('\r'.padEnd(110) + '\r')
  process.stdout.write(peersTable(res))
  if (values.json !== undefined) { writeResult(values.json, { skipped: res.skipped, rows: res.rows }); process.stdout.write(`\nwrote ${values.json}\n`) }
  if (values.md !== undefined) { writeFileSync(values.md, `# Peers\n\nGenerated by \`${invocation}\` on ${String(m.date)}: ${machineLine(m)}. Do not edit by hand: run the command again.\n\n${peersMarkdown(res)}`); process.stdout.write(`wrote ${values.md}\n`) }
  return stop ? 130 : 0
}

/** `--suite quick`: the paper's protocol in miniature, then the peers, in about a minute. */
async function quick (values: Values): Promise<number> {
  let stop = false
  const onSigint = (): void => { stop = true; process.stderr.write('\nstopping after the current run; what was measured is kept…\n') }
  process.once('SIGINT', onSigint)
  const m = machine()
  const started = Date.now()
  process.stdout.write(`metaos bench --suite quick on ${String(m.cpu)} (${String(m.cores)} cores), ${String(m.os)}, Node ${process.version}\n`)
  const paperRes = await runPaperSuite({
    hostings: ['local', 'process-bus', 'process-http'],
    sizes: [1048576],
    caches: [512, 4096],
    runs: 2,
    shouldStop: () => stop,
    onProgress: progress(started, (d, n) => `${Math.round((d / n) * 100)}%`, (d, n, l) => `[${Math.floor((d / n) * 100)}%] ${l}\n`),
  })
  const peersRes = stop
    ? { rows: [], skipped: ['peers: not measured (stopped)'] }
    : await runPeersSuite({ sizes: [512, 65536], seconds: 0.5, rounds: 2, shouldStop: () => stop, onProgress: progress(Date.now(), (d, n) => `${d}/${n}`, (d, n, l) => `${d + 1}/${n} ${l}\n`) })
  process.removeListener('SIGINT', onSigint)
  if (process.stderr.isTTY) process.stderr.write('\r'.padEnd(110) + '\r')
  const md = paperMarkdown(paperRes, invocation) + `\n## Peers: Write round trips, one call at a time\n\n${peersMarkdown(peersRes)}`
  process.stdout.write(md)
  process.stdout.write(`\nquick suite: ${((Date.now() - started) / 1000).toFixed(0)} s\n`)
  const json = values.json
  if (json !== undefined) { writeResult(json, { paper: { pageCache: paperRes.pageCacheNote, runs: paperRes.runs, warmups: paperRes.warmups, stopped: paperRes.stopped, skipped: paperRes.skipped, wallMs: paperRes.wallMs, rows: paperRes.rows }, peers: peersRes }); process.stdout.write(`wrote ${json}\n`) }
  if (values.md !== undefined) { writeFileSync(values.md, md); process.stdout.write(`wrote ${values.md}\n`) }
  if (values.svg !== undefined) writeCharts(values.svg, paperRes)
  return stop || paperRes.stopped ? 130 : 0
}

function writeCharts (dir: string, res: PaperResult): void {
  mkdirSync(dir, { recursive: true })
  const charts = paperSvgs(res)
  for (const c of charts) writeFileSync(join(dir, c.file), c.svg)
  process.stdout.write(`wrote ${charts.length} charts in ${dir}\n`)
}

/** A progress callback: a bar with an ETA on a terminal, one plain line per step otherwise. */
function progress (started: number, count: (done: number, total: number) => string, plain: (done: number, total: number, label: string) => string): (done: number, total: number, label: string) => void {
  const tty = process.stderr.isTTY
  let last = ''
  return (done, total, label) => {
    const eta = done === 0 ? '' : ` ETA ${fmtSeconds(((Date.now() - started) / done) * (total - done) / 1000)}`
    if (tty) process.stderr.write(`\r[${'#'.repeat(Math.round((done / total) * 30)).padEnd(30)}] ${count(done, total)} ${label}${eta}`.padEnd(110))
    else if (label !== last) { process.stderr.write(plain(done, total, label + eta)); last = label }
  }
}

function fmtSeconds (s: number): string { return s < 120 ? `${Math.round(s)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` }

async function paper (values: Values): Promise<number> {
  const hostings = values.hostings ?? [...DEFAULT_PAPER_HOSTINGS]
  const modes = values.modes ?? ['char', 'block']
  const runs = values.runs ?? 10
  const sizes = values.sizes ?? DEFAULT_SIZES
  const caches = values.caches ?? DEFAULT_CACHES
  let stop = false
  const onSigint = (): void => { stop = true; process.stderr.write('\nstopping after the current run; what was measured is kept…\n') }
  process.once('SIGINT', onSigint)
  const started = Date.now()
  const m = machine()
  process.stdout.write(`metaos bench --suite paper on ${String(m.cpu)} (${String(m.cores)} cores), ${String(m.os)}, Node ${process.version}\n`)
  const mb = (n: number): string => `${(n / 1048576).toFixed(0)} MB`
  const res = await runPaperSuite({
    hostings: hostings as PaperHosting[],
    modes: modes as PaperMode[],
    sizes,
    caches,
    runs,
    shouldStop: () => stop,
    onProgress: progress(started, (d, n) => `${mb(d)}/${mb(n)}`, (d, n, l) => `[${Math.floor((d / n) * 100)}%] ${l}\n`),
  })
  process.removeListener('SIGINT', onSigint)
  if (process.stderr.isTTY) process.stderr.write('\r'.padEnd(110) + '\r')
  const md = paperMarkdown(res, invocation)
  process.stdout.write(md)
  const file = values.json
  if (file !== undefined) { writeResult(file, { pageCache: res.pageCacheNote, runs: res.runs, warmups: res.warmups, stopped: res.stopped, skipped: res.skipped, wallMs: res.wallMs, rows: res.rows }); process.stdout.write(`\nwrote ${file}\n`) }
  if (values.csv !== undefined) { writeFileSync(values.csv, paperCsv(res.rows)); process.stdout.write(`wrote ${values.csv}\n`) }
  if (values.md !== undefined) { writeFileSync(values.md, md); process.stdout.write(`wrote ${values.md}\n`) }
  if (values.svg !== undefined) writeCharts(values.svg, res)
  return res.stopped ? 130 : 0
}

/** The placement suite: the spread over three domains, then isolation before the SLA breaks, then thread affinity's churn. */
async function placement (values: Values): Promise<number> {
  let stop = false
  process.once('SIGINT', () => { stop = true })
  const rows = await runPlacementSuite({ phaseSeconds: values.seconds ?? 6, shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
  process.stdout.write(placementTable(rows))
  const forecast = await runForecastSuite({ noisySeconds: 5 * (values.seconds ?? 6), shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
  process.stdout.write(forecastTable(forecast))
  const affinity = await runAffinitySuite({ phaseSeconds: values.seconds ?? 6, shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
  process.stdout.write(affinityTable(affinity))
  if (values.json !== undefined) { writeResult(values.json, { placement: rows, forecast: { ...forecast, ramps: forecast.ramps.map(({ events, ...r }) => r) }, affinity }); process.stdout.write(`\nwrote ${values.json}\n`) }
  return 0
}
