// A frontend's Prometheus metrics (prom-client), over the parts it already has: the calls and
// probes the performance module records into the PMT (counted and timed here as they are
// recorded), the PMT's rows at scrape time (latency EWMA and percentiles, error rate, throughput,
// state, score and its parts), the supervisor's decisions, the dispatchers' moves and the open
// streams of their affinity tables. One Registry per call (never prom-client's global one), so a
// process may hold several frontends. Serving it is the caller's business (`metaos up`'s status
// server mounts `{ metrics, contentType }` at /metrics). Changes nothing it observes.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { LATENCY_BUCKETS } from '../../soap-runtime/metrics.js'
import type { MoveEvent } from '../placement/dispatcher.js'
import type { PerformanceMappingTable, PmtRow } from '../placement/pmt.js'
import type { Decision } from './supervisor.js'

/** A storage dispatcher as seen here (`Dispatcher`): its moves as they happen, its open streams at scrape time. */
export interface MetricsDispatcher {
  readonly affinity: { entries: () => ReadonlyArray<{ readonly epr: string }> }
  on: (event: 'moved', listener: (e: MoveEvent) => void) => unknown
  off: (event: 'moved', listener: (e: MoveEvent) => void) => unknown
}

/** A network dispatcher as seen here (`NetworkDispatcher`): its sockets at scrape time, the ones lost with their domain as they go. */
export interface MetricsNetworkDispatcher {
  readonly affinity: ReadonlyMap<string, string>
  on: (event: 'lost', listener: (e: { readonly socket: string, readonly epr: string, readonly reason: string }) => void) => unknown
  off: (event: 'lost', listener: (e: { readonly socket: string, readonly epr: string, readonly reason: string }) => void) => unknown
}

export interface FrontendMetricsParts {
  readonly pmt: PerformanceMappingTable
  /** Its decisions are counted as they are made. */
  readonly supervisor?: { readonly onDecision: (f: (d: Decision) => void) => () => void }
  readonly dispatchers?: readonly MetricsDispatcher[]
  readonly networkDispatchers?: readonly MetricsNetworkDispatcher[]
  /** Adds Node's process metrics (CPU, memory, event loop, GC): only for a registry that is the process's own (`metaos up`). */
  readonly processMetrics?: boolean
}

export interface FrontendMetrics {
  readonly registry: Registry
  /** The text exposition (what GET /metrics answers). */
  metrics: () => Promise<string>
  readonly contentType: string
  /** Stops observing the parts (the counters keep their values). */
  close: () => void
}

const SCORE_PARTS = ['perf', 'health', 'sla', 'cost', 'freshness'] as const
const STATES = ['healthy', 'suspect', 'isolated', 'draining'] as const

interface PerDomain {
  readonly calls: Counter.Internal
  readonly failed: Counter.Internal
  readonly bytes: Counter.Internal
  readonly latency: Histogram.Internal<'epr'>
  readonly probeOk: Counter.Internal
  readonly probeFailed: Counter.Internal
}

export function createFrontendMetrics (parts: FrontendMetricsParts): FrontendMetrics {
  const registry = new Registry()
  const registers = [registry]
  // Registered in this order, which is the order of the exposition.
  const stopRecords = recordedMetrics(parts.pmt, registers)
  const rows = rowGauges(parts.pmt, registers)
  const stopDecisions = parts.supervisor === undefined ? undefined : decisionMetrics(parts.supervisor, registers)
  const stopDispatchers = dispatcherMetrics(parts.dispatchers ?? [], parts.networkDispatchers ?? [], registers)
  if (parts.processMetrics === true) collectDefaultMetrics({ register: registry })
  return {
    registry,
    metrics: async () => { rows.refresh(); return await registry.metrics() },
    contentType: registry.contentType,
    close: () => {
      stopRecords()
      stopDecisions?.()
      stopDispatchers()
    },
  }
}

/** What the performance module records, as it records it. Returns what stops observing it. */
function recordedMetrics (pmt: PerformanceMappingTable, registers: Registry[]): () => void {
  const calls = new Counter({ name: 'metaos_frontend_calls_total', help: 'Application calls to a domain, as the performance module measured them', labelNames: ['epr'], registers })
  const failed = new Counter({ name: 'metaos_frontend_call_errors_total', help: 'Application calls that failed for a reason of the domain (transport, protocol, timeout, IO_ERROR, draining); a caller\'s own fault (FILE_NOT_FOUND…) is not one', labelNames: ['epr'], registers })
  const bytes = new Counter({ name: 'metaos_frontend_bytes_total', help: 'Data bytes moved by application calls (written, read, sent, received)', labelNames: ['epr'], registers })
  const latency = new Histogram({ name: 'metaos_frontend_call_duration_seconds', help: 'Round-trip time of application calls that succeeded, as the frontend measured them (long polls excluded)', labelNames: ['epr'], buckets: LATENCY_BUCKETS, registers })
  const probes = new Counter({ name: 'metaos_frontend_probes_total', help: 'Probes of a domain (Open/Close of the sample file; network: connect/close or ResolveHost), by result', labelNames: ['epr', 'result'], registers })
  const domains = new Map<string, PerDomain>()
  const perDomain = (epr: string): PerDomain => {
    let d = domains.get(epr)
    if (d === undefined) {
      domains.set(epr, d = {
        calls: calls.labels({ epr }),
        failed: failed.labels({ epr }),
        bytes: bytes.labels({ epr }),
        latency: latency.labels({ epr }),
        probeOk: probes.labels({ epr, result: 'success' }),
        probeFailed: probes.labels({ epr, result: 'failure' }),
      })
    }
    return d
  }
  return pmt.onRecord((epr, s) => {
    const d = perDomain(epr)
    if (s.probe === true) { (s.ok ? d.probeOk : d.probeFailed).inc(); return }
    d.calls.inc()
    if (!s.ok) { d.failed.inc(); return }
    if ((s.bytes ?? 0) > 0) d.bytes.inc(s.bytes)
    if (s.waited !== true) d.latency.observe(s.micros / 1e6)
  })
}

/**
 * The PMT's rows, read at scrape time: one pass over the rows serves every gauge of a scrape
 * (`refresh()`, which `metrics()` calls, starts a fresh pass; a scrape through the registry directly
 * reuses one up to 10 ms old).
 */
function rowGauges (pmt: PerformanceMappingTable, registers: Registry[]): { refresh: () => void } {
  let rowsAt = -Infinity
  let rows = pmt.rows()
  const current = (): PmtRow[] => {
    const now = performance.now()
    if (now - rowsAt > 10) { rows = pmt.rows(); rowsAt = now }
    return rows
  }
  const fromRows = (name: string, help: string, labelNames: string[], values: (r: PmtRow) => Array<[Record<string, string>, number | undefined]>): void => {
    new Gauge({ // eslint-disable-line no-new
      name, help, labelNames, registers,
      collect () {
        this.reset()
        for (const r of current()) for (const [l, v] of values(r)) if (v !== undefined && Number.isFinite(v)) this.set({ epr: r.identity.epr, ...l }, v)
      },
    })
  }
  fromRows('metaos_frontend_domain_info', 'Always 1: a domain of the PMT, its hosting, kernel and volume', ['epr', 'hosting', 'sysname', 'release', 'volume', 'zone'],
    (r) => [[{ hosting: r.identity.hosting, sysname: r.identity.kernel.sysname, release: r.identity.kernel.release, volume: r.identity.volume, zone: r.identity.zone ?? '' }, 1]])
  fromRows('metaos_frontend_domain_state', '1 for the state the domain is in (healthy, suspect, isolated, draining), 0 for the others', ['epr', 'state'],
    (r) => STATES.map((s) => [{ state: s }, r.state === s ? 1 : 0]))
  fromRows('metaos_frontend_domain_score', 'The domain\'s score in the PMT (docs/score.md): 100 · perf · health · sla · cost, weighted', ['epr'], (r) => [[{}, r.score.score]])
  fromRows('metaos_frontend_domain_score_part', 'The factors of the score (perf, health, sla, cost) and how fresh its measures are (freshness, 1 = fresh)', ['epr', 'part'],
    (r) => SCORE_PARTS.map((p) => [{ part: p }, r.score[p]]))
  fromRows('metaos_frontend_domain_latency_seconds', 'Latency the PMT holds: ewma (what the score uses), p50 and p99 over its window', ['epr', 'stat'],
    (r) => [[{ stat: 'ewma' }, ms(r.measures.latencyMs)], [{ stat: 'p50' }, ms(r.p50Ms)], [{ stat: 'p99' }, ms(r.p99Ms)]])
  fromRows('metaos_frontend_domain_error_rate', 'Error rate EWMA the PMT holds (0..1)', ['epr'], (r) => [[{}, r.measures.errorRate]])
  fromRows('metaos_frontend_domain_throughput_bytes_per_second', 'Throughput EWMA of large calls (≥ 64 KiB) the PMT holds', ['epr'],
    (r) => [[{}, r.measures.mbPerSec === undefined ? undefined : r.measures.mbPerSec * 1048576]])
  fromRows('metaos_frontend_domain_probe_latency_seconds', 'Latency of the last successful probe', ['epr'], (r) => [[{}, ms(r.measures.probeLatencyMs)]])
  fromRows('metaos_frontend_domain_measured_timestamp_seconds', 'When the domain was last measured (a call or a probe; Unix time)', ['epr'],
    (r) => [[{}, r.measures.measuredAt === 0 ? undefined : r.measures.measuredAt / 1000]])
  return { refresh: () => { rowsAt = -Infinity } }
}

/** Supervisor decisions, as they are made. Returns what stops observing them. */
function decisionMetrics (supervisor: NonNullable<FrontendMetricsParts['supervisor']>, registers: Registry[]): () => void {
  const decisions = new Counter({
    name: 'metaos_frontend_supervisor_decisions_total',
    help: 'Supervisor decisions by domain and the state they put it in: to="isolated" are isolations, to="healthy" readmissions, to="suspect" the first step of an isolation',
    labelNames: ['epr', 'to'],
    registers,
  })
  return supervisor.onDecision((d) => { decisions.inc({ epr: d.epr, to: d.to }) })
}

/** Dispatcher moves and lost sockets, as they happen; open streams and sockets at scrape time. Returns what stops observing them. */
function dispatcherMetrics (dispatchers: readonly MetricsDispatcher[], networkDispatchers: readonly MetricsNetworkDispatcher[], registers: Registry[]): () => void {
  const moves = new Counter({ name: 'metaos_frontend_stream_moves_total', help: 'Streams moved between domains of a volume: kind="migration" (asked, the supervisor\'s proactive move) or "failover" (after a failure), by the domain they left', labelNames: ['kind', 'from'], registers })
  const onMoved = (e: MoveEvent): void => { moves.inc({ kind: e.kind, from: e.from }) }
  for (const d of dispatchers) d.on('moved', onMoved)
  const lost = new Counter({ name: 'metaos_frontend_sockets_lost_total', help: 'Network sockets lost with the domain that held them', labelNames: ['epr'], registers })
  const onLost = (e: { epr: string }): void => { lost.inc({ epr: e.epr }) }
  for (const d of networkDispatchers) d.on('lost', onLost)
  new Gauge({ // eslint-disable-line no-new
    name: 'metaos_frontend_open_streams',
    help: 'Streams open through the dispatchers (the affinity table), by the domain serving them',
    labelNames: ['epr'],
    registers,
    collect () {
      this.reset()
      const by = new Map<string, number>()
      for (const d of dispatchers) for (const s of d.affinity.entries()) by.set(s.epr, (by.get(s.epr) ?? 0) + 1)
      for (const [epr, n] of by) this.set({ epr }, n)
    },
  })
  new Gauge({ // eslint-disable-line no-new
    name: 'metaos_frontend_open_sockets',
    help: 'Network sockets and listeners open through the network dispatchers, by the domain holding them',
    labelNames: ['epr'],
    registers,
    collect () {
      this.reset()
      const by = new Map<string, number>()
      for (const d of networkDispatchers) for (const epr of d.affinity.values()) by.set(epr, (by.get(epr) ?? 0) + 1)
      for (const [epr, n] of by) this.set({ epr }, n)
    },
  })
  return () => {
    for (const d of dispatchers) d.off('moved', onMoved)
    for (const d of networkDispatchers) d.off('lost', onLost)
  }
}

/** The brief's name for it. */
export const frontendMetrics = createFrontendMetrics

function ms (v: number | undefined): number | undefined {
  return v === undefined ? undefined : v / 1000
}
