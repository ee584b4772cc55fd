// NetDatagramSocket: a UDP socket on the local kernel or a network domain, shaped like Node's
// dgram.Socket ('listening', 'message', 'close', 'error'; bind, send, address, close). bind() is a
// Listen udp; 'message' comes from a ReceiveFrom long-poll loop; send() is SendTo, in call order.
// Owns one bound socket handle and Closes it exactly once; knows no SOAP or transport.
import { EventEmitter } from 'node:events'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import type { NetworkHandler, NetworkOp } from '../handlers/network-handler.js'
import { account, familyOf, resolveNetworkDestination, toNetError, type AddressInfo, type NetDestination, type SocketStats } from './net-socket.js'

export interface NetDatagramOptions {
  /** Default 'local'. bind() may name another. */
  readonly destination?: NetDestination
  /** How long one ReceiveFrom waits before it is asked again. Default 5000. */
  readonly receiveTimeoutMs?: number
  /** Largest datagram received whole; longer ones are truncated. Default 65535. */
  readonly maxMessageBytes?: number
}

export interface NetBindOptions {
  /** Default 0: the kernel picks a free port. */
  readonly port?: number
  /** Default '0.0.0.0', as dgram. */
  readonly address?: string
  readonly destination?: NetDestination
}

export interface RemoteInfo { address: string, family: string, port: number, size: number }

type Message = string | Uint8Array | ReadonlyArray<string | Uint8Array>
type SendCallback = (error: Error | null, bytes: number) => void

export class NetDatagramSocket extends EventEmitter {
  readonly stats: SocketStats = { calls: 0, serviceMicros: 0, channelMicros: 0, bytesWritten: 0, bytesRead: 0 }
  readonly #options: NetDatagramOptions
  #handler: NetworkHandler | undefined
  #socket: string | undefined
  #address: AddressInfo | undefined
  /** Resolves true once bound, false if bind failed. */
  #bound: Promise<boolean> | undefined
  #closing = false
  #receiving = false
  #closeSent = false
  #closeEmitted = false
  #remoteClosed = false
  #bindError: MetaosError | undefined
  #sends: Promise<unknown> = Promise.resolve()

  constructor (options: NetDatagramOptions = {}, messageListener?: (msg: Buffer, rinfo: RemoteInfo) => void) {
    super()
    this.#options = options
    if (messageListener !== undefined) this.on('message', messageListener)
  }

  bind (options?: NetBindOptions, callback?: () => void): this
  bind (port?: number, address?: string, callback?: () => void): this
  bind (port: number, callback?: () => void): this
  bind (a?: NetBindOptions | number, b?: string | (() => void), c?: () => void): this {
    const o: NetBindOptions = typeof a === 'object' ? a : { ...(a === undefined ? {} : { port: a }), ...(typeof b === 'string' ? { address: b } : {}) }
    const callback = typeof b === 'function' ? b : c
    this.#bind(o, false)
    if (callback !== undefined) this.once('listening', callback)
    return this
  }

  #bind (o: NetBindOptions, implicit: boolean): void {
    const port = o.port ?? 0
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MetaosError('INVALID_ARGUMENT', `port must be an integer from 0 to 65535, not ${String(port)}`)
    if (this.#closing) throw new MetaosError('STREAM_CLOSED', 'the datagram socket is closed')
    if (this.#bound !== undefined) throw new MetaosError('INVALID_ARGUMENT', 'the datagram socket is already bound')
    this.#handler = resolveNetworkDestination(o.destination ?? this.#options.destination)
    const host = o.address ?? '0.0.0.0'
    this.#bound = this.#invoke('Listen', { host, port, protocol: 'udp', backlog: 0 }).then((r) => {
      this.#socket = r.listener
      if (this.#closing) return true // close() sends what was queued, then closes it
      this.#address = { address: r.address, family: familyOf(r.address), port: r.port }
      this.emit('listening')
      void this.#receiveLoop(r.listener)
      return true
    }, (e: unknown) => {
      this.#closing = true
      this.#remoteClosed = true
      this.#bindError = toNetError(e, `bind ${host}:${port}`, false)
      // The implicit bind of send() reports to the sends (their callbacks, else 'error').
      if (!implicit) this.#fail(this.#bindError)
      process.nextTick(() => { this.#maybeEmitClose() }) // after 'error'
      return false
    })
  }

  /** Where the socket is bound, on the kernel that holds it. */
  address (): AddressInfo {
    if (this.#address === undefined) throw new MetaosError('INVALID_ARGUMENT', 'the datagram socket is not bound')
    return { ...this.#address }
  }

  ref (): this { return this }
  unref (): this { return this }

  /** Sends one datagram (binding to 0.0.0.0:0 first if unbound, as dgram does); datagrams leave in call order. */
  send (msg: Message, port: number, address?: string, callback?: SendCallback): void
  send (msg: Message, port: number, callback?: SendCallback): void
  send (msg: Message, port: number, b?: string | SendCallback, c?: SendCallback): void {
    const address = typeof b === 'string' ? b : '127.0.0.1'
    const callback = typeof b === 'function' ? b : c
    if (this.#closing) throw new MetaosError('STREAM_CLOSED', 'the datagram socket is closed')
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new MetaosError('INVALID_ARGUMENT', `port must be an integer from 1 to 65535, not ${String(port)}`)
    const data = toBuffer(msg)
    if (this.#bound === undefined) this.#bind({}, true)
    const bound = this.#bound!
    this.#sends = this.#sends.then(async () => {
      if (!await bound) throw this.#bindError!
      if (this.#closeSent) throw new MetaosError('STREAM_CLOSED', 'the datagram socket closed before the datagram was sent')
      const r = await this.#invoke('SendTo', { socket: this.#socket!, host: address, port, data })
      this.stats.bytesWritten += r.sent
      return r.sent
    }).then((sent) => { callback?.(null, sent) }, (e: unknown) => {
      const err = toNetError(e, `send to ${address}:${port}`, false)
      if (callback !== undefined) callback(err, 0)
      else if (!this.#closing || err === this.#bindError) this.#fail(err)
    })
  }

  /** Stops receiving and closes the socket; 'close' once the kernel that held it closed it. */
  close (callback?: () => void): this {
    if (this.#closing) {
      if (callback !== undefined) { if (this.#closeEmitted) process.nextTick(callback); else this.once('close', callback) }
      return this
    }
    if (callback !== undefined) this.once('close', callback)
    this.#closing = true
    const closed = async (): Promise<void> => { await this.#bound; await this.#sends; await this.#closeRemote() }
    void closed().finally(() => { this.#remoteClosed = true; this.#maybeEmitClose() })
    return this
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    await new Promise<void>((resolve) => { this.close(resolve) })
  }

  async #invoke<K extends NetworkOp> (op: K, input: NetworkOperations[K]['input']): Promise<NetworkOperations[K]['output']> {
    const inv = await this.#handler!.invoke(op, input)
    account(this.stats, inv)
    return inv.output
  }

  async #receiveLoop (socket: string): Promise<void> {
    this.#receiving = true
    const maxBytes = this.#options.maxMessageBytes ?? 65535
    const timeoutMs = this.#options.receiveTimeoutMs ?? 5000
    try {
      while (!this.#closing) {
        let r
        try {
          r = await this.#invoke('ReceiveFrom', { socket, maxBytes, timeoutMs })
        } catch (e) {
          if (this.#closing) break
          const err = toNetError(e, 'receive', true)
          // ICMP news about an earlier datagram leaves the socket usable, as with dgram.
          const transient = err.code === 'CONNECTION_REFUSED' || err.code === 'HOST_UNREACHABLE' || err.code === 'CONNECTION_RESET'
          if (!transient) this.close()
          this.#fail(err)
          if (transient) continue
          break
        }
        if (r.address === undefined || r.port === undefined) continue
        this.stats.bytesRead += r.data.length
        if (this.#closing) break
        this.emit('message', r.data, { address: r.address, family: familyOf(r.address), port: r.port, size: r.data.length })
      }
    } finally {
      this.#receiving = false
      this.#maybeEmitClose()
    }
  }

  async #closeRemote (): Promise<void> {
    if (this.#socket === undefined || this.#closeSent) return
    this.#closeSent = true
    // Closing the socket also answers a ReceiveFrom waiting on it.
    await this.#invoke('Close', { socket: this.#socket }).catch(() => {})
  }

  /** 'error' outside any promise chain: unhandled, it throws as dgram's would. */
  #fail (err: MetaosError): void {
    process.nextTick(() => { this.emit('error', err) })
  }

  /** 'close' once the socket is closed where it lives and the receive loop has stopped. */
  #maybeEmitClose (): void {
    if (this.#closeEmitted || !this.#closing || !this.#remoteClosed || this.#receiving) return
    this.#closeEmitted = true
    this.emit('close')
  }
}

function toBuffer (msg: Message): Buffer {
  if (typeof msg === 'string') return Buffer.from(msg)
  if (msg instanceof Uint8Array) return Buffer.from(msg.buffer, msg.byteOffset, msg.byteLength)
  return Buffer.concat(msg.map((m) => typeof m === 'string' ? Buffer.from(m) : m))
}
