// PMT exchange (the paper: "all these data is exchanged between all performance modules to have
// an accurate and unique view"): performance modules on different hosts swap the rows they
// measured themselves over SOAP (wsdl/PerformanceService.wsdl, the shared runtime), keep the
// freshest measure of each domain, stay bounded, never forward rows learnt from others (so nothing
// echoes), and drop what a module that went silent had taught them. Freshness compares wall
// clocks: hosts are expected to keep time (NTP). `join()` makes it automatic: the module announces
// itself on WS-Discovery (type metaos:PerformanceModule), follows the others' Hello/Bye, and
// exchanges with each of them every `intervalMs`.
// Across hosts (issue 19) the exchange runs over https with mutual TLS (`tls`): a peer presents a
// certificate of the cluster's CA naming its module id, and is checked as a server the same way.
// What a peer says is weighed, not obeyed (pmt-exchange-guard.ts): its row never replaces this
// module's own fresh measure of a domain; rows stamped in the future, for EPRs this frontend never
// heard announced (`knows`), or out of sane bounds are refused; each peer exchanges at a bounded
// rate. Refusals are counted (`refused`) and logged.
import type { Logger } from 'pino'
import { createClient, type SoapClient } from '../../soap-runtime/client.js'
import { createHttpTransport } from '../../soap-runtime/http-transport.js'
import { FAULT_CODES, MetaosError } from '../../soap-runtime/errors.js'
import { ServiceHost, type CallContext } from '../../soap-runtime/service-host.js'
import { silentLogger } from '../../soap-runtime/logger.js'
import { PerformanceServiceDescriptor, type ExchangeTable, type PerformanceOperations, type PerformanceServiceImplementation } from '../../wsdl/generated/performance-service.js'
import type { PerformanceMappingTable } from './pmt.js'
import { DiscoveryClient } from '../../discovery/client.js'
import { TargetService } from '../../discovery/target-service.js'
import { ProxyAnnouncer } from '../../discovery/proxy-client.js'
import { METAOS_TYPES_NS } from '../../discovery/protocol.js'
import { DEFAULT_PEER_RATE, DEFAULT_ROW_RULES, newRefusalCounters, PeerAuthenticator, PeerBuckets, weighRows, type ExchangeTls, type PeerPrincipal, type PeerRate, type RefusalCounters, type RowRules } from './pmt-exchange-guard.js'
export type { ExchangeTls, PeerRate, RefusalCounters, RowRules }

import { PERFORMANCE_PATH, performanceWsdl } from '../../wsdl/contracts.js'
export { PERFORMANCE_PATH }
export const PERFORMANCE_MODULE_TYPE = `{${METAOS_TYPES_NS}}PerformanceModule`

export interface JoinOptions {
  /** Where to announce and listen for the other modules (default: lo only). */
  readonly interfaces?: readonly string[]
  /** Period of the exchange with each known module (default 10 s). */
  readonly intervalMs?: number
  /**
   * A discovery proxy (`https://HOST:PORT/discovery`) to announce to and ask instead of multicast:
   * the modules of other hosts. Over https with this exchange's `tls` (its certificate names the module id).
   */
  readonly proxy?: string
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
  /** Mutual TLS (across hosts): serve https with this certificate, ask peers for one of `ca`, present it to them. */
  readonly tls?: ExchangeTls
  /** Whether this frontend heard `epr` announced (its registry, its PMT); rows for others are refused. Default: every EPR. */
  readonly knows?: (epr: string) => boolean
  /** Bounds of a sane row, the clock skew, how long this module's own measure stands (pmt-exchange-guard.ts). */
  readonly rules?: Partial<RowRules>
  /** Exchanges a peer may start per second, and their burst (default 2/s, burst 10). */
  readonly peerRate?: PeerRate
}

export class PmtExchange {
  readonly #o: PmtExchangeOptions
  readonly #lastHeard = new Map<string, number>()
  readonly #clients = new Map<string, SoapClient<PerformanceOperations>>()
  #host: ServiceHost | undefined
  #endpoints: string[] = []
  #target: TargetService | undefined
  #announcer: ProxyAnnouncer | undefined
  #registry: DiscoveryClient | undefined
  readonly #rules: RowRules
  readonly #buckets: PeerBuckets
  /** Rows and exchanges refused, by reason (logged as they happen). */
  readonly refused: RefusalCounters = newRefusalCounters()
  #timer: NodeJS.Timeout | undefined
  readonly #inFlight = new Set<Promise<void>>()
  /** Exchanges that failed (a peer gone without Bye, a network fault); they are logged, never thrown. */
  failures = 0

  constructor (o: PmtExchangeOptions) {
    this.#o = o
    this.#rules = { ...DEFAULT_ROW_RULES, ...o.rules }
    this.#buckets = new PeerBuckets(o.peerRate ?? DEFAULT_PEER_RATE, () => this.#now())
  }

  get peers (): string[] { return [...this.#lastHeard.keys()] }

  #now (): number { return (this.#o.now ?? Date.now)() }

  /** Weighs a peer's rows: the sane ones, for announced domains, not over this module's own fresh measure, go to the PMT. */
  #take (input: ExchangeTable, peer: string): number {
    if (input.moduleId === this.#o.moduleId) return 0
    this.#lastHeard.set(input.moduleId, this.#now())
    return weighRows(input.row, input.moduleId, peer, this.#now(), { pmt: this.#o.pmt, rules: this.#rules, refused: this.refused, knows: this.#o.knows, maxRows: this.#o.maxRows ?? 1000, log: this.#log })
  }

  get #log (): Logger { return this.#o.logger ?? silentLogger }

  /**
   * Serves ExchangeTable on these listeners; returns the endpoints. With TLS (`tls` here or in the
   * options) https listeners ask every peer for a certificate of the CA naming the module id it claims.
   */
  async serve (listen: readonly string[], o: { tls?: ExchangeTls } = {}): Promise<string[]> {
    const tls = o.tls ?? this.#o.tls
    if (tls !== undefined && this.#o.tls === undefined) (this.#o as { tls?: ExchangeTls }).tls = tls
    this.#host = new ServiceHost({
      descriptor: PerformanceServiceDescriptor,
      implementation: {
        ExchangeTable: async (input: ExchangeTable, ctx: CallContext) => {
          const peer = this.#admitPeer(input, ctx)
          // What we had goes back before we merge: both sides send their rows as they stood.
          const mine = this.#o.pmt.exportOwn()
          this.#take(input, peer)
          return { moduleId: this.#o.moduleId, row: mine }
        },
      } satisfies PerformanceServiceImplementation,
      ...(tls === undefined ? {} : { tls: { cert: tls.cert, key: tls.key, clientCa: tls.ca, ...(tls.crl === undefined ? {} : { crl: tls.crl }) }, authenticator: new PeerAuthenticator(this.#buckets, this.refused) }),
      limits: { maxMessageBytes: 4 * 1024 * 1024 },
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

  /** Who calls: with TLS the certificate must name the module id it claims (its rate was taken by the authenticator); without, its claimed id's rate. */
  #admitPeer (input: ExchangeTable, ctx: CallContext): string {
    const p = ctx.principal as PeerPrincipal | undefined
    if (p === undefined) {
      try { this.#buckets.take(`module:${input.moduleId}`) } catch (e) { this.refused.rate++; throw e }
      return `module:${input.moduleId.slice(0, 128)}`
    }
    if (!p.uris.includes(input.moduleId)) {
      this.refused.identity++
      this.#log.warn({ peer: p.name, module: input.moduleId.slice(0, 128) }, 'PMT exchange: a peer claims a module id its certificate does not name')
      throw new MetaosError('UNAUTHORIZED', `the client certificate names ${p.uris.join(', ') || 'no URI'}, not the module ${input.moduleId.slice(0, 128)}`)
    }
    return p.name
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
    const tls = this.#o.tls
    const proxy = o.proxy === undefined
      ? {}
      : { proxy: o.proxy, reprobeMs: o.intervalMs ?? 10_000, ...(tls === undefined ? {} : { proxyTls: { ca: tls.ca, cert: tls.cert, key: tls.key } }) }
    this.#registry = new DiscoveryClient({ listen: true, unref: true, filter: { types: [PERFORMANCE_MODULE_TYPE] }, ...interfaces, ...proxy, logger })
    this.#registry.on('added', (t) => { void this.#exchangeWithTarget(t.epr) })
    // A module's Bye: what only it knew goes now, without waiting for the timeout.
    this.#registry.on('removed', (t) => { this.#lastHeard.delete(t.epr); this.#o.pmt.dropOrigin(t.epr) })
    await this.#registry.start()
    if (o.proxy !== undefined) {
      this.#announcer = new ProxyAnnouncer({
        proxy: o.proxy,
        ...(tls === undefined ? {} : { tls: { ca: tls.ca, cert: tls.cert, key: tls.key } }),
        target: { epr: this.#o.moduleId, types: [PERFORMANCE_MODULE_TYPE], scopes: [], xaddrs: this.#endpoints },
        intervalMs: o.intervalMs ?? 10_000,
        logger,
      })
      await this.#announcer.start()
    } else {
      this.#target = new TargetService({ epr: this.#o.moduleId, types: [PERFORMANCE_MODULE_TYPE], scopes: [], xaddrs: this.#endpoints, unref: true, ...interfaces, logger })
      await this.#target.start()
    }
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
    const endpoint = t?.xaddrs.find((x) => this.#o.tls === undefined ? x.startsWith('http://') || x.startsWith('https://') : x.startsWith('https://'))
    if (t === undefined || epr === this.#o.moduleId || endpoint === undefined) return
    try {
      await this.exchangeWith(endpoint, epr)
    } catch (e) {
      this.failures++
      this.#o.logger?.warn({ peer: epr, endpoint, err: e }, 'PMT exchange failed')
    }
  }

  /**
   * One exchange with a peer module: our own rows go, its own rows come back and are weighed.
   * Returns how many rows it sent. With TLS, `peer` (its module id) is required: the peer's
   * certificate must name it, and so must its answer.
   */
  async exchangeWith (endpoint: string, peer?: string): Promise<number> {
    const tls = this.#o.tls
    if (tls !== undefined && peer === undefined) throw new MetaosError('INVALID_ARGUMENT', 'PmtExchange.exchangeWith: over TLS, name the peer module id its certificate must carry')
    const key = `${endpoint} ${peer ?? ''}`
    let c = this.#clients.get(key)
    if (c === undefined) {
      const transport = createHttpTransport(endpoint, PERFORMANCE_PATH, tls === undefined ? {} : { tls: { ca: tls.ca, cert: tls.cert, key: tls.key, expectUri: peer! } })
      this.#clients.set(key, c = createClient<PerformanceOperations>(PerformanceServiceDescriptor, transport, { timingHeader: 'ServiceTiming', timeoutMs: 5000 }))
    }
    const { output } = await c.invoke('ExchangeTable', { moduleId: this.#o.moduleId, row: this.#o.pmt.exportOwn() })
    if (peer !== undefined && output.moduleId !== peer) {
      this.refused.identity++
      throw new MetaosError('UNAUTHORIZED', `${endpoint} answered as module ${output.moduleId.slice(0, 128)}, not ${peer}`)
    }
    this.#take(output, peer ?? endpoint)
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
    await this.#announcer?.stop()
    await this.#registry?.close()
    for (const c of this.#clients.values()) await c.close()
  }
}
