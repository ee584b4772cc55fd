// NetServer: a TCP listener on the local kernel or a network domain, shaped like Node's net.Server
// ('listening', 'connection', 'close', 'error'; listen, address, close, getConnections). The
// listener lives where the handler runs; an Accept long-poll loop turns each connection it takes
// into a NetSocket on the same handler. Owns the listener handle and Closes it exactly once;
// the connections belong to the application (close() waits for them, as net.Server does).
import { EventEmitter } from 'node:events'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { NetworkHandler } from '../handlers/network-handler.js'
import { familyOf, NetSocket, resolveNetworkDestination, toNetError, type AddressInfo, type NetDestination, type NetSocketOptions } from './net-socket.js'

export interface NetListenOptions {
  /** Default 0: the kernel picks a free port. */
  readonly port?: number
  /** Default '0.0.0.0'. */
  readonly host?: string
  /** Default: the server's destination, else 'local'. */
  readonly destination?: NetDestination
  /** Default 511, as net.Server. */
  readonly backlog?: number
}

export interface NetServerOptions extends NetSocketOptions {
  /** How long one Accept waits before it is asked again. Default 5000. */
  readonly acceptTimeoutMs?: number
}

export class NetServer extends EventEmitter {
  readonly #options: NetServerOptions
  #handler: NetworkHandler | undefined
  #listener: string | undefined
  #address: AddressInfo | undefined
  #listening = false
  #closing = false
  #accepting = false
  #listenerClosed = false
  #shutting: Promise<void> | undefined
  #closeEmitted = false
  readonly #connections = new Set<NetSocket>()

  constructor (options: NetServerOptions = {}, connectionListener?: (socket: NetSocket) => void) {
    super()
    this.#options = options
    if (connectionListener !== undefined) this.on('connection', connectionListener)
  }

  get listening (): boolean { return this.#listening }

  listen (options: NetListenOptions, callback?: () => void): this
  listen (port?: number, host?: string, callback?: () => void): this
  listen (port: number, callback?: () => void): this
  listen (a?: NetListenOptions | number, b?: string | (() => void), c?: () => void): this {
    const o: NetListenOptions = typeof a === 'object' ? a : { ...(a === undefined ? {} : { port: a }), ...(typeof b === 'string' ? { host: b } : {}) }
    const callback = typeof b === 'function' ? b : c
    const port = o.port ?? 0
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new MetaosError('INVALID_ARGUMENT', `port must be an integer from 0 to 65535, not ${String(port)}`)
    if (this.#handler !== undefined) throw new MetaosError('INVALID_ARGUMENT', 'the server is already listening (or closed); make a new one')
    const handler = this.#handler = resolveNetworkDestination(o.destination ?? this.#options.destination)
    if (callback !== undefined) this.once('listening', callback)
    handler.invoke('Listen', { host: o.host ?? '0.0.0.0', port, protocol: 'tcp', backlog: o.backlog ?? 511 }).then((inv) => {
      const r = inv.output
      this.#listener = r.listener
      if (this.#closing) { void this.#shut(); return }
      this.#address = { address: r.address, family: familyOf(r.address), port: r.port }
      this.#listening = true
      this.emit('listening')
      void this.#acceptLoop(handler, r.listener)
    }, (e: unknown) => {
      // Closed while listening was under way: nothing to report but the close.
      if (this.#closing) { this.#listenerClosed = true; this.#maybeEmitClose(); return }
      // As net.Server: 'error' only, and listen() may be tried again.
      this.#handler = undefined
      this.#fail(toNetError(e, `listen ${o.host ?? '0.0.0.0'}:${port}`, false))
    })
    return this
  }

  /** Where the server listens, on the kernel that holds the listener; null until 'listening'. */
  address (): AddressInfo | null { return this.#listening && this.#address !== undefined ? { ...this.#address } : null }

  getConnections (callback: (error: Error | null, count: number) => void): this {
    process.nextTick(callback, null, this.#connections.size)
    return this
  }

  ref (): this { return this }
  unref (): this { return this }

  /** Stops accepting; 'close' comes once the listener is closed and every connection has closed. */
  close (callback?: (error?: Error) => void): this {
    if (this.#closing || this.#handler === undefined) {
      if (callback !== undefined) process.nextTick(callback, new MetaosError('INVALID_ARGUMENT', 'the server is not listening'))
      return this
    }
    if (callback !== undefined) this.once('close', callback)
    this.#closing = true
    this.#listening = false
    if (this.#listener !== undefined) void this.#shut()
    return this
  }

  async [Symbol.asyncDispose] (): Promise<void> {
    if (this.#closeEmitted || this.#handler === undefined) return
    await new Promise<void>((resolve) => { if (this.#closing) this.once('close', resolve); else this.close(() => { resolve() }) })
  }

  async #acceptLoop (handler: NetworkHandler, listener: string): Promise<void> {
    this.#accepting = true
    const timeoutMs = this.#options.acceptTimeoutMs ?? 5000
    try {
      while (!this.#closing) {
        let r
        try {
          r = (await handler.invoke('Accept', { listener, timeoutMs })).output
        } catch (e) {
          if (this.#closing) break
          this.#closing = true
          this.#listening = false
          void this.#shut()
          this.#fail(toNetError(e, 'accept', true))
          break
        }
        if (r.socket === undefined) continue
        if (this.#closing) {
          // Taken just as the server closed: nobody will handle it.
          await handler.invoke('Close', { socket: r.socket }).catch(() => {})
          break
        }
        const s = NetSocket.accepted(handler, r.socket, {
          localAddress: this.#address!.address,
          localPort: this.#address!.port,
          ...(r.remoteAddress === undefined ? {} : { remoteAddress: r.remoteAddress }),
          ...(r.remotePort === undefined ? {} : { remotePort: r.remotePort }),
        }, this.#options)
        this.#connections.add(s)
        s.once('close', () => { this.#connections.delete(s); this.#maybeEmitClose() })
        this.emit('connection', s)
      }
    } finally {
      this.#accepting = false
      this.#maybeEmitClose()
    }
  }

  /** 'error' outside any promise chain: unhandled, it throws as net.Server's would. */
  #fail (err: MetaosError): void {
    process.nextTick(() => { this.emit('error', err) })
  }

  /** Closes the listener once; closing it also answers an Accept waiting on it. */
  async #shut (): Promise<void> {
    await (this.#shutting ??= (async () => {
      await this.#handler!.invoke('Close', { socket: this.#listener! }).catch(() => {})
      this.#listenerClosed = true
      this.#maybeEmitClose()
    })())
  }

  #maybeEmitClose (): void {
    if (this.#closeEmitted || !this.#closing || !this.#listenerClosed || this.#accepting || this.#connections.size > 0) return
    this.#closeEmitted = true
    this.emit('close')
  }
}
