// The performance module (the paper's §2.C): measures every known domain — the local kernel
// included — and keeps the Performance Mapping Table up to date. It learns from the real calls
// passing through the handlers it wraps, and probes with cheap syscalls (Open/Close of a sample
// file, as the paper says) only the domains that real traffic did not measure lately, so probes are
// no tax on a busy domain. Its timer never keeps the process alive.
import { MetaosError } from '../soap-runtime/errors.js'
import type { Invocation } from '../soap-runtime/client.js'
import type { StorageOperations } from './generated/storage-service.js'
import type { StorageHandler, StorageOp } from './storage-handler.js'
import type { DomainIdentity, PerformanceMappingTable } from './pmt.js'

/** The sample file probes open and close (created empty on first probe, never written). */
export const PROBE_FILE = '.metaos-probe'

export interface PerformanceModuleOptions {
  readonly pmt: PerformanceMappingTable
  /** A domain without real calls for this long is probed (default 5 s). */
  readonly probeIntervalMs?: number
  readonly now?: () => number
}

interface Tracked { readonly identity: DomainIdentity, readonly handler: StorageHandler, readonly probePath: string, lastCall: number, probing: boolean }

function bytesOf (op: string, input: unknown, output: unknown): number {
  if (op === 'Write') return (input as StorageOperations['Write']['input']).data.length
  if (op === 'Read') return (output as StorageOperations['Read']['output']).data.length
  return 0
}

export class PerformanceModule {
  readonly #pmt: PerformanceMappingTable
  readonly #interval: number
  readonly #now: () => number
  readonly #tracked = new Map<string, Tracked>()
  #timer: NodeJS.Timeout | undefined
  probes = 0
  calls = 0

  constructor (o: PerformanceModuleOptions) {
    this.#pmt = o.pmt
    this.#interval = o.probeIntervalMs ?? 5000
    this.#now = o.now ?? Date.now
  }

  /**
   * Adds a domain to the table and returns its handler wrapped so that every call is measured.
   * `probePath`: the sample file (default PROBE_FILE in the domain's root; give the local kernel a
   * path of its own, e.g. in the temporary directory).
   */
  track (identity: DomainIdentity, handler: StorageHandler, probePath = PROBE_FILE): StorageHandler {
    this.#pmt.upsert(identity)
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
          const domainsFault = code === 'IO_ERROR' || code === 'TRANSPORT_ERROR' || code === 'TIMED_OUT' || code === 'PROTOCOL_ERROR' || code === 'DOMAIN_DRAINING' || code === 'QUOTA_EXCEEDED'
          pmt.record(identity.epr, { micros: Number((process.hrtime.bigint() - t0) / 1000n), ok: !domainsFault, timeout: code === 'TIMED_OUT' })
          throw e
        } finally {
          t.lastCall = self.#now()
          self.calls++
        }
      },
      close: async () => { await handler.close() },
    }
  }

  untrack (epr: string): void {
    this.#tracked.delete(epr)
    this.#pmt.remove(epr)
  }

  start (): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => { void this.probeIdle() }, Math.max(100, this.#interval / 2))
    this.#timer.unref()
  }

  stop (): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /** Probes every domain that no real call measured within the interval; resolves when done. */
  async probeIdle (): Promise<void> {
    const now = this.#now()
    await Promise.all([...this.#tracked.values()].filter((t) => !t.probing && now - t.lastCall >= this.#interval).map(async (t) => { await this.probe(t.identity.epr) }))
  }

  /** Open and Close of the sample file on one domain, recorded as a probe. */
  async probe (epr: string): Promise<void> {
    const t = this.#tracked.get(epr)
    if (t === undefined) return
    t.probing = true
    const t0 = process.hrtime.bigint()
    try {
      const { output } = await t.handler.invoke('Open', { path: t.probePath, mode: 'OpenOrCreate', access: 'Read', share: 'ReadWrite' })
      await t.handler.invoke('Close', { handle: output.handle })
      this.#pmt.record(epr, { micros: Number((process.hrtime.bigint() - t0) / 1000n), ok: true, probe: true })
    } catch (e) {
      this.#pmt.record(epr, { micros: Number((process.hrtime.bigint() - t0) / 1000n), ok: false, probe: true, timeout: e instanceof MetaosError && e.code === 'TIMED_OUT' })
    } finally {
      t.probing = false
      t.lastCall = this.#now()
      this.probes++
    }
  }
}
