// The client side of WS-Discovery: Probe (by Types and Scopes) and Resolve with timeouts, and a
// live registry of target services that follows Hello and Bye, re-probes, drops stale messages by
// AppSequence, ages out targets that stopped answering, and emits typed events. Both versions:
// probes go out in 1.1 and in 2005/04 unless one is named.
import { EventEmitter } from 'node:events'
import type { RemoteInfo } from 'node:dgram'
import type { Logger } from 'pino'
import { silentLogger } from '../soap-runtime/logger.js'
import { body, buildEnvelope, newMessageId, type AppSequence, type DiscoveryMessage, type TargetInfo } from './messages.js'
import { TIMING, VERSIONS, type WsdVersion } from './protocol.js'
import { matchScopes } from './scope-match.js'
import { SoapUdp } from './soap-udp.js'

export interface ProbeOptions {
  /** QNames in Clark notation. */
  readonly types?: readonly string[]
  readonly scopes?: readonly string[]
  readonly matchBy?: string
  readonly timeoutMs?: number
  readonly versions?: readonly WsdVersion[]
}

export interface DiscoveredTarget extends TargetInfo {
  readonly version: WsdVersion
  readonly from: string
  readonly lastSeen: number
}

export interface DiscoveryClientOptions {
  readonly interfaces?: readonly string[]
  /** Hear Hello/Bye (binds the discovery port); a probe-only client leaves it false. */
  readonly listen?: boolean
  /** Which targets the registry keeps (Types all required; Scopes by RFC 3986 prefix). */
  readonly filter?: { readonly types?: readonly string[], readonly scopes?: readonly string[] }
  /** Re-probe period of the registry (ms); 0 = never. Default 30 s. */
  readonly reprobeMs?: number
  readonly logger?: Logger
}

export interface DiscoveryClientEvents {
  added: [DiscoveredTarget]
  changed: [DiscoveredTarget]
  removed: [DiscoveredTarget]
}

export class DiscoveryClient extends EventEmitter<DiscoveryClientEvents> {
  readonly targets = new Map<string, DiscoveredTarget>()
  readonly #o: DiscoveryClientOptions
  readonly #log: Logger
  readonly #prober: SoapUdp
  readonly #listener: SoapUdp | undefined
  readonly #waiting = new Map<string, (m: DiscoveryMessage, from: RemoteInfo) => void>()
  readonly #sequences = new Map<string, AppSequence>()
  #timer: NodeJS.Timeout | undefined
  staleDropped = 0

  constructor (o: DiscoveryClientOptions = {}) {
    super()
    this.#o = o
    this.#log = o.logger ?? silentLogger
    this.#prober = new SoapUdp({ ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }), port: 0, logger: this.#log })
    this.#listener = o.listen === true ? new SoapUdp({ ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }), logger: this.#log }) : undefined
    const on = (m: DiscoveryMessage, from: RemoteInfo): void => { this.#onMessage(m, from) }
    this.#prober.on('message', on)
    this.#listener?.on('message', on)
  }

  get stats (): { prober: SoapUdp['stats'], listener: SoapUdp['stats'] | undefined, staleDropped: number } {
    return { prober: this.#prober.stats, listener: this.#listener?.stats, staleDropped: this.staleDropped }
  }

  /** Opens the sockets; a listening registry also probes once now and then every `reprobeMs`. */
  async start (): Promise<void> {
    await this.#prober.open()
    if (this.#listener !== undefined) {
      await this.#listener.open()
      const every = this.#o.reprobeMs ?? 30_000
      void this.#reprobe()
      if (every > 0) {
        this.#timer = setInterval(() => { void this.#reprobe(every) }, every)
        this.#timer.unref()
      }
    }
  }

  async #reprobe (every?: number): Promise<void> {
    const found = await this.probe({ ...this.#o.filter, timeoutMs: 1500 }).catch(() => [])
    if (every === undefined) return
    // A target that answered none of the last two rounds and said no Hello is gone (crashed, unplugged).
    const cutoff = Date.now() - 2.5 * every
    for (const t of [...this.targets.values()]) {
      if (t.lastSeen < cutoff && !found.some((f) => f.epr === t.epr)) { this.targets.delete(t.epr); this.emit('removed', t) }
    }
  }

  /** Multicasts a Probe (in each version) and gathers the matches until the timeout. */
  async probe (o: ProbeOptions = {}): Promise<DiscoveredTarget[]> {
    const found = new Map<string, DiscoveredTarget>()
    const ids: string[] = []
    for (const v of o.versions ?? ['1.1', '2005'] as const) {
      const id = newMessageId()
      ids.push(id)
      this.#waiting.set(id, (m, from) => {
        if (m.action !== 'ProbeMatches') return
        for (const t of m.targets) found.set(t.epr, this.#entry(t, m.version, from))
      })
      this.#prober.send(buildEnvelope({ version: v, action: 'Probe', messageId: id, to: VERSIONS[v].multicastTo, body: body.probe(o.types ?? [], o.scopes ?? [], o.matchBy) }))
    }
    await new Promise((resolve) => setTimeout(resolve, o.timeoutMs ?? TIMING.APP_MAX_DELAY + 500))
    for (const id of ids) this.#waiting.delete(id)
    return [...found.values()]
  }

  /** Finds the transport addresses of an EPR; resolves as soon as one answer arrives. */
  async resolve (epr: string, o: { timeoutMs?: number, versions?: readonly WsdVersion[] } = {}): Promise<DiscoveredTarget | undefined> {
    return await new Promise((resolve) => {
      const ids: string[] = []
      const finish = (t: DiscoveredTarget | undefined): void => { clearTimeout(timer); for (const id of ids) this.#waiting.delete(id); resolve(t) }
      const timer = setTimeout(() => { finish(undefined) }, o.timeoutMs ?? 2000)
      for (const v of o.versions ?? ['1.1', '2005'] as const) {
        const id = newMessageId()
        ids.push(id)
        this.#waiting.set(id, (m, from) => {
          const t = m.targets.find((x) => x.epr === epr)
          if (m.action === 'ResolveMatches' && t !== undefined) finish(this.#entry(t, m.version, from))
        })
        this.#prober.send(buildEnvelope({ version: v, action: 'Resolve', messageId: id, to: VERSIONS[v].multicastTo, body: body.resolve(epr) }))
      }
    })
  }

  /** The first target matching `accept` — now, or when it says Hello — or undefined after the timeout. */
  async waitFor (accept: (t: DiscoveredTarget) => boolean, timeoutMs: number): Promise<DiscoveredTarget | undefined> {
    for (const t of this.targets.values()) if (accept(t)) return t
    return await new Promise((resolve) => {
      const on = (t: DiscoveredTarget): void => { if (accept(t)) { clearTimeout(timer); this.off('added', on); this.off('changed', on); resolve(t) } }
      const timer = setTimeout(() => { this.off('added', on); this.off('changed', on); resolve(undefined) }, timeoutMs)
      this.on('added', on)
      this.on('changed', on)
    })
  }

  #entry (t: TargetInfo, version: WsdVersion, from: RemoteInfo): DiscoveredTarget {
    return { ...t, version, from: from.address, lastSeen: Date.now() }
  }

  #accepts (t: TargetInfo): boolean {
    const f = this.#o.filter
    if (f === undefined) return true
    if (!(f.types ?? []).every((x) => t.types.includes(x))) return false
    return (f.scopes ?? []).length === 0 || matchScopes(VERSIONS['1.1'].defaultMatchBy, f.scopes!, t.scopes) === true
  }

  /** AppSequence: a message older than the last one seen from the same target is stale. */
  #fresh (epr: string, seq: AppSequence | undefined): boolean {
    if (seq === undefined) return true
    const last = this.#sequences.get(epr)
    if (last !== undefined && (seq.instanceId < last.instanceId || (seq.instanceId === last.instanceId && (seq.sequenceId ?? '') === (last.sequenceId ?? '') && seq.messageNumber <= last.messageNumber))) {
      this.staleDropped++
      return false
    }
    this.#sequences.set(epr, seq)
    if (this.#sequences.size > 10_000) this.#sequences.delete(this.#sequences.keys().next().value!)
    return true
  }

  #onMessage (m: DiscoveryMessage, from: RemoteInfo): void {
    if (m.relatesTo !== undefined) this.#waiting.get(m.relatesTo)?.(m, from)
    if (m.action !== 'Hello' && m.action !== 'Bye' && m.action !== 'ProbeMatches' && m.action !== 'ResolveMatches') return
    for (const t of m.targets) {
      if (!this.#fresh(t.epr, m.appSequence)) continue
      const known = this.targets.get(t.epr)
      if (m.action === 'Bye') {
        if (known !== undefined) { this.targets.delete(t.epr); this.emit('removed', known) }
        continue
      }
      if (!this.#accepts(t)) continue
      const entry = this.#entry(t, m.version, from)
      if (entry.xaddrs.length === 0 && m.action === 'Hello') {
        // A Hello without XAddrs: ask where it is.
        void this.resolve(t.epr).then((r) => { if (r !== undefined) this.#upsert(r) })
        continue
      }
      this.#upsert(entry, known)
    }
  }

  #upsert (entry: DiscoveredTarget, known = this.targets.get(entry.epr)): void {
    if (known !== undefined && entry.metadataVersion < known.metadataVersion) return
    this.targets.set(entry.epr, entry)
    if (known === undefined) this.emit('added', entry)
    else if (entry.metadataVersion !== known.metadataVersion || entry.xaddrs.join(' ') !== known.xaddrs.join(' ') || entry.scopes.join(' ') !== known.scopes.join(' ')) this.emit('changed', entry)
  }

  async close (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await Promise.all([this.#prober.close(), this.#listener?.close()])
  }
}
