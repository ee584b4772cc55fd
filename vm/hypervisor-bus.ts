// The hypervisor bus: many stream connections multiplexed over the one virtio-serial port that joins
// the host to a VM domain. The host side listens on a Unix socket exactly like a process domain's
// bus socket and carries each accepted connection to the guest; the guest side connects each one to
// the domain's Unix socket inside the VM. Owns the frame protocol and both ends (the guest's port
// itself is virtio-port.ts); knows nothing of HTTP or SOAP (bytes only) and does not start or watch
// QEMU.
// The frame protocol is described in vm/bus-frames.ts, the channels and their backpressure in
// vm/bus-link.ts.
import { randomBytes } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { unlinkSync, chmodSync } from 'node:fs'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import type { Logger } from 'pino'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { removeStaleSocket } from '../soap-runtime/service-host.js'
import { FrameType, HEADER_BYTES, HELLO_PREFIX, PROTOCOL_VERSION, ZERO_NONCE, helloFrame, type Frame } from './bus-frames.js'
import { FrameLink, type BusCounters } from './bus-link.js'
import { connectWhenListening } from './chardev-socket.js'
import { SwitchableLink } from './link-switch.js'

export { encodeFrame, FrameParser, FrameType, HEADER_BYTES, MAX_DATA, MAX_PAYLOAD, PROTOCOL_VERSION, type Frame } from './bus-frames.js'
export type { BusCounters } from './bus-link.js'

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
  #link: SwitchableLink | undefined
  /** QEMU's chardev socket; a live migration moves it to the new QEMU's (relink). */
  #linkPath: string
  /** Resolves when the guest echoes a HELLO with the link's own nonce (relink's barrier). */
  #barrier: (() => void) | undefined
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
    this.#linkPath = o.linkPath
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
    const s = connect(this.#linkPath)
    s.on('error', (e: NodeJS.ErrnoException) => {
      // QEMU creates the socket when it starts: until then ENOENT/ECONNREFUSED are the normal state.
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED' || this.#warned) this.#log.debug({ err: e }, 'hypervisor bus: link error')
      else { this.#warned = true; this.#log.warn({ err: e }, 'hypervisor bus: link error') }
    })
    const failed = (): void => { this.#linkClosed(undefined) }
    s.once('close', failed)
    s.once('connect', () => {
      s.off('close', failed)
      if (this.#closed) { s.destroy(); return }
      this.#warned = false
      const link = new SwitchableLink(s)
      link.on('error', () => {})
      this.#link = link
      this.#mux = new FrameLink(link, {
        logger: this.#log,
        counters: this.#counters,
        onControl: (f) => { this.#control(f) },
        onProtocolError: (e) => { this.#log.warn({ err: e }, 'hypervisor bus: protocol error, resetting the link'); this.#mux?.dispose(); link.destroy() },
      })
      link.once('close', () => { this.#linkClosed(link) })
      this.#handshake()
    })
  }

  /**
   * The reconnect hook of a live migration (vm/vm-migration.ts): connects to the new QEMU's chardev
   * at `linkPath` before the migration completes (so the guest, once on the new QEMU, never sees its
   * host disconnect and keeps its channels), holds what the channels send, and resolves when the
   * guest has taken every byte sent before — a HELLO with the link's own nonce, which the guest
   * echoes after the frames before it and does not reset on. Then `commit` moves the link once the
   * old QEMU has quit (the old socket is read to its end first), or `abort` lets the held bytes go
   * to the old QEMU (the migration failed). Channels stay open either way.
   */
  async relink (linkPath: string, timeoutMs = 10_000): Promise<{ commit: () => Promise<void>, abort: () => void }> {
    const link = this.#link
    if (!this.#linkUp || link === undefined || this.#mux === undefined) throw new MetaosError('TRANSPORT_ERROR', 'hypervisor bus: the link is not up, nothing to move')
    const next = await connectWhenListening(linkPath, 'hypervisor bus link', timeoutMs)
    next.on('error', () => {})
    next.pause()
    const echoed = new Promise<void>((resolve) => { this.#barrier = resolve })
    link.hold(helloFrame(this.#nonce))
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([echoed, new Promise((_resolve, reject) => { timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', `hypervisor bus: the guest did not echo the barrier within ${timeoutMs} ms`)) }, timeoutMs) })])
    } catch (e) {
      this.#barrier = undefined
      next.destroy()
      link.release()
      throw e
    } finally { clearTimeout(timer) }
    return {
      commit: async () => { this.#linkPath = linkPath; await link.switchTo(next) },
      abort: () => { next.destroy(); link.release() },
    }
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
    if (this.#linkUp && this.#barrier !== undefined && f.payload[0] === PROTOCOL_VERSION && nonce.equals(this.#nonce)) { const b = this.#barrier; this.#barrier = undefined; b(); return }
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

  #linkClosed (s: SwitchableLink | undefined): void {
    if (s !== undefined && this.#link === s) {
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
