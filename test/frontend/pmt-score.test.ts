// Properties of the score formula and the Performance Mapping Table: faster scores higher all
// else equal; errors lower the score but never to zero; stale measures decay; SLA and cost weigh
// as declared; percentiles and throughput come from the calls recorded.
import t from 'tap'
import { score, DEFAULT_WEIGHTS } from '../../frontend/placement/score.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'

const base = { latencyMs: 2, errorRate: 0, measuredAt: 1_000_000, sla: 0.5, costPerCall: 0, costPerMB: 0 }
const now = 1_000_000

t.test('score properties', async (t) => {
  t.ok(score({ ...base, latencyMs: 1 }, now).score > score({ ...base, latencyMs: 4 }, now).score, 'faster is higher, all else equal')
  const broken = score({ ...base, errorRate: 1 }, now)
  t.ok(broken.score > 0, 'even a domain failing every call keeps a score above zero')
  t.ok(broken.score < score({ ...base, errorRate: 0.1 }, now).score, 'more errors, lower score')
  t.equal(broken.health, DEFAULT_WEIGHTS.healthFloor, 'health stops at its floor')
  t.ok(score({ ...base, sla: 1 }, now).score > score({ ...base, sla: 0 }, now).score, 'a higher declared SLA weighs more')
  t.ok(score({ ...base, costPerCall: 1 }, now).score < score(base, now).score, 'a costlier domain scores lower')
  t.ok(score({ ...base, costPerMB: 1 }, now, 10).score < score({ ...base, costPerMB: 1 }, now, 0).score, 'cost per MB counts with the size of the call')
  // Staleness: old measures fade toward the prior, for good and for bad.
  const slowFresh = score({ ...base, latencyMs: 50 }, now)
  const slowStale = score({ ...base, latencyMs: 50 }, now + 10 * DEFAULT_WEIGHTS.halfLifeMs)
  const prior = score({ ...base, latencyMs: undefined }, now)
  t.ok(slowStale.score > slowFresh.score, 'a slow measure that went stale matters less')
  t.ok(Math.abs(slowStale.score - prior.score) < 0.01 * prior.score, 'a fully stale row scores like an unmeasured one')
  t.ok(score({ ...base, errorRate: 1 }, now + 10 * DEFAULT_WEIGHTS.halfLifeMs).score > broken.score, 'old errors are forgiven with time')
  const w = { ...DEFAULT_WEIGHTS, perf: 0 }
  t.equal(score({ ...base, latencyMs: 1 }, now, 0, w).score, score({ ...base, latencyMs: 100 }, now, 0, w).score, 'weights are configurable (perf weight 0: speed ignored)')
})

t.test('the table learns from calls and probes', async (t) => {
  let clock = 5_000
  const pmt = new PerformanceMappingTable({ now: () => clock })
  const id = (epr: string): DomainIdentity => ({ epr, endpoints: [`http://127.0.0.1/${epr}`], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v' })
  pmt.upsert(id('fast'))
  pmt.upsert(id('slow'), { sla: 0.5 })
  pmt.upsert(id('flaky'))
  for (let i = 0; i < 100; i++) {
    pmt.record('fast', { micros: 300 + (i % 10), ok: true })
    pmt.record('slow', { micros: 3000, ok: true })
    pmt.record('flaky', { micros: 300, ok: i % 2 === 0 })
  }
  pmt.record('fast', { micros: 200, ok: true, probe: true })
  pmt.record('fast', { micros: 80_000, bytes: 4 * 1024 * 1024, ok: true })
  const rows = pmt.rows()
  t.ok(rows.every((r, i) => i === 0 || rows[i - 1]!.score.score >= r.score.score), 'rows come best first')
  t.equal(rows[0]!.identity.epr, 'fast', 'the fast, healthy domain scores best')
  const flaky = pmt.row('flaky')!
  t.ok(flaky.measures.errorRate > 0.3 && flaky.score.score > 0, 'errors are counted and lower the score, never to zero')
  t.ok(flaky.score.score < pmt.row('fast')!.score.score)
  const fast = pmt.row('fast')!
  t.equal(fast.measures.calls, 101, 'probes are not counted as calls')
  t.equal(fast.measures.probeLatencyMs, 0.2)
  t.equal(fast.measures.probedAt, 5_000)
  t.ok(fast.p50Ms! >= 0.3 && fast.p50Ms! < 0.32, 'p50 from the window')
  t.ok(fast.p99Ms! >= 0.3, 'p99 from the window')
  t.ok(fast.measures.mbPerSec! > 40 && fast.measures.mbPerSec! < 60, 'throughput of large calls')
  pmt.setState('fast', 'isolated')
  t.equal(pmt.row('fast')!.state, 'isolated')
  clock += 10 * DEFAULT_WEIGHTS.halfLifeMs
  t.ok(Math.abs(pmt.row('slow')!.score.score - pmt.row('fast')!.score.score) < 1, 'after a long silence the rows converge to the prior')
  t.ok(pmt.remove('slow'))
  t.equal(pmt.size, 2)
})
