// The dashboard's time series: samples the Performance Mapping Table every second into a bounded
// ring buffer per domain (10 minutes by default), so the page can chart throughput and latency of
// each domain over time. Throughput is what moved (bytes and calls since the previous sample), not
// the PMT's MB/s EWMA, which only large calls update and which stays put while a domain is idle.
// Holds one unref'd timer; never measures a domain itself (the performance module does).
import type { PerformanceMappingTable } from '../frontend/placement/pmt.js'

export interface HistoryPoint {
  /** ms since the epoch. */
  readonly t: number
  /** MB moved (calls and probes) per second since the previous sample. */
  readonly mbPerSec: number
  readonly callsPerSec: number
  /** The PMT's latency EWMA of small calls, and p99 over its window (ms); null before any measure. */
  readonly latencyMs: number | null
  readonly p99Ms: number | null
  readonly errorRate: number
  readonly score: number
  readonly state: string
}

export interface HistoryOptions {
  readonly pmt: PerformanceMappingTable
  /** Sampling period (ms, default 1000). */
  readonly intervalMs?: number
  /** Samples kept per domain (default 600: 10 minutes at one a second). */
  readonly capacity?: number
  readonly now?: () => number
}

/** A fixed-size ring: pushing past capacity drops the oldest. */
class Ring<T> {
  readonly #items: T[] = []
  #start = 0
  readonly #capacity: number
  constructor (capacity: number) { this.#capacity = capacity }
  push (x: T): void {
    if (this.#items.length < this.#capacity) { this.#items.push(x); return }
    this.#items[this.#start] = x
    this.#start = (this.#start + 1) % this.#capacity
  }

  toArray (): T[] { return [...this.#items.slice(this.#start), ...this.#items.slice(0, this.#start)] }
  get last (): T | undefined { return this.#items.length === 0 ? undefined : this.#items[(this.#start + this.#items.length - 1) % this.#items.length] }
}

export class PmtHistory {
  readonly intervalMs: number
  readonly capacity: number
  readonly #pmt: PerformanceMappingTable
  readonly #now: () => number
  readonly #series = new Map<string, Ring<HistoryPoint>>()
  readonly #last = new Map<string, { t: number, bytes: number, calls: number }>()
  #timer: NodeJS.Timeout | undefined

  constructor (o: HistoryOptions) {
    this.#pmt = o.pmt
    this.intervalMs = o.intervalMs ?? 1000
    this.capacity = o.capacity ?? 600
    this.#now = o.now ?? Date.now
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.sample()
    this.#timer = setInterval(() => { this.sample() }, this.intervalMs)
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Takes one sample of every PMT row (the timer calls it; tests may too). */
  sample (): void {
    const t = this.#now()
    for (const r of this.#pmt.rows()) {
      const epr = r.identity.epr
      const m = r.measures
      const prev = this.#last.get(epr)
      const dt = prev === undefined ? 0 : (t - prev.t) / 1000
      // Counters only grow; a row learnt anew (or an exchange that replaced it) starts again from zero.
      const bytes = prev === undefined || dt <= 0 ? 0 : Math.max(0, m.bytes - prev.bytes)
      const calls = prev === undefined || dt <= 0 ? 0 : Math.max(0, m.calls - prev.calls)
      this.#last.set(epr, { t, bytes: m.bytes, calls: m.calls })
      let ring = this.#series.get(epr)
      if (ring === undefined) { ring = new Ring(this.capacity); this.#series.set(epr, ring) }
      ring.push({
        t,
        mbPerSec: dt > 0 ? bytes / 1048576 / dt : 0,
        callsPerSec: dt > 0 ? calls / dt : 0,
        latencyMs: m.latencyMs ?? null,
        p99Ms: r.p99Ms ?? null,
        errorRate: m.errorRate,
        score: r.score.score,
        state: r.state,
      })
    }
  }

  /** Every domain's series, oldest point first; `since` (ms) keeps only later points. */
  series (since = 0): Record<string, HistoryPoint[]> {
    const out: Record<string, HistoryPoint[]> = {}
    for (const [epr, ring] of this.#series) out[epr] = ring.toArray().filter((p) => p.t > since)
    return out
  }

  /** The latest point of each domain. */
  latest (): Record<string, HistoryPoint> {
    const out: Record<string, HistoryPoint> = {}
    for (const [epr, ring] of this.#series) { const p = ring.last; if (p !== undefined) out[epr] = p }
    return out
  }
}
