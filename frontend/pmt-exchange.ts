// PMT exchange (the paper: "all these data is exchanged between all performance modules to have
// an accurate and unique view"): performance modules on different hosts swap the rows they
// measured themselves over SOAP (wsdl/PerformanceService.wsdl, the shared runtime), keep the
// freshest measure of each domain, stay bounded, never forward rows learnt from others (so nothing
// echoes), and drop what a module that went silent had taught them. Freshness compares wall
// clocks: hosts are expected to keep time (NTP).
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { createClient, type SoapClient } from '../soap-runtime/client.js'
import { createHttpTransport } from '../soap-runtime/http-transport.js'
import { ServiceHost } from '../soap-runtime/service-host.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { packageFile } from '../package-root.js'
import { PerformanceServiceDescriptor, type ExchangeTable, type PerformanceOperations } from './generated/performance-service.js'
import type { PerformanceMappingTable } from './pmt.js'

export const PERFORMANCE_PATH = '/performance'

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
      },
      wsdl: readFileSync(packageFile('wsdl', 'PerformanceService.wsdl'), 'utf8'),
      path: PERFORMANCE_PATH,
      faultElement: 'PerformanceFault',
      timingHeader: 'ServiceTiming',
      logger: this.#o.logger ?? silentLogger,
    })
    return await this.#host.listen(listen)
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

  async close (): Promise<void> {
    for (const c of this.#clients.values()) await c.close()
    await this.#host?.close(1000)
  }
}
