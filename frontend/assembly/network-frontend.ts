// The intelligent frontend for sockets: network domains discovered on WS-Discovery (type
// metaos:NetworkDomain) and the local kernel are tracked in a Performance Mapping Table, measured
// by the performance module (probes connect/close to a configured target, or resolve 'localhost'),
// and placed on by a network dispatcher under a supervisor. A domain's Bye takes it out: the
// connections it held are lost (they cannot move), new ones go elsewhere. A domain on this
// machine is reached on its net.uds bus when it has one, so its sockets read by pushed receives
// through the dispatcher. NetSocket's `destination: 'discover'` uses the process-wide instance.
import { DiscoveryClient, type DiscoveredTarget } from '../../discovery/client.js'
import { NETWORK_DOMAIN_TYPE, declaredFromScopes } from '../../discovery/storage-announcement.js'
import { bestEndpoint } from '../handlers/discovered-domains.js'
import { identityFromScopes } from './intelligent-frontend.js'
import { createNetworkProxy, type NetworkHandler } from '../handlers/network-handler.js'
import { LocalNetworkHandler } from '../handlers/local-network-handler.js'
import { NetworkDispatcher, type NetworkDispatcherOptions } from '../placement/network-dispatcher.js'
import { PerformanceModule, type NetworkProbeTarget } from '../placement/performance-module.js'
import { PerformanceMappingTable } from '../placement/pmt.js'
import { Supervisor } from './supervisor.js'
import { hostname, release as osRelease, type } from 'node:os'
import { KEYS, obtain, release } from '../handlers/process-registry.js'

export interface NetworkFrontendOptions extends NetworkDispatcherOptions {
  /** Probes connect to this target and close (default: resolve 'localhost'). */
  readonly probeTarget?: NetworkProbeTarget
  /** Offer the local kernel as a destination too (default true). */
  readonly local?: boolean
  readonly probeIntervalMs?: number
}

export const LOCAL_NETWORK_EPR = `local-network:${hostname()}`

export class NetworkFrontend {
  readonly pmt = new PerformanceMappingTable()
  readonly perf: PerformanceModule
  readonly handlers = new Map<string, NetworkHandler>()
  readonly dispatcher: NetworkDispatcher
  readonly supervisor: Supervisor
  readonly registry: DiscoveryClient
  readonly #o: NetworkFrontendOptions

  constructor (registry: DiscoveryClient, o: NetworkFrontendOptions = {}) {
    this.registry = registry
    this.#o = o
    this.perf = new PerformanceModule({ pmt: this.pmt, ...(o.probeIntervalMs === undefined ? {} : { probeIntervalMs: o.probeIntervalMs }) })
    this.dispatcher = new NetworkDispatcher(this.pmt, this.handlers, o)
    this.supervisor = new Supervisor({ pmt: this.pmt, perf: this.perf, dispatchers: [this.dispatcher], ...(o.feed === undefined ? {} : { feed: o.feed }) })
    if (o.local !== false) {
      this.handlers.set(LOCAL_NETWORK_EPR, this.perf.trackNetwork({ epr: LOCAL_NETWORK_EPR, endpoints: ['local'], hosting: 'process', kernel: { sysname: type(), release: osRelease() }, volume: 'network', runtime: `node/${process.versions.node}` }, new LocalNetworkHandler(), o.probeTarget))
    }
    for (const t of registry.targets.values()) this.#add(t)
    registry.on('added', (t) => { this.#add(t) })
    registry.on('changed', (t) => { this.#remove(t.epr); this.#add(t) })
    registry.on('removed', (t) => { this.#remove(t.epr) })
    this.perf.start()
    this.supervisor.start()
  }

  #add (t: DiscoveredTarget): void {
    // A domain on this machine's net.uds bus: its session pushes received data (no Receive long polls).
    const endpoint = bestEndpoint(t, { framed: true })
    if (endpoint === undefined || this.handlers.has(t.epr)) return
    // Network domains serve no volume: they all share the placeholder volume "network".
    const identity = { ...identityFromScopes(t, endpoint), volume: 'network' }
    this.handlers.set(t.epr, this.perf.trackNetwork(identity, createNetworkProxy(endpoint), this.#o.probeTarget, declaredFromScopes(t.scopes)))
  }

  #remove (epr: string): void {
    const h = this.handlers.get(epr)
    if (h === undefined) return
    this.handlers.delete(epr)
    this.perf.untrack(epr)
    void h.close()
  }

  async close (): Promise<void> {
    this.supervisor.close()
    this.perf.stop()
    for (const epr of [...this.handlers.keys()]) this.#remove(epr)
  }
}

/** The process-wide network frontend over a registry of discovered network domains (started on first use; kept in the process registry). */
export async function sharedNetworkFrontend (): Promise<NetworkFrontend> {
  return await obtain(KEYS.networkFrontend, async () => {
    const registry = new DiscoveryClient({ listen: true, unref: true, filter: { types: [NETWORK_DOMAIN_TYPE] } })
    await registry.start()
    return new NetworkFrontend(registry)
  }, async (f) => { const x = await f; await x.close(); await x.registry.close() })
}

/** Ends the process-wide network frontend (and the 'discover' handler NetSocket resolved to it). */
export async function closeSharedNetworkFrontend (): Promise<void> {
  await release(KEYS.discoverNetworkHandler)
  await release(KEYS.networkFrontend)
}
