// A network service domain: the network engine behind its allow-list, started by the
// service-domain bootstrap (identity, host and listeners, GetDomainInfo's facts, metrics, drain)
// with what is its own: the allow-list (checked before anything listens, told by GetDomainInfo),
// the per-identity destinations and limits, and the socket gauges. `metaos network` and tests start
// domains through here.
import { NETWORK_CONTRACT } from '../wsdl/network-contract.js'
import { LOOPBACK_ONLY, parseAllowList } from '../security/allow-list.js'
import { startServiceDomain, type DomainOptions, type ServiceDomain } from '../service-domain/bootstrap.js'
import type { DomainMetrics } from '../soap-runtime/metrics.js'
import { NetworkEngine, type NetworkLimits } from './network-engine.js'
import { networkImplementation } from './network-implementation.js'

export interface NetworkDomainOptions extends DomainOptions<NetworkLimits> {
  /** `CIDR:PORTS` rules of the destinations admitted (default: loopback only). */
  readonly allow?: readonly string[]
}

export interface NetworkDomain extends ServiceDomain {
  readonly engine: NetworkEngine
  /** The allow-list rules in force. */
  readonly allow: readonly string[]
}

export { networkWsdl } from '../wsdl/contracts.js'

export async function startNetworkDomain (o: NetworkDomainOptions): Promise<NetworkDomain> {
  // A bad rule fails here, before anything listens.
  const policy = parseAllowList(o.allow ?? LOOPBACK_ONLY)
  const auth = o.security?.authenticator
  const engine = new NetworkEngine(policy, o.limits, auth === undefined
    ? {}
    : { destinations: (owner) => auth.identityFor(owner)?.grants.destinations, limit: (owner) => auth.limitFor(owner) })
  const domain = await startServiceDomain(o, {
    service: 'network',
    contract: NETWORK_CONTRACT,
    engine,
    implementation: (facts) => networkImplementation(engine, () => ({ ...facts(), allow: { rule: [...policy.rules] } })),
    instrument: (metrics) => { socketGauges(metrics, engine) },
    readyFacts: { allow: policy.rules },
  })
  return { ...domain, engine, allow: policy.rules }
}

function socketGauges (metrics: DomainMetrics, engine: NetworkEngine): void {
  // One walk of the socket table per scrape, shared by the gauges read in that scrape.
  let stats: { at: number, value: NetworkEngine['stats'] } | undefined
  const current = (): NetworkEngine['stats'] => {
    const now = Date.now()
    if (stats === undefined || now - stats.at > 100) stats = { at: now, value: engine.stats }
    return stats.value
  }
  metrics.labelledGauge('metaos_network_open_sockets', 'Sockets open in the network engine, by kind (connections and datagram sockets; listeners)', ['kind'], () => [[{ kind: 'socket' }, current().sockets], [{ kind: 'listener' }, current().listeners]])
  metrics.gauge('metaos_network_buffered_bytes', 'Bytes received from peers and not yet taken by a Receive', () => current().bufferedBytes)
  metrics.gauge('metaos_network_push_unacknowledged_bytes', 'Bytes pushed to framed sessions (Received) and not yet granted back by their callers', () => current().unacknowledgedBytes)
  metrics.gauge('metaos_network_push_subscriptions', 'Connections pushing what they receive to a framed session (Subscribe)', () => current().subscriptions)
  metrics.gauge('metaos_network_pending_connections', 'Connects under way', () => current().pendingConnections)
  metrics.counter('metaos_network_dropped_datagrams_total', 'UDP datagrams dropped because a socket\'s buffer was full (since start)', () => current().droppedDatagrams)
}
