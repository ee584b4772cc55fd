// One side of the hypervisor bus over one link connection: the channels it carries, their frames
// (vm/bus-frames.ts) and backpressure. Used by both ends (vm/hypervisor-bus.ts).
//
// Backpressure is head-of-line, not per-channel credit: when a channel's socket will not take more,
// the whole link stops being read until it drains; when the link will not take more, every channel
// socket stops being read until it drains. Memory stays bounded (one read chunk plus the streams'
// high-water marks per hop) at the price of one slow reader slowing the bus. That suits a bus between
// a host and its own co-hosted VM: its clients are this user's frontends, which read their replies,
// and a credit window per channel would add a frame type, per-channel buffers and a second source of
// deadlocks for a link that is a memory copy away. A client that stops reading while waiting on
// another channel of the same bus can stall both; open a second bus if that pattern ever appears.
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import type { MetaosError } from '../soap-runtime/errors.js'
import { encodeFrame, FrameParser, FrameType, MAX_DATA, type Frame } from './bus-frames.js'

interface Channel { id: number, sock: Socket, sentEnd: boolean, gotEnd: boolean, reason?: string }
export interface BusCounters { framesIn: number, framesOut: number, bytesIn: number, bytesOut: number }

/** One side's state over one link connection: parsing, channel bookkeeping and backpressure. */
export class FrameLink {
  readonly channels = new Map<number, Channel>()
  readonly parser = new FrameParser()
  readonly #link: Duplex
  readonly #log: Logger
  readonly #counters: BusCounters
  readonly #onControl: (f: Frame) => void
  readonly #onProtocolError: (e: MetaosError) => void
  readonly #blocked = new Set<Socket>() // channel sockets whose write buffer is full: the link waits
  #linkFull = false
  #disposed = false
  readonly #onData = (chunk: Buffer): void => { this.#receive(chunk) }
  readonly #onDrain = (): void => {
    this.#linkFull = false
    for (const ch of this.channels.values()) ch.sock.resume()
  }

  constructor (link: Duplex, o: { logger: Logger, counters: BusCounters, onControl: (f: Frame) => void, onProtocolError: (e: MetaosError) => void }) {
    this.#link = link
    this.#log = o.logger
    this.#counters = o.counters
    this.#onControl = o.onControl
    this.#onProtocolError = o.onProtocolError
    link.on('data', this.#onData)
    link.on('drain', this.#onDrain)
  }

  get buffered (): number {
    let n = this.#link.writableLength
    for (const ch of this.channels.values()) n += ch.sock.writableLength
    return n
  }

  send (type: FrameType, channel: number, payload?: Uint8Array): void {
    if (this.#disposed || this.#link.destroyed) return
    const f = encodeFrame(type, channel, payload)
    this.#counters.framesOut++
    this.#counters.bytesOut += f.length
    if (!this.#link.write(f) && !this.#linkFull) {
      this.#linkFull = true
      for (const ch of this.channels.values()) ch.sock.pause()
    }
  }

  attach (id: number, sock: Socket): void {
    const ch: Channel = { id, sock, sentEnd: false, gotEnd: false }
    this.channels.set(id, ch)
    const live = (): boolean => this.channels.get(id) === ch
    sock.on('data', (c: Buffer) => {
      if (!live()) return
      for (let o = 0; o < c.length; o += MAX_DATA) this.send(FrameType.DATA, id, c.subarray(o, o + MAX_DATA))
    })
    sock.on('end', () => { if (live()) { ch.sentEnd = true; this.send(FrameType.END, id) } })
    sock.on('error', (e: NodeJS.ErrnoException) => { ch.reason ??= e.code ?? e.message })
    sock.on('close', (hadError) => {
      this.#unblock(sock)
      if (!live()) return
      this.channels.delete(id)
      if (!(ch.sentEnd && ch.gotEnd && !hadError)) this.send(FrameType.CLOSE, id, ch.reason === undefined ? undefined : Buffer.from(ch.reason))
    })
    if (this.#linkFull) sock.pause()
    else sock.resume()
  }

  /** Destroys every channel without telling the other side (it is resetting too). */
  resetChannels (): void {
    const all = [...this.channels.values()]
    this.channels.clear()
    for (const ch of all) ch.sock.destroy()
    this.#blocked.clear()
    if (!this.#disposed) this.#link.resume()
  }

  dispose (): void {
    if (this.#disposed) return
    this.#disposed = true
    this.#link.off('data', this.#onData)
    this.#link.off('drain', this.#onDrain)
    this.resetChannels()
  }

  #receive (chunk: Buffer): void {
    this.#counters.bytesIn += chunk.length
    this.parser.push(chunk)
    for (;;) {
      if (this.#disposed) return
      let f: Frame | undefined
      try { f = this.parser.next() } catch (e) {
        this.#onProtocolError(e as MetaosError)
        if (this.parser.broken) this.parser.reset() // the handler neither disposed us nor resynchronised
        continue
      }
      if (f === undefined) return
      this.#counters.framesIn++
      this.#frame(f)
    }
  }

  #frame (f: Frame): void {
    if (f.type === FrameType.HELLO || f.type === FrameType.OPEN) { this.#onControl(f); return }
    const ch = this.channels.get(f.channel)
    if (ch === undefined) {
      if (f.type !== FrameType.CLOSE) this.send(FrameType.CLOSE, f.channel, Buffer.from('unknown channel'))
      return
    }
    if (f.type === FrameType.DATA) {
      if (ch.sock.destroyed) return
      if (!ch.sock.write(f.payload) && !this.#blocked.has(ch.sock)) {
        this.#blocked.add(ch.sock)
        this.#link.pause()
        ch.sock.once('drain', () => { this.#unblock(ch.sock) })
      }
    } else if (f.type === FrameType.END) {
      ch.gotEnd = true
      ch.sock.end()
    } else {
      this.channels.delete(f.channel)
      if (f.payload.length > 0) this.#log.debug({ channel: f.channel, reason: f.payload.toString('utf8') }, 'hypervisor bus: channel closed by peer')
      ch.sock.destroy()
    }
  }

  #unblock (sock: Socket): void {
    if (!this.#blocked.delete(sock)) return
    if (this.#blocked.size === 0 && !this.#disposed) this.#link.resume()
  }
}
