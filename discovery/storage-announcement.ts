// What a domain says of itself on WS-Discovery: its type (metaos StorageDomain, NetworkDomain), the
// scopes of DESIGN.md §4 and its endpoints as XAddrs. The one place scopes are built and read back.
import { hostname, release, type } from 'node:os'
import { METAOS_TYPES_NS } from './protocol.js'

export const STORAGE_DOMAIN_TYPE = `{${METAOS_TYPES_NS}}StorageDomain`
export const NETWORK_DOMAIN_TYPE = `{${METAOS_TYPES_NS}}NetworkDomain`

const seg = (s: string): string => encodeURIComponent(s)

export interface ScopeFacts {
  readonly hosting: 'process' | 'container' | 'vm'
  readonly volume?: string
  readonly zone?: string
  readonly extra?: readonly string[]
}

/** The scope that names a volume (what a frontend probes for to find the domains of one volume). */
export const volumeScope = (volume: string): string => `metaos://volume/${seg(volume)}`

/** What a domain's scopes say of it, read back (a fact it did not announce is left out). */
export interface AnnouncedFacts {
  readonly hosting?: string
  readonly kernel?: { readonly sysname: string, readonly release: string }
  readonly volume?: string
  readonly zone?: string
  /** `node/<version>`. */
  readonly runtime?: string
}

export function factsFromScopes (scopes: readonly string[]): AnnouncedFacts {
  const get = (prefix: string): string | undefined => {
    const s = scopes.find((x) => x.startsWith(prefix))
    return s === undefined ? undefined : decodeURIComponent(s.slice(prefix.length))
  }
  const kernel = scopes.find((x) => x.startsWith('metaos://kernel/'))?.slice('metaos://kernel/'.length).split('/').map(decodeURIComponent)
  const hosting = get('metaos://hosting/')
  const volume = get('metaos://volume/')
  const zone = get('metaos://zone/')
  const runtime = get('metaos://runtime/node/')
  return {
    ...(hosting === undefined ? {} : { hosting }),
    ...(kernel === undefined ? {} : { kernel: { sysname: kernel[0] ?? 'unknown', release: kernel[1] ?? '0' } }),
    ...(volume === undefined ? {} : { volume }),
    ...(zone === undefined ? {} : { zone }),
    ...(runtime === undefined ? {} : { runtime: `node/${runtime}` }),
  }
}

/** `metaos://kernel/<sysname>/<release>`, `…/hosting/…`, `…/host/…`, `…/runtime/node/…`, `…/volume/…`, `…/zone/…`. */
export function domainScopes (f: ScopeFacts): string[] {
  return [
    `metaos://kernel/${seg(type().toLowerCase())}/${seg(release())}`,
    `metaos://hosting/${f.hosting}`,
    `metaos://host/${seg(hostname())}`,
    `metaos://runtime/node/${seg(process.versions.node)}`,
    ...(f.volume === undefined ? [] : [`metaos://volume/${seg(f.volume)}`]),
    ...(f.zone === undefined ? [] : [`metaos://zone/${seg(f.zone)}`]),
    ...(f.extra ?? []),
  ]
}

/** Accepts `StorageDomain`, `metaos:StorageDomain` or Clark notation `{ns}Local`; returns Clark notation. */
export function parseTypeName (s: string): string {
  if (s.startsWith('{')) return s
  const local = s.includes(':') ? s.slice(s.indexOf(':') + 1) : s
  return `{${METAOS_TYPES_NS}}${local}`
}

/** What a domain declares of itself for the score (frontend/placement/score.ts): SLA and cost. */
export interface DeclaredFacts {
  readonly sla?: number
  readonly costPerCall?: number
  readonly costPerMB?: number
}

/** `metaos://sla/<0..1>`, `metaos://cost/call/<n>`, `metaos://cost/mb/<n>`. */
export function declaredScopes (d: DeclaredFacts): string[] {
  return [
    ...(d.sla === undefined ? [] : [`metaos://sla/${d.sla}`]),
    ...(d.costPerCall === undefined ? [] : [`metaos://cost/call/${d.costPerCall}`]),
    ...(d.costPerMB === undefined ? [] : [`metaos://cost/mb/${d.costPerMB}`]),
  ]
}

/** Reads the declarations back from scopes; a malformed value is ignored (the default applies). */
export function declaredFromScopes (scopes: readonly string[]): DeclaredFacts {
  const num = (prefix: string, max: number): number | undefined => {
    const s = scopes.find((x) => x.startsWith(prefix))
    if (s === undefined) return undefined
    const n = Number(s.slice(prefix.length))
    return s.length > prefix.length && Number.isFinite(n) && n >= 0 && n <= max ? n : undefined
  }
  const sla = num('metaos://sla/', 1)
  const costPerCall = num('metaos://cost/call/', Number.MAX_SAFE_INTEGER)
  const costPerMB = num('metaos://cost/mb/', Number.MAX_SAFE_INTEGER)
  return { ...(sla === undefined ? {} : { sla }), ...(costPerCall === undefined ? {} : { costPerCall }), ...(costPerMB === undefined ? {} : { costPerMB }) }
}
