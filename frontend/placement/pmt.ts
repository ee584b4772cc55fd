// The Performance Mapping Table (the paper's §2.C): one row per domain — identity, measures
// (latency EWMA and p50/p99 over a window, error rate, throughput, the time of each measure), the
// declared SLA and cost, the state, and the score computed from them (frontend/placement/score.ts). Fed by
// real calls and by probes; read by the rules engine and the supervisor. Holds no timers.
import { DEFAULT_WEIGHTS, score, type ScoreParts, type ScoreWeights } from './score.js'
import type { PmtEntry } from '../../wsdl/generated/performance-service.js'

export type DomainState = 'healthy' | 'suspect' | 'isolated' | 'draining'

export interface DomainIdentity {
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly hosting: string
  /** `version`: what `uname -v` says (a Debian kernel's package version is there). */
  readonly kernel: { readonly sysname: string, readonly release: string, readonly version?: string }
  readonly volume: string
  /** The distribution the domain runs, where known (os-release): what the Debian tracker is matched by. */
  readonly distribution?: { readonly id: string, readonly versionId?: string, readonly codename?: string }
  readonly zone?: string
  /** e.g. `node/20.20.2` (what GetDomainInfo reports). */
  readonly runtime?: string
}

export interface Declared {
  /** Availability importance, 0..1 (default 0.5). */
  readonly sla?: number
  readonly costPerCall?: number
  readonly costPerMB?: number
}

export interface Measures {
  latencyMs: number | undefined
  errorRate: number
  calls: number
  errors: number
  timeouts: number
  bytes: number
  /** EWMA of MB/s over calls that moved at least 64 KiB (their latency is not a latency measure). */
  mbPerSec: number | undefined
  measuredAt: number
  probeLatencyMs: number | undefined
  probedAt: number | undefined
}

export interface PmtRow {
  readonly identity: DomainIdentity
  readonly measures: Readonly<Measures>
  readonly p50Ms: number | undefined
  readonly p99Ms: number | undefined
  readonly sla: number
  readonly costPerCall: number
  readonly costPerMB: number
  readonly state: DomainState
  readonly score: ScoreParts
}

export interface Sample {
  readonly micros: number
  readonly bytes?: number
  readonly ok: boolean
  readonly timeout?: boolean
  /** A probe (Open/Close of a sample file) rather than an application's call. */
  readonly probe?: boolean
  /** A call that waited for a peer (a long poll): counts for bytes and errors, not as a latency or throughput measure. */
  readonly waited?: boolean
}

export interface PmtOptions {
  readonly weights?: ScoreWeights
  /** EWMA smoothing factor per sample (default 0.2). */
  readonly alpha?: number
  /**
   * EWMA time constant (ms, default 1000): a sample after a silence of dt weighs at least
   * 1 − e^(−dt/τ), so a domain measured only by rare probes follows them (a recovery shows within
   * a probe or two) while a busy domain still averages over many calls.
   */
  readonly tauMs?: number
  /** Latencies kept for percentiles (default 256). */
  readonly window?: number
  readonly now?: () => number
}

/** Calls moving at least this many bytes measure throughput, not latency. */
const LARGE = 64 * 1024

interface Entry {
  identity: DomainIdentity
  /** `self` when this module measured the row last, else the id of the module it came from. */
  origin: string
  /** Tracked (measured) by this module, not only learnt from others. */
  local: boolean
  /** When this module began tracking it (its first measure is on its way). */
  since: number
  measures: Measures
  window: number[]
  next: number
  declared: Required<Declared>
  state: DomainState
}

export class PerformanceMappingTable {
  readonly #rows = new Map<string, Entry>()
  readonly #weights: ScoreWeights
  readonly #alpha: number
  readonly #tau: number
  readonly #window: number
  readonly #now: () => number
  #exposure: ((identity: DomainIdentity) => number | undefined) | undefined

  constructor (o: PmtOptions = {}) {
    this.#weights = o.weights ?? DEFAULT_WEIGHTS
    this.#alpha = o.alpha ?? 0.2
    this.#tau = o.tauMs ?? 1000
    this.#window = o.window ?? 256
    this.#now = o.now ?? Date.now
  }

  get size (): number { return this.#rows.size }

  /** Adds a domain, or refreshes its identity and declarations (measures are kept). */
  upsert (identity: DomainIdentity, declared: Declared = {}): void {
    const e = this.#rows.get(identity.epr)
    const d = { sla: declared.sla ?? e?.declared.sla ?? 0.5, costPerCall: declared.costPerCall ?? e?.declared.costPerCall ?? 0, costPerMB: declared.costPerMB ?? e?.declared.costPerMB ?? 0 }
    if (e !== undefined) { e.identity = identity; e.declared = d; if (!e.local) e.since = this.#now(); e.local = true; return }
    this.#rows.set(identity.epr, {
      identity,
      origin: 'self',
      local: true,
      since: this.#now(),
      measures: { latencyMs: undefined, errorRate: 0, calls: 0, errors: 0, timeouts: 0, bytes: 0, mbPerSec: undefined, measuredAt: 0, probeLatencyMs: undefined, probedAt: undefined },
      window: [],
      next: 0,
      declared: d,
      state: 'healthy',
    })
  }

  /**
   * What vulnerabilities each domain is exposed to (the vulnerability feed): the highest severity,
   * 0–10, of those affecting it, which cuts its score (score.ts). Undefined: none.
   */
  setExposure (f: ((identity: DomainIdentity) => number | undefined) | undefined): void { this.#exposure = f }

  remove (epr: string): boolean { return this.#rows.delete(epr) }

  setState (epr: string, state: DomainState): void {
    const e = this.#rows.get(epr)
    if (e !== undefined) e.state = state
  }

  readonly #onRecord = new Set<(epr: string, s: Sample) => void>()

  /** Calls `f` with every sample the table takes (after it took it); returns the unsubscribe. */
  onRecord (f: (epr: string, s: Sample) => void): () => void {
    this.#onRecord.add(f)
    return () => { this.#onRecord.delete(f) }
  }

  /** Learns from one call or probe. Failed calls count as errors; their latency is not a speed measure. */
  record (epr: string, s: Sample): void {
    this.#learn(epr, s)
    if (this.#onRecord.size !== 0) for (const f of this.#onRecord) f(epr, s)
  }

  #learn (epr: string, s: Sample): void {
    const e = this.#rows.get(epr)
    if (e === undefined) return
    const m = e.measures
    const now = this.#now()
    const a = m.measuredAt === 0 ? this.#alpha : Math.max(this.#alpha, 1 - Math.exp(-Math.max(0, now - m.measuredAt) / this.#tau))
    const ms = s.micros / 1000
    m.errorRate = (1 - a) * m.errorRate + a * (s.ok ? 0 : 1)
    if (s.ok) {
      const bytes = s.bytes ?? 0
      // Latency is learnt from small calls; large ones measure throughput instead (size classes).
      if (s.waited === true) {
        // How long a long poll waited is the peer's business.
      } else if (bytes < LARGE) {
        m.latencyMs = m.latencyMs === undefined ? ms : (1 - a) * m.latencyMs + a * ms
        if (e.window.length < this.#window) e.window.push(ms)
        else e.window[e.next] = ms
        e.next = (e.next + 1) % this.#window
      } else if (s.micros > 0) {
        const mbs = bytes / 1048576 / (s.micros / 1e6)
        m.mbPerSec = m.mbPerSec === undefined ? mbs : (1 - a) * m.mbPerSec + a * mbs
      }
      m.bytes += bytes
    } else {
      m.errors++
      if (s.timeout === true) m.timeouts++
    }
    if (s.probe === true) { m.probedAt = now; if (s.ok) m.probeLatencyMs = ms } else m.calls++
    m.measuredAt = now
    e.origin = 'self'
  }

  /** The rows this module measured itself, for the exchange (never rows learnt from others: no echo). */
  exportOwn (): PmtEntry[] {
    return [...this.#rows.values()].filter((e) => e.origin === 'self' && e.measures.measuredAt > 0).map((e) => {
      const { identity: id, measures: m } = e
      return {
        epr: id.epr, endpoint: [...id.endpoints], hosting: id.hosting, sysname: id.kernel.sysname, release: id.kernel.release, volume: id.volume,
        ...(id.zone === undefined ? {} : { zone: id.zone }), ...(id.runtime === undefined ? {} : { runtime: id.runtime }),
        ...(m.latencyMs === undefined ? {} : { latencyMs: m.latencyMs }), errorRate: m.errorRate,
        ...(m.mbPerSec === undefined ? {} : { mbPerSec: m.mbPerSec }), calls: m.calls, measuredAt: m.measuredAt, state: e.state, origin: 'self',
      }
    })
  }

  /** Takes a row from another module when it is fresher than what this table has. Returns whether it was taken. */
  merge (r: PmtEntry, from: string, maxRows = 10_000): boolean {
    let e = this.#rows.get(r.epr)
    if (e === undefined) {
      if (this.#rows.size >= maxRows) return false
      this.upsert({ epr: r.epr, endpoints: r.endpoint, hosting: r.hosting, kernel: { sysname: r.sysname, release: r.release }, volume: r.volume, ...(r.zone === undefined ? {} : { zone: r.zone }), ...(r.runtime === undefined ? {} : { runtime: r.runtime }) })
      e = this.#rows.get(r.epr)!
      e.local = false
    }
    if (r.measuredAt <= e.measures.measuredAt) return false
    Object.assign(e.measures, { latencyMs: r.latencyMs, errorRate: r.errorRate, mbPerSec: r.mbPerSec, calls: r.calls, measuredAt: r.measuredAt })
    if (!e.local) e.state = r.state
    e.origin = from
    return true
  }

  /**
   * Whether this module's own view of `epr` stands against a peer's row: it tracks the domain and
   * measured it (or began tracking it) less than `windowMs` ago.
   */
  ownMeasureFresh (epr: string, windowMs: number): boolean {
    const e = this.#rows.get(epr)
    if (e === undefined || !e.local) return false
    const last = e.origin === 'self' ? Math.max(e.measures.measuredAt, e.since) : e.since
    return this.#now() - last < windowMs
  }

  /** A module that disappeared: rows only it knew go; rows this module tracks stay (and are its own again). */
  dropOrigin (from: string): number {
    let n = 0
    for (const [epr, e] of this.#rows) {
      if (e.origin !== from) continue
      if (e.local) e.origin = 'self'
      else { this.#rows.delete(epr); n++ }
    }
    return n
  }

  row (epr: string, mbPerCall = 0): PmtRow | undefined {
    const e = this.#rows.get(epr)
    return e === undefined ? undefined : this.#snapshot(e, mbPerCall)
  }

  /** Every row, best score first. */
  rows (mbPerCall = 0): PmtRow[] {
    return [...this.#rows.values()].map((e) => this.#snapshot(e, mbPerCall)).sort((a, b) => b.score.score - a.score.score)
  }

  #snapshot (e: Entry, mbPerCall: number): PmtRow {
    const sorted = [...e.window].sort((x, y) => x - y)
    const q = (f: number): number | undefined => sorted.length === 0 ? undefined : sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))]
    return {
      identity: e.identity,
      measures: { ...e.measures },
      p50Ms: q(0.5),
      p99Ms: q(0.99),
      sla: e.declared.sla,
      costPerCall: e.declared.costPerCall,
      costPerMB: e.declared.costPerMB,
      state: e.state,
      score: score({ latencyMs: e.measures.latencyMs, errorRate: e.measures.errorRate, measuredAt: e.measures.measuredAt, ...e.declared, exposure: this.#exposure?.(e.identity) ?? 0 }, this.#now(), mbPerCall, this.#weights),
    }
  }
}
