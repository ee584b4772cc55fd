// Scope matching rules of WS-Discovery (1.1 §5.1 and the 2005/04 draft): RFC 3986 / RFC 2396
// segment-wise prefixes, strcmp0, uuid, ldap and none. An unknown rule matches nothing; the
// caller decides whether that earns a MatchingRuleNotSupported fault.

export type MatchResult = boolean | 'unsupported'

interface UriParts { scheme: string, authority: string, segments: string[] }

function parseUri (s: string): UriParts | undefined {
  const m = /^([A-Za-z][A-Za-z0-9+.-]*):(?:\/\/([^/?#]*))?([^?#]*)/.exec(s.trim())
  if (m === null) return undefined
  let segments: string[]
  try {
    segments = m[3]!.split('/').map((x) => decodeURIComponent(x))
  } catch { return undefined }
  if (segments[0] === '') segments.shift()
  if (segments.length > 0 && segments[segments.length - 1] === '') segments.pop()
  if (segments.some((x) => x === '.' || x === '..')) return undefined
  return { scheme: m[1]!.toLowerCase(), authority: (m[2] ?? '').toLowerCase(), segments }
}

function prefixMatch (probe: string, target: string): boolean {
  const a = parseUri(probe)
  const b = parseUri(target)
  if (a === undefined || b === undefined) return false
  if (a.scheme !== b.scheme || a.authority !== b.authority || a.segments.length > b.segments.length) return false
  return a.segments.every((s, i) => s === b.segments[i])
}

function uuidOf (s: string): string | undefined {
  const m = /^(?:urn:uuid:|uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(s.trim())
  return m?.[1]!.toLowerCase()
}

function ldapMatch (probe: string, target: string): boolean {
  const parse = (s: string): { host: string, rdns: string[] } | undefined => {
    const m = /^ldap:\/\/([^/]*)\/([^?]*)/i.exec(s.trim())
    if (m === null) return undefined
    let dn: string
    try { dn = decodeURIComponent(m[2]!) } catch { return undefined }
    // RDNs from the most significant (rightmost) down, attribute types and values compared case-insensitively.
    const rdns = dn.split(',').map((r) => r.trim().toLowerCase().replace(/\s*=\s*/, '=')).filter((r) => r !== '').reverse()
    return { host: m[1]!.toLowerCase(), rdns }
  }
  const a = parse(probe)
  const b = parse(target)
  if (a === undefined || b === undefined || a.host !== b.host || a.rdns.length > b.rdns.length) return false
  return a.rdns.every((r, i) => r === b.rdns[i])
}

/**
 * Does a target with `targetScopes` match a Probe's `probeScopes` under `rule` (a MatchBy URI of
 * either version; `prefixRule` names the version's RFC rule)? Every probe scope must match one
 * target scope.
 */
export function matchScopes (rule: string, probeScopes: readonly string[], targetScopes: readonly string[]): MatchResult {
  const name = rule.slice(rule.lastIndexOf('/') + 1)
  const known = rule.startsWith('http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/') || rule.startsWith('http://schemas.xmlsoap.org/ws/2005/04/discovery/')
  if (!known) return 'unsupported'
  let one: (p: string, t: string) => boolean
  switch (name) {
    case 'rfc3986': case 'rfc2396': one = prefixMatch; break
    case 'strcmp0': one = (p, t) => p === t; break
    case 'uuid': one = (p, t) => { const a = uuidOf(p); return a !== undefined && a === uuidOf(t) }; break
    case 'ldap': one = ldapMatch; break
    case 'none':
      if (!rule.startsWith('http://docs.oasis-open.org/')) return 'unsupported'
      return targetScopes.length === 0
    default: return 'unsupported'
  }
  return probeScopes.every((p) => targetScopes.some((t) => one(p, t)))
}

/**
 * Does a target match a Probe? Every probed Type must be one of the target's (QNames, Clark
 * notation) and the Scopes must match under the Probe's rule (the version's default when none).
 * 'unsupported' for an unknown rule.
 */
export function probeMatches (probe: { readonly types?: readonly string[], readonly scopes?: readonly string[], readonly matchBy?: string }, defaultRule: string, target: { readonly types: readonly string[], readonly scopes: readonly string[] }): MatchResult {
  const scopes = probe.scopes ?? []
  const scopesOk = scopes.length === 0 && probe.matchBy === undefined ? true : matchScopes(probe.matchBy ?? defaultRule, scopes, target.scopes)
  if (scopesOk === 'unsupported') return scopesOk
  return scopesOk && (probe.types ?? []).every((t) => target.types.includes(t))
}
