// `metaos bench` / `npm run bench -- …`: the benchmark runner's command line. Progress goes to
// stderr (a bar on a terminal, plain lines otherwise); results to stdout and to --json.
// Ctrl-C stops after the current measurement and keeps what was measured.
import { parseArgs } from 'node:util'
import { runCallSuite } from './call-suite.js'
import { runCharSuite, charTable } from './char-suite.js'
import { runPlacementSuite, placementTable } from './placement-suite.js'
import { runSupervisionSuite, supervisionTable } from './supervision-suite.js'
import { runNetworkSuite, networkTable } from './network-suite.js'
import { runContainerSuite, containerTable } from './container-suite.js'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { callMarkdown, callTable, machine, writeJson } from './report.js'
import { runPaperSuite, PAPER_HOSTINGS, DEFAULT_PAPER_HOSTINGS, DEFAULT_SIZES, PAPER_SIZES, DEFAULT_CACHES, type PaperHosting, type PaperMode } from './paper-suite.js'
import { paperCsv, paperMarkdown } from './paper-report.js'
import { paperSvgs } from './paper-svg.js'

const HELP = `usage: metaos bench [--quick] [--sizes LIST] [--peers LIST] [--seconds S] [--json FILE]

Runs side by side, in one run, single Write round trips (call mode) for each payload size:
local fs, metaos (local handler, bus, HTTP), bare node:http, and the npm soap package.
Prints calls/s, MB/s, p50/p99 latency, the service time metaos reports, and the ratios
metaos-http/bare-http and metaos-http/soap.

  --quick          the quick suite (default; the paper's full suite arrives with issue #8)
  --suite paper    the paper's protocol (DESIGN.md §7): sequential write then read of each file
                   size, by characters (WriteByte/ReadByte through a FileStream whose buffer is
                   the cache) and by blocks (Write/Read calls of the cache size), per hosting,
                   faithful and exception-less; 1 warm-up + N runs, mean ± sd, outliers named
                   --hostings LIST  local,process-bus,process-http,container-http,container-bus,
                                    vm-http,vm-bus (default the paper's four: local,process-bus,
                                    process-http,container-http, and the VMs when KVM works;
                                    containers need Docker and the images, VMs qemu)
                   --sizes LIST     file sizes (default 1m,10m, ~40 min on 2 cores; "paper" =
                                    1m,10m,50m,100m, the paper's grid, ~9 h at this call cost)
                   --caches LIST    cache sizes (default 512,1k,4k)
                   --modes LIST     char,block (default both)
                   --runs N         measured runs per case (default 10)
                   --json/--csv/--md FILE  the rows, one CSV line per case, the Table-1 layout
                   --svg DIR        charts: throughput by file size per hosting, channel vs
                                    service time stacked (one SVG per operation and mode)
  --suite char     WriteByte through a FileStream cache, faithful vs exception-less, local/http/bus
                   (--file-size 20m, --cache 512)
  --suite placement  streams over three domains of different real speed (0, 2, 8 ms service
                   delay): the share each gets, and how fast it moves when the fastest slows
                   down and recovers; policies best and weighted; probe overhead
                   (--seconds S per phase, default 6)
  --suite network  TCP echo round trips/s and bulk MB/s: direct node:net, NetSocket on the
                   local kernel, through a network domain over the bus and over HTTP
                   (--seconds S of round trips per path and round, --rounds N, default 1 and 3)
  --suite containers  one storage domain as a process and as a container (Docker engine and
                   images needed: bash docker/build-images.sh): Write round trips/s and MB/s
                   over HTTP and the bus, start→ready (--seconds S, --rounds N: 1 and 3)
  --suite supervision  faults (kill -9, SIGSTOP, delay, closed listener, restart) hitting the
                   domain of a stream: stall, bytes lost, time to isolation; and what
                   supervision costs when nothing fails (--file-size 64m, --rounds 10)
  --sizes LIST     payload sizes, e.g. 512,4k,64k,1m (default 512,4k,64k,1m)
  --peers LIST     local-fs,metaos,bare-http,soap (default all)
  --seconds S      measured seconds per peer and size (default 2)
  --rounds N       interleaved rounds the seconds are split into (default 4)
  --json FILE      write {"machine":…,"rows":[…]} (DESIGN.md §7)
  --md FILE        write the tables as a Markdown page (docs/benchmark-results.md is made so)
  --help           this text
`

function parseSize (s: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(s.trim())
  if (m === null) throw new Error(`bad size "${s}" (e.g. 512, 4k, 1m)`)
  return Math.round(Number(m[1]) * (m[2]!.toLowerCase() === 'k' ? 1024 : m[2]!.toLowerCase() === 'm' ? 1048576 : 1))
}

export async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      suite: { type: 'string' },
      sizes: { type: 'string' },
      peers: { type: 'string' },
      seconds: { type: 'string' },
      rounds: { type: 'string' },
      json: { type: 'string' },
      csv: { type: 'string' },
      hostings: { type: 'string' },
      caches: { type: 'string' },
      modes: { type: 'string' },
      runs: { type: 'string' },
      md: { type: 'string' },
      svg: { type: 'string' },
      'file-size': { type: 'string' },
      cache: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) { process.stdout.write(HELP); return 0 }
  if (values.suite === 'paper') return await paper(values, argv)
  if (values.suite === 'char') {
    const rows = await runCharSuite({ fileBytes: parseSize(values['file-size'] ?? '20m'), cacheBytes: parseSize(values.cache ?? '512'), onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(charTable(rows))
    if (values.json !== undefined) { writeJson(values.json, rows); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'placement') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const rows = await runPlacementSuite({ phaseSeconds: Number(values.seconds ?? '6'), shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(placementTable(rows))
    if (values.json !== undefined) { writeFileSync(values.json, JSON.stringify({ machine: machine(), placement: rows }, null, 2) + '\n'); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'network') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const rows = await runNetworkSuite({ seconds: Number(values.seconds ?? '1'), rounds: Number(values.rounds ?? '3'), shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(networkTable(rows))
    if (values.json !== undefined) { writeFileSync(values.json, JSON.stringify({ machine: machine(), network: rows }, null, 2) + '\n'); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'containers') {
    const rows = await runContainerSuite({ seconds: Number(values.seconds ?? '1'), rounds: Number(values.rounds ?? '3'), onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(containerTable(rows))
    if (values.json !== undefined) { writeFileSync(values.json, JSON.stringify({ machine: machine(), containers: rows }, null, 2) + '\n'); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite === 'supervision') {
    let stop = false
    process.once('SIGINT', () => { stop = true })
    const r = await runSupervisionSuite({ fileBytes: parseSize(values['file-size'] ?? '64m'), rounds: Number(values.rounds ?? '10'), shouldStop: () => stop, onProgress: (d, n, l) => { process.stderr.write(`${d + 1}/${n} ${l}\n`) } })
    process.stdout.write(supervisionTable(r))
    if (values.json !== undefined) { writeFileSync(values.json, JSON.stringify({ machine: machine(), supervision: r }, null, 2) + '\n'); process.stdout.write(`\nwrote ${values.json}\n`) }
    return 0
  }
  if (values.suite !== undefined && values.suite !== 'quick') { process.stderr.write(`metaos bench: unknown suite "${values.suite}"; use --quick, --suite paper, char, placement, network, containers or supervision\n`); return 2 }
  const sizes = (values.sizes ?? '512,4k,64k,1m').split(',').map(parseSize)
  const peers = new Set((values.peers ?? 'local-fs,metaos,bare-http,soap').split(','))
  for (const p of peers) if (!['local-fs', 'metaos', 'bare-http', 'soap'].includes(p)) { process.stderr.write(`metaos bench: unknown peer "${p}"\n`); return 2 }
  const seconds = Number(values.seconds ?? '2')
  const rounds = Number(values.rounds ?? '4')
  let stop = false
  const onSigint = (): void => { stop = true; process.stderr.write('\nstopping after the current measurement…\n') }
  process.once('SIGINT', onSigint)
  const tty = process.stderr.isTTY
  const started = Date.now()
  const m = machine()
  process.stdout.write(`metaos bench --quick on ${String(m.cpu)} (${String(m.cores)} cores), Node ${process.version}\n`)
  const rows = await runCallSuite({
    sizes,
    peers,
    secondsPerCase: seconds,
    rounds,
    shouldStop: () => stop,
    onProgress: progress(started, (d, n) => `${d}/${n}`, (d, n, l) => `${d + 1}/${n} ${l}\n`),
  })
  process.removeListener('SIGINT', onSigint)
  if (tty) process.stderr.write('\r'.padEnd(100) + '\r')
  process.stdout.write(callTable(rows))
  if (values.json !== undefined) { writeJson(values.json, rows); process.stdout.write(`\nwrote ${values.json}\n`) }
  if (values.md !== undefined) { writeFileSync(values.md, callMarkdown(rows, `metaos bench ${argv.join(' ')}`)); process.stdout.write(`wrote ${values.md}\n`) }
  return 0
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

function list (s: string | undefined): string[] | undefined { return s?.split(',').map((x) => x.trim()).filter((x) => x !== '') }

async function paper (values: Record<string, string | boolean | undefined>, argv: string[]): Promise<number> {
  const str = (k: string): string | undefined => typeof values[k] === 'string' ? values[k] : undefined
  const hostings = list(str('hostings')) ?? [...DEFAULT_PAPER_HOSTINGS]
  for (const h of hostings) if (!(PAPER_HOSTINGS as readonly string[]).includes(h)) { process.stderr.write(`metaos bench: unknown hosting "${h}" (${PAPER_HOSTINGS.join(', ')})\n`); return 2 }
  const modes = list(str('modes')) ?? ['char', 'block']
  for (const m of modes) if (m !== 'char' && m !== 'block') { process.stderr.write(`metaos bench: unknown mode "${m}" (char, block)\n`); return 2 }
  const runs = Number(str('runs') ?? '10')
  if (!Number.isInteger(runs) || runs < 1) { process.stderr.write('metaos bench: --runs must be a whole number ≥ 1\n'); return 2 }
  let sizes: number[]
  let caches: number[]
  try {
    sizes = str('sizes') === 'paper' ? PAPER_SIZES : list(str('sizes'))?.map(parseSize) ?? DEFAULT_SIZES
    caches = list(str('caches'))?.map(parseSize) ?? DEFAULT_CACHES
  } catch (e) { process.stderr.write(`metaos bench: ${(e as Error).message}\n`); return 2 }
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
  const md = paperMarkdown(res, `metaos bench ${argv.join(' ')}`)
  process.stdout.write(md)
  const file = str('json')
  if (file !== undefined) { writeFileSync(file, JSON.stringify({ machine: m, pageCache: res.pageCacheNote, runs: res.runs, warmups: res.warmups, stopped: res.stopped, skipped: res.skipped, wallMs: res.wallMs, rows: res.rows }, null, 2) + '\n'); process.stdout.write(`\nwrote ${file}\n`) }
  const csv = str('csv')
  if (csv !== undefined) { writeFileSync(csv, paperCsv(res.rows)); process.stdout.write(`wrote ${csv}\n`) }
  const mdFile = str('md')
  if (mdFile !== undefined) { writeFileSync(mdFile, md); process.stdout.write(`wrote ${mdFile}\n`) }
  const svgDir = str('svg')
  if (svgDir !== undefined) {
    mkdirSync(svgDir, { recursive: true })
    const charts = paperSvgs(res)
    for (const c of charts) writeFileSync(join(svgDir, c.file), c.svg)
    process.stdout.write(`wrote ${charts.length} charts in ${svgDir}\n`)
  }
  return res.stopped ? 130 : 0
}
