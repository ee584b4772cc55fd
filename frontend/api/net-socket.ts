// NetSocket: what applications use to open a TCP connection through the local kernel or a network
// domain, shaped like Node's net.Socket (a Duplex with 'connect', 'data', 'end', 'close', 'error')
// so existing code can take one. Every syscall goes to a NetworkHandler. Reading is a pump of
// long-poll Receive calls that stops while the consumer is behind: the domain's buffer then fills
// and TCP flow control slows the remote. Through a handler whose session carries pushed receives
// (a proxy on net.uds or net.tcp, or a network dispatcher for a socket it placed on a domain reached
// so) the domain pushes the data instead, within a credit the socket grants back as the consumer
// reads (pushed-reader.ts). Writing is one Send at a time (order), writev chunks coalesced. Owns
// one remote socket handle and Closes it exactly once; knows no SOAP or transport.
import { Duplex } from 'node:stream'
import { isIP } from 'node:net'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import { sharedNetworkProxy, type NetworkHandler, type NetworkOp } from '../handlers/network-handler.js'
import { KEYS, obtain } from '../handlers/process-registry.js'
import type { PushedReader } from './pushed-reader.js'

/**
 * `local` (this process's kernel, the default), `discover` (the network dispatcher of the
 * process-wide network frontend: domains found with WS-Discovery), a network domain endpoint URL
 * (`http://…/network`, `unix:/path.sock`, `http+unix://…`), or any NetworkHandler.
 */
export type NetDestination = 'local' | 'discover' | string | NetworkHandler

export interface SocketStats {
  calls: number
  /** Σ service-side time reported by the domain (µs); long-poll waits count as service time. */
  serviceMicros: number
  /** Σ round-trip time minus service time (µs): the channel. */
  channelMicros: number
  bytesWritten: number
  bytesRead: number
}

export interface NetSocketOptions {
  readonly destination?: NetDestination
  /** As net.Socket: false (default) ends the writable side when the peer ends. */
  readonly allowHalfOpen?: boolean
  /** Also the most one Receive asks for. Default 1 MiB. */
  readonly readableHighWaterMark?: number
  /** What may queue while a Send is in flight, coalesced into the next one. Default 1 MiB. */
  readonly writableHighWaterMark?: number
  /** How long one Receive waits for data before it is asked again. Default 5000. */
  readonly receiveTimeoutMs?: number
}

export interface NetConnectOptions {
  readonly port: number
  /** Default 'localhost', as net.connect; resolved by the kernel that connects. */
  readonly host?: string
  /** Connect timeout of the kernel that connects. Default 30000. */
  readonly timeoutMs?: number
}

export interface AddressInfo { address: string, family: string, port: number }

interface Addresses { localAddress?: string, localPort?: number, remoteAddress?: string, remotePort?: number }

const MIB = 1024 * 1024
/** Largest block one Send carries. */
const MAX_SEND = MIB

/**
 * The handler a destination names: one process-wide local handler, one 'discover' handler, one
 * shared proxy per endpoint (kept in the process registry). The local kernel's engine and the
 * network frontend are loaded by their first call, not by importing NetSocket.
 */
export function resolveNetworkDestination (d: NetDestination | undefined): NetworkHandler {
  if (d === undefined || d === 'local') {
    return obtain(KEYS.localNetworkHandler, () => loadedOnFirstCall('local', async () => new (await import('../handlers/local-network-handler.js')).LocalNetworkHandler()), async (h) => { await h.close() })
  }
  // The frontend is shared by the process: closeSharedNetworkFrontend() ends it (and forgets this handler).
  if (d === 'discover') {
    return obtain(KEYS.discoverNetworkHandler, () => loadedOnFirstCall('discover', async () => (await (await import('../assembly/network-frontend.js')).sharedNetworkFrontend()).dispatcher, { owns: false }), () => {})
  }
  if (typeof d === 'string') return sharedNetworkProxy(d)
  return d
}

/** A handler whose real one is made (its modules loaded) by the first call; a failed load is tried again by the next. `owns`: close() closes it. */
function loadedOnFirstCall (destination: string, load: () => Promise<NetworkHandler>, o: { owns?: boolean } = {}): NetworkHandler {
  let real: NetworkHandler | undefined
  let loading: Promise<NetworkHandler> | undefined
  const get = async (): Promise<NetworkHandler> => await (loading ??= load()
    .then((h) => (real = h))
    .catch((e: unknown) => { loading = undefined; throw e }))
  return {
    destination,
    // A socket reads after its first call (Connect, or the listener's Accept) made the real handler.
    get pushes () { return real?.pushes },
    invoke: async <K extends NetworkOp>(op: K, input: NetworkOperations[K]['input']) => await (real ?? await get()).invoke(op, input),
    close: async () => { if (o.owns !== false && loading !== undefined) await (await loading.catch(() => undefined))?.close() },
  }
}

/** Adds one call to a socket's stats (channel = round trip − service time). */
export function account (s: SocketStats, inv: Invocation<unknown>): void {
  const service = Math.min(inv.serviceMicros ?? 0, inv.totalMicros)
  s.calls++
  s.serviceMicros += service
  s.channelMicros += inv.totalMicros - service
}

/**
 * Every error an application sees is a MetaosError. A transport failure on an open connection is
 * CONNECTION_LOST: a TCP connection cannot move to another kernel.
 */
export function toNetError (e: unknown, what: string, established: boolean): MetaosError {
  if (e instanceof MetaosError) {
    return established && e.code === 'TRANSPORT_ERROR' ? new MetaosError('CONNECTION_LOST', `${what}: ${e.message}`, { cause: e }) : e
  }
  return new MetaosError('IO_ERROR', `${what}: ${e instanceof Error ? e.message : String(e)}`, { cause: e })
}

export function familyOf (address: string | undefined): string {
  return isIP(address ?? '') === 6 ? 'IPv6' : 'IPv4'
}

export class NetSocket extends Duplex {
  readonly handler: NetworkHandler
  readonly stats: SocketStats = { calls: 0, serviceMicros: 0, channelMicros: 0, bytesWritten: 0, bytesRead: 0 }
  #addresses: Addresses = {}
  #handle: string | undefined
  #connecting = false
  #connectError: MetaosError | undefined
  readonly #connected: Promise<boolean>
  #settleConnect!: (ok: boolean) => void
  #closeSent = false
  #wantRead = false
  #pumping = false
  readonly #maxBytes: number
  readonly #receiveTimeoutMs: number
  #idleMs = 0
  #idleTimer: NodeJS.Timeout | undefined
  /** Pushed receives, once subscribed. */
  #pushed: PushedReader | undefined

  constructor (options: NetSocketOptions = {}) {
    super({
      allowHalfOpen: options.allowHalfOpen ?? false,
      readableHighWaterMark: options.readableHighWaterMark ?? MIB,
      writableHighWaterMark: options.writableHighWaterMark ?? MIB,
      decodeStrings: true,
    })
    this.handler = resolveNetworkDestination(options.destination)
    this.#maxBytes = Math.max(1, Math.min(this.readableHighWaterMark, 8 * MIB))
    this.#receiveTimeoutMs = options.receiveTimeoutMs ?? 5000
    this.#connected = new Promise((resolve) => { this.#settleConnect = resolve })
  }

  /** As net.connect: a new socket connecting to `host:port` through `destination`. */
  static connect (options: NetConnectOptions & NetSocketOptions, listener?: () => void): NetSocket {
    return new NetSocket(options).connect(options, listener)
  }

  /** A socket for a connection a listener accepted (NetServer makes these). */
  static accepted (handler: NetworkHandler, socket: string, addresses: Addresses, options: NetSocketOptions = {}): NetSocket {
    const s = new NetSocket({ ...options, destination: handler })
    s.#handle = socket
    s.#addresses = { ...addresses }
    s.#settleConnect(true)
    return s
  }

  connect (options: NetConnectOptions, listener?: () => void): this
  connect (port: number, host?: string, listener?: () => void): this
  connect (port: number, listener?: () => void): this
  connect (a: NetConnectOptions | number, b?: string | (() => void), c?: () => void): this {
    const o: NetConnectOptions = typeof a === 'number' ? { port: a, ...(typeof b === 'string' ? { host: b } : {}) } : a
    const listener = typeof b === 'function' ? b : c
    if (!Number.isInteger(o.port) || o.port < 1 || o.port > 65535) throw new MetaosError('INVALID_ARGUMENT', `port must be an integer from 1 to 65535, not ${String(o.port)}`)
    if (this.#connecting || this.#handle !== undefined || this.destroyed) throw new MetaosError('INVALID_ARGUMENT', 'the socket is already connected, connecting or destroyed')
    if (listener !== undefined) this.once('connect', listener)
    this.#connecting = true
    const host = o.host ?? 'localhost'
    this.#invoke('Connect', { host, port: o.port, protocol: 'tcp', timeoutMs: o.timeoutMs ?? 30_000 }).then((r) => {
      this.#connecting = false
      this.#handle = r.socket
      if (this.destroyed) { void this.#closeRemote(); this.#settleConnect(false); return }
      this.#addresses = { localAddress: r.localAddress, localPort: r.localPort, remoteAddress: r.remoteAddress, remotePort: r.remotePort }
      this.#settleConnect(true)
      this.#touch()
      this.emit('connect')
      this.emit('ready')
      if (this.#wantRead && !this.#pumping) void this.#startReading()
    }, (e: unknown) => {
      this.#connecting = false
      this.#connectError = toNetError(e, `connect ${host}:${o.port}`, false)
      this.#settleConnect(false)
      this.destroy(this.#connectError)
    })
    return this
  }

  get connecting (): boolean { return this.#connecting }
  /** True until the socket is connected (as net.Socket). */
  get pending (): boolean { return this.#handle === undefined }
  get readyState (): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.#connecting) return 'opening'
    if (this.#handle === undefined || this.destroyed) return 'closed'
    if (this.readable && this.writable) return 'open'
    return this.readable ? 'readOnly' : this.writable ? 'writeOnly' : 'closed'
  }

  /** The connection's ends, as the kernel holding it sees them. */
  get localAddress (): string | undefined { return this.#addresses.localAddress }
  get localPort (): number | undefined { return this.#addresses.localPort }
  get remoteAddress (): string | undefined { return this.#addresses.remoteAddress }
  get remotePort (): number | undefined { return this.#addresses.remotePort }
  get bytesRead (): number { return this.stats.bytesRead }
  /** Bytes the kernel that holds the connection acknowledged. */
  get bytesWritten (): number { return this.stats.bytesWritten }
  get remoteFamily (): string | undefined { return this.remoteAddress === undefined ? undefined : familyOf(this.remoteAddress) }

  address (): AddressInfo | Record<string, never> {
    return this.localAddress === undefined || this.localPort === undefined ? {} : { address: this.localAddress, family: familyOf(this.localAddress), port: this.localPort }
  }

  // The kernel that holds the connection owns Nagle and keep-alive; these keep net.Socket's shape.
  setNoDelay (_noDelay?: boolean): this { return this }
  setKeepAlive (_enable?: boolean, _initialDelay?: number): this { return this }
  ref (): this { return this }
  unref (): this { return this }

  /** As net.Socket: 'timeout' after `ms` without reads or writes (0 turns it off); the socket stays open. */
  setTimeout (ms: number, callback?: () => void): this {
    this.#idleMs = ms
    if (callback !== undefined) {
      if (ms === 0) this.removeListener('timeout', callback)
      else this.once('timeout', callback)
    }
    this.#touch()
    return this
  }

  #touch (): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    if (this.#idleMs > 0 && !this.destroyed) {
      this.#idleTimer = setTimeout(() => { this.#idleTimer = undefined; this.emit('timeout') }, this.#idleMs)
      this.#idleTimer.unref()
    }
  }

  async #invoke<K extends NetworkOp> (op: K, input: NetworkOperations[K]['input']): Promise<NetworkOperations[K]['output']> {
    const inv = await this.handler.invoke(op, input)
    account(this.stats, inv)
    return inv.output
  }

  override _read (): void {
    this.#wantRead = true
    // read() calls this before it takes the chunk from the buffer: count what was consumed after it.
    if (this.#pushed !== undefined) { const p = this.#pushed; process.nextTick(() => { p.consumed() }); return }
    if (this.#handle !== undefined && !this.#pumping) void this.#startReading()
  }

  /** Pushed receives when the handler's session carries them for this socket, else the Receive pump. */
  async #startReading (): Promise<void> {
    const pushes = this.handler.pushes
    if (pushes === undefined || pushes.carries?.(this.#handle!) === false) { await this.#pump(); return }
    this.#pumping = true
    // Loaded by the first socket that reads by pushes: `import 'metaos'` stays small.
    const { PushedReader } = await import('./pushed-reader.js')
    if (this.destroyed) return
    const reader = this.#pushed = new PushedReader({
      data: (b) => { this.stats.bytesRead += b.length; this.#touch(); this.push(b) },
      end: () => { this.push(null) },
      fail: (e) => { if (!this.destroyed) this.destroy(e) },
      unread: () => this.readableLength,
      subscribe: async (window) => (await this.#invoke('Subscribe', { socket: this.#handle!, window })).window,
      grant: async (bytes) => { await this.#invoke('Grant', { socket: this.#handle!, bytes }) },
    }, this.#maxBytes)
    try {
      if (await reader.start(pushes, this.#handle!)) return
      // The domain does not know Subscribe: long polls then.
      this.#pushed = undefined
      this.#pumping = false
      if (!this.destroyed) await this.#pump()
    } catch (e) {
      if (!this.destroyed) this.destroy(toNetError(e, 'receive', true))
    }
  }

  /** One long-poll Receive at a time while the consumer wants data. */
  async #pump (): Promise<void> {
    this.#pumping = true
    try {
      while (this.#wantRead && !this.destroyed) {
        const r = await this.#invoke('Receive', { socket: this.#handle!, maxBytes: this.#maxBytes, timeoutMs: this.#receiveTimeoutMs })
        if (this.destroyed) return
        if (r.data.length > 0) {
          this.stats.bytesRead += r.data.length
          this.#touch()
          // push() may call _read() synchronously, which sets #wantRead again.
          this.#wantRead = false
          if (this.push(r.data)) this.#wantRead = true
        }
        if (r.closed) { this.#wantRead = false; this.push(null); return }
      }
    } catch (e) {
      if (!this.destroyed) this.destroy(toNetError(e, 'receive', true))
    } finally {
      this.#pumping = false
    }
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#send([chunk]).then(() => { callback() }, callback)
  }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.#send(chunks.map((c) => c.chunk)).then(() => { callback() }, callback)
  }

  async #send (buffers: Buffer[]): Promise<void> {
    if (!await this.#connected) throw this.#connectError ?? new MetaosError('CONNECTION_RESET', 'the socket was destroyed before it connected')
    try {
      let group: Buffer[] = []
      let size = 0
      for (const b of buffers) {
        for (let off = 0; off < b.length; off += MAX_SEND) {
          const part = b.length <= MAX_SEND ? b : b.subarray(off, off + MAX_SEND)
          if (size > 0 && size + part.length > MAX_SEND) {
            await this.#sendBlock(group.length === 1 ? group[0]! : Buffer.concat(group, size))
            group = []
            size = 0
          }
          group.push(part)
          size += part.length
        }
      }
      if (size > 0) await this.#sendBlock(group.length === 1 ? group[0]! : Buffer.concat(group, size))
    } catch (e) {
      throw toNetError(e, 'send', true)
    }
  }

  async #sendBlock (data: Buffer): Promise<void> {
    for (let off = 0; off < data.length;) {
      const r = await this.#invoke('Send', { socket: this.#handle!, data: off === 0 ? data : data.subarray(off) })
      if (r.sent <= 0) throw new MetaosError('IO_ERROR', `Send took ${r.sent} of ${data.length - off} bytes`)
      off += r.sent
      this.stats.bytesWritten += r.sent
      this.#touch()
    }
  }

  /** end(): every write is acknowledged by now; Shutdown half-closes, reading goes on. */
  override _final (callback: (error?: Error | null) => void): void {
    (async () => {
      if (!await this.#connected) throw this.#connectError ?? new MetaosError('CONNECTION_RESET', 'the socket was destroyed before it connected')
      try {
        await this.#invoke('Shutdown', { socket: this.#handle! })
      } catch (e) {
        // The peer already ended and left: every byte was acknowledged, so nothing is lost.
        if (!this.readableEnded) throw e
      }
    })().then(() => { callback() }, (e: unknown) => { callback(toNetError(e, 'shutdown', true)) })
  }

  override _destroy (error: Error | null, callback: (error?: Error | null) => void): void {
    this.#wantRead = false
    this.#pushed?.stop()
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
    // A Connect in flight closes its socket when it lands (see connect()).
    if (this.#connecting) { callback(error); return }
    this.#settleConnect(false)
    this.#closeRemote().then(() => { callback(error) }, () => { callback(error) })
  }

  async #closeRemote (): Promise<void> {
    if (this.#handle === undefined || this.#closeSent) return
    this.#closeSent = true
    // A handle the domain already reaped (or lost with the peer) is closed all the same.
    await this.#invoke('Close', { socket: this.#handle }).catch(() => {})
  }
}
