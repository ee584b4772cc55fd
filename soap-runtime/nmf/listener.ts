// A host's framed listeners: [MC-NMF] duplex sessions on a Unix socket (`net.uds:/path.sock`, mode
// 0600, the co-hosted bus) and on TCP (`net.tcp://HOST:PORT`), feeding the host's one message
// dispatcher (session.ts). Beside HTTP's listeners (listeners.ts) and with the same rules: the
// connection limits (in all, and per peer address on TCP: a peer over it gets ServerTooBusy), the
// exposure rule (beyond loopback, net.tcp sessions must upgrade to TLS — the host's certificate —
// and calls must authenticate, unless the operator says the network is trusted), the
// request-bytes budget, and the drain: calls arriving after it starts get DOMAIN_DRAINING, calls in
// flight finish, then every session gets its End.
import { chmodSync, unlinkSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import type { Logger } from 'pino'
import type { MessageDispatcher } from '../dispatcher.js'
import { isLoopbackHost, type Endpoint } from '../endpoint.js'
import { MetaosError } from '../errors.js'
import type { HostLimits, HostTls } from '../host-types.js'
import { removeStaleSocket } from '../listeners.js'
import { RequestBudget } from '../request-budget.js'
import { faultRecord } from './records.js'
import { ServerSession, type SessionContext } from './session.js'

export interface FramedListenersOptions {
  readonly dispatcher: MessageDispatcher
  readonly limits: HostLimits
  readonly logger: Logger
  /** The service path (`/storage`): what a net.tcp Via names. */
  readonly path: string
  /** The certificate sessions upgrade to TLS with (`application/ssl-tls`), and the client CA. */
  readonly tls?: HostTls | undefined
  /** Calls must authenticate (a net.tcp listener beyond loopback is then allowed, with TLS). */
  readonly authenticated: boolean
  /** The operator says the network is trusted: net.tcp beyond loopback is allowed without TLS. */
  readonly allowInsecure?: boolean | undefined
}

export class FramedListeners {
  readonly #o: FramedListenersOptions
  readonly #budget: RequestBudget
  readonly #servers: Array<{ server: Server, endpoint: Endpoint }> = []
  readonly #sessions = new Set<ServerSession>()
  #inFlight = 0
  #tls: HostTls | undefined
  #draining = false
  #drained: (() => void) | undefined

  constructor (o: FramedListenersOptions) {
    this.#o = o
    this.#budget = new RequestBudget(o.limits.maxBufferedBytes, o.limits.maxBufferedBytesPerPeer)
    this.#tls = o.tls
  }

  /** A renewed certificate: sessions upgrading from now on use it. */
  setTls (tls: HostTls): void { this.#tls = tls }

  /** Calls in flight on every session. */
  get inFlight (): number { return this.#inFlight }
  /** Sessions open (or opening). */
  get sessions (): number { return this.#sessions.size }

  /** Listens on `want` (a net.uds or net.tcp endpoint; `url` as given, for messages); returns the endpoint bound. */
  async listen (want: Endpoint, url: string): Promise<Endpoint> {
    const requireTls = want.protocol === 'net.tcp' && !isLoopbackHost(want.host!) && this.#o.allowInsecure !== true
    if (requireTls && this.#tls === undefined) throw new MetaosError('INVALID_ARGUMENT', `${url} would serve plain net.tcp beyond this machine: give --tls-cert and --tls-key (sessions then upgrade to TLS), or say --allow-insecure if this network is trusted`)
    if (requireTls && !this.#o.authenticated) throw new MetaosError('INVALID_ARGUMENT', `${url} would let anyone who reaches it in without authentication: give --auth FILE or --client-ca FILE, or say --allow-insecure if that is intended`)
    const transport = want.protocol as 'net.uds' | 'net.tcp'
    const server = createServer({ noDelay: true }, (socket) => { this.#accept(socket, transport, requireTls) })
    server.maxConnections = this.#o.limits.maxConnections
    if (transport === 'net.uds') await removeStaleSocket(want.socketPath!)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      if (transport === 'net.uds') server.listen(want.socketPath, () => { resolve() })
      else server.listen(want.port, want.host, () => { resolve() })
    })
    server.on('error', (e) => { this.#o.logger.error({ err: e }, 'framed listener error') })
    let bound = want
    if (transport === 'net.uds') chmodSync(want.socketPath!, 0o600) // the bus is for this user's co-hosted frontends only
    else {
      const a = server.address()
      if (a !== null && typeof a === 'object') bound = { ...want, port: a.port }
    }
    this.#servers.push({ server, endpoint: bound })
    return bound
  }

  #accept (socket: Socket, transport: 'net.uds' | 'net.tcp', requireTls: boolean): void {
    if (transport === 'net.tcp' && this.#overPeerLimit(socket)) return
    const context: SessionContext = {
      dispatcher: this.#o.dispatcher,
      limits: this.#o.limits,
      logger: this.#o.logger,
      transport,
      path: this.#o.path,
      budget: this.#budget,
      draining: () => this.#draining,
      started: () => { this.#inFlight++ },
      ended: () => { if (--this.#inFlight === 0 && this.#drained !== undefined) this.#drained() },
      tls: () => transport === 'net.tcp' ? this.#tls : undefined,
      requireTls,
    }
    const session = new ServerSession(socket, context)
    this.#sessions.add(session)
    void session.closed.then(() => { this.#sessions.delete(session) })
  }

  readonly #perPeer = new Map<string, number>()
  /** A TCP peer past maxConnectionsPerPeer gets ServerTooBusy and the socket closes. */
  #overPeerLimit (socket: Socket): boolean {
    const peer = socket.remoteAddress
    if (peer === undefined) return false
    const n = (this.#perPeer.get(peer) ?? 0) + 1
    if (n > this.#o.limits.maxConnectionsPerPeer) {
      this.#o.logger.debug({ peer }, 'framed session over the per-peer limit refused')
      socket.on('error', () => {})
      socket.end(faultRecord('ServerTooBusy'))
      setTimeout(() => { socket.destroy() }, 1000).unref()
      return true
    }
    this.#perPeer.set(peer, n)
    socket.once('close', () => { const m = (this.#perPeer.get(peer) ?? 1) - 1; if (m <= 0) this.#perPeer.delete(peer); else this.#perPeer.set(peer, m) })
    return false
  }

  /** From now on calls get DOMAIN_DRAINING; sessions still opening get EndpointUnavailable. */
  startDrain (): void { this.#draining = true }

  /** Closes the listening sockets only: sessions already open keep being served. */
  stopListening (): void {
    for (const { server } of this.#servers) server.close()
  }

  /**
   * The drain: listeners close, calls in flight finish (up to graceMs), every session gets its End
   * record (or, still opening, EndpointUnavailable), then what is left is closed and the socket
   * files go.
   */
  async close (graceMs: number): Promise<void> {
    this.#draining = true
    const closed = this.#servers.map(({ server }) => new Promise<void>((resolve) => { server.close(() => { resolve() }) }))
    if (this.#inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => { this.#drained = resolve }),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ])
    }
    const sessions = [...this.#sessions]
    for (const s of sessions) s.end()
    // Each peer has a moment to read its End and close; then the rest is closed.
    await Promise.race([Promise.all(sessions.map(async (s) => { await s.closed })), new Promise<void>((resolve) => setTimeout(resolve, 500).unref())])
    for (const s of this.#sessions) s.destroy()
    await Promise.all(closed)
    for (const { endpoint } of this.#servers) {
      if (endpoint.protocol === 'net.uds') try { unlinkSync(endpoint.socketPath!) } catch { /* already gone */ }
    }
  }
}
