// The placement suite: how the intelligent frontend spreads streams over three storage domains of
// different real speed (a delay inside each service, not a mock), and how fast the spread moves
// when the fastest one slows down and when it recovers. Each stream is Open, one 4 KiB Write,
// Close through a FileStream placed by the dispatcher; placements are counted in 250 ms buckets.
// Also: what probing cost (probe syscalls per real call, probe time over call time).
import { randomBytes } from 'node:crypto'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { DomainProcess } from '../domains/domain-process.js'
import { startFaultDomains } from './fault-domains.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { PerformanceModule } from '../frontend/placement/performance-module.js'
import { Dispatcher } from '../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'

export interface PlacementOptions {
  /** Service delays of the three domains (ms); default 0, 2, 8. */
  readonly delaysMs?: readonly [number, number, number]
  /** Delay the fastest domain gets in the slow-down phase (default 20 ms). */
  readonly slowMs?: number
  /** Seconds per phase: steady, slowed, recovered (default 6 each). */
  readonly phaseSeconds?: number
  readonly policies?: ReadonlyArray<'best' | 'weighted'>
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

export interface PlacementResult {
  readonly policy: 'best' | 'weighted'
  readonly delaysMs: readonly number[]
  readonly slowMs: number
  /** Share of streams per domain (by name) in each phase. */
  readonly shares: Record<'steady' | 'slowed' | 'recovered', Record<string, number>>
  readonly streams: number
  /** From the switch to the first 250 ms bucket where the slowed domain got under 10% of the streams. */
  readonly reactSlowMs: number | undefined
  /** From the recovery to the first bucket where it got back at least half of its steady share. */
  readonly reactRecoverMs: number | undefined
  readonly probeCallsPerCall: number
  readonly probeTimeShare: number
}

const BUCKET_MS = 250
const NAMES = ['fast', 'medium', 'slow'] as const

export async function runPlacementSuite (o: PlacementOptions = {}): Promise<PlacementResult[]> {
  const delays = o.delaysMs ?? [0, 2, 8]
  const slowMs = o.slowMs ?? 20
  const phaseMs = (o.phaseSeconds ?? 6) * 1000
  const policies = o.policies ?? ['best', 'weighted']
  const rig = await startFaultDomains('placement', 'placement', NAMES, delays)
  const { domains } = rig
  const setDelay = (i: number, ms: number): void => { rig.setFault(i, ms) }
  const results: PlacementResult[] = []
  try {
    const payload = randomBytes(4096)
    for (const [p, policy] of policies.entries()) {
      if (o.shouldStop?.() === true) break
      o.onProgress?.(p, policies.length, `placement, policy ${policy}`)
      results.push(await runPolicy(policy, domains, { delays, slowMs, phaseMs, setDelay, payload, ...(o.shouldStop === undefined ? {} : { shouldStop: o.shouldStop }) }))
    }
  } finally {
    await rig.close()
  }
  return results
}

/** One policy's run over the three domains: how the streams spread in each phase, and how fast the spread moved. */
interface Run {
  readonly delays: readonly [number, number, number]
  readonly slowMs: number
  readonly phaseMs: number
  /** Sets a domain's service delay (its fault file). */
  readonly setDelay: (i: number, ms: number) => void
  readonly payload: Buffer
  readonly shouldStop?: () => boolean
}

async function runPolicy (policy: 'best' | 'weighted', domains: readonly DomainProcess[], r: Run): Promise<PlacementResult> {
  const { delays, slowMs, phaseMs } = r
  for (let i = 0; i < 3; i++) r.setDelay(i, delays[i]!)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [i, d] of domains.entries()) {
    handlers.set(NAMES[i]!, perf.track({ epr: NAMES[i]!, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'placement' }, createStorageProxy(d.ready.endpoints[0]!)))
  }
  const dispatcher = new Dispatcher(pmt, handlers, { policy })
  perf.start()
  // Every domain measured a few times before the clock starts (past its cold first connection).
  for (let i = 0; i < 5; i++) await Promise.all(NAMES.map(async (n) => { await perf.probe(n) }))
  const { buckets, shares, streams } = await placeStreams(policy, dispatcher, r)
  perf.stop()
  for (const h of handlers.values()) await h.close()
  for (const ph of Object.values(shares)) {
    const total = Object.values(ph).reduce((a, b) => a + b, 0)
    for (const n of NAMES) ph[n] = total === 0 ? 0 : (ph[n] ?? 0) / total
  }
  const share = (b: Record<string, number> | undefined): number | undefined => {
    if (b === undefined) return undefined
    const total = Object.values(b).reduce((a, c) => a + c, 0)
    return total === 0 ? undefined : (b.fast ?? 0) / total
  }
  const firstBucket = (fromMs: number, ok: (s: number) => boolean): number | undefined => {
    for (let b = Math.floor(fromMs / BUCKET_MS); b < buckets.length; b++) {
      const s = share(buckets[b])
      if (s !== undefined && ok(s)) return (b + 1) * BUCKET_MS - fromMs
    }
    return undefined
  }
  const steadyFast = shares.steady.fast!
  const { probeCallsPerCall, probeTimeShare } = perf.overhead()
  return {
    policy, delaysMs: delays, slowMs, shares, streams,
    reactSlowMs: firstBucket(phaseMs, (s) => s < 0.1),
    reactRecoverMs: firstBucket(2 * phaseMs, (s) => s >= steadyFast / 2),
    probeCallsPerCall, probeTimeShare,
  }
}

/** Streams one after the other for three phases (the fastest domain slowed in the second): each one's domain counted per bucket and per phase. */
async function placeStreams (policy: string, dispatcher: Dispatcher, r: Run): Promise<{ buckets: Array<Record<string, number>>, shares: PlacementResult['shares'], streams: number }> {
  const { phaseMs } = r
  const buckets: Array<Record<string, number>> = []
  const t0 = performance.now()
  let phase: 'steady' | 'slowed' | 'recovered' = 'steady'
  const shares = { steady: {}, slowed: {}, recovered: {} } as PlacementResult['shares']
  let streams = 0
  for (;;) {
    const t = performance.now() - t0
    if (t >= 3 * phaseMs || r.shouldStop?.() === true) break
    const want = t < phaseMs ? 'steady' : t < 2 * phaseMs ? 'slowed' : 'recovered'
    if (want !== phase) { phase = want; r.setDelay(0, phase === 'slowed' ? r.slowMs : r.delays[0]) }
    const before = new Map(dispatcher.placements)
    const f = await FileStream.open(`s-${policy}-${streams % 64}.bin`, { mode: 'Create', access: 'Write', destination: dispatcher })
    await f.write(r.payload)
    await f.close()
    streams++
    const chosen = [...dispatcher.placements].find(([k, v]) => v !== before.get(k))![0]
    const b = Math.floor(t / BUCKET_MS)
    const bucket = (buckets[b] ??= {})
    bucket[chosen] = (bucket[chosen] ?? 0) + 1
    shares[phase][chosen] = (shares[phase][chosen] ?? 0) + 1
  }
  return { buckets, shares, streams }
}

export function placementTable (rows: readonly PlacementResult[]): string {
  const pct = (x: number | undefined): string => x === undefined ? '-' : `${(x * 100).toFixed(0)}%`
  let out = ''
  for (const r of rows) {
    out += `\nPlacement, policy "${r.policy}": domains with service delays ${r.delaysMs.map((d, i) => `${NAMES[i]} ${d} ms`).join(', ')}; fast slowed to ${r.slowMs} ms, then recovered; ${r.streams} streams\n`
    out += `  ${'phase'.padEnd(10)} ${NAMES.map((n) => n.padStart(7)).join(' ')}\n`
    for (const ph of ['steady', 'slowed', 'recovered'] as const) out += `  ${ph.padEnd(10)} ${NAMES.map((n) => pct(r.shares[ph][n]).padStart(7)).join(' ')}\n`
    out += `  reaction: slowed → fast under 10% in ${r.reactSlowMs ?? '-'} ms; recovered → fast back to half its steady share in ${r.reactRecoverMs ?? '-'} ms (250 ms buckets; the fault file is polled every 100 ms)\n`
    out += `  probes: ${(r.probeCallsPerCall * 100).toFixed(2)}% extra syscalls per real call, ${(r.probeTimeShare * 100).toFixed(2)}% of call time\n`
  }
  return out
}
