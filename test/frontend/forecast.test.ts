// The forecaster (frontend/placement/forecast.ts): Holt's linear trend over a domain's measures,
// and when it calls a coming SLA crossing. Series are sampled every 200 ms, as the supervisor
// samples the PMT; noise comes from a seeded generator, so every run sees the same series.
import t from 'tap'
import { Holt, LimitForecast } from '../../frontend/placement/forecast.js'

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seeded (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

const STEP = 200

t.test('Holt follows a line: level and trend', async (t) => {
  const h = new Holt()
  for (let i = 0; i < 200; i++) h.update(3 + 4 * i * STEP / 1000, i * STEP)
  t.ok(Math.abs(h.trend - 4) < 0.01, `trend ${h.trend} ≈ 4 per second`)
  t.ok(Math.abs(h.forecast(1000)! - (3 + 4 * 199 * STEP / 1000 + 4)) < 0.05, 'the forecast a second ahead is on the line')
  t.equal(new Holt().forecast(1000), undefined, 'no observation, no forecast')
})

t.test('a ramp is called before it crosses the limit, within the horizon', async (t) => {
  // 5 ms more every second, ±1 ms of noise; the limit (20 ms) is crossed at 4 s.
  const noise = seeded(1)
  const f = new LimitForecast('max', { horizonMs: 3000 })
  let called: number | undefined
  let crossing
  for (let i = 0; i < 100 && called === undefined; i++) {
    const at = i * STEP
    crossing = f.observe(5 * at / 1000 + (noise() * 2 - 1), at, 20)
    if (crossing !== undefined) called = at
  }
  t.ok(called !== undefined && called < 4000, `called at ${called} ms, before the crossing at 4000 ms`)
  t.ok(crossing!.forecast >= 20, 'the forecast at the horizon is past the limit')
  t.ok(crossing!.inMs > 0 && crossing!.inMs <= 3000, `the crossing is expected within the horizon (${crossing!.inMs.toFixed(0)} ms)`)
  t.ok(crossing!.trend > 3 && crossing!.trend < 7, `the trend seen (${crossing!.trend.toFixed(2)} ms/s) is near the ramp's 5 ms/s`)
})

t.test('flat noisy series never raise it (seeded noise, ~2.8 hours of 200 ms samples each)', async (t) => {
  for (const [mean, amplitude, seed] of [[8, 6, 42], [10, 5, 7], [5, 4, 99], [12, 2, 3]] as const) {
    const noise = seeded(seed)
    const f = new LimitForecast('max')
    let alarms = 0
    let peak = 0
    for (let i = 0; i < 50_000; i++) {
      const x = mean + (noise() * 2 - 1) * amplitude
      peak = Math.max(peak, x)
      if (f.observe(x, i * STEP, 20) !== undefined) alarms++
    }
    t.equal(alarms, 0, `mean ${mean} ms ± ${amplitude} ms (peaks ${peak.toFixed(1)} ms) against an SLA of 20 ms: no alarm`)
  }
})

t.test('one outlier is not a trend', async (t) => {
  const f = new LimitForecast('max')
  let alarms = 0
  for (let i = 0; i < 100; i++) if (f.observe(i === 50 ? 80 : 6, i * STEP, 20) !== undefined) alarms++
  t.equal(alarms, 0)
  // A stall at the very start (the first observation) does not become the level.
  const g = new LimitForecast('max')
  for (let i = 0; i < 5; i++) g.observe(i === 0 ? 500 : 6, i * STEP, 20)
  t.equal(g.peek()?.level, 6, 'the warm-up takes the median of the first observations')
  t.equal(g.peek()?.trend, 0)
})

t.test('a step', async (t) => {
  const stepTo = (to: number): number | undefined => {
    const f = new LimitForecast('max')
    for (let i = 0; i < 100; i++) if (f.observe(i < 20 ? 5 : to, i * STEP, 20) !== undefined) return i - 20
    return undefined
  }
  const over = stepTo(30)
  t.ok(over !== undefined && over <= 3, `a step past the SLA is called within the confirmations (sample ${over})`)
  t.equal(stepTo(9), undefined, 'a step that stays under the floor is not')
})

t.test('a minimum (throughput) falling', async (t) => {
  // 100 MB/s losing 10 MB/s every second; the SLA's 40 MB/s is crossed at 6 s.
  const f = new LimitForecast('min')
  let called: number | undefined
  for (let i = 0; i < 100 && called === undefined; i++) if (f.observe(100 - 10 * i * STEP / 1000, i * STEP, 40) !== undefined) called = i * STEP
  t.ok(called !== undefined && called < 6000, `called at ${called} ms, before 6000 ms`)
  const flat = new LimitForecast('min')
  const noise = seeded(5)
  let alarms = 0
  for (let i = 0; i < 20_000; i++) if (flat.observe(100 + (noise() * 2 - 1) * 30, i * STEP, 40) !== undefined) alarms++
  t.equal(alarms, 0, 'a noisy flat 100 ± 30 MB/s against a minimum of 40: no alarm')
})

t.test('bad parameters are refused with INVALID_ARGUMENT', async (t) => {
  t.throws(() => new Holt({ alpha: 0 }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => new Holt({ beta: 1.5 }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => new LimitForecast('max', { horizonMs: -1 }), { code: 'INVALID_ARGUMENT' })
  t.throws(() => new LimitForecast('max', { floor: 2 }), { code: 'INVALID_ARGUMENT' })
})
