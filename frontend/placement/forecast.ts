// Forecasting a domain's measures (issue 22, point 3): Holt's linear trend — double exponential
// smoothing, a level and a trend — over the series the supervisor samples from the PMT, so that a
// domain is isolated when its latency, throughput or error rate *will* cross its SLA within a
// horizon, not once it has. Pure: no timers, no I/O; the caller gives each observation its time.
//
// Observations come at irregular times (a fresh PMT measure per supervisor tick), so the trend is
// kept per second and each update uses the time since the previous one (dt):
//   predicted = level + trend·dt
//   level'    = α·x + (1 − α)·predicted
//   trend'    = β·(level' − level)/dt + (1 − β)·trend
//   forecast(h) = level' + trend'·h
// α (default 0.3) is how fast the level follows the observations; β (default 0.1) how fast the
// trend follows the level's changes. Larger values react sooner and believe noise more. The noise
// is measured too: the mean absolute one-step error |x − predicted| (an EWMA, weight 0.1).
//
// A crossing is only believed when it is confirmed: the forecast, less `noise` times the measured
// noise (default 1), has been past the limit with the trend going the bad way for `confirmations`
// observations in a row (default 3), and the level and each of those observations are past a
// floor (a fraction of the limit, default 0.5) — so a flat series whose level stays well inside the SLA never raises it,
// however noisy, and neither does one outlier. Observations past twice the limit (under half of a
// minimum) are clipped there: a stall of the whole machine moves the level, not the trend, much.
import { MetaosError } from '../../soap-runtime/errors.js'

export interface HoltOptions {
  /** Level smoothing, 0 < α ≤ 1 (default 0.3). */
  readonly alpha?: number
  /** Trend smoothing, 0 < β ≤ 1 (default 0.1). */
  readonly beta?: number
  /** Observations that start the level (their median; trend 0) before any forecast (default 5): a spike at the start is not a level. */
  readonly warmup?: number
}

export class Holt {
  readonly alpha: number
  readonly beta: number
  level: number | undefined
  /** Units per second. */
  trend = 0
  /** Mean absolute one-step forecast error (EWMA, weight 0.1): how noisy the series is. */
  noise = 0
  /** Observations taken. */
  n = 0
  readonly warmup: number
  #at = 0
  #first: number[] = []

  constructor (o: HoltOptions = {}) {
    this.alpha = unit('alpha', o.alpha ?? 0.3)
    this.beta = unit('beta', o.beta ?? 0.1)
    this.warmup = Math.max(1, Math.floor(positive('warmup', o.warmup ?? 5)))
  }

  /** Takes an observation `x` made at `atMs`; one at the same time as the previous one (or before it) only moves the level. */
  update (x: number, atMs: number): void {
    if (!Number.isFinite(x)) return
    this.n++
    if (this.level === undefined) {
      this.#first.push(x)
      this.#at = atMs
      if (this.#first.length < this.warmup) return
      const sorted = [...this.#first].sort((a, b) => a - b)
      const m = sorted[Math.floor(sorted.length / 2)]!
      this.level = m
      this.noise = sorted.reduce((a, v) => a + Math.abs(v - m), 0) / sorted.length
      this.#first = []
      return
    }
    const dt = (atMs - this.#at) / 1000
    if (dt <= 0) { this.level = this.alpha * x + (1 - this.alpha) * this.level; return }
    const prev = this.level
    const predicted = prev + this.trend * dt
    const err = Math.abs(x - predicted)
    this.noise = 0.9 * this.noise + 0.1 * err
    this.level = this.alpha * x + (1 - this.alpha) * predicted
    // The trend starts at 0 and is learnt: one early jump is not taken as a slope.
    this.trend = this.beta * (this.level - prev) / dt + (1 - this.beta) * this.trend
    this.#at = atMs
  }

  /** The level `horizonMs` from the last observation, on the current trend (undefined until the warm-up is done). */
  forecast (horizonMs: number): number | undefined {
    return this.level === undefined ? undefined : this.level + this.trend * horizonMs / 1000
  }
}

export interface LimitOptions extends HoltOptions {
  /** How far ahead the forecast looks (ms, default 3000). */
  readonly horizonMs?: number
  /** The forecast must pass the limit by this many times the series' measured noise (default 1; 0: not at all). */
  readonly noise?: number
  /** Observations in a row that must show the crossing (default 3). */
  readonly confirmations?: number
  /**
   * The level and the confirming observations must be past this fraction of the limit (default 0.5): for a limit that must not be
   * exceeded, level ≥ floor·limit; for a minimum (throughput), level ≤ limit / floor.
   */
  readonly floor?: number
}

/** A forecast crossing, confirmed. */
export interface Crossing {
  /** The forecast at the horizon. */
  readonly forecast: number
  /** The series' measured noise (mean absolute one-step error). */
  readonly noise: number
  readonly level: number
  /** Per second. */
  readonly trend: number
  readonly limit: number
  readonly horizonMs: number
  /** When the trend reaches the limit, from the last observation (ms; 0 when the level is already past it). */
  readonly inMs: number
}

/**
 * One measure of one domain against one limit: `'max'` (latency, error rate: bad when above) or
 * `'min'` (throughput: bad when below). `observe` returns the crossing once it is confirmed.
 */
export class LimitForecast {
  holt: Holt
  readonly kind: 'max' | 'min'
  readonly horizonMs: number
  readonly confirmations: number
  readonly floor: number
  readonly noise: number
  /** Observations are clipped at this many times the limit (a minimum: at the limit divided by it); default 2. */
  readonly clip = 2
  #streak = 0

  constructor (kind: 'max' | 'min', o: LimitOptions = {}) {
    this.kind = kind
    this.holt = new Holt(o)
    this.horizonMs = positive('horizonMs', o.horizonMs ?? 3000)
    this.noise = o.noise === 0 ? 0 : positive('noise', o.noise ?? 1)
    this.confirmations = Math.max(1, Math.floor(positive('confirmations', o.confirmations ?? 3)))
    this.floor = unit('floor', o.floor ?? 0.5)
  }

  /** Observations in a row that showed the crossing so far. */
  get streak (): number { return this.#streak }

  observe (x: number, atMs: number, limit: number): Crossing | undefined {
    // Past twice the limit (half, for a minimum) an observation says no more than "far past it":
    // clipped, so that one stall of the machine cannot fling the level and the trend.
    this.holt.update(this.kind === 'max' ? Math.min(x, this.clip * limit) : Math.max(x, limit / this.clip), atMs)
    // Each confirming observation must itself be past the floor: a lone outlier lifts the level and
    // the trend for a while, but the observations after it do not back it.
    const backed = this.kind === 'max' ? x >= this.floor * limit : x <= limit / this.floor
    const c = backed ? this.#crossing(limit) : undefined
    this.#streak = c === undefined ? 0 : this.#streak + 1
    return c !== undefined && this.#streak >= this.confirmations ? c : undefined
  }

  /** Starts over (after an isolation, a readmission). */
  reset (): void {
    const { alpha, beta, warmup } = this.holt
    this.holt = new Holt({ alpha, beta, warmup })
    this.#streak = 0
  }

  /** The unconfirmed view: where the forecast is now, for the status. */
  peek (): { readonly level: number, readonly trend: number, readonly forecast: number } | undefined {
    const f = this.holt.forecast(this.horizonMs)
    return f === undefined ? undefined : { level: this.holt.level!, trend: this.holt.trend, forecast: f }
  }

  #crossing (limit: number): Crossing | undefined {
    const h = this.holt
    const f = h.forecast(this.horizonMs)
    if (f === undefined || !(limit > 0)) return undefined
    const level = h.level!
    const margin = this.noise * h.noise
    const worse = this.kind === 'max' ? h.trend > 0 && f - margin >= limit && level >= this.floor * limit : h.trend < 0 && f + margin <= limit && level <= limit / this.floor
    if (!worse) return undefined
    const past = this.kind === 'max' ? level >= limit : level <= limit
    const inMs = past ? 0 : Math.abs((limit - level) / h.trend) * 1000
    return { forecast: f, noise: h.noise, level, trend: h.trend, limit, horizonMs: this.horizonMs, inMs }
  }
}

function unit (name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0 && v <= 1)) throw new MetaosError('INVALID_ARGUMENT', `forecast ${name} must be a number above 0 and at most 1, not ${String(v)}`)
  return v
}

function positive (name: string, v: number): number {
  if (!(Number.isFinite(v) && v > 0)) throw new MetaosError('INVALID_ARGUMENT', `forecast ${name} must be a number above 0, not ${String(v)}`)
  return v
}
