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
import { probeMatches } from './scope-match.js'
import { SoapUdp } from './soap-udp.js'
import { DISCOVERY_PROXY_TYPES } from './discovery-proxy.js'
import { askProxy, type ClientTls } from './proxy-client.js'

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
  /** Let the process exit while the client runs (a frontend's background registry). */
  readonly unref?: boolean
  /**
   * Drop messages whose AppSequence is older than one already seen for the EPR (default true).
   * Unsigned, the sequence is a claim: a rogue announcing a victim's EPR with a higher InstanceId
   * would make the victim's own Hello and Bye look stale. A frontend that proves each announcement
   * (trusted discovery) turns this off and judges every message on its proof.
   */
  readonly ordering?: boolean
  /**
   * A discovery proxy the operator names (`http://` or `https://HOST:PORT/discovery`): the client
   * is in managed mode from the start and stays with it (a proxy on another host is all there is
   * on an overlay network without multicast); a probe it cannot answer fails instead of falling
   * back to multicast.
   */
  readonly proxy?: string
  /** For an `https://` proxy: the CA its certificate must chain to, and optionally a client certificate and key. */
  readonly proxyTls?: ClientTls
  readonly logger?: Logger
}

export interface DiscoveryClientEvents {
  added: [DiscoveredTarget]
  changed: [DiscoveredTarget]
  removed: [DiscoveredTarget]
  /** A discovery proxy was learned (managed mode), or forgotten (undefined: back to ad hoc). */
  proxy: [DiscoveredTarget | undefined]
}

const isProxy = (t: TargetInfo): boolean => t.types.includes(DISCOVERY_PROXY_TYPES['1.1']) || t.types.includes(DISCOVERY_PROXY_TYPES['2005'])

export class DiscoveryClient extends EventEmitter<DiscoveryClientEvents> {
  readonly targets = new Map<string, DiscoveredTarget>()
  readonly #o: DiscoveryClientOptions
  readonly #log: Logger
  readonly #prober: SoapUdp
  readonly #listener: SoapUdp | undefined
  readonly #waiting = new Map<string, (m: DiscoveryMessage, from: RemoteInfo) => void>()
  readonly #sequences = new Map<string, AppSequence>()
  #timer: NodeJS.Timeout | undefined
  #proxy: DiscoveredTarget | undefined
  /** The proxy named in the options: never forgotten, never replaced by one heard on the segment. */
  readonly #pinned: DiscoveredTarget | undefined
  staleDropped = 0

  /** The discovery proxy in use (managed mode), if any. */
  get proxy (): DiscoveredTarget | undefined { return this.#proxy }

  /** Uses this proxy from now on (as if it had said Hello), e.g. one configured by the operator. */
  useProxy (p: DiscoveredTarget | undefined): void {
    if (this.#pinned !== undefined && p !== this.#pinned) return
    if (p?.epr === this.#proxy?.epr && p?.xaddrs.join() === this.#proxy?.xaddrs.join()) return
    this.#proxy = p
    this.#log.info({ proxy: p?.epr, xaddrs: p?.xaddrs }, p === undefined ? 'discovery proxy gone: ad hoc mode' : 'discovery proxy found: managed mode')
    this.emit('proxy', p)
  }

  constructor (o: DiscoveryClientOptions = {}) {
    super()
    this.#o = o
    this.#log = o.logger ?? silentLogger
    const udp = { ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }), unref: o.unref ?? false, logger: this.#log }
    this.#prober = new SoapUdp({ ...udp, port: 0 })
    this.#listener = o.listen === true ? new SoapUdp(udp) : undefined
    const on = (m: DiscoveryMessage, from: RemoteInfo): void => { this.#onMessage(m, from) }
    this.#prober.on('message', on)
    this.#listener?.on('message', on)
    if (o.proxy !== undefined) {
      const url = new URL(o.proxy)
      this.#pinned = this.#proxy = { epr: o.proxy, types: [DISCOVERY_PROXY_TYPES['1.1']], scopes: [], xaddrs: [o.proxy], metadataVersion: 0, version: '1.1', from: url.hostname, lastSeen: Date.now() }
    }
  }

  /** The proxy's endpoint this client can use (https first when it has the TLS options for it). */
  #proxyEndpoint (p: DiscoveredTarget): string | undefined {
    const https = p.xaddrs.find((x) => x.startsWith('https://'))
    const http = p.xaddrs.find((x) => x.startsWith('http://'))
    return https !== undefined && (this.#o.proxyTls !== undefined || http === undefined) ? https : http
  }

  async #ask (endpoint: string, message: Buffer, timeoutMs: number): Promise<DiscoveryMessage | undefined> {
    return await askProxy(endpoint, message, timeoutMs, endpoint.startsWith('https://') ? this.#o.proxyTls : undefined)
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
    const managed = this.#proxy !== undefined
    let found: DiscoveredTarget[]
    try {
      found = await this.probe({ ...this.#o.filter, timeoutMs: 1500 })
    } catch {
      return // the named proxy did not answer: what it said last stands until it answers again
    }
    if (managed && this.#proxy !== undefined) {
      // In managed mode no Bye reaches us from other segments: the proxy's answer is the truth.
      for (const t of [...this.targets.values()]) {
        if (!found.some((f) => f.epr === t.epr)) { this.targets.delete(t.epr); this.emit('removed', t) }
      }
      return
    }
    if (every === undefined) return
    // A target that answered none of the last two rounds and said no Hello is gone (crashed, unplugged).
    const cutoff = Date.now() - 2.5 * every
    for (const t of [...this.targets.values()]) {
      if (t.lastSeen < cutoff && !found.some((f) => f.epr === t.epr)) { this.targets.delete(t.epr); this.emit('removed', t) }
    }
  }

  /**
   * Probes: through the discovery proxy when one is known (managed mode), else by multicast in
   * each version, gathering matches until the timeout. A proxy that fails is forgotten and the
   * probe falls back to multicast.
   */
  async probe (o: ProbeOptions = {}): Promise<DiscoveredTarget[]> {
    const proxy = this.#proxy
    const endpoint = proxy === undefined ? undefined : this.#proxyEndpoint(proxy)
    if (proxy !== undefined && endpoint !== undefined) {
      const id = newMessageId()
      try {
        const m = await this.#ask(endpoint, buildEnvelope({ version: proxy.version, action: 'Probe', messageId: id, to: proxy.epr, body: body.probe(o.types ?? [], o.scopes ?? [], o.matchBy) }), o.timeoutMs ?? 2000)
        const from = { address: new URL(endpoint).hostname, family: 'IPv4', port: 0, size: 0 } as const
        const found = (m?.targets ?? []).map((t) => this.#entry(t, m!.version, from))
        for (const t of found) if (this.#accepts(t)) this.#upsert(t)
        return found
      } catch (e) {
        if (proxy === this.#pinned) {
          this.#log.warn({ err: (e as Error).message, proxy: endpoint }, 'discovery proxy did not answer the Probe')
          throw e
        }
        this.#log.warn({ err: (e as Error).message, proxy: proxy.epr }, 'discovery proxy unreachable; probing by multicast')
        this.useProxy(undefined)
      }
    }
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
    // A match without XAddrs (wsdd sends those) is resolved, so callers always get addresses.
    await Promise.all([...found.values()].filter((t) => t.xaddrs.length === 0).map(async (t) => {
      const r = await this.resolve(t.epr, { timeoutMs: 1000, versions: [t.version] })
      if (r !== undefined) found.set(t.epr, r)
    }))
    return [...found.values()]
  }

  /** Finds the transport addresses of an EPR; resolves as soon as one answer arrives. */
  async resolve (epr: string, o: { timeoutMs?: number, versions?: readonly WsdVersion[] } = {}): Promise<DiscoveredTarget | undefined> {
    const proxy = this.#proxy
    const endpoint = proxy === undefined ? undefined : this.#proxyEndpoint(proxy)
    if (proxy !== undefined && endpoint !== undefined) {
      try {
        const m = await this.#ask(endpoint, buildEnvelope({ version: proxy.version, action: 'Resolve', messageId: newMessageId(), to: proxy.epr, body: body.resolve(epr) }), o.timeoutMs ?? 2000)
        const t = m?.action === 'ResolveMatches' ? m.targets.find((x) => x.epr === epr) : undefined
        return t === undefined ? undefined : this.#entry(t, m!.version, { address: new URL(endpoint).hostname, family: 'IPv4', port: 0, size: 0 })
      } catch (e) {
        if (proxy === this.#pinned) throw e
        this.#log.warn({ err: (e as Error).message, proxy: proxy.epr }, 'discovery proxy unreachable; resolving by multicast')
        this.useProxy(undefined)
      }
    }
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
    return this.#o.filter === undefined || probeMatches(this.#o.filter, VERSIONS['1.1'].defaultMatchBy, t) === true
  }

  /** AppSequence: a message older than the last one seen from the same target is stale. */
  #fresh (epr: string, seq: AppSequence | undefined): boolean {
    if (seq === undefined || this.#o.ordering === false) return true
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
      if (isProxy(t)) {
        // A proxy's Hello (announcement, or suppression in answer to our multicast) → managed mode; its Bye → ad hoc.
        if (m.action === 'Bye') { if (this.#proxy?.epr === t.epr) this.useProxy(undefined) } else if (t.xaddrs.length > 0) this.useProxy(this.#entry(t, m.version, from))
        continue
      }
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

  /** Puts back a target a Bye removed (the Bye was proven false), without an event: its next Bye is heard. */
  keep (t: DiscoveredTarget): void {
    if (!this.targets.has(t.epr)) this.targets.set(t.epr, t)
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
