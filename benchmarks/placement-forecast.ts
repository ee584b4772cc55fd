// The placement suite's forecast part (issue 22, point 3): isolation before the SLA breaks.
// Three storage domain processes of one volume, each with a fault file (a real delay inside the
// service). A FileStream writes 4 KiB blocks on the domain "ramp" while its service delay ramps
// from 0 to `rampToMs` over `rampSeconds` (a step every 200 ms); the supervisor has an SLA (p99)
// and forecasts. Measured: when the domain was isolated and its stream moved, against when the
// service delay reached the SLA; the p99 the application saw. The same ramp with forecasting off
// (the SLA's reactive rule alone) for comparison. Then a healthy but noisy domain (delay plus a
// random jitter) carries a stream for `noisySeconds`: how many times it was isolated (false
// isolations), per hour. The test (test/benchmarks/placement-forecast.test.ts) runs the same.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { DomainProcess } from '../domains/domain-process.js'
import { startFaultDomains } from './fault-domains.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { PerformanceModule } from '../frontend/placement/performance-module.js'
import { Dispatcher } from '../frontend/placement/dispatcher.js'
import { Supervisor, type Decision } from '../frontend/assembly/supervisor.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import type { LimitOptions } from '../frontend/placement/forecast.js'

export interface ForecastSuiteOptions {
  /** The SLA's p99 (ms, default 30). */
  readonly p99Ms?: number
  /** The ramp: service delay from 0 to this (ms, default 50)… */
  readonly rampToMs?: number
  /** …over this many seconds (default 10). */
  readonly rampSeconds?: number
  /** The noisy domain's run (s, default 30; 0: none). */
  readonly noisySeconds?: number
  /** Its service delay: `delayMs` plus 0..`jitterMs` at random per operation (default 2 + 0..12 ms), and its SLA's p99 (default `p99Ms`). */
  readonly noisy?: { readonly delayMs: number, readonly jitterMs: number, readonly p99Ms?: number }
  /** The forecasters' parameters (default forecast.ts's). */
  readonly forecast?: LimitOptions
  /** Which ramps to run (default both: with the forecast, then the reactive SLA rule alone). */
  readonly modes?: ReadonlyArray<'forecast' | 'reactive'>
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

/** One event of a run, in the order it happened: a ramp step (the delay set) or a supervisor decision. */
export type RunEvent = { readonly kind: 'step', readonly atMs: number, readonly delayMs: number } | { readonly kind: 'decision', readonly atMs: number, readonly decision: Decision, readonly domain: string }

export interface RampResult {
  readonly mode: 'forecast' | 'reactive'
  readonly p99Ms: number
  readonly rampToMs: number
  readonly rampSeconds: number
  /** When the service delay reached the SLA (ms from the ramp's start). */
  readonly slaReachedAtMs: number
  /** The ramp domain's isolation: when (ms from the ramp's start), at which service delay, why. */
  readonly isolatedAtMs: number | undefined
  readonly delayAtIsolationMs: number | undefined
  readonly reason: string | undefined
  /** When the stream left the ramp domain (ms from the ramp's start). */
  readonly movedAtMs: number | undefined
  /** The p99 of the application's writes in a second at no delay before the ramp (what the machine adds). */
  readonly idleP99Ms: number
  /** The application's writes during the ramp: how many, their p99 and max (ms), and how many took longer than the SLA. */
  readonly writes: number
  readonly appP99Ms: number
  readonly appMaxMs: number
  readonly overSla: number
  /** The file read back equals what was written (SHA-256). */
  readonly bytesRight: boolean
  readonly events: readonly RunEvent[]
}

export interface NoisyResult {
  readonly seconds: number
  readonly delayMs: number
  readonly jitterMs: number
  readonly p99Ms: number
  /** The noisy domain's own p99 as the PMT saw it at the end. */
  readonly domainP99Ms: number | undefined
  readonly writes: number
  readonly falseIsolations: number
  readonly perHour: number
  readonly reasons: readonly string[]
}

export interface ForecastSuiteResult { readonly ramps: RampResult[], readonly noisy: NoisyResult | undefined }

const NAMES = ['ramp', 'spare', 'noisy'] as const
const STEP_MS = 200
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

export async function runForecastSuite (o: ForecastSuiteOptions = {}): Promise<ForecastSuiteResult> {
  // Each domain's fault file names its jitter too, 0 unless the noisy run sets one.
  const rig = await startFaultDomains('forecast', 'forecast', NAMES)
  const { domains, root } = rig
  const setFault = (i: number, delayMs: number, jitterMs = 0): void => { rig.setFault(i, delayMs, jitterMs) }
  const modes = o.modes ?? ['forecast', 'reactive']
  const noisySeconds = o.noisySeconds ?? 30
  const total = modes.length + (noisySeconds > 0 ? 1 : 0)
  const ramps: RampResult[] = []
  let noisy: NoisyResult | undefined
  try {
    for (const [n, mode] of modes.entries()) {
      if (o.shouldStop?.() === true) break
      o.onProgress?.(n, total, `forecast: ramp, ${mode}`)
      for (let i = 0; i < NAMES.length; i++) setFault(i, 0)
      await sleep(300) // the domains poll their fault files every 100 ms
      ramps.push(await ramp(mode, domains, root, setFault, o))
    }
    if (noisySeconds > 0 && o.shouldStop?.() !== true) {
      o.onProgress?.(modes.length, total, `forecast: a noisy domain for ${noisySeconds} s`)
      noisy = await noisyRun(domains, setFault, noisySeconds, o)
    }
  } finally {
    await rig.close()
  }
  return { ramps, noisy }
}

interface Rig { pmt: PerformanceMappingTable, perf: PerformanceModule, handlers: Map<string, StorageHandler>, dispatcher: Dispatcher, supervisor: Supervisor, close: () => Promise<void> }

async function rig (domains: readonly DomainProcess[], names: readonly string[], o: ForecastSuiteOptions, forecast: boolean, p99Ms: number): Promise<Rig> {
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [i, d] of domains.entries()) {
    if (!names.includes(NAMES[i]!)) continue
    handlers.set(NAMES[i]!, perf.track({ epr: NAMES[i]!, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'forecast' }, createStorageProxy(d.ready.endpoints[0]!)))
  }
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'forecast' })
  const supervisor = new Supervisor({ pmt, perf, dispatchers: [dispatcher], sla: { p99Ms }, forecast: forecast ? (o.forecast ?? {}) : false })
  perf.start()
  for (let i = 0; i < 5; i++) for (const n of handlers.keys()) await perf.probe(n)
  supervisor.start()
  return {
    pmt, perf, handlers, dispatcher, supervisor,
    close: async () => {
      supervisor.close()
      perf.stop()
      for (const h of handlers.values()) await h.close()
    },
  }
}

/** A stream on `on`: opened, moved there if placed elsewhere. Returns it and its id in the affinity table. */
async function streamOn (r: Rig, path: string, on: string): Promise<{ f: FileStream, id: string }> {
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: r.dispatcher, bufferSize: 0 })
  const id = r.dispatcher.affinity.entries().find((e) => e.path === path)!.id
  if (r.dispatcher.affinity.lookup(id) !== on) await r.dispatcher.migrate(id, 'placed for the run', on)
  return { f, id }
}

function p99 (xs: readonly number[]): number {
  if (xs.length === 0) return 0
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.ceil(0.99 * s.length) - 1)]!
}

async function ramp (mode: 'forecast' | 'reactive', domains: readonly DomainProcess[], root: string, setFault: (i: number, d: number, j?: number) => void, o: ForecastSuiteOptions): Promise<RampResult> {
  const sla = o.p99Ms ?? 30
  const rampTo = o.rampToMs ?? 50
  const rampMs = (o.rampSeconds ?? 10) * 1000
  const r = await rig(domains, ['ramp', 'spare'], o, mode === 'forecast', sla)
  const events: RunEvent[] = []
  const path = `ramp-${mode}.bin`
  const written: Buffer[] = []
  const latencies: number[] = []
  try {
    const { f, id } = await streamOn(r, path, 'ramp')
    // A second at no delay first: what this machine adds to every write, to read the rest against.
    const idle: number[] = []
    for (const t1 = performance.now(); performance.now() - t1 < 1000;) {
      const block = randomBytes(4096)
      const w0 = performance.now()
      await f.write(block)
      idle.push(performance.now() - w0)
      written.push(block)
    }
    const t0 = performance.now()
    const at = (): number => performance.now() - t0
    r.supervisor.onDecision((d) => { events.push({ kind: 'decision', atMs: at(), decision: d, domain: d.epr }) })
    let delay = 0
    let movedAtMs: number | undefined
    const stepper = setInterval(() => {
      delay = Math.min(rampTo, rampTo * at() / rampMs)
      setFault(0, delay)
      events.push({ kind: 'step', atMs: at(), delayMs: delay })
    }, STEP_MS)
    try {
      // Writes until the stream has been off the ramp domain for a second, or the ramp is over and a second more.
      for (let n = 0; ; n++) {
        const now = at()
        if (movedAtMs === undefined && r.dispatcher.affinity.lookup(id) !== 'ramp') movedAtMs = now
        if ((movedAtMs !== undefined && now - movedAtMs > 1000) || now > rampMs + 1000 || o.shouldStop?.() === true) break
        const block = randomBytes(4096)
        const w0 = performance.now()
        await f.write(block)
        latencies.push(performance.now() - w0)
        written.push(block)
      }
    } finally {
      clearInterval(stepper)
    }
    await f.close()
    const bytesRight = sha(readFileSync(join(root, path))) === sha(Buffer.concat(written))
    const iso = events.find((e): e is Extract<RunEvent, { kind: 'decision' }> => e.kind === 'decision' && e.domain === 'ramp' && e.decision.to === 'isolated')
    const suspect = events.find((e): e is Extract<RunEvent, { kind: 'decision' }> => e.kind === 'decision' && e.domain === 'ramp' && e.decision.to === 'suspect')
    const stepBefore = iso === undefined ? undefined : [...events.slice(0, events.indexOf(suspect ?? iso))].reverse().find((e) => e.kind === 'step')
    return {
      mode, p99Ms: sla, rampToMs: rampTo, rampSeconds: rampMs / 1000, slaReachedAtMs: rampMs * sla / rampTo,
      isolatedAtMs: suspect?.atMs ?? iso?.atMs,
      delayAtIsolationMs: stepBefore === undefined ? (iso === undefined ? undefined : 0) : (stepBefore as { delayMs: number }).delayMs,
      reason: suspect?.decision.reason ?? iso?.decision.reason,
      movedAtMs,
      idleP99Ms: p99(idle), writes: latencies.length, appP99Ms: p99(latencies), appMaxMs: Math.max(0, ...latencies), overSla: latencies.filter((l) => l > sla).length,
      bytesRight, events,
    }
  } finally {
    setFault(0, 0)
    await r.close()
  }
}

async function noisyRun (domains: readonly DomainProcess[], setFault: (i: number, d: number, j?: number) => void, seconds: number, o: ForecastSuiteOptions): Promise<NoisyResult> {
  const { delayMs, jitterMs } = o.noisy ?? { delayMs: 2, jitterMs: 12 }
  const p99Ms = o.noisy?.p99Ms ?? o.p99Ms ?? 30
  setFault(2, delayMs, jitterMs)
  await sleep(300)
  const r = await rig(domains, ['noisy', 'spare'], o, true, p99Ms)
  try {
    const { f } = await streamOn(r, 'noisy.bin', 'noisy')
    const t0 = performance.now()
    let writes = 0
    const block = randomBytes(4096)
    while (performance.now() - t0 < seconds * 1000 && o.shouldStop?.() !== true) {
      await f.write(block)
      writes++
    }
    await f.close()
    const isolations = r.supervisor.decisions.filter((d) => d.epr === 'noisy' && d.to === 'isolated')
    const ran = (performance.now() - t0) / 1000
    return {
      seconds: ran, delayMs, jitterMs, p99Ms, domainP99Ms: r.pmt.row('noisy')?.p99Ms, writes,
      falseIsolations: isolations.length, perHour: isolations.length * 3600 / ran, reasons: isolations.map((d) => d.reason),
    }
  } finally {
    setFault(2, 0)
    await r.close()
  }
}

export function forecastTable (res: ForecastSuiteResult): string {
  const ms = (x: number | undefined): string => x === undefined ? '-' : `${(x / 1000).toFixed(2)} s`
  let out = ''
  const first = res.ramps[0]
  if (first !== undefined) {
    out += `\nIsolation before the SLA breaks: the stream's domain's service delay ramps 0 → ${first.rampToMs} ms over ${first.rampSeconds} s; SLA p99 ${first.p99Ms} ms (the delay reaches it at ${ms(first.slaReachedAtMs)})\n`
    out += `  ${'mode'.padEnd(9)} ${'isolated at'.padStart(11)} ${'delay then'.padStart(10)} ${'moved at'.padStart(9)} ${'app p99'.padStart(8)} ${'app max'.padStart(8)} ${'>SLA'.padStart(5)} ${'writes'.padStart(6)} bytes\n`
    for (const r of res.ramps) {
      out += `  ${r.mode.padEnd(9)} ${ms(r.isolatedAtMs).padStart(11)} ${(r.delayAtIsolationMs === undefined ? '-' : `${r.delayAtIsolationMs.toFixed(1)} ms`).padStart(10)} ${ms(r.movedAtMs).padStart(9)} ${`${r.appP99Ms.toFixed(1)} ms`.padStart(8)} ${`${r.appMaxMs.toFixed(1)} ms`.padStart(8)} ${String(r.overSla).padStart(5)} ${String(r.writes).padStart(6)} ${r.bytesRight ? 'right' : 'WRONG'}\n`
    }
    for (const r of res.ramps) out += `  ${r.mode}: ${r.reason ?? 'not isolated'}\n`
    out += `  before each ramp, a second at no delay: the application's p99 ${res.ramps.map((r) => `${r.idleP99Ms.toFixed(1)} ms (${r.mode})`).join(', ')} — what the machine itself adds\n`
  }
  const n = res.noisy
  if (n !== undefined) {
    out += `\nA healthy noisy domain (service delay ${n.delayMs} ms + 0..${n.jitterMs} ms at random; its p99 ${n.domainP99Ms?.toFixed(1) ?? '-'} ms; SLA p99 ${n.p99Ms} ms), ${n.writes} writes over ${n.seconds.toFixed(0)} s: ${n.falseIsolations} false isolation(s), ${n.perHour.toFixed(1)} per hour${n.falseIsolations === 0 ? ` (none in the run: under ${(3600 / n.seconds).toFixed(0)} per hour at this length)` : ''}\n`
    for (const why of n.reasons) out += `  ${why}\n`
  }
  return out
}
