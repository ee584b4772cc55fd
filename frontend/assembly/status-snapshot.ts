// The status snapshot a frontend serves (metaos up's /status, the dashboard, `metaos status`):
// its domains, the PMT rows with the parts of each score, the supervisor's decisions, the open
// streams, the moves, the latest placements with the rules that fired, and lifecycle events.
// LocalCluster and IntelligentFrontend both make one; the shapes and the PMT rows' mapping live here.
import type { MoveEvent, PlacementRecord } from '../placement/dispatcher.js'
import type { PmtRow } from '../placement/pmt.js'
import type { VulnerabilityFeed } from '../placement/vulnerability-feed.js'
import type { Decision } from './supervisor.js'

/** What the domain manager did to a domain, as it happened (started, restarted, stopped, exited unasked). */
export interface LifecycleEvent {
  readonly at: number
  readonly name: string
  readonly epr: string
  /** A managed domain: started … exited; a discovered one: discovered (tracked), gone (its Bye or silence), forged-bye (ignored), refused (could not prove itself). */
  readonly kind: 'started' | 'restarted' | 'stopped' | 'exited' | 'discovered' | 'gone' | 'forged-bye' | 'refused'
  readonly pid: number
  readonly detail?: string
}

export interface ClusterStatus {
  /** What serves it (the page's title line): `metaos up`, or an application's frontend. */
  readonly title?: string
  readonly volume: string
  readonly domains: ReadonlyArray<{
    name: string, epr: string, pid: number, state: string, endpoints: string[], restarts: number, startedAt: number, limits?: unknown
    service: string, volume?: string, hosting?: string, kernel?: { sysname: string, release: string }, runtime?: string
  }>
  readonly pmt: ReadonlyArray<{
    epr: string, name?: string, state: string, score: number, latencyMs: number | undefined, p50Ms: number | undefined, p99Ms: number | undefined, errorRate: number,
    mbPerSec: number | undefined, calls: number, errors: number, timeouts: number, bytes: number, measuredAt: number, probedAt: number | undefined, probeLatencyMs: number | undefined
    /** The factors of the score (frontend/placement/score.ts): score = 100 · perf^wp · health^wh · sla^ws · cost^wc. */
    parts: { perf: number, health: number, sla: number, cost: number, freshness: number, exposure: number }
    /** The vulnerability feed's matches for this domain: ids, the action and the highest severity (absent: none, or no feed). */
    vulnerabilities?: { ids: readonly string[], action: 'exclude' | 'lower', severity: number }
    declared: { sla: number, costPerCall: number, costPerMB: number }
    hosting: string, kernel: { sysname: string, release: string }, volume: string
  }>
  readonly decisions: readonly Decision[]
  /** Open streams: the domain serving each (`epr`) and its epoch (bumped at each move). */
  readonly streams: ReadonlyArray<{ path: string, epr: string, position: number, moves: number, epoch?: number, access: string, share: string, volume: string }>
  /** Moves (failovers, migrations), with when each happened. */
  readonly moves: ReadonlyArray<MoveEvent & { at?: number }>
  /** The latest placements, with the rules that fired. */
  readonly placements: readonly PlacementRecord[]
  /** Rules loaded in the dispatcher (names, in file order); empty when the score alone decides. */
  readonly rules: readonly string[]
  /** What the domain manager did (starts, restarts, exits), latest last. */
  readonly lifecycle: readonly LifecycleEvent[]
  /** With coordination: every stream of the stream directory, this frontend's and others' — its owner (EPR), epoch and position as of its last move. */
  readonly directory?: ReadonlyArray<{ stream: string, path: string, volume: string, owner: string, epoch: number, position: number, frontend?: string }>
}

/** The PMT's rows as the status shows them (`names`: a display name by EPR, where one is known). */
export function pmtStatus (rows: readonly PmtRow[], names: ReadonlyMap<string, string>, feed?: VulnerabilityFeed): ClusterStatus['pmt'] {
  return rows.map((r) => ({
    epr: r.identity.epr, ...(names.has(r.identity.epr) ? { name: names.get(r.identity.epr)! } : {}), state: r.state, score: r.score.score,
    latencyMs: r.measures.latencyMs, p50Ms: r.p50Ms, p99Ms: r.p99Ms, errorRate: r.measures.errorRate, mbPerSec: r.measures.mbPerSec,
    calls: r.measures.calls, errors: r.measures.errors, timeouts: r.measures.timeouts, bytes: r.measures.bytes,
    measuredAt: r.measures.measuredAt, probedAt: r.measures.probedAt, probeLatencyMs: r.measures.probeLatencyMs,
    parts: { perf: r.score.perf, health: r.score.health, sla: r.score.sla, cost: r.score.cost, freshness: r.score.freshness, exposure: r.score.exposure },
    ...vulnerabilitiesOf(r, feed),
    declared: { sla: r.sla, costPerCall: r.costPerCall, costPerMB: r.costPerMB },
    hosting: r.identity.hosting, kernel: { sysname: r.identity.kernel.sysname, release: r.identity.kernel.release }, volume: r.identity.volume,
  }))
}

function vulnerabilitiesOf (r: PmtRow, feed: VulnerabilityFeed | undefined): { vulnerabilities?: { ids: readonly string[], action: 'exclude' | 'lower', severity: number } } {
  const x = feed?.exposure(r)
  return x === undefined ? {} : { vulnerabilities: { ids: x.ids.slice(0, 50), action: x.action, severity: x.severity } }
}
