// Test helper for fencing (test/frontend/fencing*.test.ts): an application writing 64 MiB through
// a LocalCluster's dispatcher while the stream's domain is SIGSTOPped with a Write in flight; once
// the stream has moved, it seeks back, overwrites the last MiB it wrote with other bytes and cuts
// the file by 4 KiB; SIGCONT comes at 3× the lease TTL after the stop. The run says whether the
// file on the volume equals the application's view (SHA-256).
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { FileStream } from '../../index.js'
import { LocalCluster, type LocalClusterOptions } from '../../frontend/assembly/local-cluster.js'
import { prng } from './prng.js'
import type { StreamEntry } from '../../frontend/placement/affinity-table.js'

export const MiB = 1024 * 1024
export const SIZE = 64 * MiB
export const BLOCK = 64 * 1024
/** The lease TTL the test stands for: the domain stays stopped 3× as long. */
export const TTL_MS = 1000
const data = randomBytes(SIZE)
const other = randomBytes(MiB)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

export async function cluster (t: Test, o: LocalClusterOptions): Promise<LocalCluster> {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { recoverMs: 300 }, ...o })
  t.teardown(async () => { await c.close() })
  return c
}

/** Until every domain runs and is healthy again (the killed one restarted and readmitted). */
export async function settled (c: LocalCluster): Promise<void> {
  // Bounded, not timed: on a loaded machine the supervisor's latency alarm can isolate a healthy
  // domain for a while before it readmits it.
  for (let i = 0; i < 900; i++) {
    const ds = await Promise.all(c.names.map(async (_, k) => await c.get(k)))
    if (ds.every((d) => d.state === 'running' && c.pmt.row(d.epr)?.state === 'healthy')) return
    await sleep(50)
  }
  throw new Error('the cluster did not settle within 45 s')
}

export interface Run { readonly equal: boolean, readonly inFlight: boolean, readonly stopAt: number, readonly stallMs: number, readonly fenceMs: number | undefined, readonly detail: string }

/**
 * One run: write sequentially; at `stopAt` bytes the stream's domain is stopped (`how`: right after
 * the next Write is sent, a tick later, or a few ms later); once the stream has moved, the last
 * MiB is overwritten with other bytes and the file cut by 4 KiB; SIGCONT at 3× TTL after the stop.
 */
export async function run (c: LocalCluster, path: string, stopAt: number, how: 'sync' | 'immediate' | number, hooks: { beforeStop?: (epr: string) => Promise<void>, onMoved?: (s: StreamEntry) => Promise<void> } = {}): Promise<Run> {
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  const moves = c.dispatcher.moves.length
  let pending = false
  let stop: Promise<{ pid: number, at: number, inFlight: boolean }> | undefined
  let off = 0
  while (off < SIZE) {
    if (stop === undefined && off >= stopAt) {
      const epr = c.dispatcher.affinity.entries().find((s) => s.path === path)!.epr
      await hooks.beforeStop?.(epr)
      const pid = await c.pid(epr)
      const halt = (): { pid: number, at: number, inFlight: boolean } => { process.kill(pid, 'SIGSTOP'); return { pid, at: Date.now(), inFlight: pending } }
      stop = how === 'sync' ? Promise.resolve().then(halt) : how === 'immediate' ? new Promise((resolve) => setImmediate(() => { resolve(halt()) })) : sleep(how).then(halt)
    }
    pending = true
    const w = f.write(data, off, BLOCK)
    if (stop !== undefined && how === 'sync') await stop
    await w
    pending = false
    off += BLOCK
    if (stop !== undefined && c.dispatcher.moves.length > moves) break
  }
  const stopped = await stop!
  await hooks.onMoved?.(c.dispatcher.affinity.entries().find((s) => s.path === path)!)
  // The application's view: what it wrote, the last MiB written again with other bytes, 4 KiB cut.
  const view = Buffer.from(data.subarray(0, off))
  await f.seek(off - MiB)
  await f.write(other)
  other.copy(view, off - MiB)
  await f.setLength(off - 4096)
  const wait = stopped.at + 3 * TTL_MS - Date.now()
  if (wait > 0) await sleep(wait)
  try { process.kill(stopped.pid, 'SIGCONT') } catch { /* fenced: it is gone */ }
  // Time for a woken domain to land what it held (a stale Write, a late SetLength).
  await sleep(300)
  await f.close()
  const onDisk = readFileSync(join(c.root, path))
  const expected = view.subarray(0, off - 4096)
  const move = c.dispatcher.moves.slice(moves).find((m) => m.kind === 'failover')
  return {
    equal: sha(onDisk) === sha(expected),
    inFlight: stopped.inFlight,
    stopAt: off,
    stallMs: move?.stallMs ?? NaN,
    fenceMs: move?.fenceMs,
    detail: `file ${onDisk.length} B, view ${expected.length} B; moves: ${c.dispatcher.moves.slice(moves).map((m) => `${m.kind} ${m.op} ${m.reason} epoch ${m.epoch} stall ${m.stallMs.toFixed(0)} ms fence ${m.fenceMs?.toFixed(0) ?? '-'} ms`).join('; ')}`,
  }
}

/** A Write certainly received and not yet applied when the domain stops: it waits 400 ms inside the service. */
export function delayed (c: LocalCluster): (epr: string) => Promise<void> {
  return async (epr) => { c.inject(c.index(epr), { delayMs: 400 }); await sleep(300) }
}


/**
 * `n` runs on one cluster with the SIGSTOP at random moments (a seeded PRNG; METAOS_FENCE_SEED
 * repeats a sequence): the domain settles (restarted, readmitted) between runs. Prints the seed,
 * how many runs hit a Write in flight, how many files differ, and the failover stalls.
 */
export async function randomRuns (t: Test, c: LocalCluster, n: number, onMoved?: (s: StreamEntry) => Promise<void>): Promise<Run[]> {
  const seed = Number(process.env.METAOS_FENCE_SEED ?? Date.now() % 1_000_000)
  const rnd = prng(seed)
  const runs: Run[] = []
  for (let i = 0; i < n; i++) {
    await settled(c)
    const stopAt = Math.floor((8 + rnd() * 48) * MiB / BLOCK) * BLOCK
    const pick = rnd()
    const how = pick < 0.3 ? 'sync' : pick < 0.6 ? 'immediate' : Math.floor(rnd() * 4)
    const r = await run(c, `run-${i}.bin`, stopAt, how, onMoved === undefined ? {} : { onMoved })
    runs.push(r)
    if (!r.equal) t.comment(`run ${i} differs (stop at ${r.stopAt} B, ${String(how)}): ${r.detail}`)
  }
  const differ = runs.filter((r) => !r.equal).length
  const hits = runs.filter((r) => r.inFlight).length
  const stalls = runs.map((r) => r.stallMs).filter((x) => !Number.isNaN(x)).sort((a, b) => a - b)
  const fences = runs.map((r) => r.fenceMs).filter((x): x is number => x !== undefined).sort((a, b) => a - b)
  t.comment(`seed ${seed}: ${runs.length} runs, ${hits} hit a Write in flight, ${differ} differ; failover stall median ${stalls[stalls.length >> 1]?.toFixed(0)} ms (max ${stalls.at(-1)?.toFixed(0)}), of which fencing median ${fences[fences.length >> 1]?.toFixed(1)} ms`)
  return runs
}
