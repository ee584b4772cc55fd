// The destination policy of a network domain: which addresses and ports it may connect to, send
// datagrams to and listen on. Rules are `CIDR:PORTS` (DESIGN.md §3); the default admits loopback
// only, so a domain is never an open proxy by accident. Matching is on IP addresses only — names
// are resolved by the engine first and every resolved address is checked (no DNS-rebinding bypass).
// Owns parsing and matching; knows nothing of sockets.
import { BlockList, isIP } from 'node:net'
import { MetaosError } from '../soap-runtime/errors.js'

export interface DestinationPolicy {
  /**
   * True when a rule admits this IP address and port. Port 0 (Listen's "any free port") is
   * admitted when some rule admits the address, whatever its ports.
   */
  admits (address: string, port: number): boolean
  /** The rules as given (for GetDomainInfo and the docs). */
  readonly rules: readonly string[]
}

/** The default: the IPv4 and IPv6 loopback networks, every port. */
export const LOOPBACK_ONLY: readonly string[] = ['127.0.0.0/8:*', '::1/128:*']

interface PortRange { readonly from: number, readonly to: number }

interface Rule {
  readonly text: string
  readonly net: BlockList
  /** Empty = every port. */
  readonly ports: readonly PortRange[]
}

/** Admits everything (tests, and operators who put the domain behind their own firewall). */
export function allowAll (): DestinationPolicy {
  return { admits: () => true, rules: ['0.0.0.0/0:*', '::/0:*'] }
}

/** Parses `CIDR:PORTS` rules: `127.0.0.0/8:*`, `10.1.0.0/16:80,443`, `192.168.1.5/32:8000-8100`, `::1/128:*`, `[fd00::]/8:443`. */
export function parseAllowList (rules: readonly string[]): DestinationPolicy {
  const parsed = rules.map(parseRule)
  return {
    rules: parsed.map((r) => r.text),
    admits: (address, port) => {
      const a = plainAddress(address)
      if (a === undefined) return false
      return parsed.some((r) => r.net.check(a.address, a.family) && portAdmitted(r.ports, port))
    },
  }
}

function portAdmitted (ports: readonly PortRange[], port: number): boolean {
  if (port === 0 || ports.length === 0) return true
  return ports.some((p) => port >= p.from && port <= p.to)
}

/** An IP literal without brackets or zone, with its BlockList family; undefined for anything else. */
export function plainAddress (address: string): { address: string, family: 'ipv4' | 'ipv6' } | undefined {
  let a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address
  const zone = a.indexOf('%')
  if (zone >= 0) a = a.slice(0, zone) // a link-local zone names an interface, not another address
  const v = isIP(a)
  // IPv4-mapped IPv6 addresses match IPv4 rules (BlockList maps them both ways).
  return v === 4 ? { address: a, family: 'ipv4' } : v === 6 ? { address: a, family: 'ipv6' } : undefined
}

function parseRule (raw: string): Rule {
  const text = raw.trim()
  const bad = (why: string): MetaosError => new MetaosError('INVALID_ARGUMENT', `allow rule "${raw}": ${why} (expected CIDR:PORTS, e.g. 127.0.0.0/8:* or 10.1.0.0/16:80,443 or ::1/128:8000-8100)`)
  // The ports follow the last colon: IPv6 addresses hold colons of their own.
  const colon = text.lastIndexOf(':')
  if (colon < 0) throw bad('no ":PORTS"')
  const cidr = text.slice(0, colon)
  const portText = text.slice(colon + 1)
  const slash = cidr.lastIndexOf('/')
  let addr = slash < 0 ? cidr : cidr.slice(0, slash)
  if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1)
  const family = isIP(addr)
  if (family === 0) throw bad(`"${addr}" is not an IPv4 or IPv6 address`)
  const max = family === 4 ? 32 : 128
  let prefix = max // an address without a prefix is a single host
  if (slash >= 0) {
    const p = cidr.slice(slash + 1)
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw bad(`prefix "/${p}" is not between /0 and /${max}`)
    prefix = Number(p)
  }
  const net = new BlockList()
  net.addSubnet(addr, prefix, family === 4 ? 'ipv4' : 'ipv6')
  return { text, net, ports: parsePorts(portText, bad) }
}

function parsePorts (text: string, bad: (why: string) => MetaosError): PortRange[] {
  if (text === '*') return []
  if (text === '') throw bad('no ports after ":" (use * for every port)')
  const port = (s: string): number => {
    if (!/^\d{1,5}$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw bad(`port "${s}" is not between 1 and 65535`)
    return Number(s)
  }
  return text.split(',').map((item) => {
    const dash = item.indexOf('-')
    if (dash < 0) { const p = port(item); return { from: p, to: p } }
    const from = port(item.slice(0, dash))
    const to = port(item.slice(dash + 1))
    if (from > to) throw bad(`port range ${item} runs backwards`)
    return { from, to }
  })
}
