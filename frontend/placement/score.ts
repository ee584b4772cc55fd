// The score of a domain, Score = f(Perf, SLA, Cost) — the formula the paper leaves "to be
// defined" (docs/score.md gives the reasoning). A pure function of a PMT row's measures, with
// configurable weights: faster scores higher all else equal; errors lower the score but never to
// zero (a recovered domain still gets the trickle that shows it recovered, as undici's
// BalancedPool keeps a floor); measures decay toward a neutral prior as they go stale.

export interface ScoreWeights {
  /** Exponent of the performance factor. */
  readonly perf: number
  /** Exponent of the health (error) factor. */
  readonly health: number
  /** Exponent of the SLA factor. */
  readonly sla: number
  /** Exponent of the cost factor. */
  readonly cost: number
  /** Latency (ms) at which the performance factor is 0.5. */
  readonly referenceLatencyMs: number
  /** Health never falls below this share, however many errors. */
  readonly healthFloor: number
  /** Age (ms) after which a measure counts only half (exponential decay toward the prior). */
  readonly halfLifeMs: number
  /** What an unmeasured (or fully stale) domain is assumed to do. */
  readonly priorLatencyMs: number
  /** Exponent of the exposure factor (known vulnerabilities). */
  readonly exposure?: number
  /** The exposure factor of a domain exposed to a vulnerability of severity 10 (default 0.1). */
  readonly exposureFloor?: number
}

export const DEFAULT_WEIGHTS: ScoreWeights = {
  perf: 1, health: 2, sla: 1, cost: 1,
  referenceLatencyMs: 1, healthFloor: 0.05, halfLifeMs: 30_000, priorLatencyMs: 5, exposure: 1, exposureFloor: 0.1,
}

export interface ScoreInputs {
  /** EWMA of call latency (ms), or undefined when never measured. */
  readonly latencyMs: number | undefined
  /** EWMA of the share of calls that failed (0..1). */
  readonly errorRate: number
  /** When the measures were last updated (ms since the epoch). */
  readonly measuredAt: number
  /** Declared availability importance, 0..1 (default 0.5). */
  readonly sla: number
  /** Declared cost of one call, in the operator's unit. */
  readonly costPerCall: number
  /** Declared cost of one MB moved. */
  readonly costPerMB: number
  /** The highest severity (0–10, CVSS) of the known vulnerabilities affecting the domain; 0 or absent: none. */
  readonly exposure?: number
}

export interface ScoreParts {
  readonly perf: number
  readonly health: number
  readonly sla: number
  readonly cost: number
  /** The cut known vulnerabilities make: 1 − (1 − floor) · severity / 10 (1 = none known). */
  readonly exposure: number
  /** How much the measures still count (1 = fresh, → 0 = stale). */
  readonly freshness: number
  readonly score: number
}

/**
 * score = 100 · perf^wp · health^wh · sla^ws · cost^wc · exposure^we, each factor in (0, 1.5]:
 * perf = L0 / (L0 + L) with L the freshness-weighted latency; health = floor + (1 − floor)(1 − e·f);
 * sla = 0.5 + s; cost = 1 / (1 + costPerCall + costPerMB · mbPerCall); exposure = 1 − (1 − floor) · severity / 10.
 */
export function score (i: ScoreInputs, now: number, mbPerCall = 0, w: ScoreWeights = DEFAULT_WEIGHTS): ScoreParts {
  const age = Math.max(0, now - i.measuredAt)
  const freshness = i.latencyMs === undefined ? 0 : Math.pow(0.5, age / w.halfLifeMs)
  const latency = freshness * (i.latencyMs ?? w.priorLatencyMs) + (1 - freshness) * w.priorLatencyMs
  const perf = w.referenceLatencyMs / (w.referenceLatencyMs + Math.max(0, latency))
  const errors = Math.min(1, Math.max(0, i.errorRate)) * freshness
  const health = w.healthFloor + (1 - w.healthFloor) * (1 - errors)
  const sla = 0.5 + Math.min(1, Math.max(0, i.sla))
  const cost = 1 / (1 + Math.max(0, i.costPerCall) + Math.max(0, i.costPerMB) * mbPerCall)
  const exposure = 1 - (1 - (w.exposureFloor ?? 0.1)) * Math.min(10, Math.max(0, i.exposure ?? 0)) / 10
  const value = 100 * Math.pow(perf, w.perf) * Math.pow(health, w.health) * Math.pow(sla, w.sla) * Math.pow(cost, w.cost) * Math.pow(exposure, w.exposure ?? 1)
  return { perf, health, sla, cost, exposure, freshness, score: value }
}
