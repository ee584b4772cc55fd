// The hypervisor bus: many stream connections multiplexed over the one virtio-serial port that joins
// the host to a VM domain. The host side listens on a Unix socket exactly like a process domain's
// bus socket and carries each accepted connection to the guest; the guest side connects each one to
// the domain's Unix socket inside the VM. Owns the frame protocol and both ends (the guest's port
// itself is virtio-port.ts); knows nothing of HTTP or SOAP (bytes only) and does not start or watch
// QEMU.
//
// Frame protocol (both directions): a 9-byte header — type u8, channel u32 BE, length u32 BE — then
// `length` bytes of payload.
//   1 HELLO  channel 0, payload: version u8 (= 1) + 4-byte nonce. The host sends it on each new link
//            connection (and again every helloIntervalMs until answered: a booting guest may not
//            read the port yet, and QEMU drops what the guest does not read). The guest echoes it.
//            Until the echo of *this* connection's nonce arrives the host discards every byte
//            (bytes the guest wrote for an old connection can still be queued in the port). A guest
//            that sees a nonce it has not answered yet destroys all its channels (fresh start); a
//            repeated nonce is only answered again. The guest sends HELLO with nonce 0 when it
//            starts and after a protocol error: "I lost sync, handshake again" (the host never
//            picks nonce 0); the host then resets its channels and sends a new HELLO.
//   2 OPEN   host → guest: a new channel. The host picks the id: never 0, never reused while alive
//            (a u32 counter that only wraps after 4 billion channels, skipping live ids).
//   3 DATA   bytes of a channel, at most 64 KiB per frame (larger chunks are split).
//   4 END    the sender sends no more on this channel (half-close, like shutdown(SHUT_WR)).
//   5 CLOSE  destroy the channel; payload: an optional UTF-8 reason (the guest's ECONNREFUSED when
//            the domain's socket is not there). A channel both of whose directions ended cleanly is
//            forgotten by each side without a CLOSE.
// DATA or END for an unknown channel is answered with CLOSE and dropped; CLOSE for an unknown one is
// ignored (never answered, so the two sides cannot ping-pong). An unknown type, a header that breaks
// the rules above or a length over 64 KiB + 1 KiB is a protocol error: the host drops the link and
// reconnects; the guest destroys its channels, asks for a new HELLO and discards bytes until one.
//
// Backpressure is head-of-line, not per-channel credit: when a channel's socket will not take more,
// the whole link stops being read until it drains; when the link will not take more, every channel
// socket stops being read until it drains. Memory stays bounded (one read chunk plus the streams'
// high-water marks per hop) at the price of one slow reader slowing the bus. That suits a bus between
// a host and its own co-hosted VM: its clients are this user's frontends, which read their replies,
// and a credit window per channel would add a frame type, per-channel buffers and a second source of
// deadlocks for a link that is a memory copy away. A client that stops reading while waiting on
// another channel of the same bus can stall both; open a second bus if that pattern ever appears.
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { unlinkSync, chmodSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { removeStaleSocket } from '../soap-runtime/service-host.js'

export const FrameType = { HELLO: 1, OPEN: 2, DATA: 3, END: 4, CLOSE: 5 } as const
export type FrameType = (typeof FrameType)[keyof typeof FrameType]
export const HEADER_BYTES = 9
export const MAX_DATA = 64 * 1024
/** Payloads above this are a protocol error: DATA's limit plus slack for a lenient sender. */
export const MAX_PAYLOAD = MAX_DATA + 1024
export const PROTOCOL_VERSION = 1

export interface Frame { type: FrameType, channel: number, payload: Buffer }

export function encodeFrame (type: FrameType, channel: number, payload?: Uint8Array): Buffer {
  const len = payload?.length ?? 0
  const b = Buffer.allocUnsafe(HEADER_BYTES + len)
  b[0] = type
  b.writeUInt32BE(channel, 1)
  b.writeUInt32BE(len, 5)
  if (payload !== undefined) b.set(payload, HEADER_BYTES)
  return b
}

const helloFrame = (nonce: Uint8Array): Buffer => encodeFrame(FrameType.HELLO, 0, Buffer.concat([Buffer.of(PROTOCOL_VERSION), nonce]))
/** What every HELLO starts with: the guest resynchronises on it after a protocol error. */
const HELLO_PREFIX = helloFrame(Buffer.alloc(4)).subarray(0, HEADER_BYTES + 1)
const ZERO_NONCE = Buffer.alloc(4)

/** Incremental frame parser: push chunks as they come, take frames with next() until undefined. */
export class FrameParser {
  #buf: Buffer = Buffer.alloc(0)
  #off = 0
  #resync: Buffer | undefined
  #broken = false

  push (chunk: Buffer): void {
    if (this.#off >= this.#buf.length) this.#buf = chunk
    else this.#buf = Buffer.concat([this.#buf.subarray(this.#off), chunk])
    this.#off = 0
  }

  /** Discards bytes until `pattern` (the start of a frame) is seen; parsing resumes there. */
  resync (pattern: Buffer): void {
    if (this.#broken) this.#off += 1 // never find the bad header itself again
    this.#broken = false
    this.#resync = pattern
  }

  /** True after a protocol error until resync() or reset(). */
  get broken (): boolean { return this.#broken }

  /** Forgets buffered bytes and any resync pattern. */
  reset (): void { this.#buf = Buffer.alloc(0); this.#off = 0; this.#resync = undefined; this.#broken = false }

  /** The next complete frame, or undefined when more bytes are needed. Throws PROTOCOL_ERROR. */
  next (): Frame | undefined {
    if (this.#broken) throw new MetaosError('PROTOCOL_ERROR', 'hypervisor bus: stream out of sync')
    if (this.#resync !== undefined) {
      const at = this.#buf.indexOf(this.#resync, this.#off)
      if (at < 0) {
        this.#off = Math.max(this.#off, this.#buf.length - this.#resync.length + 1)
        return undefined
      }
      this.#off = at
      this.#resync = undefined
    }
    const b = this.#buf
    const o = this.#off
    if (b.length - o < HEADER_BYTES) return undefined
    const type = b[o]!
    const channel = b.readUInt32BE(o + 1)
    const len = b.readUInt32BE(o + 5)
    const bad = type < FrameType.HELLO || type > FrameType.CLOSE ? `unknown frame type ${type}`
      : len > MAX_PAYLOAD ? `frame length ${len} over ${MAX_PAYLOAD}`
        : type === FrameType.HELLO ? (channel !== 0 || len !== 5 ? 'HELLO must be on channel 0 with 5 bytes' : undefined)
          : channel === 0 ? 'channel 0 is reserved for HELLO'
            : (type === FrameType.OPEN || type === FrameType.END) && len !== 0 ? 'OPEN and END carry no payload' : undefined
    if (bad !== undefined) {
      this.#broken = true
      throw new MetaosError('PROTOCOL_ERROR', `hypervisor bus: ${bad}`)
    }
    if (b.length - o - HEADER_BYTES < len) return undefined
    this.#off = o + HEADER_BYTES + len
    return { type: type as FrameType, channel, payload: b.subarray(o + HEADER_BYTES, this.#off) }
  }
}

interface Channel { id: number, sock: Socket, sentEnd: boolean, gotEnd: boolean, reason?: string }
export interface BusCounters { framesIn: number, framesOut: number, bytesIn: number, bytesOut: number }

/** One side's state over one link connection: parsing, channel bookkeeping and backpressure. */
class FrameLink {
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

export interface HypervisorBusHostOptions {
  /** The Unix socket the host's clients connect to, exactly as to a process domain's bus socket. */
  listenPath: string
  /** QEMU's chardev socket (`-chardev socket,path=…,server=on,wait=off`). */
  linkPath: string
  logger?: Logger
  /** Delay between link connection attempts. Default 200. */
  reconnectMs?: number
  /** How long a client waits for the link to come up before it is dropped. Default 10 000. */
  queueMs?: number
  /** Clients waiting for the link at most; more are dropped. Default 1024. */
  maxQueued?: number
  /** HELLO is repeated this often until the guest answers. Default 500. */
  helloIntervalMs?: number
}

export interface HypervisorBusStats extends BusCounters {
  channels: number
  linkUp: boolean
  /** Clients waiting for the link. */
  queued: number
  /** Bytes waiting in the link's and the channel sockets' write buffers. */
  buffered: number
}

/** The host end: a Unix listener whose connections are carried over QEMU's chardev socket. Events: 'link-up', 'link-down'. */
export class HypervisorBusHost extends EventEmitter {
  readonly #o: Required<Omit<HypervisorBusHostOptions, 'logger'>>
  readonly #log: Logger
  readonly #counters: BusCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  readonly #queued = new Map<Socket, { timer: NodeJS.Timeout, onClose: () => void }>()
  #server: Server | undefined
  #link: Socket | undefined
  #mux: FrameLink | undefined
  #linkUp = false
  #nonce = ZERO_NONCE
  #helloTimer: NodeJS.Timeout | undefined
  #reconnectTimer: NodeJS.Timeout | undefined
  #nextId = 1
  #closed = false
  #warned = false

  constructor (o: HypervisorBusHostOptions) {
    super()
    for (const k of ['listenPath', 'linkPath'] as const) {
      if (typeof o[k] !== 'string' || o[k] === '') throw new MetaosError('INVALID_ARGUMENT', `HypervisorBusHost: ${k} must be a non-empty path`)
    }
    for (const k of ['reconnectMs', 'queueMs', 'maxQueued', 'helloIntervalMs'] as const) {
      const v = o[k]
      if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw new MetaosError('INVALID_ARGUMENT', `HypervisorBusHost: ${k} must be a positive number`)
    }
    this.#o = { listenPath: o.listenPath, linkPath: o.linkPath, reconnectMs: o.reconnectMs ?? 200, queueMs: o.queueMs ?? 10_000, maxQueued: o.maxQueued ?? 1024, helloIntervalMs: o.helloIntervalMs ?? 500 }
    this.#log = o.logger ?? silentLogger
  }

  get stats (): HypervisorBusStats {
    return { ...this.#counters, channels: this.#mux?.channels.size ?? 0, linkUp: this.#linkUp, queued: this.#queued.size, buffered: this.#mux?.buffered ?? 0 }
  }

  /** Listens on listenPath and starts connecting the link in the background: clients that come before the guest answers wait (queueMs). */
  async start (): Promise<void> {
    if (this.#server !== undefined || this.#closed) throw new MetaosError('INVALID_ARGUMENT', 'HypervisorBusHost: start() called twice or after close()')
    await removeStaleSocket(this.#o.listenPath)
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => { this.#accept(s) })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.#o.listenPath, () => { server.off('error', reject); resolve() })
    })
    server.on('error', (e) => { this.#log.error({ err: e }, 'hypervisor bus: listener error') })
    chmodSync(this.#o.listenPath, 0o600) // the bus is for this user's co-hosted frontends only
    this.#server = server
    this.#connect()
  }

  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearTimeout(this.#reconnectTimer)
    clearInterval(this.#helloTimer)
    for (const [s, q] of this.#queued) { clearTimeout(q.timer); s.destroy() }
    this.#queued.clear()
    this.#mux?.dispose()
    this.#link?.destroy()
    const server = this.#server
    if (server !== undefined) {
      await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
      try { unlinkSync(this.#o.listenPath) } catch { /* net removed it */ }
    }
  }

  #accept (s: Socket): void {
    s.on('error', (e) => { this.#log.debug({ err: e }, 'hypervisor bus: client socket error') })
    if (this.#closed) { s.destroy(); return }
    if (this.#linkUp) { this.#open(s); return }
    if (this.#queued.size >= this.#o.maxQueued) { s.destroy(); return }
    const onClose = (): void => { const q = this.#queued.get(s); if (q !== undefined) { clearTimeout(q.timer); this.#queued.delete(s) } }
    const timer = setTimeout(() => { this.#log.warn('hypervisor bus: link not up in time, dropping a client'); s.destroy() }, this.#o.queueMs)
    this.#queued.set(s, { timer, onClose })
    s.once('close', onClose)
  }

  #open (s: Socket): void {
    const mux = this.#mux!
    let id = this.#nextId
    while (mux.channels.has(id)) id = id >= 0xffffffff ? 1 : id + 1
    this.#nextId = id >= 0xffffffff ? 1 : id + 1
    mux.send(FrameType.OPEN, id)
    mux.attach(id, s)
  }

  #connect (): void {
    this.#reconnectTimer = undefined
    if (this.#closed) return
    const s = connect(this.#o.linkPath)
    s.on('error', (e: NodeJS.ErrnoException) => {
      // QEMU creates the socket when it starts: until then ENOENT/ECONNREFUSED are the normal state.
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || this.#warned) this.#log.debug({ err: e }, 'hypervisor bus: link error')
      else { this.#warned = true; this.#log.warn({ err: e }, 'hypervisor bus: link error') }
    })
    s.once('connect', () => {
      if (this.#closed) { s.destroy(); return }
      this.#warned = false
      this.#link = s
      this.#mux = new FrameLink(s, {
        logger: this.#log,
        counters: this.#counters,
        onControl: (f) => { this.#control(f) },
        onProtocolError: (e) => { this.#log.warn({ err: e }, 'hypervisor bus: protocol error, resetting the link'); this.#mux?.dispose(); s.destroy() },
      })
      this.#handshake()
    })
    s.once('close', () => { this.#linkClosed(s) })
  }

  #handshake (): void {
    const mux = this.#mux!
    do this.#nonce = randomBytes(4); while (this.#nonce.equals(ZERO_NONCE))
    const hello = helloFrame(this.#nonce)
    mux.parser.resync(hello) // anything before the echo belongs to an older connection
    const say = (): void => { mux.send(FrameType.HELLO, 0, hello.subarray(HEADER_BYTES)) }
    clearInterval(this.#helloTimer)
    this.#helloTimer = setInterval(say, this.#o.helloIntervalMs)
    say()
  }

  #control (f: Frame): void {
    if (f.type === FrameType.OPEN) {
      this.#log.warn('hypervisor bus: the guest sent OPEN, resetting the link')
      this.#mux?.dispose()
      this.#link?.destroy()
      return
    }
    const nonce = f.payload.subarray(1)
    if (nonce.equals(ZERO_NONCE)) {
      if (!this.#linkUp) return // our HELLO is on its way anyway
      this.#log.info('hypervisor bus: the guest lost sync, handshaking again')
      this.#linkUp = false
      this.#mux!.resetChannels()
      this.emit('link-down')
      this.#handshake()
      return
    }
    if (this.#linkUp || f.payload[0] !== PROTOCOL_VERSION || !nonce.equals(this.#nonce)) return // a repeat or stale answer
    this.#linkUp = true
    clearInterval(this.#helloTimer)
    this.#log.info('hypervisor bus: link up')
    this.emit('link-up')
    for (const [s, q] of this.#queued) { clearTimeout(q.timer); s.off('close', q.onClose); if (!s.destroyed) this.#open(s) }
    this.#queued.clear()
  }

  #linkClosed (s: Socket): void {
    if (this.#link === s) {
      clearInterval(this.#helloTimer)
      this.#mux?.dispose() // clients see their connections close
      this.#mux = undefined
      this.#link = undefined
      if (this.#linkUp) {
        this.#linkUp = false
        this.#log.info('hypervisor bus: link down')
        this.emit('link-down')
      }
    }
    if (!this.#closed) this.#reconnectTimer = setTimeout(() => { this.#connect() }, this.#o.reconnectMs)
  }
}

export interface HypervisorBusGuestOptions {
  /** The serial port as a stream (virtio-port.ts: PipeLink); the guest owns it and destroys it on close(). */
  link: Duplex
  /** The domain's Unix socket inside the guest. */
  connectPath: string
  logger?: Logger
}

/** The guest end: each channel the host opens becomes a connection to connectPath. */
export class HypervisorBusGuest {
  readonly #link: Duplex
  readonly #path: string
  readonly #log: Logger
  readonly #counters: BusCounters = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  readonly #mux: FrameLink
  #answered: Buffer | undefined
  #closed = false

  constructor (o: HypervisorBusGuestOptions) {
    if (!(o.link instanceof Duplex)) throw new MetaosError('INVALID_ARGUMENT', 'HypervisorBusGuest: link must be a Duplex stream')
    if (typeof o.connectPath !== 'string' || o.connectPath === '') throw new MetaosError('INVALID_ARGUMENT', 'HypervisorBusGuest: connectPath must be a non-empty path')
    this.#link = o.link
    this.#path = o.connectPath
    this.#log = o.logger ?? silentLogger
    this.#mux = new FrameLink(o.link, {
      logger: this.#log,
      counters: this.#counters,
      onControl: (f) => { this.#control(f) },
      onProtocolError: (e) => { this.#lostSync(e) },
    })
    o.link.on('host-disconnected', () => {
      // A new host connection starts with HELLO: whatever was half-read belongs to the old one.
      this.#log.info('hypervisor bus: host disconnected')
      this.#answered = undefined
      this.#mux.resetChannels()
      this.#mux.parser.reset()
      this.#mux.parser.resync(HELLO_PREFIX)
    })
    o.link.on('error', (e) => { this.#log.warn({ err: e }, 'hypervisor bus: link error') })
    o.link.once('close', () => { this.close() })
    o.link.once('end', () => { this.close() })
    this.#mux.send(FrameType.HELLO, 0, Buffer.concat([Buffer.of(PROTOCOL_VERSION), ZERO_NONCE]))
  }

  get stats (): BusCounters & { channels: number } { return { ...this.#counters, channels: this.#mux.channels.size } }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#mux.dispose()
    this.#link.destroy()
  }

  #control (f: Frame): void {
    if (f.type === FrameType.HELLO) {
      const nonce = f.payload.subarray(1)
      if (f.payload[0] !== PROTOCOL_VERSION) { this.#lostSync(new MetaosError('PROTOCOL_ERROR', `hypervisor bus: unsupported version ${f.payload[0]}`)); return }
      if (nonce.equals(ZERO_NONCE)) return
      if (this.#answered === undefined || !nonce.equals(this.#answered)) {
        this.#mux.resetChannels() // a new host connection: a fresh start
        this.#answered = Buffer.from(nonce)
      }
      this.#mux.send(FrameType.HELLO, 0, f.payload)
      return
    }
    if (this.#mux.channels.has(f.channel)) { this.#lostSync(new MetaosError('PROTOCOL_ERROR', `hypervisor bus: OPEN of live channel ${f.channel}`)); return }
    this.#mux.attach(f.channel, connect({ path: this.#path, allowHalfOpen: true }))
  }

  #lostSync (e: MetaosError): void {
    this.#log.warn({ err: e }, 'hypervisor bus: protocol error, waiting for a new HELLO')
    this.#answered = undefined
    this.#mux.resetChannels()
    this.#mux.parser.resync(HELLO_PREFIX)
    this.#mux.send(FrameType.HELLO, 0, Buffer.concat([Buffer.of(PROTOCOL_VERSION), ZERO_NONCE]))
  }
}
