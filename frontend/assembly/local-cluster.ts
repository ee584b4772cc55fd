// A supervised cluster on this machine: storage domain processes serving one volume (a shared
// directory), started and restarted by the domain manager, each with a fault file, measured by a
// performance module, placed on by a dispatcher with failover, and watched by a supervisor whose
// policy restarts a domain that died. What `metaos up`, the fault-injection tests and the
// supervision benchmark share.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { release, tmpdir, type } from 'node:os'
import { hostDistribution, hostKernel } from '../placement/feeds/host-facts.js'
import type { VulnerabilityFeed } from '../placement/vulnerability-feed.js'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { DomainManager, type DomainDriver, type ManagedDomain } from '../../domains/domain-manager.js'
import { FRONTEND_CALLER, createStorageProxy } from '../handlers/storage-proxy.js'
import { PerformanceMappingTable, type DomainIdentity } from '../placement/pmt.js'
import { PerformanceModule } from '../placement/performance-module.js'
import { Dispatcher, type DispatcherOptions, type MoveEvent } from '../placement/dispatcher.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
import type { FaultFile } from '../../service-domain/fault-injection.js'
import { silentLogger } from '../../soap-runtime/logger.js'
import { pmtStatus, type ClusterStatus, type LifecycleEvent } from './status-snapshot.js'
import { coordinatedStreams } from './stream-directory.js'
import type { Coordination } from '../../coordination/api.js'
import { ProcessDriver } from '../../domains/process-driver.js'

export interface LocalClusterOptions {
  /**
   * The domains: how each is reached (default three on HTTP). 'bus': the co-hosted bus, two
   * sockets in the cluster's `bus/` directory — `net.uds:<name>.sock` ([MC-NMF] sessions) and
   * `unix:<name>.http.sock` (HTTP over a Unix socket, for curl and SoapUI) — called on the one
   * `bus` picks; 'net.uds' or 'unix': that socket alone; 'http': HTTP on 127.0.0.1.
   */
  readonly domains?: ReadonlyArray<'http' | 'bus' | 'net.uds' | 'unix'>
  /** Which of a 'bus' domain's sockets the cluster calls it on (default 'net.uds'); its ready line lists that one first. */
  readonly bus?: 'net.uds' | 'unix'
  /** Their names (default d0, d1, …): part of each EPR. */
  readonly names?: readonly string[]
  readonly volume?: string
  /** Where the cluster lives (default a new temporary directory, removed on close). */
  readonly dir?: string
  readonly probeIntervalMs?: number
  readonly dispatcher?: Omit<DispatcherOptions, 'volume'>
  readonly supervisor?: Omit<SupervisorOptions, 'pmt' | 'dispatchers' | 'onIsolate'>
  /**
   * The supervisor's isolation policy: 'restart' (default) restarts a domain whose process died or
   * hung (same EPR, same address); 'clone' starts a clone of a healthy domain of the volume in its
   * place (a new EPR), so the volume keeps its capacity; 'none' leaves it isolated.
   */
  readonly isolation?: 'restart' | 'clone' | 'none'
  /**
   * Fencing (default true): before a stream leaves a domain that stopped answering, the domain
   * manager kills that domain (SIGKILL, `docker kill`, QEMU killed) and the takeover waits for its
   * exit, so no call it was given can land afterwards (docs/supervision.md). False: the old
   * behaviour, where a hung domain that wakes up may still apply its call.
   */
  readonly fencing?: boolean
  /**
   * With coordination: the frontend's client (the dispatcher's checkpoints — owner, epoch — in the
   * stream directory) and the arguments that give each domain process its lease (`--coordination URL …`).
   */
  readonly coordination?: { readonly client: Coordination, readonly domainArgs: readonly string[] }
  /** How domains are hosted (default: local processes); e.g. a ContainerDriver for container domains. */
  readonly driver?: DomainDriver
  /** Log level of the domain processes (default silent). */
  readonly logLevel?: string
  readonly logger?: Logger
}

export type { ClusterStatus, LifecycleEvent } from './status-snapshot.js'

/** A domain's listeners for its kind; `base` is its socket path without `.sock`. The first is what the cluster calls. */
function listeners (kind: 'http' | 'bus' | 'net.uds' | 'unix', base: string, bus: 'net.uds' | 'unix'): string[] {
  if (kind === 'http') return ['http://127.0.0.1:0']
  if (kind !== 'bus') return [`${kind}:${base}.sock`]
  const both = [`net.uds:${base}.sock`, `unix:${base}.http.sock`]
  return bus === 'net.uds' ? both : both.reverse()
}

export class LocalCluster {
  readonly dir: string
  /** The volume's directory. */
  readonly root: string
  /** Where the domains' bus sockets are. */
  get busDir (): string { return join(this.dir, 'bus') }
  readonly volume: string
  readonly manager: DomainManager
  /** The domains as started, in order (`get(i)` for the current state). */
  readonly names: string[] = []
  readonly pmt = new PerformanceMappingTable()
  readonly perf: PerformanceModule
  readonly handlers = new Map<string, StorageHandler>()
  readonly dispatcher: Dispatcher
  readonly supervisor: Supervisor
  /**
   * Domains an operator stopped or paused (`metaos domain`): the isolation policy leaves them
   * as they are, rather than restarting what was stopped on purpose.
   */
  readonly held = new Set<string>()
  /** What the domain manager did, latest last (bounded). */
  readonly lifecycle: LifecycleEvent[] = []
  readonly #rules: readonly string[]
  #offFeed: (() => void) | undefined
  readonly #feed: VulnerabilityFeed | undefined
  /** When each move happened (MoveEvent has no time of its own). */
  readonly #movedAt = new WeakMap<MoveEvent, number>()
  readonly #eprs = new Map<string, string>()
  readonly #endpoints = new Map<string, string>()
  readonly #hosting: 'process' | 'container'
  readonly #ownDir: boolean
  readonly #coordination: LocalClusterOptions['coordination']

  private constructor (o: LocalClusterOptions) {
    this.#ownDir = o.dir === undefined
    this.dir = o.dir ?? mkdtempSync(join(tmpdir(), 'metaos-cluster-'))
    this.root = join(this.dir, 'volume')
    // Domains in containers run as another user (10001) and must write the volume too.
    mkdirSync(this.root, { recursive: true, mode: 0o777 })
    chmodSync(this.root, 0o777)
    // The bus sockets' own directory (a container bind-mounts it whole): its user must create them there too.
    mkdirSync(this.busDir, { recursive: true, mode: 0o700 })
    if (o.driver !== undefined) chmodSync(this.busDir, 0o1777)
    this.volume = o.volume ?? 'shared'
    const logger = o.logger ?? silentLogger
    this.manager = new DomainManager({ logger, driver: o.driver ?? new ProcessDriver({ logger }) })
    this.#hosting = o.driver === undefined ? 'process' : 'container'
    this.#coordination = o.coordination
    this.perf = new PerformanceModule({ pmt: this.pmt, ...(o.probeIntervalMs === undefined ? {} : { probeIntervalMs: o.probeIntervalMs }) })
    this.dispatcher = new Dispatcher(this.pmt, this.handlers, {
      ...(o.fencing === false ? {} : { fence: async (epr, since) => await this.#fence(epr, since) }),
      ...(o.coordination === undefined ? {} : { directory: coordinatedStreams(o.coordination.client) }),
      ...o.dispatcher,
      volume: this.volume,
    })
    this.#rules = o.dispatcher?.rules?.rules.map((r) => r.name) ?? []
    this.dispatcher.on('moved', (m) => { this.#movedAt.set(m, Date.now()) })
    this.manager.on('started', (d) => { this.#record({ at: Date.now(), name: d.name, epr: d.epr, kind: d.restarts > 0 ? 'restarted' : 'started', pid: d.pid, ...(d.restarts > 0 ? { detail: `restart ${d.restarts}` } : {}) }) })
    this.manager.on('stopped', (d) => { this.#record({ at: Date.now(), name: d.name, epr: d.epr, kind: 'stopped', pid: d.pid, ...(d.exit === undefined ? {} : { detail: d.exit.signal ?? `code ${String(d.exit.code)}` }) }) })
    const policy = o.isolation ?? 'restart'
    this.supervisor = new Supervisor({
      logger,
      ...o.supervisor,
      pmt: this.pmt,
      perf: this.perf,
      dispatchers: [this.dispatcher],
      onIsolate: async (epr, reason) => {
        const name = this.#eprs.get(epr)
        if (policy === 'none' || name === undefined || this.held.has(name)) return
        const d = await this.manager.get(name)
        if (policy === 'restart') {
          // Dead (or killed by a fence) or hung: a restart helps. Slow or erring: it may recover, and is readmitted if it does.
          if (d.state === 'exited' || d.state === 'stopped' || /TIMED_OUT/.test(reason)) await this.manager.restart(name)
          return
        }
        await this.#cloneHealthy(name)
      },
    })
    // A feed that changes is acted on at once: a domain it now excludes is isolated and its streams moved off.
    const feed = this.#feed = o.supervisor?.feed ?? o.dispatcher?.feed
    if (feed !== undefined) this.#offFeed = feed.onChange(() => { this.supervisor.tick() })
    // A domain restarted elsewhere (its port was taken meanwhile) is reached where it is now.
    this.manager.on('started', (d) => {
      const old = this.handlers.get(d.epr)
      if (old === undefined || this.#endpoints.get(d.epr) === d.endpoints[0]) return
      this.#track(d)
      void old.close()
    })
    // A domain that dies with no call in flight is noticed at once, not at the next probe.
    this.manager.on('exited', (name, code, signal) => {
      const d = [...this.#eprs].find(([, n]) => n === name)
      this.#record({ at: Date.now(), name, epr: d?.[0] ?? '', kind: 'exited', pid: 0, detail: signal ?? `code ${String(code)}` })
      if (d === undefined) return
      // Already isolated (say for a rising latency, which does not restart it): the supervisor does not act on an
      // isolated domain again, so the restart policy is applied here, or the domain would stay dead.
      if (this.pmt.row(d[0])?.state === 'isolated' && policy === 'restart' && !this.held.has(name)) {
        void this.manager.restart(name).catch((e: unknown) => { logger.error({ domain: name, err: e }, 'restart after exit failed') })
        return
      }
      this.supervisor.report(d[0], `process exited (${signal ?? `code ${String(code)}`})`)
    })
  }

  static async start (o: LocalClusterOptions = {}): Promise<LocalCluster> {
    const c = new LocalCluster(o)
    try {
      const kinds = o.domains ?? ['http', 'http', 'http']
      const env = { METAOS_LOG_LEVEL: o.logLevel ?? 'silent' }
      const started = await Promise.all(kinds.map(async (kind, i) => await c.manager.start({
        name: o.names?.[i] ?? `d${i}`,
        root: c.root,
        volume: c.volume,
        listen: listeners(kind, join(c.busDir, o.names?.[i] ?? `d${i}`), o.bus ?? 'net.uds'),
        extraArgs: ['--fault-file', c.faultFile(i), ...(o.coordination?.domainArgs ?? [])],
        env,
      })))
      for (const d of started) {
        c.names.push(d.name)
        c.#eprs.set(d.epr, d.name)
        c.#track(d)
      }
      // Past each domain's cold first connection before anything is placed.
      for (let i = 0; i < 3; i++) for (const epr of c.handlers.keys()) await c.perf.probe(epr)
      c.perf.start()
      c.supervisor.start()
      return c
    } catch (e) {
      await c.close()
      throw e
    }
  }

  /** Everything an operator wants to see (`metaos status`): domains, the PMT, decisions, streams and moves. */
  async status (): Promise<ClusterStatus> {
    const order = (n: string): number => { const i = this.names.indexOf(n); return i < 0 ? Number.MAX_SAFE_INTEGER : i }
    const domains = (await this.manager.list()).sort((x, y) => order(x.name) - order(y.name))
    const rows = this.pmt.rows()
    const names = new Map(domains.map((d) => [d.epr, d.name]))
    return {
      volume: this.volume,
      domains: domains.map((d) => {
        // Where the domain runs: what its driver reported, else what the PMT knows of it (storage domains), else this host.
        const id = rows.find((r) => r.identity.epr === d.epr)?.identity
        const hosting = d.hosting ?? (id === undefined ? { kind: this.#hosting, kernel: { sysname: type(), release: release() } } : { kind: id.hosting, kernel: id.kernel })
        return {
          name: d.name, epr: d.epr, pid: d.pid, state: d.state, endpoints: [...d.endpoints], restarts: d.restarts, startedAt: d.startedAt.getTime(),
          service: d.spec.service ?? 'storage', hosting: hosting.kind, kernel: { sysname: hosting.kernel.sysname, release: hosting.kernel.release },
          ...(id?.runtime === undefined ? {} : { runtime: id.runtime }),
          ...(d.spec.volume === undefined ? id === undefined ? {} : { volume: id.volume } : { volume: d.spec.volume }),
          ...(d.limits === undefined ? {} : { limits: d.limits }),
        }
      }),
      pmt: pmtStatus(rows, names, this.#feed, this.supervisor.forecasts()),
      decisions: [...this.supervisor.decisions],
      streams: this.dispatcher.affinity.entries().map((s) => ({ path: s.path, epr: s.epr, position: s.position, moves: s.moves, epoch: s.epoch, access: s.access, share: s.share, volume: s.volume })),
      moves: this.dispatcher.moves.map((m) => { const at = this.#movedAt.get(m); return at === undefined ? m : { ...m, at } }),
      placements: [...this.dispatcher.placed],
      rules: this.#rules,
      lifecycle: [...this.lifecycle],
      ...(this.dispatcher.tasks === undefined ? {} : { tasks: this.dispatcher.tasks.entries() }),
      ...(this.#coordination === undefined ? {} : { directory: await this.#coordination.client.streams.list().catch(() => []) }),
    }
  }

  #record (e: LifecycleEvent): void {
    this.lifecycle.push(e)
    if (this.lifecycle.length > 500) this.lifecycle.splice(0, this.lifecycle.length - 500)
  }

  /** Starts a clone of a healthy domain of the volume to stand in for `instead` (the 'clone' policy). */
  async #cloneHealthy (instead: string): Promise<ManagedDomain | undefined> {
    const healthy = this.pmt.rows().find((r) => r.state === 'healthy' && this.#eprs.has(r.identity.epr))
    if (healthy === undefined) return undefined
    return await this.clone(this.#eprs.get(healthy.identity.epr)!, `${instead}-clone-${this.names.length}`)
  }

  /** A new domain of the volume like `name` (its spec, a new EPR and addresses, a fault file of its own), measured and placed on like the others. */
  async clone (name: string, newName: string): Promise<ManagedDomain> {
    const i = this.names.length
    const c = await this.manager.clone(name, newName, { extraArgs: ['--fault-file', this.faultFile(i), ...(this.#coordination?.domainArgs ?? [])] })
    this.names.push(c.name)
    this.#eprs.set(c.epr, c.name)
    this.#track(c)
    return c
  }

  #track (d: ManagedDomain): void {
    this.#endpoints.set(d.epr, d.endpoints[0]!)
    this.handlers.set(d.epr, this.perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: d.hosting?.kind ?? this.#hosting, ...this.#hostFacts(d), runtime: `node/${process.versions.node}`, volume: this.volume }, createStorageProxy(d.endpoints[0]!, { timeoutMs: 30_000, caller: FRONTEND_CALLER })))
  }

  /** The kernel a domain runs (its driver's word, else this host's) and, on this host, the distribution: what the vulnerability feed matches. */
  #hostFacts (d: ManagedDomain): Pick<DomainIdentity, 'kernel' | 'distribution'> {
    if (d.hosting?.kernel !== undefined && d.hosting.kind !== 'process') return { kernel: d.hosting.kernel }
    const distribution = hostDistribution()
    return { kernel: hostKernel(), ...(distribution === undefined ? {} : { distribution }) }
  }

  /** The dispatcher's fence: kills the run of the domain that served the stream, and waits for its exit. */
  async #fence (epr: string, since: number): Promise<'killed' | 'unreachable'> {
    const name = this.#eprs.get(epr)
    if (name === undefined) return 'unreachable'
    await this.manager.killRun(name, since)
    return 'killed'
  }

  faultFile (i: number): string { return join(this.dir, `fault-${i}.json`) }

  /** Sets a domain's injected fault (a real delay, closed listeners); `{}` clears it. */
  inject (i: number, f: FaultFile): void { writeFileSync(this.faultFile(i), JSON.stringify(f)) }

  /** Index of the domain with this EPR. */
  index (epr: string): number { return this.names.indexOf(this.#eprs.get(epr) ?? '') }

  async get (i: number): Promise<ManagedDomain> { return await this.manager.get(this.names[i]!) }

  async pid (epr: string): Promise<number> { return (await this.get(this.index(epr))).pid }

  /** Stops domain i (SIGTERM: it drains and says Bye) and starts it again: the same EPR, the same address. */
  async restart (i: number): Promise<ManagedDomain> { return await this.manager.restart(this.names[i]!) }

  async close (): Promise<void> {
    this.#offFeed?.()
    this.supervisor.close()
    this.perf.stop()
    await this.manager.close(2000)
    for (const h of this.handlers.values()) await h.close()
    if (this.#ownDir) rmSync(this.dir, { recursive: true, force: true })
  }
}
