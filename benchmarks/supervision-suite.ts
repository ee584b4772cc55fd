// The supervision suite: what a failing domain costs an application that writes a file through a
// FileStream placed on a supervised cluster of three domain processes on one volume (default
// settings): per fault kind — SIGKILL, SIGSTOP (a hang), a real 100 ms delay inside the service,
// closed listening sockets, a restart with the same EPR — the longest call the application saw
// (its stall), the bytes lost or duplicated on the volume, and the time from the fault to the
// supervisor's isolation. And what supervision costs when nothing fails: the same write to one
// domain through a bare proxy and through the supervised dispatcher, interleaved. And what fencing
// adds to a failover's stall (fencing-measure.ts). And what `metaos domain migrate` costs a stream
// through the domain: a process domain (clone + stream migration + stop) and a VM domain (QEMU's
// live migration), migrate-measure.ts.
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import { LocalCluster } from '../frontend/assembly/local-cluster.js'
import { compareFencing, fencingTable, measureFencing, type FencingConfig, type FencingRow } from './fencing-measure.js'
import { measureMigrations, migrateTable, type MigrateRow } from './migrate-measure.js'
import { mean, sd } from './report.js'

export interface SupervisionOptions {
  readonly fileBytes?: number
  readonly rounds?: number
  /** Rounds of the fencing comparison (default 4), and its configurations (default: without fencing, fenced by the domain manager). */
  readonly fencingRounds?: number
  readonly fencingConfigs?: readonly FencingConfig[]
  /** The VM domain's live migration (default: where QEMU is installed); its file is at most 16 MiB (the bus under emulation is slow). */
  readonly vmMigration?: boolean
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

export interface FaultRow {
  readonly fault: string
  /** Longest single Write the application waited for (ms). */
  readonly stallMs: number
  readonly moves: number
  /** Bytes of the file on the volume that differ from what was written, plus any length difference. */
  readonly bytesWrong: number
  /** From the fault to the supervisor's isolation of the domain (ms), if it isolated it. */
  readonly isolationMs: number | undefined
  readonly isolationReason: string | undefined
}

export interface SupervisionResult {
  readonly fileBytes: number
  readonly faults: FaultRow[]
  /** MB/s through a bare proxy to one domain, and through the supervised dispatcher (nothing failing). */
  readonly bareMBps: number
  readonly supervisedMBps: number
  /** Per round (ABBA pairs): supervised time / bare time − 1; mean and standard deviation. */
  readonly costMean: number
  readonly costSd: number
  readonly rounds: number
  /** The failover's stall with and without fencing (absent in results recorded before it). */
  readonly fencing?: FencingRow[]
  /** Why a configuration of the fencing comparison is missing (etcd not installed). */
  readonly fencingNote?: string
  /** `metaos domain migrate` during a write (absent in results recorded before it). */
  readonly migrate?: MigrateRow[]
  /** Why the VM row is missing. */
  readonly migrateNote?: string
}

const BLOCK = 64 * 1024
type Fault = (c: LocalCluster, epr: string) => Promise<void> | void
const FAULTS: Array<[string, Fault]> = [
  ['kill -9', async (c, epr) => { process.kill(await c.pid(epr), 'SIGKILL') }],
  ['SIGSTOP (hang)', async (c, epr) => { const pid = await c.pid(epr); process.kill(pid, 'SIGSTOP'); setTimeout(() => { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }, 3000).unref() }],
  ['100 ms delay', (c, epr) => { c.inject(c.index(epr), { delayMs: 100 }) }],
  ['listener closed', (c, epr) => { c.inject(c.index(epr), { closeListeners: true }) }],
  ['restart, same EPR', async (c, epr) => { await c.restart(c.index(epr)) }],
]

export async function runSupervisionSuite (o: SupervisionOptions = {}): Promise<SupervisionResult> {
  const size = o.fileBytes ?? 64 * 1024 * 1024
  const data = randomBytes(size)
  const total = FAULTS.length + 3
  const faults: FaultRow[] = []
  for (const [i, [name, fault]] of FAULTS.entries()) {
    if (o.shouldStop?.() === true) break
    o.onProgress?.(i, total, name)
    const c = await LocalCluster.start()
    try {
      const f = await FileStream.open('f.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
      let stall = 0
      let faultAt = 0
      let victim = ''
      for (let off = 0; off < size; off += BLOCK) {
        if (off === Math.floor(size * 0.3 / BLOCK) * BLOCK) { victim = c.dispatcher.affinity.entries()[0]!.epr; faultAt = Date.now(); await fault(c, victim) }
        const t0 = performance.now()
        await f.write(data, off, Math.min(BLOCK, size - off))
        stall = Math.max(stall, performance.now() - t0)
      }
      await f.close()
      const onDisk = readFileSync(join(c.root, 'f.bin'))
      let wrong = Math.abs(onDisk.length - size)
      for (let k = 0; k < Math.min(onDisk.length, size); k++) if (onDisk[k] !== data[k]) wrong++
      const iso = c.supervisor.decisions.find((d) => d.epr === victim && d.to === 'isolated')
      faults.push({ fault: name, stallMs: stall, moves: c.dispatcher.moves.length, bytesWrong: wrong, isolationMs: iso === undefined ? undefined : iso.at - faultAt, isolationReason: iso?.reason })
    } finally {
      await c.close()
    }
  }
  o.onProgress?.(FAULTS.length, total, 'the failover stall with and without fencing')
  const fencingOptions = { data: data.subarray(0, Math.min(size, 16 * 1024 * 1024)), rounds: o.fencingRounds ?? 4, ...(o.shouldStop === undefined ? {} : { shouldStop: o.shouldStop }) }
  const { rows: fencing, note: fencingNote } = o.fencingConfigs === undefined ? await compareFencing(fencingOptions) : { rows: await measureFencing({ ...fencingOptions, configs: o.fencingConfigs }), note: undefined }
  o.onProgress?.(FAULTS.length + 1, total, 'metaos domain migrate: a process domain, a VM domain')
  const { rows: migrate, note: migrateNote } = await measureMigrations(data, o.vmMigration, o.shouldStop)
  o.onProgress?.(FAULTS.length + 2, total, 'overhead with nothing failing')
  const c = await LocalCluster.start()
  let bareMs = 0
  let supMs = 0
  const costs: number[] = []
  try {
    for (const r of await compareOverhead(c, data, { rounds: o.rounds ?? 10, ...(o.shouldStop === undefined ? {} : { shouldStop: o.shouldStop }) })) {
      bareMs += r.bareMs
      supMs += r.supMs
      costs.push(r.supMs / r.bareMs - 1)
    }
  } finally {
    await c.close()
  }
  const mb = (size / 1048576) * costs.length
  return { fileBytes: size, faults, bareMBps: mb / (bareMs / 1000), supervisedMBps: mb / (supMs / 1000), costMean: costs.length === 0 ? 0 : mean(costs), costSd: sd(costs), rounds: costs.length, fencing, ...(fencingNote === undefined ? {} : { fencingNote }), migrate, ...(migrateNote === undefined ? {} : { migrateNote }) }
}

/** One ABBA round of the nothing-failing comparison: the same file through a bare proxy and through the supervised dispatcher, to the same domain. */
export interface OverheadRound { readonly epr: string, readonly bareMs: number, readonly supMs: number }

/** Wraps the write of one file of a round (-1: the warm-up; the micro benchmark measures CPU around it); resolves to its time (ms). */
export type FileWrite = (side: 'bare' | 'sup', round: number, write: () => Promise<number>) => Promise<number>

/**
 * What supervision costs when nothing fails: `data` written as a file in 64 KiB Writes (bufferSize
 * 0) through a bare proxy and through the supervised dispatcher, in ABBA order. Both sides of a
 * round write to the same domain process: the dispatcher places each new stream on the domain it
 * ranks best, which may change from one round to the next (the PMT follows the measures), so the
 * bare file of a round goes to the domain the supervised file of that round went to (written again
 * there when the placement moved after the bare one ran). Every domain's write path is warmed first:
 * a domain that had served only probes would be compared cold against a warm one.
 */
export async function compareOverhead (c: LocalCluster, data: Buffer, o: { rounds: number, shouldStop?: () => boolean, around?: FileWrite }): Promise<OverheadRound[]> {
  const size = data.length
  const around: FileWrite = o.around ?? (async (_side, _round, write) => await write())
  const bares = new Map((await Promise.all(c.names.map(async (_, i) => await c.get(i)))).map((d) => [d.epr, createStorageProxy(d.endpoints[0]!)]))
  let on = ''
  let round = -1
  const once = async (side: 'bare' | 'sup', path: string, epr?: string): Promise<number> => await around(side, round, async () => {
    const t0 = performance.now()
    const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: side === 'bare' ? bares.get(epr!)! : c.dispatcher, bufferSize: 0 })
    if (side === 'sup') on = c.dispatcher.affinity.entries()[0]!.epr
    for (let off = 0; off < size; off += BLOCK) await f.write(data, off, Math.min(BLOCK, size - off))
    await f.close()
    const ms = performance.now() - t0
    rmSync(join(c.root, path))
    return ms
  })
  const rounds: OverheadRound[] = []
  try {
    for (const epr of bares.keys()) await once('bare', 'warm.bin', epr)
    await once('sup', 'warm.bin')
    for (let r = 0; r < o.rounds && o.shouldStop?.() !== true; r++) {
      round = r
      let supMs: number
      let bareMs: number
      if (r % 2 === 0) {
        // Bare first, to the domain the dispatcher would place on now; again where the supervised file went, if it went elsewhere.
        const guess = c.dispatcher.place({ op: 'Open', path: 'sup.bin' }).chosen
        bareMs = await once('bare', 'bare.bin', guess)
        supMs = await once('sup', 'sup.bin')
        if (on !== guess) bareMs = await once('bare', 'bare.bin', on)
      } else {
        supMs = await once('sup', 'sup.bin')
        bareMs = await once('bare', 'bare.bin', on)
      }
      rounds.push({ epr: on, bareMs, supMs })
    }
  } finally {
    for (const b of bares.values()) await b.close()
  }
  return rounds
}

export function supervisionTable (r: SupervisionResult): string {
  let out = `\nA ${(r.fileBytes / 1048576).toFixed(0)} MiB file written in 64 KiB blocks to a supervised cluster of three domains (one volume); the fault hits the stream's domain 30% in\n`
  out += `  ${'fault'.padEnd(20)} ${'stall ms'.padStart(9)} ${'moves'.padStart(6)} ${'bytes wrong'.padStart(12)} ${'isolated after'.padStart(15)}  reason\n`
  for (const f of r.faults) {
    out += `  ${f.fault.padEnd(20)} ${f.stallMs.toFixed(0).padStart(9)} ${String(f.moves).padStart(6)} ${String(f.bytesWrong).padStart(12)} ${(f.isolationMs === undefined ? '-' : `${f.isolationMs} ms`).padStart(15)}  ${f.isolationReason ?? ''}\n`
  }
  if (r.fencing !== undefined) out += fencingTable(r.fencing, r.fencingNote)
  if (r.migrate !== undefined) out += migrateTable(r.migrate, r.migrateNote)
  out += `\nNothing failing: bare proxy ${r.bareMBps.toFixed(1)} MB/s, supervised dispatcher ${r.supervisedMBps.toFixed(1)} MB/s; cost per round ${(r.costMean * 100).toFixed(1)}% ± ${(r.costSd * 100).toFixed(1)}% (mean ± sd of ${r.rounds} ABBA rounds)\n`
  return out
}
