// What fencing costs a failover (issue 20), for the supervision suite: the same write through a
// supervised cluster of three domain processes, the stream's domain hung (SIGSTOP) or killed 30%
// in, on clusters that differ only in how a stream is taken over — without fencing (the old
// behaviour), fenced through the domain manager (the hung domain killed and reaped first), and with
// a stream directory too when one is given (coordination: the epoch compare-and-set in etcd).
// The clusters run side by side and take turns (ABBA), so a drift of the machine hurts all alike.
// Per configuration and fault: the failover's stall (median, max), the part of it spent fencing,
// and the bytes on the volume that differ from what was written.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream } from '../frontend/api/file-stream.js'
import { LocalCluster, type LocalClusterOptions } from '../frontend/assembly/local-cluster.js'
import { connectCoordination } from '../coordination/connect.js'
import { startEtcd } from './etcd-process.js'

export interface FencingConfig {
  readonly name: string
  readonly cluster: LocalClusterOptions
}

export interface FencingRow {
  readonly config: string
  readonly fault: string
  readonly runs: number
  readonly stallMedianMs: number
  readonly stallMaxMs: number
  /** Of the stall, the time spent killing the old owner and waiting for its exit (median), when it was fenced. */
  readonly fenceMedianMs: number | undefined
  readonly bytesWrong: number
}

const BLOCK = 64 * 1024
const FAULTS = ['SIGSTOP (hang)', 'kill -9'] as const

export const DEFAULT_FENCING_CONFIGS: readonly FencingConfig[] = [
  { name: 'no fencing', cluster: { fencing: false } },
  { name: 'fenced (domain manager)', cluster: {} },
]

export interface FencingMeasureOptions {
  readonly data: Buffer
  readonly rounds: number
  readonly configs?: readonly FencingConfig[]
  readonly shouldStop?: () => boolean
}

export async function measureFencing (o: FencingMeasureOptions): Promise<FencingRow[]> {
  const configs = o.configs ?? DEFAULT_FENCING_CONFIGS
  const clusters: LocalCluster[] = []
  const seen = new Map<string, Array<{ stall: number, fence: number | undefined, wrong: number }>>()
  try {
    for (const cfg of configs) clusters.push(await LocalCluster.start({ probeIntervalMs: 200, isolation: 'restart', ...cfg.cluster, supervisor: { recoverMs: 300, ...cfg.cluster.supervisor } }))
    for (let r = 0; r < o.rounds && o.shouldStop?.() !== true; r++) {
      const order = r % 2 === 0 ? clusters.map((_, i) => i) : clusters.map((_, i) => i).reverse()
      for (const i of order) {
        for (const fault of FAULTS) {
          const m = await once(clusters[i]!, o.data, fault, `r${r}.bin`)
          const key = `${configs[i]!.name}\0${fault}`
          seen.set(key, [...(seen.get(key) ?? []), m])
        }
      }
    }
  } finally {
    for (const c of clusters) await c.close()
  }
  return [...seen].map(([key, ms]) => {
    const [config, fault] = key.split('\0') as [string, string]
    const stalls = ms.map((m) => m.stall).sort((a, b) => a - b)
    const fences = ms.map((m) => m.fence).filter((x): x is number => x !== undefined).sort((a, b) => a - b)
    return { config, fault, runs: ms.length, stallMedianMs: stalls[stalls.length >> 1]!, stallMaxMs: stalls.at(-1)!, fenceMedianMs: fences[fences.length >> 1], bytesWrong: ms.reduce((a, m) => a + m.wrong, 0) }
  })
}

/**
 * The comparison the suite records: without fencing, fenced, and fenced with coordination (domains
 * holding leases of the default TTL, the checkpoints in the stream directory) on a single etcd
 * member on loopback when etcd is installed; `note` says when it is not.
 */
export async function compareFencing (o: Omit<FencingMeasureOptions, 'configs'>): Promise<{ rows: FencingRow[], note?: string }> {
  const etcd = await startEtcd()
  if (etcd === undefined) return { rows: await measureFencing(o), note: 'etcd is not installed (apt-get install etcd-server): no row with coordination' }
  try {
    const client = await connectCoordination({ url: etcd.url })
    try {
      const coordinated: FencingConfig = { name: 'fenced + coordination (etcd)', cluster: { coordination: { client, domainArgs: ['--coordination', etcd.url] } } }
      return { rows: await measureFencing({ ...o, configs: [...DEFAULT_FENCING_CONFIGS, coordinated] }) }
    } finally {
      await client.close()
    }
  } finally {
    await etcd.stop()
  }
}

/** One write with the fault 30% in; the stall is the failover's (the move's own measure). */
async function once (c: LocalCluster, data: Buffer, fault: typeof FAULTS[number], path: string): Promise<{ stall: number, fence: number | undefined, wrong: number }> {
  await settled(c)
  const moves = c.dispatcher.moves.length
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let stopped: number | undefined
  for (let off = 0; off < data.length; off += BLOCK) {
    if (off === Math.floor(data.length * 0.3 / BLOCK) * BLOCK) {
      const pid = await c.pid(c.dispatcher.affinity.entries().find((s) => s.path === path)!.epr)
      if (fault === 'kill -9') process.kill(pid, 'SIGKILL')
      else { process.kill(pid, 'SIGSTOP'); stopped = pid }
    }
    await f.write(data, off, Math.min(BLOCK, data.length - off))
  }
  await f.close()
  if (stopped !== undefined) { try { process.kill(stopped, 'SIGCONT') } catch { /* fenced: gone */ } }
  await sleep(200)
  const onDisk = readFileSync(join(c.root, path))
  let wrong = Math.abs(onDisk.length - data.length)
  for (let k = 0; k < Math.min(onDisk.length, data.length); k++) if (onDisk[k] !== data[k]) wrong++
  const move = c.dispatcher.moves.slice(moves).find((m) => m.kind === 'failover')
  return { stall: move?.stallMs ?? NaN, fence: move?.fenceMs, wrong }
}

/** Until every domain runs and is healthy (the one hit last restarted and readmitted). */
async function settled (c: LocalCluster): Promise<void> {
  for (let i = 0; i < 600; i++) {
    const ds = await Promise.all(c.names.map(async (_, k) => await c.get(k)))
    if (ds.every((d) => d.state === 'running' && c.pmt.row(d.epr)?.state === 'healthy')) return
    await sleep(50)
  }
  throw new Error('the cluster did not settle within 30 s')
}

export function fencingTable (rows: readonly FencingRow[], note?: string): string {
  let out = `\nThe failover's stall with and without fencing (same write, the fault 30% in; clusters side by side, ABBA)\n`
  out += `  ${'configuration'.padEnd(34)} ${'fault'.padEnd(15)} ${'runs'.padStart(5)} ${'stall p50 ms'.padStart(13)} ${'max ms'.padStart(7)} ${'fencing p50 ms'.padStart(15)} ${'bytes wrong'.padStart(12)}\n`
  for (const r of rows) {
    out += `  ${r.config.padEnd(34)} ${r.fault.padEnd(15)} ${String(r.runs).padStart(5)} ${r.stallMedianMs.toFixed(0).padStart(13)} ${r.stallMaxMs.toFixed(0).padStart(7)} ${(r.fenceMedianMs === undefined ? '-' : r.fenceMedianMs.toFixed(1)).padStart(15)} ${String(r.bytesWrong).padStart(12)}\n`
  }
  if (note !== undefined) out += `  (${note})\n`
  return out
}
