// Proactive supervision (the paper's §2.D): watches the Performance Mapping Table and what the
// dispatchers saw, and acts before a degrading domain costs the applications. A domain is made
// suspect on a rising latency (its latency EWMA well above its own baseline), an error burst,
// missed probes, a failure a dispatcher saw (reset, hang, drain), or a vulnerability-feed
// exclusion; no new stream goes there, its open streams are migrated to a healthy domain of the same
// volume, then it is isolated — and, by policy, restarted or cloned through `onIsolate`. A domain
// whose probes are good again for `recoverMs` is readmitted. Every decision is logged with its
// reason and kept (`decisions`) for `metaos status`. The timer never keeps the process alive.
// With an SLA (`sla`, `slas`), the SLA says what degraded is — latency EWMA over its p99Ms, MB/s
// under its minMBps, errors over its maxErrorRate — and each domain's measures are forecast
// (Holt's linear trend, frontend/placement/forecast.ts): a domain whose forecast crosses its SLA
// within the horizon is isolated before it does ("forecast: p99 will reach …").
import type { Logger } from 'pino'
import { silentLogger } from '../../soap-runtime/logger.js'
import type { PerformanceModule } from '../placement/performance-module.js'
import type { DomainState, PerformanceMappingTable, PmtRow } from '../placement/pmt.js'
import type { VulnerabilityFeed } from '../placement/vulnerability-feed.js'
import { SlaForecasts, type ForecastView, type SlaForecastOptions } from '../placement/sla-forecast.js'

/** What the supervisor watches and moves streams with: the storage dispatcher, the network dispatcher. */
export interface Supervised {
  on: (event: 'suspect', listener: (e: { readonly epr: string, readonly reason: string, readonly op: string }) => void) => unknown
  off: (event: 'suspect', listener: (e: { readonly epr: string, readonly reason: string, readonly op: string }) => void) => unknown
  /** Moves what can move off a domain; returns how many moved. */
  migrateAll: (epr: string, reason: string) => Promise<number>
}

export interface SupervisorOptions extends SlaForecastOptions {
  readonly pmt: PerformanceMappingTable
  readonly dispatchers: readonly Supervised[]
  /** Period of the watch (ms, default 200). */
  readonly intervalMs?: number
  /** Latency this many times the domain's baseline is degradation (default 4)… */
  readonly latencyFactor?: number
  /** …when it is also at least this many ms above it (default 10). */
  readonly latencyMarginMs?: number
  /** Error-rate EWMA above which a domain is suspect (default 0.3). */
  readonly errorRate?: number
  /** Fresh measures in a row that must show a soft degradation (latency, throughput, errors) before acting (default 2): one outlier is not a trend. */
  readonly confirmations?: number
  /** Good measures needed this long before an isolated domain is readmitted (default 3000 ms). */
  readonly recoverMs?: number
  readonly feed?: VulnerabilityFeed
  /** Probes the domains that are not healthy every `recheckMs`, whatever the application does, so a recovery is seen soon. */
  readonly perf?: PerformanceModule
  /** Default 500 ms. */
  readonly recheckMs?: number
  /** Policy after an isolation, e.g. restart the domain or clone a healthy one (DomainManager). */
  readonly onIsolate?: (epr: string, reason: string) => Promise<void>
  readonly logger?: Logger
  readonly now?: () => number
}

export interface Decision {
  readonly at: number
  readonly epr: string
  readonly from: DomainState
  readonly to: DomainState
  readonly reason: string
  /** Streams migrated by this decision. */
  readonly migrated?: number
  /** An operator's action (`metaos domain`, the dashboard): what was done (start, stop, pause…)… */
  readonly action?: string
  /** …and who asked (as the request said). */
  readonly by?: string
}

interface Watch { baseline: number | undefined, mbps: number | undefined, strikes: number, seenAt: number, goodSince: number | undefined, acting: boolean, isolatedAt: number }

export class Supervisor {
  readonly decisions: Decision[] = []
  readonly #o: SupervisorOptions
  readonly #log: Logger
  readonly #watch = new Map<string, Watch>()
  readonly #dispatchers: Supervised[]
  readonly #forecasts: SlaForecasts
  #timer: NodeJS.Timeout | undefined
  readonly #onSuspect = (e: { epr: string, reason: string, op: string }): void => { void this.#act(e.epr, `${e.op} failed: ${e.reason}`) }

  constructor (o: SupervisorOptions) {
    this.#o = o
    this.#log = o.logger ?? silentLogger
    this.#dispatchers = [...o.dispatchers]
    this.#forecasts = new SlaForecasts(o.pmt, o)
  }

  /** Each domain's forecasts against its SLA, where it has one (by EPR): for the status and the dashboard. */
  forecasts (): Record<string, ForecastView> {
    const out: Record<string, ForecastView> = {}
    for (const r of this.#o.pmt.rows()) {
      const v = this.#forecasts.view(r.identity.epr)
      if (v !== undefined) out[r.identity.epr] = v
    }
    return out
  }

  /** Supervises the streams of one more dispatcher (e.g. one made for another volume). */
  watch (d: Supervised): void {
    if (this.#dispatchers.includes(d)) return
    this.#dispatchers.push(d)
    if (this.#timer !== undefined) d.on('suspect', this.#onSuspect)
  }

  start (): void {
    if (this.#timer !== undefined) return
    for (const d of this.#dispatchers) d.on('suspect', this.#onSuspect)
    this.#timer = setInterval(() => { this.tick() }, this.#o.intervalMs ?? 200)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    for (const d of this.#dispatchers) d.off('suspect', this.#onSuspect)
  }

  /** Stops, and lets go of the PMT (the forecasts' subscription to its samples). */
  close (): void {
    this.stop()
    this.#forecasts.close()
  }

  #now (): number { return (this.#o.now ?? Date.now)() }

  /**
   * Isolates a domain now, as on a failure: suspect, its streams migrated, isolated (then the
   * isolation policy). Resolves when done; a domain already isolated, or unknown to the PMT, is left as it is.
   */
  async isolate (epr: string, reason: string): Promise<void> { await this.#act(epr, reason) }

  /**
   * Puts an operator's action on the timeline (`decisions`): what, who, when, and the domain's PMT
   * state, which the action itself does not change. Not passed to `onDecision` (those are the supervisor's own).
   */
  note (epr: string, action: string, by: string, reason: string): Decision {
    const state = this.#o.pmt.row(epr)?.state ?? 'healthy'
    const d: Decision = { at: this.#now(), epr, from: state, to: state, reason, action, by }
    this.decisions.push(d)
    if (this.decisions.length > 1000) this.decisions.splice(0, this.decisions.length - 1000)
    this.#log.warn(d, `operator ${action} by ${by}: ${reason}`)
    return d
  }

  /** Something outside the PMT saw a domain fail (its process exited, the manager says): act now. */
  report (epr: string, reason: string): void { void this.#act(epr, reason) }

  /** One look at every domain (the timer calls it; tests may too). */
  tick (): void {
    for (const r of this.#o.pmt.rows()) {
      const w = this.#watchOf(r.identity.epr)
      if (w.acting) continue
      if (r.state === 'healthy') {
        const hard = this.#o.feed?.assess(r) === 'exclude' ? 'listed in the vulnerability feed' : undefined
        if (hard !== undefined) { void this.#act(r.identity.epr, hard); continue }
        // A soft alarm counts once per fresh measure, and acts after `confirmations` in a row.
        const fresh = r.measures.measuredAt !== w.seenAt
        w.seenAt = r.measures.measuredAt
        // The forecast sees every fresh measure; a confirmed crossing of the SLA acts at once.
        const coming = fresh ? this.#forecasts.observe(r, this.#now()) : undefined
        if (coming !== undefined) { w.strikes = 0; void this.#act(r.identity.epr, coming.reason); continue }
        const why = this.#degraded(r, w)
        if (why !== undefined) {
          if (fresh) w.strikes++
          if (w.strikes >= (this.#o.confirmations ?? 2)) { w.strikes = 0; void this.#act(r.identity.epr, why) }
          continue
        }
        if (fresh) w.strikes = 0
        const lat = r.measures.latencyMs
        // The baseline follows the domain's healthy latency slowly (a slow drift is not an alarm).
        if (lat !== undefined) w.baseline = w.baseline === undefined ? lat : 0.95 * w.baseline + 0.05 * lat
        const mbps = r.measures.mbPerSec
        if (mbps !== undefined) w.mbps = w.mbps === undefined ? mbps : 0.95 * w.mbps + 0.05 * mbps
      } else {
        const probed = r.measures.probedAt ?? 0
        if (this.#o.perf !== undefined && this.#now() - probed >= (this.#o.recheckMs ?? 500)) void this.#o.perf.probe(r.identity.epr)
        this.#maybeReadmit(r, w)
      }
    }
  }

  #watchOf (epr: string): Watch {
    let w = this.#watch.get(epr)
    if (w === undefined) this.#watch.set(epr, w = { baseline: undefined, mbps: undefined, strikes: 0, seenAt: 0, goodSince: undefined, acting: false, isolatedAt: 0 })
    return w
  }

  #degraded (r: PmtRow, w: Watch): string | undefined {
    const m = r.measures
    const sla = this.#forecasts.slaOf(r.identity.epr)
    if (m.errorRate > (sla?.maxErrorRate ?? this.#o.errorRate ?? 0.3)) return `error burst: error rate ${(m.errorRate * 100).toFixed(0)}%${sla?.maxErrorRate === undefined ? '' : ` (SLA ${(sla.maxErrorRate * 100).toFixed(1)}%)`}`
    const lat = m.latencyMs
    // With an SLA, degraded is what breaks it; without one, what departs far from the domain's own baseline.
    if (sla?.p99Ms !== undefined) {
      if (lat !== undefined && lat > sla.p99Ms) return `SLA broken: latency ${lat.toFixed(1)} ms over the SLA's p99 of ${sla.p99Ms} ms`
    } else if (lat !== undefined && w.baseline !== undefined && lat > (this.#o.latencyFactor ?? 4) * w.baseline && lat - w.baseline > (this.#o.latencyMarginMs ?? 10)) {
      return `latency rising: ${lat.toFixed(1)} ms against a baseline of ${w.baseline.toFixed(1)} ms`
    }
    // Large calls measure throughput, not latency: a collapse of MB/s is the same alarm.
    const mbps = m.mbPerSec
    if (sla?.minMBps !== undefined) {
      if (mbps !== undefined && mbps < sla.minMBps) return `SLA broken: throughput ${mbps.toFixed(1)} MB/s under the SLA's ${sla.minMBps} MB/s`
    } else if (mbps !== undefined && w.mbps !== undefined && mbps < w.mbps / (this.#o.latencyFactor ?? 4)) {
      return `throughput falling: ${mbps.toFixed(1)} MB/s against a baseline of ${w.mbps.toFixed(1)} MB/s`
    }
    return undefined
  }

  #good (r: PmtRow, w: Watch): boolean {
    const m = r.measures
    if (m.probedAt === undefined || m.probedAt <= w.isolatedAt || this.#o.feed?.assess(r) === 'exclude') return false
    const lat = m.latencyMs
    const base = w.baseline ?? lat ?? 0
    const sla = this.#forecasts.slaOf(r.identity.epr)?.p99Ms
    return m.errorRate < 0.1 && lat !== undefined && (sla === undefined || lat < sla) && lat <= Math.max((this.#o.latencyFactor ?? 4) * base, base + (this.#o.latencyMarginMs ?? 10)) / 2
  }

  #maybeReadmit (r: PmtRow, w: Watch): void {
    const now = this.#now()
    if (!this.#good(r, w)) { w.goodSince = undefined; return }
    w.goodSince ??= now
    if (now - w.goodSince >= (this.#o.recoverMs ?? 3000)) {
      this.#decide(r.identity.epr, r.state, 'healthy', `measures good again for ${now - w.goodSince} ms`)
      w.goodSince = undefined
      this.#forecasts.reset(r.identity.epr)
    }
  }

  readonly #onDecision = new Set<(d: Decision) => void>()

  /** Calls `f` with every decision as it is made (`decisions` keeps only the last 1000); returns the unsubscribe. */
  onDecision (f: (d: Decision) => void): () => void {
    this.#onDecision.add(f)
    return () => { this.#onDecision.delete(f) }
  }

  #decide (epr: string, from: DomainState, to: DomainState, reason: string, migrated?: number): void {
    this.#o.pmt.setState(epr, to)
    const d: Decision = { at: this.#now(), epr, from, to, reason, ...(migrated === undefined ? {} : { migrated }) }
    this.decisions.push(d)
    if (this.decisions.length > 1000) this.decisions.splice(0, this.decisions.length - 1000)
    this.#log.warn(d, `domain ${to}: ${reason}`)
    for (const f of this.#onDecision) f(d)
  }

  /** Suspect → migrate the domain's streams → isolated (→ the isolation policy). */
  async #act (epr: string, reason: string): Promise<void> {
    const w = this.#watchOf(epr)
    const row = this.#o.pmt.row(epr)
    if (w.acting || row === undefined || row.state === 'isolated') return
    w.acting = true
    try {
      // A dispatcher may already have marked it (suspect or draining): the decision is recorded all the same.
      this.#decide(epr, row.state === 'suspect' || row.state === 'draining' ? 'healthy' : row.state, row.state === 'draining' ? 'draining' : 'suspect', reason)
      let migrated = 0
      for (const d of this.#dispatchers) migrated += await d.migrateAll(epr, reason)
      w.isolatedAt = this.#now()
      w.goodSince = undefined
      this.#forecasts.reset(epr)
      this.#decide(epr, this.#o.pmt.row(epr)?.state ?? 'suspect', 'isolated', `${reason}; ${migrated} stream(s) migrated`, migrated)
      await this.#o.onIsolate?.(epr, reason).catch((e: unknown) => { this.#log.error({ epr, err: e }, 'isolation policy failed') })
    } finally {
      w.acting = false
    }
  }
}
