// The paper's protocol (DESIGN.md §7, the paper's Table 1): sequential write then read of files of
// each size through a FileStream whose buffer is the paper's "cache", by characters
// (WriteByte/ReadByte) and by blocks, on each hosting, faithful and exception-less; N measured
// runs after warm-up runs that are thrown away; mean, standard deviation, outliers kept and named.
//
// "By blocks" means Write/Read calls of exactly the cache size (the .NET program of the paper
// calls `fs.Write(block, 0, block.Length)` with a block as large as the stream's buffer): each call
// becomes one Write/Read syscall, the same number of syscalls as by characters, without the cost
// of a call per byte in the application. So the cache column means the same thing in both tables.
//
// Each run writes its file fresh (the previous one is deleted first), then reads it back after
// `sync` and a drop of the page cache when this process may (root, writable /proc/sys/vm), else the
// read is stated as from a warm cache. Exception-less mode only changes writes, so reads are
// measured once per case (as faithful reads). Owns the measuring; the tables are paper-report.ts.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { FileStream } from '../frontend/api/file-stream.js'
import { closeSharedProxies } from '../frontend/handlers/storage-proxy.js'
import { spawnDomain } from '../domains/domain-process.js'
import { DomainManager } from '../domains/domain-manager.js'
import { ContainerDriver } from '../domains/container-driver.js'
import { kvmUsable, VmDriver } from '../vm/vm-driver.js'
import { mean, sd, type BenchRow } from './report.js'

/** process-bus is HTTP over the domain's Unix socket (the bus of the recorded tables); process-net.uds the same domain's net.uds socket, the bus since issue 21. */
export const PAPER_HOSTINGS = ['local', 'process-bus', 'process-net.uds', 'process-http', 'container-http', 'container-bus', 'vm-http', 'vm-bus'] as const
export type PaperHosting = typeof PAPER_HOSTINGS[number]
/**
 * What a run measures unless told: the paper's four hostings (DESIGN.md §7: local, process over
 * the bus, process over HTTP, container over HTTP), and the VMs where KVM makes them quick enough.
 * container-bus, and the VMs under emulation (tens of ms a call), are measured when named.
 */
export const DEFAULT_PAPER_HOSTINGS: readonly PaperHosting[] = ['local', 'process-bus', 'process-http', 'container-http', ...(kvmUsable() ? ['vm-http', 'vm-bus'] as const : [])]
export type PaperMode = 'char' | 'block'
export type PageCacheState = 'dropped' | 'warm'

export interface PaperRow extends BenchRow {
  /** The CLI's name of the hosting (BenchRow.hosting is the §7 contract name). */
  readonly hostingName: PaperHosting
  readonly exceptionLess: boolean
  readonly channelMsStd: number
  readonly serviceMsStd: number
  readonly totalMsStd: number
  /** Open to close, as seen by the application (throughput is computed from it). */
  readonly wallMs: number
  readonly wallMsStd: number
  readonly syscalls: number
  /** Reads: whether the page cache was dropped before each run. */
  readonly pageCache?: PageCacheState
  /** Measured runs outside Tukey's fences (1.5 IQR) or beyond 3 sd of throughput: kept in the mean, named here. */
  readonly outliers: ReadonlyArray<{ readonly run: number, readonly mbPerSec: number }>
  readonly samplesMbPerSec: readonly number[]
}

export interface PaperSuiteOptions {
  readonly hostings?: readonly PaperHosting[]
  readonly sizes?: readonly number[]
  readonly caches?: readonly number[]
  readonly modes?: readonly PaperMode[]
  /** Measured runs per case (default 10). */
  readonly runs?: number
  /** Runs before them, thrown away (default 1). */
  readonly warmups?: number
  /** Try `sync` + drop_caches before reads (default true). */
  readonly dropCaches?: boolean
  readonly shouldStop?: () => boolean
  /** `done` and `total` in bytes moved, so an ETA can be drawn from them. */
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export interface PaperResult {
  readonly rows: PaperRow[]
  /** One line per hosting that could not run, with the reason. */
  readonly skipped: string[]
  readonly pageCache: PageCacheState
  readonly pageCacheNote: string
  readonly stopped: boolean
  readonly runs: number
  readonly warmups: number
  readonly wallMs: number
}

/** The paper's file sizes (`--sizes paper`). */
export const PAPER_SIZES = [1, 10, 50, 100].map((m) => m * 1048576)
/**
 * The default sizes: the paper's two smaller ones. At ~0.4 ms a SOAP round trip on 2 cores, one
 * faithful pass of 100 MB through a 512 B cache is 204,800 calls (~100 s); the paper's whole grid
 * with 10 runs is ~12 h here, these sizes 49 min (docs/benchmarks.md).
 */
export const DEFAULT_SIZES = [1, 10].map((m) => m * 1048576)
export const DEFAULT_CACHES = [512, 1024, 4096]

interface Sample { wallMs: number, channelMs: number, serviceMs: number, syscalls: number }
interface Host { destination: string, path: (name: string) => string, hostPath: (name: string) => string, stop: () => Promise<void> }

const MiB = 1048576

function quantile (sorted: readonly number[], q: number): number {
  const p = (sorted.length - 1) * q
  const lo = Math.floor(p)
  return sorted[lo]! + (sorted[Math.min(lo + 1, sorted.length - 1)]! - sorted[lo]!) * (p - lo)
}
/** Indexes of the values outside Tukey's fences or more than 3 sd from the mean (needs 4 values). */
export function outlierIndexes (xs: readonly number[]): number[] {
  if (xs.length < 4) return []
  const s = [...xs].sort((a, b) => a - b)
  const q1 = quantile(s, 0.25)
  const q3 = quantile(s, 0.75)
  const lo = q1 - 1.5 * (q3 - q1)
  const hi = q3 + 1.5 * (q3 - q1)
  const m = mean(xs)
  const d = sd(xs)
  return xs.flatMap((x, i) => (x < lo || x > hi || (d > 0 && Math.abs(x - m) > 3 * d) ? [i] : []))
}

/** `sync`, then drop the clean page cache; false when this process may not. */
export function dropPageCache (): boolean {
  try {
    spawnSync('sync')
    writeFileSync('/proc/sys/vm/drop_caches', '1')
    return true
  } catch { return false }
}

async function startHost (h: PaperHosting, dir: string): Promise<Host> {
  const root = join(dir, `volume-${h}`)
  mkdirSync(root)
  if (h === 'local') return { destination: 'local', path: (n) => join(root, n), hostPath: (n) => join(root, n), stop: async () => {} }
  const listen = ['http://127.0.0.1:0', `unix:${join(dir, `${h}-run`, 'bus.sock')}`]
  mkdirSync(join(dir, `${h}-run`))
  const pick = (endpoints: readonly string[]): string => endpoints[h.endsWith('http') ? 0 : 1]!
  if (h === 'process-net.uds') listen[1] = `net.uds:${join(dir, `${h}-run`, 'bus.sock')}`
  if (h === 'process-bus' || h === 'process-http' || h === 'process-net.uds') {
    const d = await spawnDomain(['storage', '--root', root, ...listen.flatMap((l) => ['--listen', l])], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
    return { destination: pick(d.ready.endpoints), path: (n) => n, hostPath: (n) => join(root, n), stop: async () => { await closeSharedProxies(); await d.stop() } }
  }
  if (h === 'vm-http' || h === 'vm-bus') {
    const manager = new DomainManager({ driver: new VmDriver() })
    try {
      const d = await manager.start({ name: `paper-bench-${process.pid}-${h}`, root, volume: 'paper-bench', listen })
      return { destination: pick(d.endpoints), path: (n) => n, hostPath: (n) => join(root, n), stop: async () => { await closeSharedProxies(); await manager.close() } }
    } catch (e) { await manager.close(); throw e }
  }
  // The images run as uid 10001: the volume and the socket directory must be theirs to write.
  chmodSync(root, 0o777)
  chmodSync(join(dir, `${h}-run`), 0o777)
  const manager = new DomainManager({ driver: new ContainerDriver() })
  try {
    const d = await manager.start({ name: `paper-bench-${process.pid}-${h}`, root, volume: 'paper-bench', listen })
    return { destination: pick(d.endpoints), path: (n) => n, hostPath: (n) => join(root, n), stop: async () => { await closeSharedProxies(); await manager.close() } }
  } catch (e) { await manager.close(); throw e }
}

/** Why VM domains cannot run here, or undefined when they can. */
export function vmUnavailable (): string | undefined {
  const q = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8', timeout: 15_000 })
  if (q.error !== undefined || q.status !== 0) return 'qemu-system-x86_64 is not installed (Debian: apt-get install qemu-system-x86 busybox-static cpio)'
  return undefined
}

/** Why containers cannot run here, or undefined when they can. */
export function containerUnavailable (): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 15_000 })
  if (info.error !== undefined) return `docker is not installed (${info.error.message})`
  if (info.status !== 0) return `the Docker daemon is not reachable (${(info.stderr ?? '').trim().split('\n').pop() ?? ''})`
  const img = spawnSync('docker', ['image', 'inspect', 'metaos/storage:dev'], { encoding: 'utf8', timeout: 15_000 })
  if (img.status !== 0) return 'the image metaos/storage:dev is not built (bash docker/build-images.sh)'
  return undefined
}

async function writeRun (host: Host, name: string, data: Buffer, cache: number, mode: PaperMode, exceptionLess: boolean): Promise<Sample> {
  rmSync(host.hostPath(name), { force: true })
  const t0 = performance.now()
  const fs = await FileStream.open(host.path(name), { mode: 'Create', access: 'Write', bufferSize: cache, destination: host.destination, exceptionLess })
  if (mode === 'char') {
    // writeByte returns a promise only when a call must be waited for (docs/api.md).
    for (let j = 0; j < data.length; j++) { const p = fs.writeByte(data[j]!); if (p !== undefined) await p }
  } else {
    for (let j = 0; j < data.length; j += cache) await fs.write(data, j, Math.min(cache, data.length - j))
  }
  await fs.close()
  return { wallMs: performance.now() - t0, channelMs: fs.stats.channelMicros / 1000, serviceMs: fs.stats.serviceMicros / 1000, syscalls: fs.stats.calls }
}

async function readRun (host: Host, name: string, size: number, cache: number, mode: PaperMode): Promise<Sample> {
  const t0 = performance.now()
  const fs = await FileStream.open(host.path(name), { mode: 'Open', access: 'Read', bufferSize: cache, destination: host.destination })
  let n = 0
  if (mode === 'char') {
    for (;;) { let b = fs.readByte(); if (typeof b !== 'number') b = await b; if (b === -1) break; n++ }
  } else {
    const block = Buffer.allocUnsafe(cache)
    for (let r = await fs.read(block, 0, cache); r > 0; r = await fs.read(block, 0, cache)) n += r
  }
  await fs.close()
  if (n !== size) throw new Error(`read ${n} bytes of ${host.path(name)}, expected ${size}`)
  return { wallMs: performance.now() - t0, channelMs: fs.stats.channelMicros / 1000, serviceMs: fs.stats.serviceMicros / 1000, syscalls: fs.stats.calls }
}

const CONTRACT_HOSTING: Record<PaperHosting, BenchRow['hosting']> = { local: 'local', 'process-bus': 'bus', 'process-net.uds': 'net.uds', 'process-http': 'http', 'container-http': 'container-http', 'container-bus': 'container-bus', 'vm-http': 'vm-http', 'vm-bus': 'vm-bus' }

function toRow (hosting: PaperHosting, op: 'write' | 'read', mode: PaperMode, exceptionLess: boolean, size: number, cache: number, samples: readonly Sample[], pageCache: PageCacheState | undefined): PaperRow {
  const mb = samples.map((s) => size / MiB / (s.wallMs / 1000))
  const pick = (f: (s: Sample) => number): number[] => samples.map(f)
  const total = samples.map((s) => s.channelMs + s.serviceMs)
  return {
    suite: 'paper', peer: 'metaos', hosting: CONTRACT_HOSTING[hosting], hostingName: hosting, op, mode: exceptionLess ? `${mode}-batched` : mode, exceptionLess,
    fileBytes: size, cacheBytes: cache, runs: samples.length,
    mbPerSec: mean(mb), mbPerSecStd: sd(mb),
    channelMs: mean(pick((s) => s.channelMs)), channelMsStd: sd(pick((s) => s.channelMs)),
    serviceMs: mean(pick((s) => s.serviceMs)), serviceMsStd: sd(pick((s) => s.serviceMs)),
    totalMs: mean(total), totalMsStd: sd(total),
    wallMs: mean(pick((s) => s.wallMs)), wallMsStd: sd(pick((s) => s.wallMs)),
    syscalls: Math.round(mean(pick((s) => s.syscalls))),
    ...(pageCache !== undefined ? { pageCache } : {}),
    outliers: outlierIndexes(mb).map((i) => ({ run: i + 1, mbPerSec: mb[i]! })),
    samplesMbPerSec: mb,
  }
}

export async function runPaperSuite (o: PaperSuiteOptions = {}): Promise<PaperResult> {
  const started = performance.now()
  const hostings = o.hostings ?? DEFAULT_PAPER_HOSTINGS
  const sizes = o.sizes ?? DEFAULT_SIZES
  const caches = o.caches ?? DEFAULT_CACHES
  const modes = o.modes ?? ['char', 'block']
  const runs = o.runs ?? 10
  const warmups = o.warmups ?? 1
  const dropped = (o.dropCaches ?? true) && dropPageCache()
  const pageCache: PageCacheState = dropped ? 'dropped' : 'warm'
  const skipped: string[] = []
  const rows: PaperRow[] = []
  // Progress in bytes moved: three passes of the file per run (two writes, one read).
  /** Bytes one hosting moves: three passes of each file per run, warm-ups on the first size of each group. */
  const perHosting = caches.length * modes.length * (sizes.reduce((a, b) => a + b, 0) * runs + (sizes[0] ?? 0) * warmups) * 3
  const run: PaperRun = { o, grid: { sizes, caches, modes, runs, warmups }, dropped, pageCache, stop: o.shouldStop ?? (() => false), total: hostings.length * perHosting, done: 0, stopped: false }
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-paper-'))
  const data = randomBytes(Math.max(...sizes))
  try {
    for (const h of hostings) {
      const host = await startOrSkip(h, dir, skipped)
      if (host === undefined) { run.done += perHosting; continue }
      try { await measureHosting(run, h, host, data, rows) } finally { await host.stop() }
      if (run.stopped) break
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return {
    rows, skipped, pageCache, stopped: run.stopped, runs, warmups, wallMs: performance.now() - started,
    pageCacheNote: dropped ? 'reads after `sync` and a drop of the page cache (echo 1 > /proc/sys/vm/drop_caches) before each run' : 'warm cache: reads from the page cache (this process may not drop it: not root, or /proc/sys read-only)',
  }
}

/** One suite run: its grid, its page cache, its progress (bytes moved) and whether it was stopped. */
interface PaperRun {
  readonly o: PaperSuiteOptions
  readonly grid: { readonly sizes: readonly number[], readonly caches: readonly number[], readonly modes: readonly PaperMode[], readonly runs: number, readonly warmups: number }
  readonly dropped: boolean
  readonly pageCache: PageCacheState
  readonly stop: () => boolean
  readonly total: number
  done: number
  stopped: boolean
}

/** The hosting's domain, started; undefined (and a line in `skipped`) when it cannot run here or did not start. */
async function startOrSkip (h: PaperHosting, dir: string, skipped: string[]): Promise<Host | undefined> {
  if (h.startsWith('container') || h.startsWith('vm')) {
    const why = h.startsWith('vm') ? vmUnavailable() : containerUnavailable()
    if (why !== undefined) {
      skipped.push(`${h}: skipped, ${why}`)
      return undefined
    }
  }
  try { return await startHost(h, dir) } catch (e) {
    skipped.push(`${h}: skipped, the domain did not start (${(e as Error).message.split('\n')[0]})`)
    return undefined
  }
}

/** Every (mode, cache, size) of the grid on one hosting, into `rows`; stops early when asked (run.stopped). */
async function measureHosting (run: PaperRun, h: PaperHosting, host: Host, data: Buffer, rows: PaperRow[]): Promise<void> {
  const { sizes, caches, modes, warmups } = run.grid
  for (const mode of modes) {
    for (const cache of caches) {
      for (const [si, size] of sizes.entries()) {
        // Warm-up runs go before the first size of each (mode, cache): the stack, the JIT and
        // the connections are warm for the sizes after it.
        const { faithful, batched, reads } = await measureCase(run, h, host, mode, cache, data.subarray(0, size), si === 0 ? warmups : 0)
        if (faithful.length > 0) {
          rows.push(toRow(h, 'write', mode, false, size, cache, faithful, undefined))
          rows.push(toRow(h, 'write', mode, true, size, cache, batched, undefined))
          rows.push(toRow(h, 'read', mode, false, size, cache, reads, run.pageCache))
        }
        if (run.stopped) return
      }
    }
  }
}

/** The runs of one case (after `warm` warm-ups): each a faithful write, a batched write and a read of the faithful file. */
async function measureCase (run: PaperRun, h: PaperHosting, host: Host, mode: PaperMode, cache: number, body: Buffer, warm: number): Promise<{ faithful: Sample[], batched: Sample[], reads: Sample[] }> {
  const { o, total } = run
  const { runs } = run.grid
  const size = body.length
  const faithful: Sample[] = []
  const batched: Sample[] = []
  const reads: Sample[] = []
  for (let r = 0; r < warm + runs; r++) {
    const label = `${h} ${mode} cache ${cache} B, ${size / MiB} MiB, ${r < warm ? 'warm-up' : `run ${r - warm + 1}/${runs}`}`
    o.onProgress?.(run.done, total, label)
    let w: Sample, b: Sample, rd: Sample
    try {
      w = await writeRun(host, 'paper-faithful.bin', body, cache, mode, false)
      run.done += size
      o.onProgress?.(run.done, total, label)
      b = await writeRun(host, 'paper-batched.bin', body, cache, mode, true)
      run.done += size
      o.onProgress?.(run.done, total, label)
      if (run.dropped) dropPageCache()
      rd = await readRun(host, 'paper-faithful.bin', size, cache, mode)
      run.done += size
    } catch (e) {
      // A Ctrl-C on a terminal reaches the domain too (same process group), which drains
      // and exits: the run in flight is lost, what was measured before it is kept.
      if (!run.stop()) throw e
      run.stopped = true
      break
    }
    if (r >= warm) { faithful.push(w); batched.push(b); reads.push(rd) }
    if (run.stop()) { run.stopped = true; break }
  }
  return { faithful, batched, reads }
}
