// The performance module (the paper's §2.C): measures every known domain — the local kernel
// included — and keeps the Performance Mapping Table up to date. It learns from the real calls
// passing through the handlers it wraps, and probes with cheap syscalls (Open/Close of a sample
// file, as the paper says) only the domains that real traffic did not measure lately, so probes are
// no tax on a busy domain. The schedule adapts to load: while the application makes calls, idle
// domains are probed every `probeIntervalMs` (their measures decide where the next stream goes);
// when the application is quiet, probing backs off to `idleProbeIntervalMs`. Its timer never
// keeps the process alive. It counts what probing costs (`overhead()`).
import { MetaosError } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
import type { NetworkHandler } from '../handlers/network-handler.js'
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

/** A connect/close target for network probes; without one, a network domain is probed with ResolveHost('localhost'). */
export interface NetworkProbeTarget { readonly host: string, readonly port: number }

type Invoke = (op: string, input: unknown) => Promise<Invocation<unknown>>
interface Tracked { readonly identity: DomainIdentity, readonly probe: () => Promise<void>, lastCall: number, probing: boolean }

function storageBytes (op: string, input: unknown, output: unknown): number {
  if (op === 'Write') return (input as StorageOperations['Write']['input']).data.length
  if (op === 'Read') return (output as StorageOperations['Read']['output']).data.length
  return 0
}

function networkBytes (op: string, input: unknown, output: unknown): number {
  if (op === 'Send' || op === 'SendTo') return (input as NetworkOperations['Send']['input']).data.length
  if (op === 'Receive' || op === 'ReceiveFrom') return (output as NetworkOperations['Receive']['output']).data.length
  return 0
}

/** Network calls that wait for the peer (long polls): their duration says nothing of the domain's speed. */
const WAITING = new Set(['Receive', 'ReceiveFrom', 'Accept', 'Connect'])

/** Failures that say something bad of the domain (not of the caller's request, nor of a remote peer). */
function domainsFault (e: unknown, remote: boolean): boolean {
  if (!(e instanceof MetaosError)) return true
  if (e.faultCode !== undefined) return e.code === 'IO_ERROR' || e.code === 'DOMAIN_DRAINING' || e.code === 'QUOTA_EXCEEDED'
  return e.code === 'TRANSPORT_ERROR' || e.code === 'PROTOCOL_ERROR' || e.code === 'IO_ERROR' || (remote && e.code === 'TIMED_OUT')
}

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
    const probe = async (): Promise<void> => {
      const { output } = await handler.invoke('Open', { path: probePath, mode: 'OpenOrCreate', access: 'Read', share: 'ReadWrite' })
      await handler.invoke('Close', { handle: output.handle })
    }
    return { destination: handler.destination, invoke: this.#measured(identity, declared, probe, handler.invoke.bind(handler) as Invoke, storageBytes, new Set(), handler.destination !== 'local') as StorageHandler['invoke'], close: async () => { await handler.close() } }
  }

  /**
   * The same for a network domain: every call measured (long polls — Receive, Accept… — count for
   * bytes and errors, not for latency); probes connect to `target` and close (the "connect/close
   * to a configured target"), or resolve 'localhost' when no target is configured.
   */
  trackNetwork (identity: DomainIdentity, handler: NetworkHandler, target?: NetworkProbeTarget, declared: Declared = {}): NetworkHandler {
    const probe = async (): Promise<void> => {
      if (target === undefined) { await handler.invoke('ResolveHost', { name: 'localhost' }); return }
      const { output } = await handler.invoke('Connect', { host: target.host, port: target.port, protocol: 'tcp', timeoutMs: 5000 })
      await handler.invoke('Close', { socket: output.socket })
    }
    // Pushed receives (a framed proxy's) are data, not calls: they go straight through, unmeasured.
    const measured = { destination: handler.destination, invoke: this.#measured(identity, declared, probe, handler.invoke.bind(handler) as Invoke, networkBytes, WAITING, handler.destination !== 'local') as NetworkHandler['invoke'], close: async () => { await handler.close() } }
    return handler.pushes === undefined ? measured : { ...measured, pushes: handler.pushes }
  }

  #measured (identity: DomainIdentity, declared: Declared, probe: () => Promise<void>, invoke: Invoke, bytesOf: typeof storageBytes, waiting: ReadonlySet<string>, remote: boolean): Invoke {
    this.#pmt.upsert(identity, declared)
    const t: Tracked = { identity, probe, lastCall: 0, probing: false }
    this.#tracked.set(identity.epr, t)
    const pmt = this.#pmt
    // On every call of the application: a clock read before and after (performance.now: no BigInt
    // allocated), one sample recorded, one time stamp.
    return async (op, input) => {
      const t0 = performance.now()
      try {
        const inv = await invoke(op, input)
        const micros = inv.totalMicros
        const bytes = bytesOf(op, input, inv.output)
        pmt.record(identity.epr, waiting.size !== 0 && waiting.has(op) ? { micros, bytes, ok: true, waited: true } : { micros, bytes, ok: true })
        return inv
      } catch (e) {
        // A fault the caller earned (FILE_NOT_FOUND, CONNECTION_REFUSED…) says nothing bad of the domain; the domain's own failures do.
        pmt.record(identity.epr, { micros: Math.round((performance.now() - t0) * 1000), ok: !domainsFault(e, remote), timeout: e instanceof MetaosError && e.code === 'TIMED_OUT' && e.faultCode === undefined, ...(waiting.has(op) ? { waited: true } : {}) })
        throw e
      } finally {
        t.lastCall = this.#lastAppCall = this.#now()
        this.calls++
        this.callMicros += Math.round((performance.now() - t0) * 1000)
      }
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

  /** One probe of a domain (storage: Open and Close of the sample file; network: connect/close), recorded as a probe. */
  async probe (epr: string): Promise<void> {
    const t = this.#tracked.get(epr)
    if (t === undefined || t.probing) return // one probe at a time per domain (a hung one must not pile them up)
    t.probing = true
    const t0 = process.hrtime.bigint()
    const micros = (): number => Number((process.hrtime.bigint() - t0) / 1000n)
    try {
      await t.probe()
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
