// A host's listening sockets: HTTP on TCP, HTTPS (TLS 1.2+, optionally asking clients for a
// certificate) and HTTP on a Unix socket (mode 0600), with the connection limits (in all and per
// peer, before any TLS handshake), the header and request timeouts (slow-loris), the exposure rule
// (no plain or unauthenticated listener beyond loopback unless the operator says the network is
// trusted), TLS renewal and the closing steps of a drain. Requests go to the handler it is given.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import type { Logger } from 'pino'
import { isLoopbackHost, type Endpoint } from './endpoint.js'
import { MetaosError } from './errors.js'
import type { HostLimits, HostTls, TlsFacts } from './host-types.js'

export interface ListenersOptions {
  readonly limits: HostLimits
  readonly logger: Logger
  readonly tls?: HostTls | undefined
  /** Calls must authenticate (an https listener beyond loopback is then allowed without allowInsecure). */
  readonly authenticated: boolean
  /** The operator says the network is trusted: plain or unauthenticated listeners beyond loopback are allowed. */
  readonly allowInsecure?: boolean | undefined
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void

export class Listeners {
  readonly #o: ListenersOptions
  readonly #servers: Array<{ server: Server, endpoint: Endpoint }> = []
  #tls: HostTls | undefined

  constructor (o: ListenersOptions) {
    this.#o = o
    this.#tls = o.tls
  }

  /** Listens on `want` (`url` as given, for messages); returns the endpoint bound (the port chosen for port 0). */
  async listen (want: Endpoint, url: string, handler: RequestHandler): Promise<Endpoint> {
    this.#checkExposure(want, url)
    const server = this.#createServer(want, url, handler)
    server.maxConnections = this.#o.limits.maxConnections
    this.#limitPeers(server)
    if (want.protocol === 'unix') await removeStaleSocket(want.socketPath!)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      if (want.protocol === 'unix') server.listen(want.socketPath, () => { resolve() })
      else server.listen(want.port, want.host, () => { resolve() })
    })
    server.on('error', (e) => { this.#o.logger.error({ err: e }, 'listener error') })
    let bound: Endpoint = want
    if (want.protocol === 'unix') {
      chmodSync(want.socketPath!, 0o600) // the bus is for this user's co-hosted frontends only
    } else {
      const a = server.address()
      if (a !== null && typeof a === 'object') bound = { ...want, port: a.port, host: want.host }
    }
    this.#servers.push({ server, endpoint: bound })
    return bound
  }

  #createServer (want: Endpoint, url: string, handler: RequestHandler): Server {
    const l = this.#o.limits
    // connectionsCheckingInterval: Node checks the headers and request timeouts only this often
    // (default 30 s), so a slow-loris connection would otherwise live up to 40 s, not 10.
    const httpOptions = {
      keepAliveTimeout: 30_000, headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, l.headersTimeoutMs), maxHeaderSize: l.maxHeaderBytes, noDelay: true,
    }
    if (want.protocol !== 'https') return createServer(httpOptions, handler)
    const tls = this.#tls
    if (tls === undefined) throw new MetaosError('INVALID_ARGUMENT', `${url}: an https listener needs a certificate and a key (--tls-cert, --tls-key)`)
    const server = createHttpsServer({
      ...httpOptions,
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      handshakeTimeout: l.handshakeTimeoutMs,
      ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }),
      ...(tls.crl === undefined ? {} : { crl: tls.crl }),
    }, handler)
    // A handshake that fails (wrong CA on the client's side, garbage, a scanner) is not an error of the domain.
    server.on('tlsClientError', (e: Error) => { this.#o.logger.debug({ err: e.message }, 'TLS handshake failed') })
    return server
  }

  /** Re-reads TLS material (a renewed certificate, a new CRL) into the https listeners; open connections keep theirs. */
  setTls (tls: HostTls): void {
    this.#tls = tls
    for (const { server, endpoint } of this.#servers) {
      if (endpoint.protocol !== 'https') continue
      ;(server as unknown as { setSecureContext: (o: object) => void }).setSecureContext({
        cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }), ...(tls.crl === undefined ? {} : { crl: tls.crl }),
      })
    }
  }

  #checkExposure (ep: Endpoint, url: string): void {
    if (ep.protocol === 'unix' || isLoopbackHost(ep.host!) || this.#o.allowInsecure === true) return
    if (ep.protocol === 'http') throw new MetaosError('INVALID_ARGUMENT', `${url} would serve plain HTTP beyond this machine: listen on https:// (with --auth or --client-ca), or say --allow-insecure if this network is trusted`)
    if (!this.#o.authenticated) throw new MetaosError('INVALID_ARGUMENT', `${url} would let anyone who reaches it in without authentication: give --auth FILE or --client-ca FILE, or say --allow-insecure if that is intended`)
  }

  /** Drops connections beyond the per-peer limit as soon as they arrive (before any TLS handshake). */
  #limitPeers (server: Server): void {
    const perPeer = new Map<string, number>()
    const max = this.#o.limits.maxConnectionsPerPeer
    server.on('connection', (socket: Socket) => {
      const peer = socket.remoteAddress
      if (peer === undefined) return
      const n = (perPeer.get(peer) ?? 0) + 1
      if (n > max) {
        this.#o.logger.debug({ peer }, 'connection over the per-peer limit dropped')
        socket.destroy()
        return
      }
      perPeer.set(peer, n)
      socket.once('close', () => { const m = (perPeer.get(peer) ?? 1) - 1; if (m <= 0) perPeer.delete(peer); else perPeer.set(peer, m) })
    })
  }

  /** Closes the listening sockets only: connections already open keep being served. */
  stopListening (): void {
    for (const { server } of this.#servers) server.close()
  }

  /**
   * The drain's socket side: listeners close, idle connections close, `settle` waits for the calls
   * in flight, then every connection closes and the unix socket files go.
   */
  async close (settle: () => Promise<void>): Promise<void> {
    const closed = this.#servers.map(({ server }) => new Promise<void>((resolve) => { server.close(() => { resolve() }) }))
    for (const { server } of this.#servers) server.closeIdleConnections()
    await settle()
    for (const { server } of this.#servers) server.closeAllConnections()
    await Promise.all(closed)
    for (const { endpoint } of this.#servers) {
      if (endpoint.protocol === 'unix') try { unlinkSync(endpoint.socketPath!) } catch { /* already gone */ }
    }
  }
}

const tlsCache = new WeakMap<TLSSocket, TlsFacts>()
/** The TLS layer's verdict on the client's certificate, once per connection. */
export function tlsFacts (socket: TLSSocket): TlsFacts {
  let f = tlsCache.get(socket)
  if (f === undefined) {
    const cert = socket.getPeerCertificate()
    const err = socket.authorizationError as unknown
    f = { authorized: socket.authorized, error: err === null || err === undefined ? undefined : String((err as Error).message ?? err), certificate: cert === null || Object.keys(cert).length === 0 ? undefined : cert }
    tlsCache.set(socket, f)
  }
  return f
}

/** A socket file left by a crashed domain is removed; one a live domain listens on is an error. */
export async function removeStaleSocket (path: string): Promise<void> {
  let st
  try { st = lstatSync(path) } catch { return }
  if (!st.isSocket()) throw new MetaosError('ALREADY_EXISTS', `${path} exists and is not a socket; refusing to replace it`)
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
  if (live) throw new MetaosError('ALREADY_EXISTS', `another process is listening on ${path}`)
  unlinkSync(path)
}
