// A network service domain: the network engine behind its allow-list, served by the generic
// service host over HTTP and the Unix-socket bus, with its identity (stable EPR) and the facts of
// the kernel it runs on (GetDomainInfo), and its Prometheus metrics (a registry of its own, served
// at /metrics). `metaos network` and tests start domains through here.
import { hostname, machine, release, type, version } from 'node:os'
import type { Logger } from 'pino'
import { NETWORK_FAULT_CODES } from '../soap-runtime/errors.js'
import { ServiceHost, type HostLimits, type Implementation } from '../soap-runtime/service-host.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { stableUuid } from '../service-domain/identity.js'
import { NETWORK_PATH, networkWsdl } from '../wsdl/contracts.js'
import { NetworkServiceDescriptor, type GetDomainInfoResponse, type Hosting } from '../wsdl/generated/network-service.js'
import { LOOPBACK_ONLY, parseAllowList } from '../security/allow-list.js'
import { NetworkEngine, type NetworkLimits } from './network-engine.js'
import { hostSecurity, type DomainSecurity } from '../security/domain-security.js'
import { DomainMetrics, serveMetrics, type MetricsListener } from '../soap-runtime/metrics.js'

export interface NetworkDomainOptions {
  readonly listen: readonly string[]
  readonly name?: string
  /** `CIDR:PORTS` rules of the destinations admitted (default: loopback only). */
  readonly allow?: readonly string[]
  readonly hosting?: Hosting
  readonly limits?: Partial<HostLimits & NetworkLimits>
  readonly logger?: Logger
  /** TLS, authentication and per-identity destinations and limits (docs/security.md). */
  readonly security?: DomainSecurity
  /** `--metrics-listen`: a separate loopback HTTP listener serving only GET /metrics. */
  readonly metricsListen?: string
}

export interface NetworkDomain {
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly engine: NetworkEngine
  readonly host: ServiceHost
  /** The allow-list rules in force. */
  readonly allow: readonly string[]
  /** Its metrics (docs/metrics.md), also served at GET /metrics on its listeners. */
  readonly metrics: DomainMetrics
  /** The `--metrics-listen` endpoint as bound (`http://HOST:PORT/metrics`), when one was asked for. */
  readonly metricsEndpoint?: string
  /** Drains (in-flight calls finish, new ones get DOMAIN_DRAINING), then closes every socket. */
  close: (graceMs?: number) => Promise<void>
}

export { networkWsdl } from '../wsdl/contracts.js'

export async function startNetworkDomain (o: NetworkDomainOptions): Promise<NetworkDomain> {
  const logger = o.logger ?? silentLogger
  const name = o.name ?? 'network'
  // A bad rule fails here, before anything listens.
  const policy = parseAllowList(o.allow ?? LOOPBACK_ONLY)
  const epr = o.security?.certifiedEpr ?? stableUuid('metaos-network', hostname(), name)
  const auth = o.security?.authenticator
  const engine = new NetworkEngine(policy, o.limits, auth === undefined
    ? {}
    : { destinations: (owner) => auth.identityFor(owner)?.grants.destinations, limit: (owner) => auth.limitFor(owner) })
  const started = Date.now()
  let endpoints: string[] = []
  const info = (): GetDomainInfoResponse => ({
    domainId: epr,
    hosting: o.hosting ?? 'process',
    kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
    runtime: `node/${process.versions.node}`,
    transports: { transport: endpoints },
    allow: { rule: [...policy.rules] },
    uptime: (Date.now() - started) / 1000,
  })
  const implementation: Implementation = {
    Connect: async (i, ctx) => await engine.connect(i, ctx.caller),
    Send: async (i, ctx) => await engine.send(i, ctx.caller),
    Receive: async (i, ctx) => await engine.receive(i, ctx.caller),
    SendTo: async (i, ctx) => await engine.sendTo(i, ctx.caller),
    ReceiveFrom: async (i, ctx) => await engine.receiveFrom(i, ctx.caller),
    Listen: async (i, ctx) => await engine.listen(i, ctx.caller),
    Accept: async (i, ctx) => await engine.accept(i, ctx.caller),
    Shutdown: async (i, ctx) => await engine.shutdown(i, ctx.caller),
    Close: async (i, ctx) => await engine.close(i, ctx.caller),
    ResolveHost: async (i) => await engine.resolveHost(i),
    GetDomainInfo: async () => info(),
  }
  const metrics = new DomainMetrics({
    service: 'network', epr, labels: { volume: '', hosting: o.hosting ?? 'process' }, authenticated: auth !== undefined,
    ...(auth === undefined ? {} : { refusals: () => auth.refused }),
  })
  // One walk of the socket table per scrape, shared by the gauges read in that scrape.
  let stats: { at: number, value: ReturnType<() => NetworkEngine['stats']> } | undefined
  const current = (): NetworkEngine['stats'] => {
    const now = Date.now()
    if (stats === undefined || now - stats.at > 100) stats = { at: now, value: engine.stats }
    return stats.value
  }
  metrics.labelledGauge('metaos_network_open_sockets', 'Sockets open in the network engine, by kind (connections and datagram sockets; listeners)', ['kind'], () => [[{ kind: 'socket' }, current().sockets], [{ kind: 'listener' }, current().listeners]])
  metrics.gauge('metaos_network_buffered_bytes', 'Bytes received from peers and not yet taken by a Receive', () => current().bufferedBytes)
  metrics.gauge('metaos_network_pending_connections', 'Connects under way', () => current().pendingConnections)
  metrics.counter('metaos_network_dropped_datagrams_total', 'UDP datagrams dropped because a socket\'s buffer was full (since start)', () => current().droppedDatagrams)
  const host = new ServiceHost({
    metrics,
    descriptor: NetworkServiceDescriptor,
    implementation,
    wsdl: networkWsdl(),
    path: NETWORK_PATH,
    faultElement: 'NetworkFault',
    faultCodes: NETWORK_FAULT_CODES,
    timingHeader: 'ServiceTiming',
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    ...hostSecurity(o.security),
    logger,
  })
  let metricsListener: MetricsListener | undefined
  try {
    endpoints = await host.listen(o.listen)
    if (o.metricsListen !== undefined) metricsListener = await serveMetrics(o.metricsListen, metrics, { allowInsecure: o.security?.allowInsecure === true })
  } catch (e) {
    await host.close(0)
    await engine.closeAll()
    throw e
  }
  logger.info({ epr, endpoints, allow: policy.rules, ...(metricsListener === undefined ? {} : { metrics: metricsListener.url }) }, 'network domain ready')
  return {
    epr,
    get endpoints () { return endpoints },
    engine,
    host,
    allow: policy.rules,
    metrics,
    ...(metricsListener === undefined ? {} : { metricsEndpoint: metricsListener.url }),
    close: async (graceMs) => {
      engine.drain()
      await metricsListener?.close()
      await host.close(graceMs)
      await engine.closeAll()
    },
  }
}
