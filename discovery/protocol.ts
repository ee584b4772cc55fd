// WS-Discovery constants for both protocol versions: WS-Discovery 1.1 (OASIS 2009/01, with
// WS-Addressing 1.0) and the April 2005 draft (with WS-Addressing 2004/08), plus SOAP-over-UDP
// timing. Data only.

export type WsdVersion = '1.1' | '2005'

export interface VersionInfo {
  readonly version: WsdVersion
  readonly wsd: string
  readonly wsa: string
  /** wsa:To of multicast messages. */
  readonly multicastTo: string
  readonly anonymous: string
  /** The default matching rule when a Probe names none. */
  readonly defaultMatchBy: string
  readonly matchRules: readonly string[]
}

const WSD11 = 'http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01'
const WSD05 = 'http://schemas.xmlsoap.org/ws/2005/04/discovery'

export const VERSIONS: Readonly<Record<WsdVersion, VersionInfo>> = {
  '1.1': {
    version: '1.1',
    wsd: WSD11,
    wsa: 'http://www.w3.org/2005/08/addressing',
    multicastTo: 'urn:docs-oasis-open-org:ws-dd:ns:discovery:2009:01',
    anonymous: 'http://www.w3.org/2005/08/addressing/anonymous',
    defaultMatchBy: `${WSD11}/rfc3986`,
    matchRules: ['rfc3986', 'uuid', 'ldap', 'strcmp0', 'none'].map((r) => `${WSD11}/${r}`),
  },
  2005: {
    version: '2005',
    wsd: WSD05,
    wsa: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
    multicastTo: 'urn:schemas-xmlsoap-org:ws:2005:04:discovery',
    anonymous: 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous',
    defaultMatchBy: `${WSD05}/rfc2396`,
    matchRules: ['rfc2396', 'uuid', 'ldap', 'strcmp0'].map((r) => `${WSD05}/${r}`),
  },
}

export function versionOfNamespace (ns: string): WsdVersion | undefined {
  return ns === WSD11 ? '1.1' : ns === WSD05 ? '2005' : undefined
}

export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope'
export const METAOS_TYPES_NS = 'urn:metaos:v1'

export const MULTICAST_V4 = '239.255.255.250'
export const MULTICAST_V6 = 'ff02::c'
export const DISCOVERY_PORT = 3702

/** SOAP-over-UDP 1.1, Appendix I, and WS-Discovery 1.1 §1.6 defaults (milliseconds). */
export const TIMING = {
  MULTICAST_UDP_REPEAT: 1,
  UNICAST_UDP_REPEAT: 1,
  UDP_MIN_DELAY: 50,
  UDP_MAX_DELAY: 250,
  UDP_UPPER_DELAY: 500,
  APP_MAX_DELAY: 500,
  MATCH_TIMEOUT: 10_000,
} as const

/** Largest datagram accepted or sent (the IPv4 UDP payload limit); messages stay far below. */
export const MAX_DATAGRAM = 65_507
