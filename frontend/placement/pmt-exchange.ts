// PMT exchange (the paper: "all these data is exchanged between all performance modules to have
// an accurate and unique view"): performance modules on different hosts swap the rows they
// measured themselves over SOAP (wsdl/PerformanceService.wsdl, the shared runtime), keep the
// freshest measure of each domain, stay bounded, never forward rows learnt from others (so nothing
// echoes), and drop what a module that went silent had taught them. Freshness compares wall
// clocks: hosts are expected to keep time (NTP). `join()` makes it automatic: the module announces
// itself on WS-Discovery (type metaos:PerformanceModule), follows the others' Hello/Bye, and
// exchanges with each of them every `intervalMs`.
import type { Logger } from 'pino'
import { createClient, type SoapClient } from '../../soap-runtime/client.js'
import { createHttpTransport } from '../../soap-runtime/http-transport.js'
import { ServiceHost } from '../../soap-runtime/service-host.js'
import { FAULT_CODES } from '../../soap-runtime/errors.js'
import { silentLogger } from '../../soap-runtime/logger.js'
import { PerformanceServiceDescriptor, type ExchangeTable, type PerformanceOperations, type PerformanceServiceImplementation } from '../../wsdl/generated/performance-service.js'
import type { PerformanceMappingTable } from './pmt.js'
import { DiscoveryClient } from '../../discovery/client.js'
import { TargetService } from '../../discovery/target-service.js'
import { METAOS_TYPES_NS } from '../../discovery/protocol.js'

import { PERFORMANCE_PATH, performanceWsdl } from '../../wsdl/contracts.js'
export { PERFORMANCE_PATH }
export const PERFORMANCE_MODULE_TYPE = `{${METAOS_TYPES_NS}}PerformanceModule`

export interface JoinOptions {
  /** Where to announce and listen for the other modules (default: lo only). */
  readonly interfaces?: readonly string[]
  /** Period of the exchange with each known module (default 10 s). */
  readonly intervalMs?: number
}

export interface PmtExchangeOptions {
  readonly pmt: PerformanceMappingTable
  /** This module's id (e.g. a urn:uuid); rows learnt from it carry it as their origin. */
  readonly moduleId: string
  /** Most rows a table holds (default 1000). */
  readonly maxRows?: number
  /** A module not heard from for this long is gone (default 90 s). */
  readonly peerTimeoutMs?: number
  readonly logger?: Logger
  readonly now?: () => number
}

export class PmtExchange {
  readonly #o: PmtExchangeOptions
  readonly #lastHeard = new Map<string, number>()
  readonly #clients = new Map<string, SoapClient<PerformanceOperations>>()
  #host: ServiceHost | undefined
  #endpoints: string[] = []
  #target: TargetService | undefined
  #registry: DiscoveryClient | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #inFlight = new Set<Promise<void>>()
  /** Exchanges that failed (a peer gone without Bye, a network fault); they are logged, never thrown. */
  failures = 0

  constructor (o: PmtExchangeOptions) { this.#o = o }

  get peers (): string[] { return [...this.#lastHeard.keys()] }

  #now (): number { return (this.#o.now ?? Date.now)() }

  #take (input: ExchangeTable): void {
    if (input.moduleId === this.#o.moduleId) return
    this.#lastHeard.set(input.moduleId, this.#now())
    for (const r of input.row.slice(0, this.#o.maxRows ?? 1000)) this.#o.pmt.merge(r, input.moduleId, this.#o.maxRows ?? 1000)
  }

  /** Serves ExchangeTable on these listeners; returns the endpoints. */
  async serve (listen: readonly string[]): Promise<string[]> {
    this.#host = new ServiceHost({
      descriptor: PerformanceServiceDescriptor,
      implementation: {
        ExchangeTable: async (input: ExchangeTable) => {
          // What we had goes back before we merge: both sides send their rows as they stood.
          const mine = this.#o.pmt.exportOwn()
          this.#take(input)
          return { moduleId: this.#o.moduleId, row: mine }
        },
      } satisfies PerformanceServiceImplementation,
      wsdl: performanceWsdl(),
      path: PERFORMANCE_PATH,
      faultElement: 'PerformanceFault',
      // PerformanceFault's code is a plain string: it admits the storage contract's codes, as it always has.
      faultCodes: FAULT_CODES,
      timingHeader: 'ServiceTiming',
      logger: this.#o.logger ?? silentLogger,
    })
    return (this.#endpoints = await this.#host.listen(listen))
  }

  /**
   * Joins the other performance modules on WS-Discovery: announces this one (its moduleId must be a
   * urn:uuid EPR, and `serve` must have run), exchanges with each module as soon as it is heard and
   * then every interval, and ages out the silent ones. Timers and sockets never keep the process alive.
   */
  async join (o: JoinOptions = {}): Promise<void> {
    if (this.#endpoints.length === 0) throw new Error('PmtExchange.join: serve() first')
    const interfaces = o.interfaces === undefined ? {} : { interfaces: o.interfaces }
    const logger = this.#o.logger ?? silentLogger
    this.#registry = new DiscoveryClient({ listen: true, unref: true, filter: { types: [PERFORMANCE_MODULE_TYPE] }, ...interfaces, logger })
    this.#registry.on('added', (t) => { void this.#exchangeWithTarget(t.epr) })
    // A module's Bye: what only it knew goes now, without waiting for the timeout.
    this.#registry.on('removed', (t) => { this.#lastHeard.delete(t.epr); this.#o.pmt.dropOrigin(t.epr) })
    await this.#registry.start()
    this.#target = new TargetService({ epr: this.#o.moduleId, types: [PERFORMANCE_MODULE_TYPE], scopes: [], xaddrs: this.#endpoints, unref: true, ...interfaces, logger })
    await this.#target.start()
    this.#timer = setInterval(() => { void this.exchangeWithAll() }, o.intervalMs ?? 10_000)
    this.#timer.unref()
  }

  /** One round: an exchange with every discovered module, then the silent ones age out. */
  async exchangeWithAll (): Promise<void> {
    await Promise.all([...(this.#registry?.targets.keys() ?? [])].map(async (epr) => { await this.#exchangeWithTarget(epr) }))
    this.ageOut()
  }

  async #exchangeWithTarget (epr: string): Promise<void> {
    const p = this.#exchangeOnce(epr)
    this.#inFlight.add(p)
    try { await p } finally { this.#inFlight.delete(p) }
  }

  async #exchangeOnce (epr: string): Promise<void> {
    const t = this.#registry?.targets.get(epr)
    const endpoint = t?.xaddrs.find((x) => x.startsWith('http://') || x.startsWith('https://'))
    if (t === undefined || epr === this.#o.moduleId || endpoint === undefined) return
    try {
      await this.exchangeWith(endpoint)
    } catch (e) {
      this.failures++
      this.#o.logger?.warn({ peer: epr, endpoint, err: e }, 'PMT exchange failed')
    }
  }

  /** One exchange with a peer module: our own rows go, its own rows come back and are merged. */
  async exchangeWith (endpoint: string): Promise<number> {
    let c = this.#clients.get(endpoint)
    if (c === undefined) this.#clients.set(endpoint, c = createClient<PerformanceOperations>(PerformanceServiceDescriptor, createHttpTransport(endpoint, PERFORMANCE_PATH), { timingHeader: 'ServiceTiming', timeoutMs: 5000 }))
    const { output } = await c.invoke('ExchangeTable', { moduleId: this.#o.moduleId, row: this.#o.pmt.exportOwn() })
    this.#take(output)
    return output.row.length
  }

  /** Forgets modules not heard from within the timeout, and what only they knew. */
  ageOut (): string[] {
    const cutoff = this.#now() - (this.#o.peerTimeoutMs ?? 90_000)
    const gone = [...this.#lastHeard].filter(([, t]) => t < cutoff).map(([id]) => id)
    for (const id of gone) { this.#lastHeard.delete(id); this.#o.pmt.dropOrigin(id) }
    return gone
  }

  /** Stops exchanging, stops serving, then says Bye: nothing of this module reaches a peer after its Bye. */
  async close (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#registry?.removeAllListeners('added')
    await Promise.allSettled([...this.#inFlight])
    await this.#host?.close(1000)
    await this.#target?.stop()
    await this.#registry?.close()
    for (const c of this.#clients.values()) await c.close()
  }
}
