// One UDP socket held for a caller: connected (Connect udp: a default destination, Send/Receive)
// or bound (Listen udp: SendTo/ReceiveFrom). Datagrams wait in a queue bounded in bytes and in
// count; UDP has no flow control to push back with, so beyond the bound a datagram is DROPPED and
// counted, as a full kernel receive buffer would drop it. An error the socket met (an ICMP port
// unreachable → CONNECTION_REFUSED) is reported once, by the next call, as a kernel reports it.
import { createSocket, type Socket } from 'node:dgram'
import { MetaosError } from '../soap-runtime/errors.js'
import type { ReceiveFromResponse, ReceiveResponse } from '../wsdl/generated/network-service.js'
import { EMPTY, fromNetError, handleClosed, invalid } from './net-errors.js'
import { Lane, Signal, waitFor, type Resource } from './socket-table.js'

interface Datagram { readonly data: Buffer, readonly address: string, readonly port: number }

/** Each queued datagram is also charged this much, so a flood of empty datagrams is bounded too. */
const DATAGRAM_OVERHEAD = 64

export class UdpSocket implements Resource {
  readonly kind = 'udp'
  readonly socket: Socket
  /** True for a socket with a default destination (Connect). */
  readonly connected: boolean
  readonly family: 4 | 6
  readonly #queue: Datagram[] = []
  readonly #maxCharge: number
  #charge = 0
  #bytes = 0
  #closed = false
  #error: MetaosError | undefined
  readonly #news = new Signal()
  readonly #sends = new Lane()
  readonly #receives = new Lane()
  readonly #gone: Promise<void>
  /** Datagrams dropped because the queue was full. */
  dropped = 0

  constructor (socket: Socket, connected: boolean, family: 4 | 6, maxBuffered: number, onDrop: () => void) {
    this.socket = socket
    this.connected = connected
    this.family = family
    this.#maxCharge = maxBuffered
    this.#gone = new Promise((resolve) => { socket.once('close', () => { resolve() }) })
    socket.on('message', (data: Buffer, from: { address: string, port: number }) => {
      const charge = data.length + DATAGRAM_OVERHEAD
      if (this.#charge + charge > this.#maxCharge) { this.dropped++; onDrop(); return }
      this.#queue.push({ data, address: from.address, port: from.port })
      this.#charge += charge
      this.#bytes += data.length
      this.#news.wake()
    })
    socket.on('error', (e) => { this.#error = fromNetError(e, 'udp'); this.#news.wake() })
  }

  get bufferedBytes (): number { return this.#bytes }

  /** The next datagram (connected sockets): at most maxBytes of it, the rest discarded as recv(2) does. */
  async receive (maxBytes: number, timeoutMs: number): Promise<ReceiveResponse> {
    if (!this.connected) throw invalid('Receive needs a connected UDP socket; use ReceiveFrom on a listening one')
    const d = await this.#next(timeoutMs)
    return { data: d === undefined ? EMPTY : d.data.subarray(0, maxBytes), closed: false }
  }

  /** The next datagram and its source; `truncated` when it was longer than maxBytes. */
  async receiveFrom (maxBytes: number, timeoutMs: number): Promise<ReceiveFromResponse> {
    const d = await this.#next(timeoutMs)
    if (d === undefined) return { data: EMPTY, truncated: false }
    return { data: d.data.subarray(0, maxBytes), address: d.address, port: d.port, truncated: d.data.length > maxBytes }
  }

  async #next (timeoutMs: number): Promise<Datagram | undefined> {
    return await this.#receives.run(async () => await waitFor(this.#news, Date.now() + timeoutMs, () => {
      this.#check()
      const d = this.#queue.shift()
      if (d !== undefined) { this.#charge -= d.data.length + DATAGRAM_OVERHEAD; this.#bytes -= d.data.length }
      return d
    }))
  }

  /** One datagram to the default destination; resolves once the kernel took it. */
  async send (data: Buffer): Promise<number> {
    if (!this.connected) throw invalid('Send needs a connected UDP socket; use SendTo on a listening one')
    return await this.#send(data)
  }

  /** One datagram to address:port (an IP address the engine checked against the allow-list). */
  async sendTo (data: Buffer, address: string, port: number): Promise<number> {
    if (this.connected) throw invalid('SendTo needs a listening UDP socket; a connected one sends with Send')
    return await this.#send(data, address, port)
  }

  async #send (data: Buffer, address?: string, port?: number): Promise<number> {
    return await this.#sends.run(async () => {
      this.#check()
      await new Promise<void>((resolve, reject) => {
        const cb = (e: Error | null): void => { if (e === null) resolve(); else reject(this.#closed ? handleClosed() : fromNetError(e, 'send')) }
        if (address === undefined) this.socket.send(data, cb)
        else this.socket.send(data, port, address, cb)
      })
      return data.length
    })
  }

  #check (): void {
    if (this.#closed) throw handleClosed()
    const e = this.#error
    if (e !== undefined) { this.#error = undefined; throw e }
  }

  expireWaits (): void { this.#news.expire() }

  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#queue.length = 0
      this.#charge = this.#bytes = 0
      this.#news.fail(handleClosed())
      this.socket.close()
    }
    await this.#gone
  }
}

/**
 * A UDP socket bound to address:port (`connectTo` unset: Listen), or bound to an ephemeral port
 * and connected to connectTo (Connect). Fails with the socket closed.
 */
export async function openUdp (family: 4 | 6, bind: { address?: string, port: number }, connectTo?: { address: string, port: number }): Promise<Socket> {
  const socket = createSocket({ type: family === 4 ? 'udp4' : 'udp6' })
  socket.on('error', () => undefined) // until UdpSocket takes over: an error event must never crash the domain
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.bind({ port: bind.port, ...(bind.address === undefined ? {} : { address: bind.address }), exclusive: true }, () => { socket.off('error', reject); resolve() })
    })
    if (connectTo !== undefined) {
      await new Promise<void>((resolve, reject) => {
        socket.connect(connectTo.port, connectTo.address, (e?: Error) => { if (e == null) resolve(); else reject(e) })
      })
    }
  } catch (e) {
    try { socket.close() } catch { /* never bound */ }
    const where = connectTo === undefined ? `bind ${bind.address ?? ''}:${bind.port}` : `connect ${connectTo.address}:${connectTo.port}`
    throw e instanceof MetaosError ? e : fromNetError(e, where)
  }
  return socket
}
