// The target-service side of WS-Discovery (ad hoc mode): Hello when ready, Bye when stopping,
// answers to Probe and Resolve in the version they were asked in, after the random APP_MAX_DELAY
// for multicast ones. Emits AppSequence (InstanceId from the start time, MessageNumber growing)
// and raises MetadataVersion when the endpoints change. Answers are bounded: a Probe flood cannot
// pile up timers without limit, and the reply rate is bounded per asking address and in all (a
// flood, spoofed or not, cannot turn the domain into a UDP reflector, and one flooding address
// does not use up the answers owed to the others).
import type { RemoteInfo } from 'node:dgram'
import type { Logger } from 'pino'
import { silentLogger } from '../soap-runtime/logger.js'
import { AppSequencer, body, sequenced, type Body, type DiscoveryMessage, type TargetInfo } from './messages.js'
import { TIMING, VERSIONS, type WsdVersion } from './protocol.js'
import { probeMatches } from './scope-match.js'
import { SoapUdp, type SoapUdpOptions } from './soap-udp.js'

export interface TargetServiceOptions extends SoapUdpOptions {
  readonly epr: string
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  readonly xaddrs: readonly string[]
  /** Versions to announce Hello/Bye in (both by default); Probes are answered in whichever they use. */
  readonly announceIn?: readonly WsdVersion[]
  readonly logger?: Logger
}

const MAX_PENDING_ANSWERS = 64
/** Answers per second (and burst) to one address, and to all addresses together. */
const ANSWER_RATE_PER_PEER = { perSecond: 16, burst: 32 }
const ANSWER_RATE_TOTAL = { perSecond: 128, burst: 128 }
const MAX_PEER_BUCKETS = 1024

/** A token bucket: `take()` is false once the rate is spent. */
class Bucket {
  #tokens: number
  #at = performance.now()
  constructor (readonly rate: { perSecond: number, burst: number }) { this.#tokens = rate.burst }
  get full (): boolean { this.#refill(); return this.#tokens >= this.rate.burst }
  take (): boolean {
    this.#refill()
    if (this.#tokens < 1) return false
    this.#tokens--
    return true
  }

  #refill (): void {
    const now = performance.now()
    this.#tokens = Math.min(this.rate.burst, this.#tokens + (now - this.#at) / 1000 * this.rate.perSecond)
    this.#at = now
  }
}

export class TargetService {
  readonly udp: SoapUdp
  readonly #o: TargetServiceOptions
  readonly #log: Logger
  readonly #seq = new AppSequencer()
  #info: TargetInfo
  #pending = 0
  readonly #total = new Bucket(ANSWER_RATE_TOTAL)
  readonly #peers = new Map<string, Bucket>()
  /** Answers not sent: too many waiting, or over the reply rate (per address or in all). */
  droppedAnswers = 0

  constructor (o: TargetServiceOptions) {
    this.#o = o
    this.#log = o.logger ?? silentLogger
    this.udp = new SoapUdp(o)
    // The EPR survives restarts, so MetadataVersion must never go back: it starts from the InstanceId.
    this.#info = { epr: o.epr, types: o.types, scopes: o.scopes, xaddrs: o.xaddrs, metadataVersion: this.#seq.instanceId }
    this.udp.on('message', (m: DiscoveryMessage, from: RemoteInfo) => { this.#onMessage(m, from) })
  }

  get info (): TargetInfo { return this.#info }

  async start (): Promise<void> {
    await this.udp.open()
    for (const v of this.#o.announceIn ?? ['1.1', '2005']) this.udp.send(this.#envelope(v, 'Hello', body.hello(v, this.#info), VERSIONS[v].multicastTo))
    this.#log.info({ epr: this.#info.epr, xaddrs: this.#info.xaddrs, interfaces: this.udp.interfaces.map((i) => i.name) }, 'announced (Hello)')
  }

  /** New endpoints: MetadataVersion grows and a new Hello tells the clients. */
  update (xaddrs: readonly string[], scopes: readonly string[] = this.#info.scopes): void {
    this.#info = { ...this.#info, xaddrs, scopes, metadataVersion: this.#info.metadataVersion + 1 }
    for (const v of this.#o.announceIn ?? ['1.1', '2005']) this.udp.send(this.#envelope(v, 'Hello', body.hello(v, this.#info), VERSIONS[v].multicastTo))
  }

  /** Bye in every announced version (with its repeats), then the sockets close. */
  async stop (): Promise<void> {
    const versions = this.#o.announceIn ?? ['1.1', '2005']
    await this.udp.sendAndClose(...versions.map((v) => this.#envelope(v, 'Bye', body.bye(v, this.#info), VERSIONS[v].multicastTo)))
    this.#log.info({ epr: this.#info.epr }, 'withdrawn (Bye)')
  }

  #envelope (v: WsdVersion, action: 'Hello' | 'Bye' | 'ProbeMatches' | 'ResolveMatches' | 'fault', b: Body, to: string, relatesTo?: string): Buffer {
    return sequenced(this.#seq, v, action, b, to, relatesTo)
  }

  #onMessage (m: DiscoveryMessage, from: RemoteInfo): void {
    if (m.action !== 'Probe' && m.action !== 'Resolve') return
    const v = m.version
    let reply: Buffer | undefined
    if (m.action === 'Probe') {
      const match = probeMatches(m, VERSIONS[v].defaultMatchBy, this.#info)
      if (match === 'unsupported') {
        if (v === '1.1') reply = this.#envelope(v, 'fault', body.matchingRuleNotSupported(v), VERSIONS[v].anonymous, m.messageId)
        this.#log.debug({ rule: m.matchBy }, 'Probe with an unsupported matching rule')
      } else if (match) {
        reply = this.#envelope(v, 'ProbeMatches', body.probeMatches(v, [this.#info]), VERSIONS[v].anonymous, m.messageId)
      }
    } else if (m.epr === this.#info.epr) {
      reply = this.#envelope(v, 'ResolveMatches', body.resolveMatches(v, [this.#info]), VERSIONS[v].anonymous, m.messageId)
    }
    if (reply === undefined) return
    if (this.#pending >= MAX_PENDING_ANSWERS || !this.#admitAnswer(from.address)) { this.droppedAnswers++; return }
    // A multicast request is answered after a random delay so that many targets do not answer at once.
    const multicast = m.to === VERSIONS[v].multicastTo || m.to === undefined
    const delay = multicast ? Math.random() * TIMING.APP_MAX_DELAY : 0
    const to = { address: from.address, port: from.port }
    const data = reply
    this.#pending++
    this.udp.later(delay, () => { this.#pending--; this.udp.send(data, to) })
  }

  #admitAnswer (address: string): boolean {
    let peer = this.#peers.get(address)
    if (peer === undefined) {
      if (this.#peers.size >= MAX_PEER_BUCKETS) {
        // Forget addresses whose buckets have refilled (they owe nothing); if none has, forget the oldest.
        for (const [a, b] of this.#peers) if (b.full) this.#peers.delete(a)
        if (this.#peers.size >= MAX_PEER_BUCKETS) this.#peers.delete(this.#peers.keys().next().value!)
      }
      peer = new Bucket(ANSWER_RATE_PER_PEER)
      this.#peers.set(address, peer)
    }
    // The peer's token first: a flooding address must not spend the tokens of all the others.
    return peer.take() && this.#total.take()
  }
}
