// The generic service host: serves one ServiceDescriptor over HTTP on TCP, TLS and Unix-socket
// listeners, and in [MC-NMF] framed sessions on Unix sockets and TCP (nmf/listener.ts). It assembles the parts, each of which knows one concern: the message dispatcher
// (dispatcher.ts: bytes in, bytes out), its inspectors (inspectors.ts: authentication, metrics,
// logging with request ids), the HTTP binding (http-binding.ts: routes, body limits and budgets,
// `?wsdl`, GET /metrics, calls in flight) and the listeners (listeners.ts: sockets, TLS, connection
// limits, exposure, drain). Owns no business logic: operations come from the implementation it is
// given; the fault element and codes from the service description (or the options).
import type { Logger } from 'pino'
import type { ServiceDescriptor } from './descriptor.js'
import { MessageDispatcher } from './dispatcher.js'
import { formatEndpoint, isFramed, parseEndpoint } from './endpoint.js'
import { DEFAULT_HOST_LIMITS, type AnyImplementation, type Authenticator, type HostLimits, type HostTls } from './host-types.js'
import { HttpBinding } from './http-binding.js'
import { authenticationInspector, loggingInspector, metricsInspector, type CallInspector } from './inspectors.js'
import { Listeners } from './listeners.js'
import type { DomainMetrics } from './metrics.js'
import { FramedListeners } from './nmf/listener.js'
import { WsdlPublisher } from './wsdl-publisher.js'

export type {
  AnyImplementation, Authenticator, CallContext, CallCredentials, CallTransport, HostLimits, HostTls, Implementation, Principal, TlsFacts,
} from './host-types.js'
export { DEFAULT_HOST_LIMITS } from './host-types.js'
export { removeStaleSocket } from './listeners.js'
export { REQUEST_ID_HEADER } from './request-id.js'

export interface ServiceHostOptions {
  readonly descriptor: ServiceDescriptor
  /** The operations, typed (`Implementation<StorageOperations>`) or not (`Implementation`). */
  readonly implementation: AnyImplementation
  readonly wsdl: string
  /** HTTP path the service answers on, e.g. `/storage`. */
  readonly path: string
  /** The fault detail element (default: the one the descriptor's operations declare). */
  readonly faultElement?: string
  /** The codes the contract's fault detail admits (default: the descriptor's enumeration of them); any other goes on the wire as IO_ERROR. */
  readonly faultCodes?: readonly string[]
  readonly timingHeader: string
  readonly limits?: Partial<HostLimits>
  readonly logger: Logger
  /** Called once per finished call, for metrics. */
  readonly onCall?: (operation: string, micros: number, faultCode: string | undefined) => void
  /** Records every call (operation, transport, time, bytes, fault) and is served at GET /metrics. */
  readonly metrics?: DomainMetrics
  /** Certificate and key of https listeners (and the client CA, for mutual TLS). */
  readonly tls?: HostTls
  /** When set, every call must authenticate (UNAUTHORIZED otherwise) and is admitted against its identity's limits. */
  readonly authenticator?: Authenticator
  /** More inspectors, after authentication and before metrics and logging. */
  readonly inspectors?: readonly CallInspector[]
  /**
   * Listening beyond loopback without TLS, or with TLS but without authentication, is refused
   * unless this is set: the operator says the network is trusted (a container's published port
   * on the host's loopback, a private bridge).
   */
  readonly allowInsecure?: boolean
}

export class ServiceHost {
  /** The host's dispatcher: what an in-memory transport (memory-transport.ts) calls with no socket. */
  readonly dispatcher: MessageDispatcher
  readonly #o: ServiceHostOptions
  readonly #binding: HttpBinding
  readonly #listeners: Listeners
  readonly #framed: FramedListeners

  constructor (options: ServiceHostOptions) {
    this.#o = options
    const limits: HostLimits = { ...DEFAULT_HOST_LIMITS, ...options.limits }
    const authenticated = options.authenticator !== undefined
    this.dispatcher = new MessageDispatcher({
      descriptor: options.descriptor,
      implementation: options.implementation,
      timingHeader: options.timingHeader,
      limits,
      ...(options.faultElement === undefined ? {} : { faultElement: options.faultElement }),
      ...(options.faultCodes === undefined ? {} : { faultCodes: options.faultCodes }),
      inspectors: [
        ...(options.authenticator === undefined ? [] : [authenticationInspector(options.authenticator)]),
        ...(options.inspectors ?? []),
        ...(options.metrics === undefined && options.onCall === undefined ? [] : [metricsInspector({ metrics: options.metrics, onCall: options.onCall })]),
        loggingInspector(options.logger),
      ],
    })
    this.#binding = new HttpBinding({
      dispatcher: this.dispatcher, path: options.path, wsdl: new WsdlPublisher(options.wsdl), limits, logger: options.logger, metrics: options.metrics, authenticated,
    })
    this.#listeners = new Listeners({ limits, logger: options.logger, tls: options.tls, authenticated, allowInsecure: options.allowInsecure })
    this.#framed = new FramedListeners({ dispatcher: this.dispatcher, limits, logger: options.logger, path: options.path, tls: options.tls, authenticated, allowInsecure: options.allowInsecure })
    if (options.metrics !== undefined) options.metrics.inFlightSource = () => this.inFlight
  }

  get inFlight (): number { return this.#binding.inFlight + this.#framed.inFlight }
  /** Framed sessions (net.uds, net.tcp) open or opening. */
  get framedSessions (): number { return this.#framed.sessions }
  get draining (): boolean { return this.#binding.draining }

  /** Starts listening on each URL (`http://HOST:PORT`, `https://HOST:PORT`, `unix:/path`, `net.uds:/path`, `net.tcp://HOST:PORT`). Returns the endpoints actually bound. */
  async listen (urls: readonly string[]): Promise<string[]> {
    const out: string[] = []
    for (const url of urls) {
      const want = parseEndpoint(url, this.#o.path)
      const bound = isFramed(want)
        ? await this.#framed.listen({ ...want, path: this.#o.path }, url)
        : await this.#listeners.listen(want, url, (req, res) => { this.#binding.handle(req, res, want) })
      this.#o.metrics?.listening(bound.protocol)
      out.push(formatEndpoint({ ...bound, path: this.#o.path }))
    }
    return out
  }

  /** Re-reads TLS material (a renewed certificate, a new CRL) into the https listeners and net.tcp's TLS upgrade; open connections keep theirs. */
  setTls (tls: HostTls): void { this.#listeners.setTls(tls); this.#framed.setTls(tls) }

  /** Closes the listening sockets only: connections already open keep being served (a fault to inject, or a step of a handover). */
  stopListening (): void { this.#listeners.stopListening(); this.#framed.stopListening() }

  /** Stops taking work: listeners close, calls on open connections get DOMAIN_DRAINING, in-flight calls finish (up to graceMs). */
  async close (graceMs = 10_000): Promise<void> {
    this.#binding.startDrain()
    this.#framed.startDrain()
    await Promise.all([this.#listeners.close(async () => { await this.#binding.settle(graceMs) }), this.#framed.close(graceMs)])
  }
}
