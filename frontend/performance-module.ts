// The performance module (the paper's §2.C): measures every known domain — the local kernel
// included — and keeps the Performance Mapping Table up to date. It learns from the real calls
// passing through the handlers it wraps, and probes with cheap syscalls (Open/Close of a sample
// file, as the paper says) only the domains that real traffic did not measure lately, so probes are
// no tax on a busy domain. The schedule adapts to load: while the application makes calls, idle
// domains are probed every `probeIntervalMs` (their measures decide where the next stream goes);
// when the application is quiet, probing backs off to `idleProbeIntervalMs`. Its timer never
// keeps the process alive. It counts what probing costs (`overhead()`).
import { MetaosError } from '../soap-runtime/errors.js'
import type { Invocation } from '../soap-runtime/client.js'
import type { StorageOperations } from './generated/storage-service.js'
import type { StorageHandler, StorageOp } from './storage-handler.js'
import type { Declared, DomainIdentity, PerformanceMappingTable } from './pmt.js'

/** The sample file probes open and close (created empty on first probe, never written). */
export const PROBE_FILE = '.metaos-probe'

export interface PerformanceModuleOptions {
  readonly pmt: PerformanceMappingTable
  /** While the application makes calls, a domain without real calls for this long is probed (default 1 s). */
  readonly probeIntervalMs?: number
  /** When the application made no call for this long, probes come this far apart (default 30 s). */
  readonly idleProbeIntervalMs?: number
  readonly now?: () => number
}

/** What probing cost, next to the real calls. */
export interface ProbeOverhead {
  readonly calls: number
  readonly probes: number
  /** Probe syscalls (Open + Close each) per real call. */
  readonly probeCallsPerCall: number
  /** Time spent in probes over time spent in real calls. */
  readonly probeTimeShare: number
}

interface Tracked { readonly identity: DomainIdentity, readonly handler: StorageHandler, readonly probePath: string, lastCall: number, probing: boolean }

function bytesOf (op: string, input: unknown, output: unknown): number {
  if (op === 'Write') return (input as StorageOperations['Write']['input']).data.length
  if (op === 'Read') return (output as StorageOperations['Read']['output']).data.length
  return 0
}

/** Faults that say something bad of the domain (not of the caller's request). */
const DOMAIN_FAULTS = new Set(['IO_ERROR', 'TRANSPORT_ERROR', 'TIMED_OUT', 'PROTOCOL_ERROR', 'DOMAIN_DRAINING', 'QUOTA_EXCEEDED'])

export class PerformanceModule {
  readonly #pmt: PerformanceMappingTable
  readonly #busyInterval: number
  readonly #idleInterval: number
  readonly #now: () => number
  readonly #tracked = new Map<string, Tracked>()
  #timer: NodeJS.Timeout | undefined
  #lastAppCall = -Infinity
  probes = 0
  probeMicros = 0
  calls = 0
  callMicros = 0

  constructor (o: PerformanceModuleOptions) {
    this.#pmt = o.pmt
    this.#busyInterval = o.probeIntervalMs ?? 1000
    this.#idleInterval = Math.max(this.#busyInterval, o.idleProbeIntervalMs ?? 30_000)
    this.#now = o.now ?? Date.now
  }

  /**
   * Adds a domain to the table and returns its handler wrapped so that every call is measured.
   * `probePath`: the sample file (default PROBE_FILE in the domain's root; give the local kernel a
   * path of its own, e.g. in the temporary directory). `declared`: its SLA and cost.
   */
  track (identity: DomainIdentity, handler: StorageHandler, probePath = PROBE_FILE, declared: Declared = {}): StorageHandler {
    this.#pmt.upsert(identity, declared)
    const t: Tracked = { identity, handler, probePath, lastCall: 0, probing: false }
    this.#tracked.set(identity.epr, t)
    const pmt = this.#pmt
    const self = this
    return {
      destination: handler.destination,
      async invoke<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
        const t0 = process.hrtime.bigint()
        try {
          const inv = await handler.invoke(op, input)
          pmt.record(identity.epr, { micros: inv.totalMicros, bytes: bytesOf(op, input, inv.output), ok: true })
          return inv
        } catch (e) {
          // A fault the caller earned (FILE_NOT_FOUND…) says nothing bad of the domain; the domain's own failures do.
          const code = e instanceof MetaosError ? e.code : 'IO_ERROR'
          pmt.record(identity.epr, { micros: Number((process.hrtime.bigint() - t0) / 1000n), ok: !DOMAIN_FAULTS.has(code), timeout: code === 'TIMED_OUT' })
          throw e
        } finally {
          t.lastCall = self.#lastAppCall = self.#now()
          self.calls++
          self.callMicros += Number((process.hrtime.bigint() - t0) / 1000n)
        }
      },
      close: async () => { await handler.close() },
    }
  }

  untrack (epr: string): void {
    this.#tracked.delete(epr)
    this.#pmt.remove(epr)
  }

  /** The probe interval in force now: short while the application is busy, long when it is quiet. */
  get probeIntervalMs (): number {
    return this.#now() - this.#lastAppCall < this.#idleInterval ? this.#busyInterval : this.#idleInterval
  }

  overhead (): ProbeOverhead {
    return { calls: this.calls, probes: this.probes, probeCallsPerCall: this.calls === 0 ? 0 : (2 * this.probes) / this.calls, probeTimeShare: this.callMicros === 0 ? 0 : this.probeMicros / this.callMicros }
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { void this.probeIdle() }, Math.max(50, this.#busyInterval / 4))
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Probes every domain that no real call (or probe) measured within the interval in force; resolves when done. */
  async probeIdle (): Promise<void> {
    const now = this.#now()
    const interval = this.probeIntervalMs
    await Promise.all([...this.#tracked.values()].filter((t) => !t.probing && now - t.lastCall >= interval).map(async (t) => { await this.probe(t.identity.epr) }))
  }

  /** Open and Close of the sample file on one domain, recorded as a probe. */
  async probe (epr: string): Promise<void> {
    const t = this.#tracked.get(epr)
    if (t === undefined || t.probing) return // one probe at a time per domain (a hung one must not pile them up)
    t.probing = true
    const t0 = process.hrtime.bigint()
    const micros = (): number => Number((process.hrtime.bigint() - t0) / 1000n)
    try {
      const { output } = await t.handler.invoke('Open', { path: t.probePath, mode: 'OpenOrCreate', access: 'Read', share: 'ReadWrite' })
      await t.handler.invoke('Close', { handle: output.handle })
      // One probe is two syscalls; the latency recorded is that of one, comparable with real calls.
      this.#pmt.record(epr, { micros: micros() / 2, ok: true, probe: true })
    } catch (e) {
      this.#pmt.record(epr, { micros: micros(), ok: false, probe: true, timeout: e instanceof MetaosError && e.code === 'TIMED_OUT' })
    } finally {
      t.probing = false
      t.lastCall = this.#now()
      this.probes++
      this.probeMicros += micros()
    }
  }
}
