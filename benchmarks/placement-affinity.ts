// The placement suite's thread-affinity part (issue 22, point 5): placement churn with and without
// it. Three storage domain processes of one volume (service delays 0, 2, 8 ms, the placement
// suite's), the 'weighted' policy (which spreads streams at random in proportion to score²), and
// `tasks` tasks at once, each an async context (withTask) opening streams one after the other —
// Open, one 4 KiB Write, Close — for three phases: steady, the fastest domain slowed to 20 ms, and
// recovered. Churn: how often a task's stream went to another domain than the task's previous
// one. Run with the affinity steering (a task's streams stay on its domain while it is healthy and
// a first choice) and without (the same table only recording), one after the other, on the same
// domains; also each run's mean stream time and the share of streams the slowed domain got.
import { randomBytes } from 'node:crypto'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { DomainProcess } from '../domains/domain-process.js'
import { startFaultDomains } from './fault-domains.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { PerformanceModule } from '../frontend/placement/performance-module.js'
import { Dispatcher } from '../frontend/placement/dispatcher.js'
import { TaskAffinity, withTask } from '../frontend/placement/task-affinity.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'

export interface AffinitySuiteOptions {
  /** Seconds per phase (default 4). */
  readonly phaseSeconds?: number
  /** Tasks at once (default 4). */
  readonly tasks?: number
  readonly shouldStop?: () => boolean
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export interface AffinityResult {
  readonly affinity: boolean
  readonly tasks: number
  readonly streams: number
  /** Streams that went to another domain than their task's previous one, over all streams after each task's first. */
  readonly switches: number
  readonly churn: number
  /** Mean time of one stream (Open, Write, Close), ms. */
  readonly meanStreamMs: number
  /** Share of the streams the slowed domain got while slowed. */
  readonly slowedShare: number
}

const NAMES = ['fast', 'medium', 'slow'] as const
const DELAYS = [0, 2, 8] as const

export async function runAffinitySuite (o: AffinitySuiteOptions = {}): Promise<AffinityResult[]> {
  const rig = await startFaultDomains('affinity', 'affinity', NAMES, DELAYS)
  const { domains } = rig
  const setDelay = (i: number, ms: number): void => { rig.setFault(i, ms) }
  const out: AffinityResult[] = []
  try {
    for (const [n, affinity] of [true, false].entries()) {
      if (o.shouldStop?.() === true) break
      o.onProgress?.(n, 2, `thread affinity ${affinity ? 'on' : 'off'}`)
      for (let i = 0; i < 3; i++) setDelay(i, DELAYS[i]!)
      out.push(await run(affinity, domains, setDelay, o))
    }
  } finally {
    await rig.close()
  }
  return out
}

async function run (affinity: boolean, domains: readonly DomainProcess[], setDelay: (i: number, ms: number) => void, o: AffinitySuiteOptions): Promise<AffinityResult> {
  const phaseMs = (o.phaseSeconds ?? 4) * 1000
  const nTasks = o.tasks ?? 4
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [i, d] of domains.entries()) handlers.set(NAMES[i]!, perf.track({ epr: NAMES[i]!, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'affinity' }, createStorageProxy(d.ready.endpoints[0]!)))
  const tasks = new TaskAffinity({ steer: affinity })
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'affinity', policy: 'weighted', tasks })
  perf.start()
  for (let i = 0; i < 5; i++) for (const n of NAMES) await perf.probe(n)
  const payload = randomBytes(4096)
  const t0 = performance.now()
  let slowedTotal = 0
  let slowedOnFast = 0
  let streams = 0
  let streamMs = 0
  const switcher = setInterval(() => { const t = performance.now() - t0; setDelay(0, t >= phaseMs && t < 2 * phaseMs ? 20 : DELAYS[0]) }, 100)
  try {
    await Promise.all(Array.from({ length: nTasks }, async (_, k) => { await withTask(async () => {
      for (let i = 0; performance.now() - t0 < 3 * phaseMs && o.shouldStop?.() !== true; i++) {
        const s0 = performance.now()
        const path = `t${k}-${i % 16}.bin`
        const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
        const epr = dispatcher.affinity.entries().find((e) => e.path === path)?.epr
        await f.write(payload)
        await f.close()
        streams++
        streamMs += performance.now() - s0
        const t = s0 - t0
        if (t >= phaseMs && t < 2 * phaseMs) { slowedTotal++; if (epr === 'fast') slowedOnFast++ }
      }
    }, `task-${k}`) }))
  } finally {
    clearInterval(switcher)
    perf.stop()
    for (const h of handlers.values()) await h.close()
  }
  const switches = tasks.entries().reduce((a, e) => a + e.switches, 0)
  return { affinity, tasks: nTasks, streams, switches, churn: switches / Math.max(1, streams - nTasks), meanStreamMs: streamMs / Math.max(1, streams), slowedShare: slowedTotal === 0 ? 0 : slowedOnFast / slowedTotal }
}

export function affinityTable (rows: readonly AffinityResult[]): string {
  if (rows.length === 0) return ''
  let out = `\nThread affinity: ${rows[0]!.tasks} tasks at once (async contexts), each opening streams one after the other; policy weighted over fast 0 ms, medium 2 ms, slow 8 ms; fast slowed to 20 ms in the middle phase\n`
  out += `  ${'affinity'.padEnd(9)} ${'streams'.padStart(7)} ${'switches'.padStart(8)} ${'churn'.padStart(6)} ${'ms/stream'.padStart(9)} ${'slowed fast got'.padStart(15)}\n`
  for (const r of rows) out += `  ${(r.affinity ? 'on' : 'off').padEnd(9)} ${String(r.streams).padStart(7)} ${String(r.switches).padStart(8)} ${`${(r.churn * 100).toFixed(1)}%`.padStart(6)} ${r.meanStreamMs.toFixed(2).padStart(9)} ${`${(r.slowedShare * 100).toFixed(0)}%`.padStart(15)}\n`
  return out
}
