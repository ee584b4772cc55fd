// The coordination suite: what coordination through etcd costs (issue 20), side by side in one run.
// Storage domain processes of one volume, the same in all but `--coordination`: none, an etcd of 1
// member, an etcd of 3 members (on loopback, benchmarks/etcd-cluster.ts). Open (a FileShare.None
// Create: with coordination, one etcd transaction before open(2)), Close (the registration's
// delete), and 4 KiB Writes one at a time (which never touch etcd) — in rounds whose order goes
// there and back (ABBA), each call's latency measured at the proxy, p50/p99 and ratios to plain.
// With `tmpfs`, each etcd is measured twice, its members' data on the temporary directory's file
// system and on tmpfs (/dev/shm) side by side: what is left on tmpfs is etcd's and our own cost,
// the difference is the disk's fsyncs.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../domains/domain-process.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { fileSystemOf, startEtcdCluster, type EtcdCluster } from './etcd-cluster.js'

/** Where `tmpfs` puts the members' data. */
export const TMPFS_DIR = '/dev/shm'

export interface CoordinationSuiteOptions {
  readonly rounds: number
  /** Opens (each with its Close) per configuration and round. */
  readonly opens: number
  /** 4 KiB Writes per configuration and round. */
  readonly writes: number
  /** The etcd clusters measured, by their number of members (default 1 and 3). */
  readonly members?: readonly number[]
  /** Each etcd on disk and on tmpfs (TMPFS_DIR), side by side. */
  readonly tmpfs?: boolean
  readonly shouldStop?: () => boolean
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export interface Stat { readonly n: number, readonly p50us: number, readonly p99us: number, readonly meanUs: number }
/** One operation on one configuration; the ratios are to the plain domain's. */
export interface CoordinationRow { readonly op: 'Open' | 'Close' | 'Write 4 KiB', readonly config: string, readonly stat: Stat, readonly p50Ratio: number, readonly meanRatio: number }
export interface CoordinationResult {
  readonly configs: readonly string[]
  readonly rounds: number
  readonly stopped: boolean
  readonly rows: readonly CoordinationRow[]
  /** Why nothing was measured (etcd not installed). */
  readonly skipped?: string
  /** The file systems the members' data were on: `disk` (the temporary directory's) and, with tmpfs, `tmpfs`. */
  readonly etcdData?: { readonly disk: string, readonly tmpfs?: string }
}

const quantile = (sorted: readonly number[], f: number): number => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] ?? 0
function stat (lat: readonly number[]): Stat {
  const sorted = [...lat].sort((a, b) => a - b)
  return { n: lat.length, p50us: quantile(sorted, 0.5), p99us: quantile(sorted, 0.99), meanUs: lat.length === 0 ? 0 : lat.reduce((s, x) => s + x, 0) / lat.length }
}

interface Side { readonly name: string, readonly proxy: StorageHandler, readonly open: number[], readonly close: number[], readonly write: number[], handle: string, next: number }

async function timed (lat: number[], f: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now()
  await f()
  lat.push((performance.now() - t0) * 1000)
}

async function openClose (s: Side): Promise<void> {
  const path = `open-${s.name}-${s.next++ % 64}.bin`
  let handle = ''
  await timed(s.open, async () => { handle = (await s.proxy.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })).output.handle })
  await timed(s.close, async () => { await s.proxy.invoke('Close', { handle }) })
}

const block = Buffer.alloc(4096, 0x5c)
async function write (s: Side): Promise<void> {
  await timed(s.write, async () => { await s.proxy.invoke('Write', { handle: s.handle, data: block }) })
  if (s.next++ % 256 === 0) await s.proxy.invoke('Seek', { handle: s.handle, offset: 0, origin: 'Begin' })
}

/** Each round: the Writes of every configuration in the round's order and back (ABBA…), then the Opens the same way, so etcd's work after an Open never lands in a Write's measure. */
async function measure (o: CoordinationSuiteOptions, sides: Side[]): Promise<{ rounds: number, stopped: boolean }> {
  let rounds = 0
  const total = o.rounds * sides.length * 4
  let done = 0
  for (let round = 0; round < o.rounds; round++) {
    if (o.shouldStop?.() === true) return { rounds, stopped: true }
    const order = sides.map((_, i) => sides[(i + round) % sides.length]!)
    const there = [...order, ...[...order].reverse()]
    for (const s of there) {
      o.onProgress?.(done++, total, `round ${round + 1}: ${s.name} writes`)
      for (let k = 0; k < Math.ceil(o.writes / 2); k++) await write(s)
    }
    for (const s of there) {
      o.onProgress?.(done++, total, `round ${round + 1}: ${s.name} opens`)
      for (let k = 0; k < Math.ceil(o.opens / 2); k++) await openClose(s)
    }
    rounds++
  }
  return { rounds, stopped: false }
}

export async function runCoordinationSuite (o: CoordinationSuiteOptions): Promise<CoordinationResult> {
  const members = o.members ?? [1, 3]
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-coordination-'))
  const clusters: EtcdCluster[] = []
  const procs: DomainProcess[] = []
  const sides: Side[] = []
  const places: Array<[string, string]> = [['', tmpdir()], ...(o.tmpfs === true ? [[' tmpfs', TMPFS_DIR] as [string, string]] : [])]
  const configs: Array<[string, string[]]> = [['plain', []]]
  try {
    if (o.tmpfs === true && (!existsSync(TMPFS_DIR) || fileSystemOf(TMPFS_DIR) !== 'tmpfs')) return { configs: [], rounds: 0, stopped: false, rows: [], skipped: `${TMPFS_DIR} is not a tmpfs here` }
    for (const n of members) {
      for (const [suffix, parent] of places) {
        const c = await startEtcdCluster(n, parent)
        if (c === undefined) return { configs: [], rounds: 0, stopped: false, rows: [], skipped: 'etcd is not installed (apt-get install etcd-server)' }
        clusters.push(c)
        configs.push([`etcd ${n}${suffix}`, ['--coordination', c.url]])
      }
    }
    mkdirSync(join(dir, 'volume'))
    for (const [name, extra] of configs) {
      const d = await spawnDomain(['storage', '--root', join(dir, 'volume'), '--volume', 'bench', '--name', name.replaceAll(' ', '-'), '--listen', 'http://127.0.0.1:0', '--log-level', 'error', ...extra])
      procs.push(d)
      const proxy = createStorageProxy(d.ready.endpoints[0]!)
      const handle = (await proxy.invoke('Open', { path: `writes-${name.replaceAll(' ', '-')}.bin`, mode: 'Create', access: 'Write', share: 'None' })).output.handle
      sides.push({ name: name.replaceAll(' ', '-'), proxy, open: [], close: [], write: [], handle, next: 0 })
    }
    // Warm-up: JIT, connections, etcd's first transactions; then the measures start afresh.
    for (const s of sides) { for (let i = 0; i < 50; i++) { await openClose(s); await write(s) } s.open.length = 0; s.close.length = 0; s.write.length = 0 }
    const { rounds, stopped } = await measure(o, sides)
    for (const s of sides) await s.proxy.invoke('Close', { handle: s.handle })
    const plain = sides[0]!
    const rows: CoordinationRow[] = []
    for (const [op, of] of [['Open', (s: Side) => s.open], ['Close', (s: Side) => s.close], ['Write 4 KiB', (s: Side) => s.write]] as const) {
      const ref = stat(of(plain))
      for (const [i, s] of sides.entries()) {
        const st = stat(of(s))
        rows.push({ op, config: configs[i]![0], stat: st, p50Ratio: ref.p50us === 0 ? 0 : st.p50us / ref.p50us, meanRatio: ref.meanUs === 0 ? 0 : st.meanUs / ref.meanUs })
      }
    }
    return { configs: configs.map(([n]) => n), rounds, stopped, rows, etcdData: { disk: fileSystemOf(tmpdir()), ...(o.tmpfs === true ? { tmpfs: fileSystemOf(TMPFS_DIR) } : {}) } }
  } finally {
    for (const s of sides) await s.proxy.close().catch(() => {})
    await Promise.all(procs.map(async (p) => await p.stop()))
    for (const c of clusters) await c.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

const ms = (us: number): string => (us / 1000).toFixed(3)

export function coordinationTable (r: CoordinationResult): string {
  if (r.skipped !== undefined) return `coordination suite: not run: ${r.skipped}\n`
  const where = r.etcdData === undefined ? '' : ` (members' data on ${r.etcdData.disk}${r.etcdData.tmpfs === undefined ? '' : `; "tmpfs": on ${r.etcdData.tmpfs}, no fsync cost`})`
  const w = Math.max(8, ...r.configs.map((c) => c.length))
  const lines = [
    `${r.configs.join(', ')}: domains without and with --coordination (etcd N: an etcd of N members on loopback${where});`,
    `${r.rounds} rounds, configurations in turn and back (ABBA)${r.stopped ? ', stopped early' : ''}; latency at the proxy, ms; ratios to plain`,
    '',
    `${'operation'.padEnd(12)} ${'config'.padEnd(w)} ${'calls'.padStart(6)} ${'p50'.padStart(8)} ${'p99'.padStart(8)} ${'p50 ratio'.padStart(10)} ${'mean ratio'.padStart(11)}`,
    ...r.rows.map((x) => `${x.op.padEnd(12)} ${x.config.padEnd(w)} ${String(x.stat.n).padStart(6)} ${ms(x.stat.p50us).padStart(8)} ${ms(x.stat.p99us).padStart(8)} ${x.p50Ratio.toFixed(2).padStart(10)} ${x.meanRatio.toFixed(2).padStart(11)}`),
  ]
  return lines.join('\n') + '\n'
}
