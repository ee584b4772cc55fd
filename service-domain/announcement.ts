// How a domain says itself on WS-Discovery (DESIGN.md §4): its type (StorageDomain, NetworkDomain),
// the scopes of what it is and where (kernel, hosting, host, runtime, volume, zone, and what it
// declares), its endpoints as XAddrs; and the target service that says Hello and Bye and answers
// Probe and Resolve for it.
import type { Logger } from 'pino'
import type { TargetService } from '../discovery/target-service.js'
import { domainScopes, NETWORK_DOMAIN_TYPE, STORAGE_DOMAIN_TYPE } from '../discovery/storage-announcement.js'
import type { Hosting } from '../wsdl/generated/storage-service.js'

export interface Announcement {
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  readonly interfaces?: readonly string[]
  /** `--announce-hostname`: listeners on 0.0.0.0 or [::] are announced under this name instead. */
  readonly hostname?: string
  /** Multicast Hello/Bye and answer Probes (`--announce`); default true. False: to a discovery proxy only. */
  readonly multicast?: boolean
}

export interface AnnouncedFacts {
  readonly service: 'storage' | 'network'
  readonly hosting: Hosting
  readonly volume?: string
  readonly zone?: string
  /** Scopes it adds (declared SLA and costs, --scope). */
  readonly scopes?: readonly string[]
  /** Where to announce (interface names, or "all"; default lo only). */
  readonly interfaces?: readonly string[]
  /** Announce listeners on a wildcard address under this name (a swarm task's hostname). */
  readonly hostname?: string
  /** Multicast (default) or, when false, to a discovery proxy only. */
  readonly multicast?: boolean
}

/** An endpoint on a wildcard address (0.0.0.0, [::]) named `host` instead: what others can reach. */
export function namedEndpoint (endpoint: string, host: string): string {
  const m = /^(https?:\/\/)(0\.0\.0\.0|\[::\])(:\d+\/.*)$/.exec(endpoint)
  return m === null ? endpoint : `${m[1]!}${host}${m[3]!}`
}

export function announcementOf (f: AnnouncedFacts): Announcement {
  return {
    types: [f.service === 'storage' ? STORAGE_DOMAIN_TYPE : NETWORK_DOMAIN_TYPE],
    scopes: domainScopes({ hosting: f.hosting, ...(f.volume === undefined ? {} : { volume: f.volume }), ...(f.zone === undefined ? {} : { zone: f.zone }), extra: f.scopes ?? [] }),
    ...(f.interfaces === undefined ? {} : { interfaces: f.interfaces }),
    ...(f.hostname === undefined ? {} : { hostname: f.hostname }),
    ...(f.multicast === undefined ? {} : { multicast: f.multicast }),
  }
}

/** The endpoints a domain announces as its XAddrs: wildcard listeners named by the announcement's hostname. */
export function announcedEndpoints (domain: { readonly endpoints: readonly string[] }, a: Announcement): readonly string[] {
  return a.hostname === undefined ? domain.endpoints : domain.endpoints.map((e) => namedEndpoint(e, a.hostname!))
}

/** Starts announcing a listening domain; if that fails, the domain is closed and the error thrown. Its stop() says Bye. */
export async function announce (domain: { readonly epr: string, readonly endpoints: readonly string[], close: (graceMs?: number) => Promise<void> }, a: Announcement, logger: Logger): Promise<TargetService> {
  // WS-Discovery (its UDP sockets, messages, matching) is loaded only by a domain that announces.
  const { TargetService } = await import('../discovery/target-service.js')
  const target = new TargetService({
    epr: domain.epr,
    types: a.types,
    scopes: a.scopes,
    xaddrs: announcedEndpoints(domain, a),
    ...(a.interfaces === undefined ? {} : { interfaces: a.interfaces }),
    logger,
  })
  try {
    await target.start()
  } catch (e) {
    await domain.close(0)
    throw e
  }
  return target
}
