// The SLA of each domain and the forecasts the supervisor holds against it (issue 22, point 3).
// An SLA is what the operator promises the applications: a p99 latency, a minimum throughput, a
// maximum error rate — for every domain (`sla`) and per domain by EPR (`slas`, key by key over the
// default). Per domain the supervisor keeps one LimitForecast per measure of the SLA, fed at each
// fresh measure of the PMT:
//   - p99: the 99th percentile (nearest rank) of the small calls' latencies the PMT took since the
//     last observation — a tail, not the mean; a row only learnt from another frontend (no
//     samples here) gives its latency EWMA instead;
//   - throughput: the mean MB/s of the large calls (≥ 64 KiB) since the last observation;
//   - error rate: the PMT's error-rate EWMA.
// `observe` returns the first confirmed crossing as a reason for the timeline: "forecast: p99 will
// reach X ms in Y s (SLA Z ms)". Holds no timers; subscribes to the PMT's samples until `close`.
import { MetaosError } from '../../soap-runtime/errors.js'
import { LimitForecast, type Crossing, type LimitOptions } from './forecast.js'
import type { PerformanceMappingTable, PmtRow } from './pmt.js'

/** What a domain must keep to (every key optional: a measure without one is not forecast). */
export interface Sla {
  /** 99th-percentile latency of small calls, ms. */
  readonly p99Ms?: number
  /** Throughput of large calls (≥ 64 KiB), MB/s. */
  readonly minMBps?: number
  /** Error rate, 0..1. */
  readonly maxErrorRate?: number
}

export interface SlaForecastOptions {
  /** Every domain's SLA. */
  readonly sla?: Sla
  /** Per domain (by EPR), key by key over `sla`. */
  readonly slas?: Readonly<Record<string, Sla>>
  /** The forecasters' parameters (forecast.ts); `false`: no forecasting (the SLA still defines the reactive alarms). */
  readonly forecast?: LimitOptions | false
}

export type Measure = 'p99' | 'throughput' | 'errors'

/** A domain's forecast as the status shows it: per measure with an SLA, level, trend (per s), the forecast at the horizon and the limit. */
export type ForecastView = Partial<Record<Measure, { level: number, trend: number, forecast: number, limit: number, horizonMs: number }>>

/** A confirmed crossing, with what the timeline says. */
export interface ForecastAlarm { readonly measure: Measure, readonly crossing: Crossing, readonly reason: string }

/** Calls moving at least this many bytes measure throughput, not latency (as in the PMT). */
const LARGE = 64 * 1024

interface Domain {
  f: Partial<Record<Measure, LimitForecast>>
  latencies: number[]
  mbps: number[]
  /** This module took samples of it (else its row is learnt from another frontend). */
  local: boolean
}

export class SlaForecasts {
  readonly #o: SlaForecastOptions
  readonly #domains = new Map<string, Domain>()
  readonly #unsubscribe: () => void

  constructor (pmt: PerformanceMappingTable, o: SlaForecastOptions) {
    this.#o = o
    for (const s of [o.sla, ...Object.values(o.slas ?? {})]) if (s !== undefined) validateSla(s, 'sla')
    // Without any SLA there is nothing to forecast against: no subscription, no cost per call.
    this.#unsubscribe = o.sla === undefined && Object.keys(o.slas ?? {}).length === 0 ? () => {} : pmt.onRecord((epr, s) => {
      if (!s.ok || s.waited === true || this.slaOf(epr) === undefined) return
      const d = this.#domain(epr)
      const bytes = s.bytes ?? 0
      d.local = true
      if (bytes < LARGE) { if (d.latencies.length < 4096) d.latencies.push(s.micros / 1000) } else if (s.micros > 0 && d.mbps.length < 4096) d.mbps.push(bytes / 1048576 / (s.micros / 1e6))
    })
  }

  close (): void { this.#unsubscribe() }

  get enabled (): boolean { return this.#o.forecast !== false }

  /** The domain's SLA (undefined when none is set for it). */
  slaOf (epr: string): Sla | undefined {
    const own = this.#o.slas?.[epr]
    if (own === undefined) return this.#o.sla
    return { ...this.#o.sla, ...own }
  }

  /**
   * Feeds a fresh measure of a healthy domain to its forecasters; returns the first confirmed
   * crossing. Call once per fresh measure (the PMT's `measuredAt` changed).
   */
  observe (r: PmtRow, now: number): ForecastAlarm | undefined {
    const epr = r.identity.epr
    const sla = this.slaOf(epr)
    if (sla === undefined) return undefined
    const d = this.#domain(epr)
    const latencies = d.latencies
    const mbps = d.mbps
    d.latencies = []
    d.mbps = []
    if (this.#o.forecast === false) return undefined
    const opts = this.#o.forecast ?? {}
    let alarm: ForecastAlarm | undefined
    const feed = (m: Measure, kind: 'max' | 'min', limit: number | undefined, x: number | undefined): void => {
      if (limit === undefined || x === undefined) return
      const f = (d.f[m] ??= new LimitForecast(kind, opts))
      const c = f.observe(x, now, limit)
      if (c !== undefined && alarm === undefined) alarm = { measure: m, crossing: c, reason: describe(m, c) }
    }
    feed('p99', 'max', sla.p99Ms, latencies.length > 0 ? p99(latencies) : d.local ? undefined : r.measures.latencyMs)
    feed('throughput', 'min', sla.minMBps, mbps.length > 0 ? mbps.reduce((a, b) => a + b, 0) / mbps.length : undefined)
    feed('errors', 'max', sla.maxErrorRate, r.measures.errorRate)
    return alarm
  }

  /** Starts a domain's forecasts over (after an isolation or a readmission: the old trend says nothing of the new run). */
  reset (epr: string): void {
    const d = this.#domains.get(epr)
    if (d !== undefined) Object.assign(d, { f: {}, latencies: [], mbps: [] })
  }

  /** Where each domain's forecasts stand now (for `metaos status` and the dashboard). */
  view (epr: string): ForecastView | undefined {
    const d = this.#domains.get(epr)
    if (d === undefined) return undefined
    const out: ForecastView = {}
    for (const [m, f] of Object.entries(d.f) as Array<[Measure, LimitForecast]>) {
      const p = f.peek()
      const sla = this.slaOf(epr)
      const limit = m === 'p99' ? sla?.p99Ms : m === 'throughput' ? sla?.minMBps : sla?.maxErrorRate
      if (p !== undefined && limit !== undefined) out[m] = { ...p, limit, horizonMs: f.horizonMs }
    }
    return Object.keys(out).length === 0 ? undefined : out
  }

  #domain (epr: string): Domain {
    let d = this.#domains.get(epr)
    if (d === undefined) this.#domains.set(epr, d = { f: {}, latencies: [], mbps: [], local: false })
    return d
  }
}

function p99 (xs: number[]): number {
  xs.sort((a, b) => a - b)
  return xs[Math.min(xs.length - 1, Math.ceil(0.99 * xs.length) - 1)]!
}

/** The timeline's words for a crossing. */
export function describe (m: Measure, c: Crossing): string {
  const s = (ms: number): string => (ms / 1000).toFixed(1)
  if (m === 'p99') return `forecast: p99 will reach ${c.forecast.toFixed(1)} ms in ${s(c.horizonMs)} s (SLA ${c.limit} ms; now ${c.level.toFixed(1)} ms, ${c.trend >= 0 ? '+' : ''}${c.trend.toFixed(1)} ms/s, crossing in ~${s(c.inMs)} s)`
  if (m === 'throughput') return `forecast: throughput will fall to ${Math.max(0, c.forecast).toFixed(1)} MB/s in ${s(c.horizonMs)} s (SLA ${c.limit} MB/s; now ${c.level.toFixed(1)} MB/s, ${c.trend.toFixed(1)} MB/s per s, crossing in ~${s(c.inMs)} s)`
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
  return `forecast: error rate will reach ${pct(Math.min(1, c.forecast))} in ${s(c.horizonMs)} s (SLA ${pct(c.limit)}; now ${pct(c.level)}, crossing in ~${s(c.inMs)} s)`
}

/** Checks an SLA's values; INVALID_ARGUMENT names the key. */
export function validateSla (s: unknown, where: string): Sla {
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new MetaosError('INVALID_ARGUMENT', `${where} must be an object { "p99Ms"?, "minMBps"?, "maxErrorRate"? }`)
  const o = s as Record<string, unknown>
  for (const k of Object.keys(o)) if (!['p99Ms', 'minMBps', 'maxErrorRate'].includes(k)) throw new MetaosError('INVALID_ARGUMENT', `unknown key "${where}.${k}" (accepted: p99Ms, minMBps, maxErrorRate)`)
  for (const k of ['p99Ms', 'minMBps']) if (o[k] !== undefined && !(typeof o[k] === 'number' && Number.isFinite(o[k]) && (o[k] as number) > 0)) throw new MetaosError('INVALID_ARGUMENT', `"${where}.${k}" must be a number above 0`)
  if (o.maxErrorRate !== undefined && !(typeof o.maxErrorRate === 'number' && o.maxErrorRate > 0 && o.maxErrorRate < 1)) throw new MetaosError('INVALID_ARGUMENT', `"${where}.maxErrorRate" must be a number between 0 and 1`)
  return o as Sla
}
