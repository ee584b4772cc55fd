// From a host the caller named to the IP addresses the domain may use: names are resolved once,
// here, and every address is checked against the allow-list; sockets are then opened on those
// literal addresses only, so a name cannot resolve to one address for the check and to another
// for the connect (no DNS-rebinding bypass). The unspecified address (0.0.0.0, ::) is never a
// destination: the kernel would take it for this host's loopback.
import { BlockList, isIP } from 'node:net'
import { lookup } from 'node:dns'
import { MetaosError } from '../soap-runtime/errors.js'
import { plainAddress, type DestinationPolicy } from '../security/allow-list.js'
import { fromNetError } from './net-errors.js'

const UNSPECIFIED = new BlockList()
UNSPECIFIED.addAddress('0.0.0.0', 'ipv4')
UNSPECIFIED.addAddress('::', 'ipv6')

function unspecified (address: string): boolean {
  const a = plainAddress(address)
  return a !== undefined && UNSPECIFIED.check(a.address, a.family)
}

/** Every address `name` resolves to, in the resolver's order (an IP literal is itself). */
export async function resolveAll (name: string, deadline: number): Promise<string[]> {
  const literal = plainAddress(name)
  if (literal !== undefined) return [literal.address]
  return await new Promise<string[]>((resolve, reject) => {
    // getaddrinfo cannot be cancelled; at the deadline the caller stops waiting for it.
    const timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', `resolve ${name}: no answer within the timeout`)) }, Math.max(0, deadline - Date.now()))
    lookup(name, { all: true, verbatim: true }, (e, addresses) => {
      clearTimeout(timer)
      if (e !== null) reject(fromNetError(e, `resolve ${name}`))
      else if (addresses.length === 0) reject(new MetaosError('NAME_NOT_RESOLVED', `resolve ${name}: no address`))
      else resolve([...new Set(addresses.map((a) => a.address))])
    })
  })
}

/**
 * The addresses of host:port the policy admits, in the resolver's order; `family` keeps only
 * one family (a UDP socket's). DESTINATION_NOT_ALLOWED when none is admitted.
 */
export async function admittedDestinations (policy: DestinationPolicy, host: string, port: number, deadline: number, family?: 4 | 6): Promise<string[]> {
  const all = await resolveAll(host, deadline)
  const usable = family === undefined ? all : all.filter((a) => isIP(a) === family || (family === 6 && isIP(a) === 4))
  const admitted = usable.filter((a) => !unspecified(a) && policy.admits(a, port))
  if (admitted.length === 0) {
    const seen = all.length === 1 && all[0] === host ? '' : ` (resolved to ${all.join(', ')})`
    if (usable.length === 0) throw new MetaosError('INVALID_ARGUMENT', `${host}${seen} has no IPv${family} address for this IPv${family} socket`)
    throw new MetaosError('DESTINATION_NOT_ALLOWED', `${formatHostPort(host, port)}${seen} is not admitted by the domain's allow-list`)
  }
  // A udp6 socket reaches IPv4 destinations through their IPv4-mapped form.
  return family === 6 ? admitted.map((a) => (isIP(a) === 4 ? `::ffff:${a}` : a)) : admitted
}

export function formatHostPort (host: string, port: number): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`
}
