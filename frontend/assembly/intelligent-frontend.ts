// The intelligent frontend (the paper's §2.C) assembled: the discovery registry feeds the
// Performance Mapping Table — a domain that says Hello is tracked (its identity read from its
// announced scopes), measured by the performance module, and placed on by the dispatchers (one per
// volume, with failover); a Bye first moves the streams the domain serves to another domain of
// their volume, then removes it. A supervisor watches them all. FileStream's `destination:
// 'discover'` uses the process-wide instance.
import type { DiscoveryClient, DiscoveredTarget } from '../../discovery/client.js'
import { declaredFromScopes, factsFromScopes } from '../../discovery/storage-announcement.js'
import { FRONTEND_CALLER, createStorageProxy } from '../handlers/storage-proxy.js'
import { bestEndpoint, storageRegistry } from '../handlers/discovered-domains.js'
import { Dispatcher, type DispatcherOptions } from '../placement/dispatcher.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'
import { PerformanceModule } from '../placement/performance-module.js'
import { PerformanceMappingTable, type Declared, type DomainIdentity } from '../placement/pmt.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
import { PmtExchange, type ExchangeTls, type JoinOptions } from '../placement/pmt-exchange.js'
import { certificateIdentity } from '../../security/pki.js'
import { randomUUID } from 'node:crypto'
import { MetaosError } from '../../soap-runtime/errors.js'
import { parseEndpoint } from '../../soap-runtime/endpoint.js'
import { pmtStatus, type ClusterStatus, type LifecycleEvent } from './status-snapshot.js'
import { DomainTrust, trustFromEnvironment, type ProvenDomain, type TrustOptions } from '../handlers/domain-trust.js'
import { configFromEnvironment, coordinationFromEnvironment, type FrontendSettings } from './configuration.js'
import type { VulnerabilityFeed } from '../placement/vulnerability-feed.js'
import { KEYS, keep, lookup, release } from '../handlers/process-registry.js'

/** Reads what a domain announced in its scopes (DESIGN §4) into a PMT identity. */
export function identityFromScopes (t: DiscoveredTarget, endpoint: string): DomainIdentity {
  const f = factsFromScopes(t.scopes)
  return {
    epr: t.epr,
    endpoints: [endpoint],
    hosting: f.hosting ?? 'process',
    kernel: f.kernel ?? { sysname: 'unknown', release: '0' },
    volume: f.volume ?? 'unknown',
    ...(f.zone === undefined ? {} : { zone: f.zone }),
    ...(f.runtime === undefined ? {} : { runtime: f.runtime }),
  }
}

const MAX_PROOFS_AT_ONCE = 16

export interface IntelligentFrontendOptions extends Omit<DispatcherOptions, 'volume'> {
  readonly probeIntervalMs?: number
  readonly idleProbeIntervalMs?: number
  /**
   * SLA and cost the operator declares for a domain (by EPR); they override what the domain
   * announces in its scopes (metaos://sla/…, metaos://cost/call/…, metaos://cost/mb/…).
   */
  readonly declared?: Readonly<Record<string, Declared>>
  /** The supervisor's thresholds (it always runs). */
  readonly supervisor?: Omit<SupervisorOptions, 'pmt' | 'dispatchers' | 'perf' | 'feed'>
  /**
   * Trusted discovery (frontend/handlers/domain-trust.ts): use a discovered domain only once it has proven
   * its EPR over TLS against this CA; believe a Bye only when the domain no longer answers.
   */
  readonly trust?: TrustOptions
}

export class IntelligentFrontend {
  readonly pmt = new PerformanceMappingTable()
  readonly perf: PerformanceModule
  readonly handlers = new Map<string, StorageHandler>()
  readonly registry: DiscoveryClient
  readonly supervisor: Supervisor
  readonly #options: IntelligentFrontendOptions
  readonly #dispatchers = new Map<string, Dispatcher>()
  /** Undefined without trust options: announcements are taken as they come (a trusted network). */
  readonly trust: DomainTrust | undefined
  /** Discovery events (tracked, gone, forged Byes, refusals), latest last, for the status and the dashboard. */
  readonly lifecycle: LifecycleEvent[] = []
  readonly #trackedAt = new Map<string, number>()
  /** Announcements being verified (by EPR), so a burst of them costs one proof. */
  readonly #verifying = new Set<string>()
  #closed = false

  constructor (registry: DiscoveryClient, options: IntelligentFrontendOptions = {}) {
    this.registry = registry
    this.#options = options
    this.trust = options.trust === undefined ? undefined : new DomainTrust(options.trust)
    this.perf = new PerformanceModule({
      pmt: this.pmt,
      ...(options.probeIntervalMs === undefined ? {} : { probeIntervalMs: options.probeIntervalMs }),
      ...(options.idleProbeIntervalMs === undefined ? {} : { idleProbeIntervalMs: options.idleProbeIntervalMs }),
    })
    this.supervisor = new Supervisor({ ...options.supervisor, pmt: this.pmt, perf: this.perf, dispatchers: [], ...(options.feed === undefined ? {} : { feed: options.feed }) })
    // The feed cuts the scores of the domains it affects from the start, before any dispatcher is made.
    const feed = options.feed
    if (feed !== undefined) this.pmt.setExposure((identity) => feed.exposure({ identity })?.severity)
    for (const t of registry.targets.values()) this.#add(t)
    registry.on('added', (t) => { this.#add(t) })
    registry.on('changed', (t) => {
      if (this.trust === undefined) { this.#remove(t.epr); this.#add(t); return }
      // A proven domain is replaced only by what proves itself again: a forged Hello with its EPR
      // and other XAddrs fails the proof and changes nothing.
      void this.#prove(t, true)
    })
    registry.on('removed', (t) => { void this.#retire(t.epr, t) })
    this.perf.start()
    this.supervisor.start()
    if (this.trust !== undefined) {
      // Unsigned Byes can be dropped or suppressed: a proven domain that stops answering as itself
      // is retired by this watch too (two misses in a row).
      const every = options.trust?.recheckMs ?? 3000
      this.#watch = setInterval(() => { void this.#recheck() }, every)
      this.#watch.unref()
    }
  }

  #watch: NodeJS.Timeout | undefined
  readonly #misses = new Map<string, number>()

  async #recheck (): Promise<void> {
    for (const [epr, h] of [...this.handlers]) {
      if (await this.trust!.answers(epr, h)) { this.#misses.delete(epr); continue }
      const n = (this.#misses.get(epr) ?? 0) + 1
      this.#misses.set(epr, n)
      if (n >= 2 && !this.#closed) { this.#misses.delete(epr); await this.#retire(epr) }
    }
  }

  /** A domain said Bye: no new stream goes there, its streams move to another domain of their volume, then it is forgotten. */
  async #retire (epr: string, t?: DiscoveredTarget): Promise<void> {
    const h = this.handlers.get(epr)
    if (h === undefined) return
    if (this.trust !== undefined && t !== undefined && await this.trust.stillAnswers(epr, h)) {
      this.registry.keep(t) // a forged Bye: the domain stays, and its own Bye will be heard later
      this.#event('forged-bye', epr, `a Bye from ${t.from}, while the domain still answers as itself`)
      return
    }
    if (!this.handlers.has(epr)) return
    this.#event('gone', epr, t === undefined ? 'it stopped answering' : 'it said Bye')
    this.pmt.setState(epr, 'draining')
    for (const d of this.#dispatchers.values()) await d.migrateAll(epr, 'the domain said Bye')
    this.#remove(epr)
  }

  #add (t: DiscoveredTarget): void {
    if (this.trust !== undefined) { void this.#prove(t, false); return }
    const endpoint = bestEndpoint(t)
    if (endpoint === undefined || this.handlers.has(t.epr)) return
    const declared = { ...declaredFromScopes(t.scopes), ...this.#options.declared?.[t.epr] }
    this.handlers.set(t.epr, this.perf.track(identityFromScopes(t, endpoint), createStorageProxy(endpoint, { caller: FRONTEND_CALLER }), undefined, declared))
    this.#trackedAt.set(t.epr, Date.now())
    this.#event('discovered', t.epr, `from ${t.from}: ${endpoint}`)
  }

  async #prove (t: DiscoveredTarget, replace: boolean): Promise<void> {
    if (this.#verifying.has(t.epr) || (!replace && this.handlers.has(t.epr))) return
    // Each proof costs a TLS handshake: a flood of announcements with fresh EPRs gets a bounded number at once.
    if (this.#verifying.size >= MAX_PROOFS_AT_ONCE) { this.trust!.refuse(t, `${MAX_PROOFS_AT_ONCE} announcements are being proven already`); return }
    this.#verifying.add(t.epr)
    try {
      const proven = await this.trust!.verify(t)
      if (proven === undefined) { this.#event('refused', t.epr, this.trust!.counters.reasons.at(-1) ?? 'could not prove itself'); return }
      if (this.#closed || (!replace && this.handlers.has(t.epr))) { await proven.handler.close(); return }
      if (replace) this.#remove(t.epr)
      this.#track(t, proven)
    } finally {
      this.#verifying.delete(t.epr)
    }
  }

  /** A proven domain: the PMT gets the facts it proved (GetDomainInfo), not what it announced. */
  #track (t: DiscoveredTarget, p: ProvenDomain): void {
    const fromScopes = identityFromScopes(t, p.endpoint)
    const identity: DomainIdentity = {
      ...fromScopes,
      hosting: p.info.hosting,
      kernel: { sysname: p.info.kernel.sysname, release: p.info.kernel.release, ...(typeof p.info.kernel.version === 'string' ? { version: p.info.kernel.version } : {}) },
      volume: p.info.volume,
      runtime: p.info.runtime,
    }
    const declared = { ...declaredFromScopes(t.scopes), ...this.#options.declared?.[t.epr] }
    this.handlers.set(t.epr, this.perf.track(identity, p.handler, this.trust!.probePath, declared))
    this.#trackedAt.set(t.epr, Date.now())
    this.#event('discovered', t.epr, `proven over TLS by ${t.from}: ${p.endpoint}`)
  }

  #event (kind: LifecycleEvent['kind'], epr: string, detail: string): void {
    this.lifecycle.push({ at: Date.now(), name: domainName(this.pmt.row(epr)?.identity.endpoints[0]) ?? epr, epr, kind, pid: 0, detail })
    if (this.lifecycle.length > 500) this.lifecycle.splice(0, this.lifecycle.length - 500)
  }

  /** What this frontend knows and does, in the shape `metaos up` serves (its dashboard and `metaos status` read it). */
  status (): ClusterStatus {
    const rows = this.pmt.rows()
    const names = new Map(rows.map((r) => [r.identity.epr, domainName(r.identity.endpoints[0]) ?? r.identity.epr]))
    const dispatchers = [...this.#dispatchers.values()]
    return {
      title: 'frontend',
      volume: [...new Set(rows.map((r) => r.identity.volume))].join(', '),
      domains: rows.map((r) => ({
        name: names.get(r.identity.epr)!, epr: r.identity.epr, pid: 0, state: 'discovered', endpoints: [...r.identity.endpoints], restarts: 0,
        startedAt: this.#trackedAt.get(r.identity.epr) ?? 0, service: 'storage', volume: r.identity.volume, hosting: r.identity.hosting,
        kernel: { sysname: r.identity.kernel.sysname, release: r.identity.kernel.release }, ...(r.identity.runtime === undefined ? {} : { runtime: r.identity.runtime }),
      })),
      pmt: pmtStatus(rows, names, this.#options.feed, this.supervisor.forecasts()),
      decisions: [...this.supervisor.decisions],
      streams: dispatchers.flatMap((d) => d.affinity.entries().map((s) => ({ path: s.path, epr: s.epr, position: s.position, moves: s.moves, access: s.access, share: s.share, volume: s.volume }))),
      moves: dispatchers.flatMap((d) => d.moves),
      placements: dispatchers.flatMap((d) => d.placed).sort((a, b) => a.at - b.at),
      rules: this.#options.rules?.rules.map((r) => r.name) ?? [],
      lifecycle: [...this.lifecycle],
    }
  }

  /** The dispatchers made so far (one per volume and options), e.g. for the dashboard's metrics. */
  get dispatchers (): readonly Dispatcher[] { return [...this.#dispatchers.values()] }

  readonly #closers: Array<() => Promise<void>> = []
  /** Closes `fn`'s resource with this frontend (a dashboard served for it, say). */
  onClose (fn: () => Promise<void>): void { this.#closers.push(fn) }

  #remove (epr: string): void {
    const h = this.handlers.get(epr)
    if (h === undefined) return
    this.handlers.delete(epr)
    this.perf.untrack(epr)
    void h.close()
  }

  #exchange: PmtExchange | undefined
  /** The measure exchange, once shareMeasures() (or the `exchange` option of sharedFrontend) started it. */
  get exchange (): PmtExchange | undefined { return this.#exchange }

  /**
   * Shares this frontend's measures with the other performance modules it discovers (the paper:
   * "exchanged between all performance modules"): serves the exchange on `listen` (default an
   * ephemeral port on 127.0.0.1), announces itself and exchanges periodically. Returns the exchange.
   * Peers' rows count only for domains this frontend heard announced, and never over its own fresh
   * measures. With `tls` (across hosts: https listeners, a certificate of `metaos pki issue-domain`)
   * the module id is the EPR the certificate names, and peers must prove theirs.
   */
  async shareMeasures (o: JoinOptions & { listen?: readonly string[], tls?: ExchangeTls } = {}): Promise<PmtExchange> {
    if (this.#exchange !== undefined) return this.#exchange
    const certified = o.tls === undefined ? undefined : certificateIdentity(o.tls.cert).uris.find((u) => /^urn:uuid:[0-9a-f-]{36}$/i.test(u))
    if (o.tls !== undefined && certified === undefined) throw new MetaosError('INVALID_ARGUMENT', 'the exchange\'s certificate names no urn:uuid: EPR to be the module id (metaos pki issue-domain makes one)')
    const x = new PmtExchange({
      pmt: this.pmt,
      moduleId: certified ?? `urn:uuid:${randomUUID()}`,
      knows: (epr) => this.handlers.has(epr) || this.registry.targets.has(epr),
      ...(o.tls === undefined ? {} : { tls: o.tls }),
    })
    await x.serve(o.listen ?? ['http://127.0.0.1:0'])
    await x.join(o)
    return (this.#exchange = x)
  }

  /**
   * Waits (up to `timeoutMs`) until a domain (of `volume`, if given) is in the table — with trust,
   * a proven one: an announcement alone is not enough. FILE_NOT_FOUND when none comes.
   */
  async waitForDomain (volume?: string, timeoutMs = 3000): Promise<void> {
    const has = (): boolean => [...this.handlers.keys()].some((epr) => volume === undefined || this.pmt.row(epr)?.identity.volume === volume)
    const deadline = Date.now() + timeoutMs
    while (!has()) {
      if (Date.now() > deadline) throw new MetaosError('FILE_NOT_FOUND', `no ${this.trust === undefined ? '' : 'proven '}storage domain${volume === undefined ? '' : ` of volume ${volume}`} within ${timeoutMs} ms${this.trust === undefined || this.trust.counters.rejected === 0 ? '' : ` (${this.trust.counters.rejected} announcements refused; last: ${this.trust.counters.reasons.at(-1) ?? ''})`}`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  /** The dispatcher over the discovered domains (of one volume, if given); one per volume, supervised. */
  dispatcherFor (volume?: string): Dispatcher {
    const key = volume ?? '\0any'
    let d = this.#dispatchers.get(key)
    if (d === undefined) {
      d = new Dispatcher(this.pmt, this.handlers, { ...this.#options, ...(volume === undefined ? {} : { volume }) })
      this.#dispatchers.set(key, d)
      this.supervisor.watch(d)
    }
    return d
  }

  async close (): Promise<void> {
    this.#closed = true
    clearInterval(this.#watch)
    for (const close of this.#closers.splice(0)) await close()
    this.supervisor.close()
    this.perf.stop()
    await this.#exchange?.close()
    this.#exchange = undefined
    for (const epr of [...this.handlers.keys()]) this.#remove(epr)
  }
}

/** A short name for a domain: its socket file or its host:port. */
function domainName (endpoint: string | undefined): string | undefined {
  if (endpoint === undefined) return undefined
  try {
    const ep = parseEndpoint(endpoint)
    return ep.protocol === 'unix' ? ep.socketPath!.split('/').pop() : `${ep.host}:${ep.port}`
  } catch { return undefined }
}

/** The process-wide frontend's options: a frontend's, whether (and how) it shares its measures, and coordination through etcd. */
export interface SharedFrontendOptions extends IntelligentFrontendOptions, Pick<FrontendSettings, 'exchange' | 'coordination'> {}

/** The process-wide frontend, kept in the process registry with the options it was made with and the feed it owns. */
interface Shared { readonly frontend: Promise<IntelligentFrontend>, readonly options: SharedFrontendOptions | undefined, readonly feed: VulnerabilityFeed | undefined }

/**
 * The process-wide frontend over the process-wide storage registry. The first call makes it, from
 * `options` and the file METAOS_CONFIG names (each option given here wins over the file's key;
 * trust: these options, else the file, else METAOS_TRUST_CA…). Later calls return it; a later call
 * with other options is refused (close it first with closeSharedFrontend).
 */
export async function sharedFrontend (options?: SharedFrontendOptions): Promise<IntelligentFrontend> {
  const shared = lookup<Shared>(KEYS.storageFrontend)
  if (shared !== undefined) {
    if (options !== undefined && !sameOptions(options, shared.options)) throw new MetaosError('INVALID_ARGUMENT', 'the process-wide frontend already runs with other options (set by the first sharedFrontend() or \'discover\' that made it): call closeSharedFrontend() first, or make an IntelligentFrontend of your own')
    return await shared.frontend
  }
  // The file is read (and validated) before anything starts; a feed it names is the frontend's to close.
  const config = configFromEnvironment()
  const o = options ?? {}
  const envTrust = o.trust !== undefined ? undefined : trustFromEnvironment()
  if (config?.trust !== undefined && envTrust !== undefined) {
    config.feed?.close()
    throw new MetaosError('INVALID_CONFIG', `${config.source}: "trust" and METAOS_TRUST_CA both configure trusted discovery: keep one`)
  }
  const trust = o.trust ?? config?.trust ?? envTrust
  const envCoordination = o.coordination !== undefined ? undefined : coordinationFromEnvironment()
  if (config?.coordination !== undefined && envCoordination !== undefined) {
    config.feed?.close()
    throw new MetaosError('INVALID_CONFIG', `${config.source}: "coordination" and METAOS_COORDINATION both configure coordination: keep one`)
  }
  const coordination = o.coordination ?? config?.coordination ?? envCoordination
  const merged: SharedFrontendOptions = {
    ...(config?.rules === undefined ? {} : { rules: config.rules }),
    ...(config?.feed === undefined ? {} : { feed: config.feed }),
    ...(config?.policy === undefined ? {} : { policy: config.policy }),
    ...(config?.sharpness === undefined ? {} : { sharpness: config.sharpness }),
    ...(config?.exchange === undefined ? {} : { exchange: config.exchange }),
    ...(config?.sla === undefined ? {} : { supervisor: config.sla }),
    ...withoutUndefined(o),
    ...(trust === undefined ? {} : { trust }),
  }
  const made = (async () => {
    // With coordination: the stream directory for the dispatchers, and the measure board (frontend-coordination.ts).
    const coord = coordination === undefined ? undefined : await (await import('./frontend-coordination.js')).joinCoordination(coordination)
    let front: IntelligentFrontend
    try {
      front = new IntelligentFrontend(await storageRegistry(undefined, { trusted: trust !== undefined }), { ...merged, ...(coord === undefined ? {} : { directory: coord.directory }) })
      await coord?.attach(front)
    } catch (e) { await coord?.client.close(); throw e }
    if (merged.exchange !== undefined && merged.exchange !== false) await front.shareMeasures(merged.exchange === true ? {} : merged.exchange)
    return front
  })()
  keep<Shared>(KEYS.storageFrontend, { frontend: made, options, feed: config?.feed === merged.feed ? config?.feed : undefined }, closeShared)
  if (config?.feed !== undefined && config.feed !== merged.feed) config.feed.close()
  try { return await made } catch (e) {
    if (lookup<Shared>(KEYS.storageFrontend)?.frontend === made) await closeSharedFrontend()
    throw e
  }
}

async function closeShared (s: Shared): Promise<void> {
  s.feed?.close()
  await (await s.frontend.catch(() => undefined))?.close()
}

export async function closeSharedFrontend (): Promise<void> {
  await release(KEYS.storageFrontend)
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

/** The same options: the same objects (rules, feed…) or equal plain values. */
function sameOptions (a: SharedFrontendOptions, b: SharedFrontendOptions | undefined): boolean {
  const x = withoutUndefined(a) as Record<string, unknown>
  const y = withoutUndefined(b ?? {}) as Record<string, unknown>
  const keys = new Set([...Object.keys(x), ...Object.keys(y)])
  const plain = (v: unknown): boolean => typeof v !== 'object' || v === null || Object.getPrototypeOf(v) === Object.prototype || Array.isArray(v)
  return [...keys].every((k) => x[k] === y[k] || (plain(x[k]) && plain(y[k]) && JSON.stringify(x[k]) === JSON.stringify(y[k])))
}
