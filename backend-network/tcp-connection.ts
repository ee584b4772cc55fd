// One TCP connection held for a caller: what arrived and was not yet taken by Receive (bounded:
// beyond the bound the socket stops reading, so the kernel's receive window closes and the REMOTE
// sender is slowed by TCP flow control — nothing is ever dropped), Send that answers once the
// kernel took every byte (the end-to-end backpressure), half-close, and the error the socket met,
// kept for the next Send or Receive. Sends run one at a time, receives one at a time, and a Send
// and a Receive may run together (full duplex). Instead of Receive, a listener (a pushed-receive
// subscription) may be told of every news and take what is ready. Knows nothing of handles or SOAP.
import { connect as netConnect, type Socket } from 'node:net'
import { MetaosError } from '../soap-runtime/errors.js'
import type { ReceiveResponse } from '../wsdl/generated/network-service.js'
import { EMPTY, fromNetError, handleClosed, invalid } from './net-errors.js'
import { Lane, Signal, waitFor, type Resource } from './socket-table.js'

export class TcpConnection implements Resource {
  readonly kind = 'tcp'
  readonly socket: Socket
  readonly #maxBuffered: number
  readonly #chunks: Buffer[] = []
  #buffered = 0
  #paused = false
  #ended = false
  #shut = false
  #closed = false
  #error: MetaosError | undefined
  readonly #news = new Signal()
  readonly #sends = new Lane()
  readonly #receives = new Lane()
  readonly #gone: Promise<void>
  /** Told of every news (data, end, error, close): a push subscription takes what is ready. */
  #listener: (() => void) | undefined

  /** Takes over a connected socket (from Connect, or from a listener's queue: then still paused). */
  constructor (socket: Socket, maxBuffered: number) {
    this.socket = socket
    this.#maxBuffered = maxBuffered
    this.#gone = new Promise((resolve) => { if (socket.destroyed) resolve(); else socket.once('close', () => { resolve() }) })
    socket.on('data', (c: Buffer) => {
      this.#chunks.push(c)
      this.#buffered += c.length
      // Stop reading: the kernel buffer fills, the window closes, the remote sender waits.
      if (this.#buffered >= this.#maxBuffered && !this.#paused) { this.#paused = true; socket.pause() }
      this.#wake()
    })
    socket.on('end', () => { this.#ended = true; this.#wake() })
    socket.on('error', (e) => { this.#error ??= fromNetError(e, 'connection'); this.#wake() })
    socket.on('close', () => { this.#wake() })
    // Whatever happened between the connect and this constructor is not lost.
    if (socket.errored != null) this.#error = fromNetError(socket.errored, 'connection')
    if (socket.readableEnded) this.#ended = true
    socket.resume()
  }

  get bufferedBytes (): number { return this.#buffered }
  get closed (): boolean { return this.#closed }

  #wake (): void {
    this.#news.wake()
    this.#listener?.()
  }

  /** `fn` is told of every news from now on (undefined: no more). */
  listen (fn: (() => void) | undefined): void { this.#listener = fn }

  /** What a Receive of maxBytes would answer now, or undefined when it would wait; throws as Receive does. */
  take (maxBytes: number): ReceiveResponse | undefined { return this.#ready(maxBytes) }

  /** Up to maxBytes of what arrived; waits up to timeoutMs when nothing did (empty data then). */
  async receive (maxBytes: number, timeoutMs: number): Promise<ReceiveResponse> {
    return await this.#receives.run(async () => {
      const deadline = Date.now() + timeoutMs
      const r = await waitFor(this.#news, deadline, () => this.#ready(maxBytes))
      return r ?? { data: EMPTY, closed: false }
    })
  }

  #ready (maxBytes: number): ReceiveResponse | undefined {
    if (this.#closed) throw handleClosed()
    // Data that arrived before an error or the end is delivered first, as a kernel does.
    if (this.#buffered > 0) return { data: maxBytes === 0 ? EMPTY : this.#take(maxBytes), closed: false }
    if (this.#error !== undefined) throw this.#error
    if (this.#ended) return { data: EMPTY, closed: true }
    if (this.socket.destroyed) throw new MetaosError('CONNECTION_RESET', 'the connection was closed without an end of stream')
    return maxBytes === 0 ? { data: EMPTY, closed: false } : undefined
  }

  #take (maxBytes: number): Buffer {
    let data: Buffer
    const first = this.#chunks[0]!
    if (first.length <= maxBytes && (this.#chunks.length === 1 || first.length === maxBytes)) {
      data = first
      this.#chunks.shift()
    } else {
      const parts: Buffer[] = []
      let n = 0
      while (n < maxBytes && this.#chunks.length > 0) {
        const c = this.#chunks[0]!
        if (n + c.length <= maxBytes) { parts.push(c); n += c.length; this.#chunks.shift() } else {
          parts.push(c.subarray(0, maxBytes - n))
          this.#chunks[0] = c.subarray(maxBytes - n)
          n = maxBytes
        }
      }
      data = Buffer.concat(parts, n)
    }
    this.#buffered -= data.length
    if (this.#paused && this.#buffered < this.#maxBuffered) { this.#paused = false; this.socket.resume() }
    return data
  }

  /** Resolves when the kernel took every byte of `data` (the send buffer has room again). */
  async send (data: Buffer): Promise<number> {
    return await this.#sends.run(async () => {
      if (this.#closed) throw handleClosed()
      if (this.#shut) throw invalid('the socket was shut down for sending')
      this.#check()
      if (data.length === 0) return 0
      await new Promise<void>((resolve, reject) => {
        let settled = false
        const settle = (e?: unknown): void => {
          if (settled) return
          settled = true
          this.socket.off('close', onClose)
          if (e === undefined) resolve()
          else reject(this.#closed ? handleClosed() : this.#error ?? fromNetError(e, 'send'))
        }
        // The write callback fires when libuv finished the write, i.e. the kernel holds the bytes:
        // it implies 'drain' for this chunk (sends are serialized, so nothing else is queued).
        const onClose = (): void => { settle(this.#error ?? new MetaosError('CONNECTION_RESET', 'send: the connection closed')) }
        this.socket.once('close', onClose)
        // Node calls back without an error when the socket was destroyed meanwhile (Close, a
        // reset): the bytes may never have reached the kernel, so that is no success.
        this.socket.write(data, (e) => { settle(e ?? (this.socket.destroyed ? new MetaosError('CONNECTION_RESET', 'send: the connection closed') : undefined)) })
      })
      return data.length
    })
  }

  /** Half-close: after every earlier Send, a FIN; receiving goes on. */
  async shutdown (): Promise<void> {
    await this.#sends.run(async () => {
      this.#check()
      if (this.#shut) return
      this.#shut = true
      await new Promise<void>((resolve, reject) => {
        this.socket.end((e?: Error) => { if (e == null || this.socket.writableFinished) resolve(); else reject(this.#error ?? fromNetError(e, 'shutdown')) })
      })
    })
  }

  #check (): void {
    if (this.#closed) throw handleClosed()
    if (this.#error !== undefined) throw this.#error
    if (this.socket.destroyed) throw new MetaosError('CONNECTION_RESET', 'the connection is closed')
  }

  expireWaits (): void { this.#news.expire() }

  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#chunks.length = 0
      this.#buffered = 0
      this.#news.fail(handleClosed())
      // Like close(2): what the kernel holds is still sent, then FIN (RST if unread data remains).
      this.socket.destroy()
    }
    await this.#gone
  }
}

/** Connects to one IP address, or fails (TIMED_OUT at the deadline); the socket is never left open on failure. */
export async function connectTcp (address: string, port: number, deadline: number, abort: AbortSignal): Promise<Socket> {
  if (abort.aborted) throw new MetaosError('DOMAIN_DRAINING', 'the network domain is shutting down')
  // allowHalfOpen: the peer's FIN must not end our side (Shutdown is the caller's choice).
  const socket = netConnect({ host: address, port, allowHalfOpen: true, noDelay: true })
  return await new Promise<Socket>((resolve, reject) => {
    const done = (e?: MetaosError): void => {
      clearTimeout(timer)
      abort.removeEventListener('abort', onAbort)
      socket.off('connect', onConnect)
      socket.off('error', onError)
      if (e === undefined) { resolve(socket); return }
      socket.destroy()
      reject(e)
    }
    // Success keeps an error listener: an error before the caller wraps the socket must not crash the domain.
    const onConnect = (): void => { socket.on('error', () => undefined); done() }
    const onError = (e: Error): void => { done(fromNetError(e, `connect ${address}:${port}`)) }
    const timer = setTimeout(() => { done(new MetaosError('TIMED_OUT', `connect ${address}:${port}: no answer within the timeout`)) }, Math.max(0, deadline - Date.now()))
    const onAbort = (): void => { done(new MetaosError('DOMAIN_DRAINING', 'the network domain is shutting down')) }
    abort.addEventListener('abort', onAbort)
    socket.once('connect', onConnect)
    socket.once('error', onError)
  })
}
