// The network interfaces WS-Discovery may use: those named (or all), each with its IPv4 address
// and its IPv6 loopback or link-local one. Apart from soap-udp.ts so that checking an --interface
// option does not load the UDP transport.
import { networkInterfaces } from 'node:os'
import { MetaosError } from '../soap-runtime/errors.js'

export interface Iface {
  readonly name: string
  readonly v4?: { readonly address: string, readonly cidr: string }
  readonly v6?: { readonly address: string, readonly scopeid: number }
}

/** The interfaces named (`all` = every one that is up); default loopback only. */
export function selectInterfaces (names: readonly string[] = ['lo']): Iface[] {
  const all = networkInterfaces()
  const wanted = names.includes('all') ? Object.keys(all) : [...names]
  return wanted.map((name) => {
    const addrs = all[name]
    if (addrs === undefined) throw new MetaosError('INVALID_ARGUMENT', `no network interface "${name}" (have: ${Object.keys(all).join(', ')})`)
    const v4 = addrs.find((a) => a.family === 'IPv4')
    const v6 = addrs.find((a) => a.family === 'IPv6' && (a.internal || a.address.toLowerCase().startsWith('fe80')))
    return {
      name,
      ...(v4 === undefined ? {} : { v4: { address: v4.address, cidr: v4.cidr ?? `${v4.address}/32` } }),
      ...(v6 === undefined ? {} : { v6: { address: v6.address, scopeid: v6.scopeid ?? 0 } }),
    }
  })
}
