// The socket syscalls themselves (DESIGN.md §3): Connect/Send/Receive/SendTo/ReceiveFrom/Listen/
// Accept/Shutdown/Close/ResolveHost over node:net and node:dgram, behind the destination policy,
// and pushed receives on a framed session (Subscribe/Grant, push-subscription.ts).
// Checks arguments and limits, resolves and admits destinations, and hands each socket to its
// handle; the sockets' own behaviour lives in tcp-connection.ts, tcp-listener.ts, udp-socket.ts.
// Used by a network domain's service; knows nothing of SOAP or transports.
import { isIP } from 'node:net'
import { MetaosError } from '../soap-runtime/errors.js'
import type * as N from '../wsdl/generated/network-service.js'
import type { DestinationPolicy } from '../security/allow-list.js'
import type { SessionChannel } from '../soap-runtime/host-types.js'
import { PushSubscription } from './push-subscription.js'
import { admittedDestinations, formatHostPort, resolveAll } from './destination.js'
import { checkHost, checkInt, checkMaxBytes, checkTimeout, invalid } from './net-errors.js'
import { SocketTable, type Handle, type Reservation } from './socket-table.js'
import { TcpConnection, connectTcp } from './tcp-connection.js'
import { TcpListener, listenTcp } from './tcp-listener.js'
import { UdpSocket, openUdp } from './udp-socket.js'

export interface NetworkLimits {
  /** Sockets of every kind the domain holds at once (connections waiting for Accept included). */
  maxSockets: number
  /** Sockets and listeners one caller holds at once. */
  maxSocketsPerCaller: number
  /** Bytes received and not yet taken by Receive, per socket; beyond it TCP stops reading (the sender is slowed), UDP drops. */
  maxBufferedBytesPerSocket: number
  /** Largest maxBytes of one Receive/ReceiveFrom (larger → MESSAGE_TOO_LARGE). */
  maxReceiveBytes: number
  /** Largest timeoutMs of any call (larger → INVALID_ARGUMENT); also bounds name resolution. */
  maxWaitMs: number
  /** Sockets and listeners unused this long are closed. */
  idleMs: number
}

export const DEFAULT_NETWORK_LIMITS: NetworkLimits = {
  maxSockets: 4096,
  maxSocketsPerCaller: 512,
  maxBufferedBytesPerSocket: 1024 * 1024,
  maxReceiveBytes: 16 * 1024 * 1024,
  maxWaitMs: 60_000,
  idleMs: 10 * 60_000,
}

export interface NetworkStats {
  /** TCP connections and UDP sockets held for callers. */
  sockets: number
  /** TCP listeners. */
  listeners: number
  /** Bytes received and not yet taken, over every socket. */
  bufferedBytes: number
  /** Connections accepted by the kernel and waiting for Accept. */
  pendingConnections: number
  /** UDP datagrams dropped because a socket's queue was full. */
  droppedDatagrams: number
  /** Connections pushing their data to a framed session (Subscribe). */
  subscriptions: number
  /** Bytes pushed to sessions and not yet granted back, over every subscription (each at most its window). */
  unacknowledgedBytes: number
}

/** What an authenticated caller's identity narrows: its destinations and its socket limit. */
export interface PerCaller {
  readonly destinations?: (caller: string) => DestinationPolicy | undefined
  readonly limit?: (caller: string) => number | undefined
}

export class NetworkEngine {
  readonly #policy: DestinationPolicy
  readonly #limits: NetworkLimits
  readonly #table: SocketTable
  #pending = 0
  #dropped = 0
  #closing = false
  #draining = false
  /** Aborted by closeAll: connects under way stop at once. */
  readonly #abort = new AbortController()
  /** Connect and Listen calls under way: closeAll waits for them to let go of their sockets. */
  readonly #making = new Set<Promise<unknown>>()

  readonly #perCaller: PerCaller
  /** Push subscriptions by socket handle. */
  readonly #subs = new Map<string, PushSubscription>()

  constructor (policy: DestinationPolicy, limits: Partial<NetworkLimits> = {}, perCaller: PerCaller = {}) {
    const l = { ...DEFAULT_NETWORK_LIMITS }
    for (const k of Object.keys(l) as Array<keyof NetworkLimits>) {
      const v = limits[k]
      if (v === undefined) continue
      if (!Number.isSafeInteger(v) || v <= 0) throw invalid(`network limit ${k} must be a positive integer, not ${v}`)
      l[k] = v
    }
    this.#policy = policy
    this.#limits = l
    this.#perCaller = perCaller
    this.#table = new SocketTable({ ...l, ...(perCaller.limit === undefined ? {} : { limitFor: perCaller.limit }) })
  }

  /** The domain's allow-list, narrowed by what this caller's identity may reach. */
  #policyFor (caller: string): DestinationPolicy {
    const own = this.#perCaller.destinations?.(caller)
    if (own === undefined) return this.#policy
    const domain = this.#policy
    return { rules: own.rules, admits: (a, p) => domain.admits(a, p) && own.admits(a, p) }
  }

  get policy (): DestinationPolicy { return this.#policy }
  get limits (): Readonly<NetworkLimits> { return this.#limits }

  get stats (): NetworkStats {
    let sockets = 0
    let listeners = 0
    let bufferedBytes = 0
    for (const h of this.#table.handles()) {
      if (h.resource.kind === 'listener') listeners++
      else sockets++
      bufferedBytes += h.resource.bufferedBytes
    }
    let unacknowledgedBytes = 0
    for (const s of this.#subs.values()) unacknowledgedBytes += s.unacknowledged
    return { sockets, listeners, bufferedBytes, pendingConnections: this.#pending, droppedDatagrams: this.#dropped, subscriptions: this.#subs.size, unacknowledgedBytes }
  }

  async connect (i: N.Connect, caller: string): Promise<N.ConnectResponse> {
    return await this.#track(this.#connect(i, caller))
  }

  async #connect (i: N.Connect, caller: string): Promise<N.ConnectResponse> {
    this.#open()
    const host = checkHost(i.host)
    const port = checkInt('port', i.port, 1, 65535)
    const protocol = checkProtocol(i.protocol)
    // timeoutMs 0: as long as the domain lets any call wait.
    const deadline = Date.now() + (checkTimeout(i.timeoutMs, this.#limits.maxWaitMs) || this.#limits.maxWaitMs)
    const slot = this.#table.reserve(caller)
    try {
      const addresses = await admittedDestinations(this.#policyFor(caller), host, port, deadline)
      if (protocol === 'udp') {
        const address = addresses[0]!
        const family = isIP(address) === 6 ? 6 : 4
        const socket = await openUdp(family, { port: 0 }, { address, port })
        const h = this.#commit(slot, new UdpSocket(socket, true, family, this.#limits.maxBufferedBytesPerSocket, () => { this.#dropped++ }))
        const local = socket.address()
        const remote = socket.remoteAddress()
        return { socket: h.id, localAddress: local.address, localPort: local.port, remoteAddress: remote.address, remotePort: remote.port }
      }
      // Every admitted address in turn, as a resolver's order suggests, within the one deadline.
      let last: unknown
      for (const address of addresses) {
        try {
          const socket = await connectTcp(address, port, deadline, this.#abort.signal)
          const h = this.#commit(slot, new TcpConnection(socket, this.#limits.maxBufferedBytesPerSocket))
          return { socket: h.id, localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0, remoteAddress: socket.remoteAddress ?? address, remotePort: socket.remotePort ?? port }
        } catch (e) {
          last = e
          if ((e as MetaosError).code === 'TIMED_OUT' || (e as MetaosError).code === 'DOMAIN_DRAINING') break
        }
      }
      throw last
    } finally {
      slot.release() // no-op once committed
    }
  }

  async send (i: N.Send, caller: string): Promise<N.SendResponse> {
    const h = this.#get(i.socket, caller)
    const r = h.resource
    return await this.#table.use(h, async () => {
      if (r instanceof TcpConnection || r instanceof UdpSocket) return { sent: await r.send(i.data) }
      throw invalid('Send needs a socket, not a listener')
    })
  }

  async receive (i: N.Receive, caller: string): Promise<N.ReceiveResponse> {
    const h = this.#get(i.socket, caller)
    const maxBytes = checkMaxBytes(i.maxBytes, this.#limits.maxReceiveBytes)
    const timeoutMs = checkTimeout(i.timeoutMs, this.#limits.maxWaitMs)
    const r = h.resource
    if (this.#subs.has(h.id)) throw invalid('this connection pushes what it receives to the session that subscribed: Receive is not for it')
    return await this.#table.use(h, async () => {
      if (r instanceof TcpConnection || r instanceof UdpSocket) return await r.receive(maxBytes, timeoutMs)
      throw invalid('Receive needs a socket, not a listener')
    })
  }

  /**
   * Binds a TCP connection to the framed session the call came on: what it receives is pushed there
   * (Received callbacks) within a credit of `window` bytes (at most maxReceiveBytes). When the
   * session ends, the connection is closed: its bytes in flight cannot be delivered elsewhere.
   */
  subscribe (i: N.Subscribe, caller: string, session: SessionChannel | undefined): N.SubscribeResponse {
    if (session === undefined) throw invalid('Subscribe needs a framed session (net.uds, net.tcp) to push to; over HTTP use Receive')
    const h = this.#get(i.socket, caller)
    const r = h.resource
    if (!(r instanceof TcpConnection)) throw invalid('Subscribe needs a TCP connection')
    if (this.#subs.has(h.id)) throw invalid('the connection is already subscribed')
    const window = Math.min(checkInt('window', i.window, 1, 2 ** 31 - 1), this.#limits.maxReceiveBytes)
    const sub = new PushSubscription(r, h.id, session, window)
    this.#subs.set(h.id, sub)
    h.busy++ // held by its session: never reaped as idle
    session.onClose(() => {
      sub.stop()
      if (this.#subs.get(h.id) !== sub) return
      this.#subs.delete(h.id)
      h.busy--
      void this.#table.remove(h)
    })
    // Whatever arrived already goes out after this call's answer is on its way.
    setImmediate(() => { sub.pump() })
    return { window }
  }

  grant (i: N.Grant, caller: string): N.GrantResponse {
    const h = this.#get(i.socket, caller)
    const sub = this.#subs.get(h.id)
    if (sub === undefined) throw invalid('Grant needs a subscribed connection (Subscribe first)')
    sub.grant(checkInt('bytes', i.bytes, 1, 2 ** 31 - 1))
    return {}
  }

  async sendTo (i: N.SendTo, caller: string): Promise<N.SendToResponse> {
    const h = this.#get(i.socket, caller)
    const r = h.resource
    if (!(r instanceof UdpSocket)) throw invalid('SendTo needs a UDP socket')
    const host = checkHost(i.host)
    const port = checkInt('port', i.port, 1, 65535)
    return await this.#table.use(h, async () => {
      const [address] = await admittedDestinations(this.#policyFor(caller), host, port, Date.now() + this.#limits.maxWaitMs, r.family)
      return { sent: await r.sendTo(i.data, address!, port) }
    })
  }

  async receiveFrom (i: N.ReceiveFrom, caller: string): Promise<N.ReceiveFromResponse> {
    const h = this.#get(i.socket, caller)
    const maxBytes = checkMaxBytes(i.maxBytes, this.#limits.maxReceiveBytes)
    const timeoutMs = checkTimeout(i.timeoutMs, this.#limits.maxWaitMs)
    const r = h.resource
    if (!(r instanceof UdpSocket)) throw invalid('ReceiveFrom needs a UDP socket')
    return await this.#table.use(h, async () => await r.receiveFrom(maxBytes, timeoutMs))
  }

  async listen (i: N.Listen, caller: string): Promise<N.ListenResponse> {
    return await this.#track(this.#listen(i, caller))
  }

  async #listen (i: N.Listen, caller: string): Promise<N.ListenResponse> {
    this.#open()
    const host = i.host.trim() === '' ? '127.0.0.1' : checkHost(i.host)
    const port = checkInt('port', i.port, 0, 65535)
    const protocol = checkProtocol(i.protocol)
    const backlog = checkInt('backlog', i.backlog, 0, 65535)
    const slot = this.#table.reserve(caller)
    try {
      // Listening addresses are checked like destinations; port 0 is admitted when the host is.
      const policy = this.#policyFor(caller)
      const address = (await resolveAll(host, Date.now() + this.#limits.maxWaitMs)).find((a) => policy.admits(a, port))
      if (address === undefined) throw new MetaosError('DESTINATION_NOT_ALLOWED', `listening on ${formatHostPort(host, port)} is not admitted by the domain's allow-list`)
      if (protocol === 'udp') {
        const family = isIP(address) === 6 ? 6 : 4
        const socket = await openUdp(family, { address, port })
        const h = this.#commit(slot, new UdpSocket(socket, false, family, this.#limits.maxBufferedBytesPerSocket, () => { this.#dropped++ }))
        const bound = socket.address()
        return { listener: h.id, address: bound.address, port: bound.port }
      }
      const server = await listenTcp(address, port, backlog === 0 ? 511 : backlog)
      const maxPending = Math.min(backlog === 0 ? 128 : backlog, this.#limits.maxSocketsPerCaller)
      const listener = new TcpListener(server, maxPending, {
        hasRoom: () => !this.#closing && this.#table.hasRoom(),
        pendingChanged: (d) => { this.#pending += d; this.#table.outside += d },
      })
      const h = this.#commit(slot, listener)
      const bound = server.address() as { address: string, port: number }
      return { listener: h.id, address: bound.address, port: bound.port }
    } finally {
      slot.release()
    }
  }

  async accept (i: N.Accept, caller: string): Promise<N.AcceptResponse> {
    const h = this.#get(i.listener, caller)
    const timeoutMs = checkTimeout(i.timeoutMs, this.#limits.maxWaitMs)
    const r = h.resource
    if (!(r instanceof TcpListener)) throw invalid('Accept needs a TCP listener')
    let slot: Reservation | undefined
    const socket = await this.#table.use(h, async () => await r.accept(timeoutMs, () => { slot = this.#table.reserve(caller) }))
    if (socket === undefined || slot === undefined) return {}
    const conn = this.#commit(slot, new TcpConnection(socket, this.#limits.maxBufferedBytesPerSocket))
    return { socket: conn.id, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 }
  }

  async shutdown (i: N.Shutdown, caller: string): Promise<N.ShutdownResponse> {
    const h = this.#get(i.socket, caller)
    const r = h.resource
    if (!(r instanceof TcpConnection)) throw invalid('Shutdown needs a TCP connection')
    await this.#table.use(h, async () => { await r.shutdown() })
    return {}
  }

  /** Closes a socket or a listener at once: calls waiting on it end with INVALID_HANDLE. */
  async close (i: N.Close, caller: string): Promise<N.CloseResponse> {
    const h = this.#table.get(i.socket, caller)
    const sub = this.#subs.get(h.id)
    if (sub !== undefined) { sub.stop(); this.#subs.delete(h.id); h.busy-- }
    await this.#table.remove(h)
    return {}
  }

  async resolveHost (i: N.ResolveHost): Promise<N.ResolveHostResponse> {
    this.#open()
    return { address: await resolveAll(checkHost(i.name), Date.now() + this.#limits.maxWaitMs) }
  }

  /**
   * The domain starts draining: calls waiting for data, datagrams or connections answer now, as
   * at their timeout (empty data, no socket), so the drain is not held up by long waits; sends go on.
   */
  drain (): void {
    this.#draining = true
    this.#table.expireWaits()
  }

  /** Closes every socket and listener (domain shutdown); later calls get DOMAIN_DRAINING. */
  async closeAll (): Promise<void> {
    this.#closing = true
    this.#abort.abort()
    await Promise.allSettled([...this.#making])
    await this.#table.closeAll()
  }

  async #track<T> (p: Promise<T>): Promise<T> {
    this.#making.add(p)
    try { return await p } finally { this.#making.delete(p) }
  }

  #open (): void {
    if (this.#closing) throw new MetaosError('DOMAIN_DRAINING', 'the network domain is shutting down')
  }

  #get (id: string, caller: string): Handle {
    this.#open()
    return this.#table.get(id, caller)
  }

  /** A socket made while the domain began closing is closed at once, never handed out. */
  #commit<R extends TcpConnection | UdpSocket | TcpListener> (slot: Reservation, resource: R): Handle<R> {
    if (this.#closing) {
      slot.release()
      void resource.close()
      throw new MetaosError('DOMAIN_DRAINING', 'the network domain is shutting down')
    }
    if (this.#draining) resource.expireWaits()
    return slot.commit(resource)
  }
}

function checkProtocol (p: string): 'tcp' | 'udp' {
  if (p !== 'tcp' && p !== 'udp') throw invalid(`protocol "${p}" is not tcp or udp`)
  return p
}
