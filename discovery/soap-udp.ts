// SOAP over UDP for WS-Discovery: multicast group membership on the chosen interfaces only
// (loopback by default), sending with SOAP-over-UDP retransmission (randomized, doubling, capped
// delays), duplicate suppression by MessageID in bounded memory, and a gate that drops oversize,
// malformed, hostile or foreign datagrams — counted, never thrown. Knows nothing of what the
// messages mean.
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { EventEmitter } from 'node:events'
import type { Logger } from 'pino'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { parseDiscovery, type DiscoveryMessage } from './messages.js'
import { DISCOVERY_PORT, MAX_DATAGRAM, MULTICAST_V4, MULTICAST_V6, TIMING } from './protocol.js'
import { selectInterfaces, type Iface } from './interfaces.js'

function inCidr (address: string, cidr: string): boolean {
  const [net, bitsS] = cidr.split('/')
  const toInt = (a: string): number => a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0
  const bits = Number(bitsS)
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
  return ((toInt(address) & mask) >>> 0) === ((toInt(net!) & mask) >>> 0)
}

export interface UdpStats {
  received: number
  sent: number
  dropped: { oversize: number, malformed: number, duplicate: number, foreign: number }
}

export interface SoapUdpOptions {
  readonly interfaces?: readonly string[]
  /** Port to listen on for multicast (3702), or 0 for a client that only hears replies. */
  readonly port?: number
  readonly ipv6?: boolean
  /** Let the process exit while the sockets are open (a frontend's background registry). */
  readonly unref?: boolean
  readonly logger?: Logger
}

export interface Destination { readonly address: string, readonly port: number }

/** Emits 'message' (msg: DiscoveryMessage, from: RemoteInfo). */
export class SoapUdp extends EventEmitter {
  readonly stats: UdpStats = { received: 0, sent: 0, dropped: { oversize: 0, malformed: 0, duplicate: 0, foreign: 0 } }
  readonly interfaces: Iface[]
  readonly #port: number
  readonly #ipv6: boolean
  readonly #unref: boolean
  readonly #log: Logger
  readonly #seen = new Map<string, number>()
  readonly #timers = new Set<NodeJS.Timeout>()
  #v4: Socket | undefined
  #v6: Socket | undefined
  #closed = false

  constructor (o: SoapUdpOptions = {}) {
    super()
    this.interfaces = selectInterfaces(o.interfaces)
    this.#port = o.port ?? DISCOVERY_PORT
    this.#ipv6 = o.ipv6 ?? true
    this.#unref = o.unref ?? false
    this.#log = o.logger ?? silentLogger
  }

  /** Local port of the IPv4 socket (useful when bound to 0). */
  get port (): number { return this.#v4?.address().port ?? 0 }

  async open (): Promise<void> {
    const v4s = this.interfaces.filter((i) => i.v4 !== undefined)
    if (v4s.length > 0) {
      const s = createSocket({ type: 'udp4', reuseAddr: true })
      await bind(s, this.#port)
      for (const i of this.#port === 0 ? [] : v4s) {
        try { s.addMembership(MULTICAST_V4, i.v4!.address) } catch (e) { this.#log.warn({ err: e, iface: i.name }, 'cannot join the IPv4 discovery group') }
      }
      s.setMulticastTTL(1)
      s.setMulticastLoopback(true)
      s.on('message', (d, r) => { this.#receive(d, r) })
      s.on('error', (e) => { this.#log.warn({ err: e }, 'udp4 socket error') })
      this.#v4 = s
    }
    const v6s = this.#ipv6 ? this.interfaces.filter((i) => i.v6 !== undefined && i.name !== 'lo') : []
    if (v6s.length > 0) {
      const s = createSocket({ type: 'udp6', reuseAddr: true, ipv6Only: true })
      try {
        await bind(s, this.#port)
        for (const i of this.#port === 0 ? [] : v6s) s.addMembership(MULTICAST_V6, `::%${i.name}`)
        s.setMulticastLoopback(true)
        s.on('message', (d, r) => { this.#receive(d, r) })
        s.on('error', (e) => { this.#log.warn({ err: e }, 'udp6 socket error') })
        this.#v6 = s
      } catch (e) {
        this.#log.warn({ err: e }, 'IPv6 discovery unavailable')
        s.close()
      }
    }
    if (this.#unref) { this.#v4?.unref(); this.#v6?.unref() }
    if (this.#v4 === undefined && this.#v6 === undefined) throw new MetaosError('INVALID_ARGUMENT', 'no interface with an address to run WS-Discovery on')
  }

  #receive (data: Buffer, from: RemoteInfo): void {
    this.stats.received++
    if (data.length > MAX_DATAGRAM) { this.stats.dropped.oversize++; return }
    if (!this.#admits(from)) { this.stats.dropped.foreign++; return }
    let msg: DiscoveryMessage
    try {
      msg = parseDiscovery(data)
    } catch (e) {
      this.stats.dropped.malformed++
      this.#log.debug({ from: from.address, err: (e as Error).message }, 'dropped a datagram')
      return
    }
    if (this.#seen.has(msg.messageId)) { this.stats.dropped.duplicate++; return }
    this.#seen.set(msg.messageId, Date.now())
    if (this.#seen.size > 4096) this.#seen.delete(this.#seen.keys().next().value!)
    this.emit('message', msg, from)
  }

  /** Datagrams from outside the chosen interfaces' networks are not ours to answer. */
  #admits (from: RemoteInfo): boolean {
    if (from.family === 'IPv6') return this.#v6 !== undefined
    return this.interfaces.some((i) => i.v4 !== undefined && inCidr(from.address, i.v4.cidr)) ||
      (this.interfaces.some((i) => i.name === 'lo') && from.address.startsWith('127.'))
  }

  /**
   * Sends `data` to the multicast group on every chosen interface (or to `to`), then repeats it
   * with SOAP-over-UDP's randomized doubling delays. The repeats keep the same MessageID, so
   * receivers drop them as duplicates once one got through.
   */
  send (data: Buffer, to?: Destination): number {
    if (this.#closed) return 0
    if (data.length > 1400) this.#log.debug({ bytes: data.length }, 'discovery message larger than one unfragmented datagram')
    const once = (): void => {
      if (this.#closed) return
      if (to !== undefined) {
        const s = to.address.includes(':') ? this.#v6 : this.#v4
        s?.send(data, to.port, to.address)
        this.stats.sent++
        return
      }
      for (const i of this.interfaces) {
        if (i.v4 !== undefined && this.#v4 !== undefined) {
          this.#v4.setMulticastInterface(i.v4.address)
          this.#v4.send(data, DISCOVERY_PORT, MULTICAST_V4)
          this.stats.sent++
        }
        if (i.v6 !== undefined && this.#v6 !== undefined && i.name !== 'lo') {
          this.#v6.setMulticastInterface(`::%${i.name}`)
          this.#v6.send(data, DISCOVERY_PORT, `${MULTICAST_V6}%${i.name}`)
          this.stats.sent++
        }
      }
    }
    once()
    const repeats = to === undefined ? TIMING.MULTICAST_UDP_REPEAT : TIMING.UNICAST_UDP_REPEAT
    let delay = TIMING.UDP_MIN_DELAY + Math.random() * (TIMING.UDP_MAX_DELAY - TIMING.UDP_MIN_DELAY)
    let elapsed = 0
    for (let n = 0; n < repeats; n++) {
      elapsed += delay
      this.later(elapsed, once)
      delay = Math.min(delay * 2, TIMING.UDP_UPPER_DELAY)
    }
    return elapsed
  }

  /** Runs `fn` after `ms` unless closed; the timer never keeps the process alive. */
  later (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.#timers.delete(t); if (!this.#closed) fn() }, ms)
    t.unref()
    this.#timers.add(t)
  }

  get pendingTimers (): number { return this.#timers.size }

  async close (): Promise<void> {
    this.#closed = true
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.clear()
    await Promise.all([this.#v4, this.#v6].map(async (s) => { if (s !== undefined) await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }

  /** Sends datagrams with their repeats (Byes), waits for the last repeat, then closes. */
  async sendAndClose (...data: Buffer[]): Promise<void> {
    const ms = Math.max(0, ...data.map((d) => this.send(d)))
    await new Promise((resolve) => setTimeout(resolve, ms + 5))
    await this.close()
  }
}

async function bind (s: Socket, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject)
    s.bind(port, () => { s.removeListener('error', reject); resolve() })
  })
}
