// Endpoint addresses: parses and formats the transports' URLs (DESIGN.md §4/§5/§8):
// `http://HOST:PORT/path`, `https://…`, `unix:/path/to.sock` (listen side) and
// `http+unix://<percent-encoded socket path>/<service path>` (what a bus endpoint is announced as);
// the framed ones ([MC-NMF] sessions, soap-runtime/nmf/): `net.uds:/path/to.sock` and
// `net.tcp://HOST:PORT/path`.
import { isIP } from 'node:net'
import { MetaosError } from './errors.js'

export interface Endpoint {
  readonly protocol: 'http' | 'https' | 'unix' | 'net.uds' | 'net.tcp'
  readonly host?: string
  readonly port?: number
  readonly socketPath?: string
  /** HTTP request path of the service, e.g. `/storage`. */
  readonly path: string
}

export function parseEndpoint (url: string, defaultPath = '/'): Endpoint {
  if (url.startsWith('unix:') && !url.startsWith('unix://')) {
    const socketPath = url.slice(5)
    if (socketPath === '') throw new MetaosError('INVALID_ARGUMENT', `"${url}": unix: needs a socket path`)
    return { protocol: 'unix', socketPath, path: defaultPath }
  }
  if (url.startsWith('http+unix://')) {
    const rest = url.slice('http+unix://'.length)
    const slash = rest.indexOf('/')
    const socketPath = decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash))
    return { protocol: 'unix', socketPath, path: slash < 0 ? defaultPath : rest.slice(slash) }
  }
  if (url.startsWith('net.uds:')) {
    // `net.uds:/path.sock`; `net.uds:///path.sock` (a URI with an empty authority) names the same socket.
    const socketPath = url.slice(8).replace(/^\/\/(?=\/)/, '')
    if (!socketPath.startsWith('/')) throw new MetaosError('INVALID_ARGUMENT', `"${url}": net.uds: needs an absolute socket path (net.uds:/path/to.sock)`)
    return { protocol: 'net.uds', socketPath, path: defaultPath }
  }
  let u: URL
  try { u = new URL(url) } catch { throw new MetaosError('INVALID_ARGUMENT', `"${url}" is not an endpoint URL (http://HOST:PORT/path, https://…, unix:/path.sock, net.tcp://HOST:PORT, net.uds:/path.sock)`) }
  if (u.protocol === 'net.tcp:') {
    if (u.hostname === '') throw new MetaosError('INVALID_ARGUMENT', `"${url}": net.tcp:// needs a host`)
    // 808 is WCF's default net.tcp port.
    return { protocol: 'net.tcp', host: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port === '' ? 808 : Number(u.port), path: u.pathname === '' || u.pathname === '/' ? defaultPath : u.pathname }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new MetaosError('INVALID_ARGUMENT', `"${url}": unsupported scheme ${u.protocol}`)
  const protocol = u.protocol === 'http:' ? 'http' : 'https'
  const port = u.port === '' ? (protocol === 'http' ? 80 : 443) : Number(u.port)
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1')
  return { protocol, host, port, path: u.pathname === '/' ? defaultPath : u.pathname + u.search }
}

export function formatEndpoint (e: Endpoint): string {
  if (e.protocol === 'unix') return `http+unix://${encodeURIComponent(e.socketPath!)}${e.path}`
  // A socket serves one service: its address is the socket's alone.
  if (e.protocol === 'net.uds') return `net.uds:${e.socketPath!}`
  const host = e.host!.includes(':') ? `[${e.host}]` : e.host
  return `${e.protocol}://${host}:${e.port}${e.path}`
}

/** Whether an endpoint is a framed one ([MC-NMF]: net.uds, net.tcp) rather than HTTP. */
export function isFramed (e: Endpoint): boolean {
  return e.protocol === 'net.uds' || e.protocol === 'net.tcp'
}

/** True for the loopback host names and addresses (localhost, 127.0.0.0/8, ::1): what never leaves this machine. */
export function isLoopbackHost (host: string): boolean {
  if (host === 'localhost') return true
  if (isIP(host) === 4) return host.startsWith('127.')
  return host === '::1' || host === '::ffff:127.0.0.1'
}
