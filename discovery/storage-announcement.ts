// What a storage domain says of itself on WS-Discovery: its type (metaos StorageDomain), the
// scopes of DESIGN.md §4 and its endpoints as XAddrs.
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
