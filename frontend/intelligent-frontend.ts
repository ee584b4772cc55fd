// The intelligent frontend (the paper's §2.C) assembled: the discovery registry feeds the
// Performance Mapping Table — a domain that says Hello is tracked (its identity read from its
// announced scopes), measured by the performance module, and placed on by the dispatcher; a Bye
// removes it. FileStream's `destination: 'discover'` uses the process-wide instance.
import type { DiscoveryClient, DiscoveredTarget } from '../discovery/client.js'
import { createStorageProxy } from './storage-proxy.js'
import { bestEndpoint, storageRegistry } from './discovered-domains.js'
import { Dispatcher, type DispatcherOptions } from './dispatcher.js'
import { PerformanceModule } from './performance-module.js'
import { PerformanceMappingTable, type DomainIdentity } from './pmt.js'
import type { StorageHandler } from './storage-handler.js'

/** Reads what a domain announced in its scopes (DESIGN §4) into a PMT identity. */
export function identityFromScopes (t: DiscoveredTarget, endpoint: string): DomainIdentity {
  const get = (prefix: string): string | undefined => {
    const s = t.scopes.find((x) => x.startsWith(prefix))
    return s === undefined ? undefined : decodeURIComponent(s.slice(prefix.length))
  }
  const kernel = t.scopes.find((x) => x.startsWith('metaos://kernel/'))?.slice('metaos://kernel/'.length).split('/').map(decodeURIComponent) ?? []
  const zone = get('metaos://zone/')
  const runtime = get('metaos://runtime/node/')
  return {
    epr: t.epr,
    endpoints: [endpoint],
    hosting: get('metaos://hosting/') ?? 'process',
    kernel: { sysname: kernel[0] ?? 'unknown', release: kernel[1] ?? '0' },
    volume: get('metaos://volume/') ?? 'unknown',
    ...(zone === undefined ? {} : { zone }),
    ...(runtime === undefined ? {} : { runtime: `node/${runtime}` }),
  }
}

export class IntelligentFrontend {
  readonly pmt = new PerformanceMappingTable()
  readonly perf: PerformanceModule
  readonly handlers = new Map<string, StorageHandler>()
  readonly registry: DiscoveryClient
  readonly #options: Omit<DispatcherOptions, 'volume'>

  constructor (registry: DiscoveryClient, options: Omit<DispatcherOptions, 'volume'> & { probeIntervalMs?: number } = {}) {
    this.registry = registry
    this.#options = options
    this.perf = new PerformanceModule({ pmt: this.pmt, ...(options.probeIntervalMs === undefined ? {} : { probeIntervalMs: options.probeIntervalMs }) })
    for (const t of registry.targets.values()) this.#add(t)
    registry.on('added', (t) => { this.#add(t) })
    registry.on('changed', (t) => { this.#remove(t.epr); this.#add(t) })
    registry.on('removed', (t) => { this.#remove(t.epr) })
    this.perf.start()
  }

  #add (t: DiscoveredTarget): void {
    const endpoint = bestEndpoint(t)
    if (endpoint === undefined || this.handlers.has(t.epr)) return
    this.handlers.set(t.epr, this.perf.track(identityFromScopes(t, endpoint), createStorageProxy(endpoint)))
  }

  #remove (epr: string): void {
    const h = this.handlers.get(epr)
    if (h === undefined) return
    this.handlers.delete(epr)
    this.perf.untrack(epr)
    void h.close()
  }

  /** A dispatcher over the discovered domains (of one volume, if given). */
  dispatcherFor (volume?: string): Dispatcher {
    return new Dispatcher(this.pmt, this.handlers, { ...this.#options, ...(volume === undefined ? {} : { volume }) })
  }

  async close (): Promise<void> {
    this.perf.stop()
    for (const epr of [...this.handlers.keys()]) this.#remove(epr)
  }
}

let shared: Promise<IntelligentFrontend> | undefined

/** The process-wide frontend over the process-wide storage registry. */
export async function sharedFrontend (): Promise<IntelligentFrontend> {
  shared ??= (async () => new IntelligentFrontend(await storageRegistry()))()
  return await shared
}

export async function closeSharedFrontend (): Promise<void> {
  const f = shared
  shared = undefined
  if (f !== undefined) await (await f).close()
}
