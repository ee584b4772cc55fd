// Instantiates and drives storage service domains on this host, by name: start, stop, kill (and
// killRun, the fence of a stream takeover: only the run that served the stream),
// pause, resume, restart, clone, and resize (new memory and CPU limits, in place). The manager owns
// names, states and events; a DomainDriver owns how a domain runs (ProcessDriver, in
// process-driver.ts: a `metaos storage` child process confined by the cgroup limits of
// cgroup-limits.ts; a container driver can join through the same interface).
// The manager never speaks SOAP to the domains it runs.
import { EventEmitter } from 'node:events'
import { dirname, join } from 'node:path'
import type { Logger } from 'pino'
import type { DomainLimits, LimitsOutcome } from './cgroup-limits.js'
import type { DomainDriver, DomainExit, DomainHosting, DomainInstance, DomainSpec, MigrationReport } from './driver.js'
import { parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'

export type { DomainLimits, LimitsMechanism, LimitsOutcome } from './cgroup-limits.js'
export type { DomainDriver, DomainExit, DomainHosting, DomainInstance, DomainSpec, MigrationReport } from './driver.js'

export type ManagedDomainState = 'running' | 'paused' | 'stopped' | 'exited'

/** A snapshot: later changes of the domain do not show in it. */
export interface ManagedDomain {
  readonly name: string
  readonly epr: string
  readonly endpoints: readonly string[]
  /** Host pid of the domain's process (of the last run when it is not running). */
  readonly pid: number
  readonly state: ManagedDomainState
  readonly spec: DomainSpec
  /** How many times the name was started again after its first start. */
  readonly restarts: number
  readonly startedAt: Date
  /** Present when the spec asks for limits: what became of them at start or at the last resize. */
  readonly limits?: LimitsOutcome
  /** How the last run ended (stopped or exited states). */
  readonly exit?: DomainExit
  /** Where the domain runs, when its driver says (a VM driver: vm, and the guest's kernel). */
  readonly hosting?: DomainHosting
}

export interface DomainManagerEvents {
  started: [domain: ManagedDomain]
  /** A domain stopped because it was asked to (stop, kill, restart, close). */
  stopped: [domain: ManagedDomain]
  /** A domain exited without being asked (crash, a kill from outside). */
  exited: [name: string, code: number | null, signal: NodeJS.Signals | null]
}

export interface DomainManagerOptions {
  /** How its domains run: a ProcessDriver, a ContainerDriver, a VmDriver (passed in: the manager knows no driver). */
  readonly driver: DomainDriver
  readonly logger?: Logger
  /** Drain time before a stop turns into SIGKILL (default 10 s). */
  readonly graceMs?: number
}

interface Entry {
  spec: DomainSpec
  instance: DomainInstance
  state: ManagedDomainState
  restarts: number
  startedAt: Date
  /** When this run was launched (ms since the epoch, before the driver started it): what `killRun` compares with. */
  launchedAt: number
  /** The instance's at start, then the last resize's. */
  limits?: LimitsOutcome
  /** Set before the manager ends the run, so its exit is not reported as unasked. */
  asked: boolean
  exit?: DomainExit
}

const OWN_FLAGS = ['--root', '--name', '--volume', '--listen']
const NAME = /^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,99}$/

export class DomainManager extends EventEmitter<DomainManagerEvents> {
  readonly #driver: DomainDriver
  readonly #logger: Logger
  readonly #graceMs: number
  readonly #entries = new Map<string, Entry>()
  /** Operations on one name run one after the other. */
  readonly #queues = new Map<string, Promise<void>>()
  #closed = false

  constructor (options: DomainManagerOptions) {
    super()
    this.#logger = options.logger ?? silentLogger
    this.#driver = options.driver
    this.#graceMs = options.graceMs ?? 10_000
  }

  async start (spec: DomainSpec): Promise<ManagedDomain> {
    this.#validate(spec)
    // A copy: the caller's later changes do not reach restarts and clones.
    const own: DomainSpec = { ...spec, listen: [...spec.listen], ...(spec.extraArgs === undefined ? {} : { extraArgs: [...spec.extraArgs] }), ...(spec.limits === undefined ? {} : { limits: copyLimits(spec.limits) }), ...(spec.env === undefined ? {} : { env: { ...spec.env } }) }
    return await this.#serial(spec.name, async () => await this.#launch(own))
  }

  /** SIGTERM: the domain drains and says Bye; SIGKILL after `graceMs`. Stopping a stopped domain does nothing. */
  async stop (name: string, graceMs = this.#graceMs): Promise<ManagedDomain> {
    return await this.#serial(name, async () => { await this.#halt(this.#entry(name), false, graceMs); return this.#snapshot(name) })
  }

  /** SIGKILL: no drain, no Bye (tests, fault injection). */
  async kill (name: string): Promise<ManagedDomain> {
    return await this.#serial(name, async () => { await this.#halt(this.#entry(name), true, 0); return this.#snapshot(name) })
  }

  /**
   * Fencing (issue 20): SIGKILL the run of the domain that was current at `at` (ms since the epoch),
   * and resolve once it has exited and been reaped — a stopped process dies too, and no write(2) of
   * it can land afterwards. A run launched after `at` is left alone: the run that was current then
   * has ended already. Resolves true when it killed now, false when that run had already ended.
   */
  async killRun (name: string, at: number): Promise<boolean> {
    return await this.#serial(name, async () => {
      const e = this.#entry(name)
      // A later run is launched only once the earlier one has exited; a stopped or exited one has too.
      if (e.launchedAt > at || (e.state !== 'running' && e.state !== 'paused')) return false
      await this.#halt(e, true, 0)
      return true
    })
  }

  /** SIGSTOP: the domain keeps its sockets but answers nothing until resumed. */
  async pause (name: string): Promise<ManagedDomain> {
    return await this.#serial(name, async () => {
      const e = this.#live(name)
      if (e.state === 'running') { await e.instance.pause(); if (e.state === 'running') e.state = 'paused' }
      return this.#snapshot(name)
    })
  }

  async resume (name: string): Promise<ManagedDomain> {
    return await this.#serial(name, async () => {
      const e = this.#live(name)
      if (e.state === 'paused') { await e.instance.resume(); if (e.state === 'paused') e.state = 'running' }
      return this.#snapshot(name)
    })
  }

  /**
   * New memory and CPU limits for a running or paused domain, in place: no restart, same pid and
   * sockets. `limits` replaces the ones it had (a limit left out is lifted) and stays in the spec,
   * so restarts and clones get it. Where the host cannot apply them, the domain runs on and the
   * snapshot's `limits` says why, as at start.
   */
  async resize (name: string, limits: DomainLimits): Promise<ManagedDomain> {
    validateLimits(limits)
    const own = copyLimits(limits)
    return await this.#serial(name, async () => {
      const e = this.#live(name)
      const outcome: LimitsOutcome = e.instance.setLimits === undefined
        ? { applied: false, mechanism: 'none', reason: 'the driver cannot change the limits of a running domain; a restart applies them' }
        : await e.instance.setLimits(own)
      e.spec = { ...e.spec, limits: own }
      e.limits = outcome
      if (outcome.applied) this.#logger.info({ domain: name, pid: e.instance.pid, limits: own, mechanism: outcome.mechanism }, 'domain resized')
      else this.#logger.warn({ domain: name, pid: e.instance.pid, limits: own, mechanism: outcome.mechanism, reason: outcome.reason }, 'resource limits not applied')
      return this.#snapshot(name)
    })
  }

  /**
   * Moves a running domain, whole, to a new process of its driver's (a VM domain: QEMU's live
   * migration): same name, EPR and endpoints, a new pid. NOT_SUPPORTED when the driver cannot (a
   * process or container domain: clone it and move its streams instead).
   */
  async migrate (name: string): Promise<{ domain: ManagedDomain, report: MigrationReport }> {
    return await this.#serial(name, async () => {
      const e = this.#live(name)
      if (e.state !== 'running') throw new MetaosError('INVALID_ARGUMENT', `domain "${name}" is paused: resume it first`)
      if (e.instance.migrate === undefined) throw new MetaosError('NOT_SUPPORTED', `domain "${name}": its driver cannot move a running domain whole`)
      const report = await e.instance.migrate()
      this.#logger.info({ domain: name, ...report }, 'domain migrated')
      return { domain: this.#snapshot(name), report }
    })
  }

  /**
   * Stops the domain (kills it when paused) and starts it with the same spec: same EPR, and the
   * same addresses — an HTTP listener asked on port 0 comes back on the port it had, so clients
   * and discovery keep reaching it.
   */
  async restart (name: string, graceMs = this.#graceMs): Promise<ManagedDomain> {
    return await this.#serial(name, async () => {
      const e = this.#entry(name)
      if (this.#closed) throw new MetaosError('INVALID_ARGUMENT', 'the domain manager is closed')
      // A paused domain is killed: draining would serve calls whose callers have given up.
      await this.#halt(e, e.state === 'paused', graceMs)
      const bound = e.instance.endpoints
      const listen = e.spec.listen.map((l, i) => {
        const u = /^http:\/\/([^/]+):0\/?$/.exec(l)
        const ep = bound.length === e.spec.listen.length ? bound[i] : undefined
        return u !== null && ep?.startsWith('http://') === true ? `http://${new URL(ep).host}` : l
      })
      try {
        return await this.#launch(e.spec, listen)
      } catch (err) {
        // Another process took the port meanwhile: come back on a new one rather than not at all.
        if (!(err instanceof MetaosError && err.code === 'ADDRESS_IN_USE') || listen.every((l, i) => l === e.spec.listen[i])) throw err
        this.#logger.warn({ domain: name, listen }, 'its port was taken meanwhile: restarting on a new one')
        return await this.#launch(e.spec)
      }
    })
  }

  /**
   * A new domain on the same root and volume under `newName` (so a new EPR): HTTP listeners on
   * port 0, Unix sockets at `<same dir>/<newName>.sock`, unless `overrides` says otherwise.
   */
  async clone (name: string, newName: string, overrides: Partial<Pick<DomainSpec, 'listen' | 'extraArgs' | 'limits' | 'env'>> = {}): Promise<ManagedDomain> {
    const src = this.#entry(name).spec
    const spec: DomainSpec = { ...src, name: newName, listen: overrides.listen ?? this.#cloneListen(src.listen, newName), ...withoutUndefined(overrides) }
    return await this.start(spec)
  }

  async get (name: string): Promise<ManagedDomain> {
    return this.#snapshot(name)
  }

  async list (): Promise<ManagedDomain[]> {
    return [...this.#entries.keys()].map((n) => this.#snapshot(n))
  }

  /** Stops every domain; the manager starts no more. */
  async close (graceMs = this.#graceMs): Promise<void> {
    this.#closed = true
    const names = new Set([...this.#entries.keys(), ...this.#queues.keys()])
    await Promise.all([...names].map(async (n) => {
      await this.#serial(n, async () => { const e = this.#entries.get(n); if (e !== undefined) await this.#halt(e, false, graceMs) })
    }))
  }

  /** Starts `spec` (on `listen`, when a restart pins the ports it had); the spec kept is the one asked for. */
  async #launch (spec: DomainSpec, listen: readonly string[] = spec.listen): Promise<ManagedDomain> {
    if (this.#closed) throw new MetaosError('INVALID_ARGUMENT', 'the domain manager is closed')
    const prev = this.#entries.get(spec.name)
    if (prev !== undefined && (prev.state === 'running' || prev.state === 'paused')) throw new MetaosError('INVALID_ARGUMENT', `domain "${spec.name}" is already ${prev.state}`)
    const launchedAt = Date.now()
    const instance = await this.#driver.start(listen === spec.listen ? spec : { ...spec, listen })
    const entry: Entry = { spec, instance, state: 'running', restarts: prev === undefined ? 0 : prev.restarts + 1, startedAt: new Date(), launchedAt, asked: false, ...(instance.limits === undefined ? {} : { limits: instance.limits }) }
    this.#entries.set(spec.name, entry)
    void instance.exited.then((exit) => {
      entry.exit = exit
      if (entry.asked) return
      entry.state = 'exited'
      this.#logger.warn({ domain: spec.name, pid: instance.pid, ...exit }, 'domain exited unasked')
      this.emit('exited', spec.name, exit.code, exit.signal)
    })
    this.#logger.info({ domain: spec.name, pid: instance.pid, epr: instance.epr, endpoints: instance.endpoints }, 'domain started')
    const snap = this.#snapshot(spec.name)
    this.emit('started', snap)
    return snap
  }

  async #halt (e: Entry, kill: boolean, graceMs: number): Promise<void> {
    if (e.state !== 'running' && e.state !== 'paused') return
    e.asked = true
    e.exit = kill ? await e.instance.kill() : await e.instance.stop(graceMs)
    e.state = 'stopped'
    this.#logger.info({ domain: e.spec.name, pid: e.instance.pid, ...e.exit }, 'domain stopped')
    this.emit('stopped', this.#snapshot(e.spec.name))
  }

  #validate (spec: DomainSpec): void {
    if (!NAME.test(spec.name)) throw new MetaosError('INVALID_ARGUMENT', `domain name "${spec.name}" must be 1-100 characters of A-Z a-z 0-9 . _ ~ - (not starting with .)`)
    if (spec.root === '' && (spec.service ?? 'storage') === 'storage') throw new MetaosError('INVALID_ARGUMENT', 'the root must not be empty')
    // The manager's own flags: another value in extraArgs would silently win (and change the EPR).
    const clash = spec.extraArgs?.find((a) => OWN_FLAGS.includes(a.split('=')[0]!))
    if (clash !== undefined) throw new MetaosError('INVALID_ARGUMENT', `extraArgs must not set ${clash}; it is a field of the spec`)
    if (spec.limits !== undefined) validateLimits(spec.limits)
    const taken = this.#socketPaths(spec.name, true)
    for (const l of spec.listen) {
      const path = parseEndpoint(l).socketPath
      if (path !== undefined && taken.has(path)) throw new MetaosError('INVALID_ARGUMENT', `another managed domain listens on ${path}`)
    }
  }

  /** Unix socket paths of the other domains (only the running ones, or all). */
  #socketPaths (except: string, runningOnly: boolean): Set<string> {
    return new Set([...this.#entries.values()]
      .filter((e) => e.spec.name !== except && (!runningOnly || e.state === 'running' || e.state === 'paused'))
      .flatMap((e) => e.spec.listen.map((l) => parseEndpoint(l).socketPath).filter((p): p is string => p !== undefined)))
  }

  #cloneListen (listen: readonly string[], newName: string): string[] {
    const taken = this.#socketPaths(newName, false)
    let n = 0
    return listen.map((l) => {
      const ep = parseEndpoint(l)
      if (ep.protocol !== 'unix' && ep.protocol !== 'net.uds') return `${ep.protocol}://${ep.host!.includes(':') ? `[${ep.host}]` : ep.host}:0`
      const dir = dirname(ep.socketPath!)
      let path = join(dir, `${newName}.sock`)
      while (taken.has(path)) path = join(dir, `${newName}-${++n}.sock`)
      taken.add(path)
      return `${ep.protocol === 'net.uds' ? 'net.uds' : 'unix'}:${path}`
    })
  }

  #entry (name: string): Entry {
    const e = this.#entries.get(name)
    if (e === undefined) throw new MetaosError('INVALID_ARGUMENT', `no domain named "${name}"`)
    return e
  }

  #live (name: string): Entry {
    const e = this.#entry(name)
    if (e.state !== 'running' && e.state !== 'paused') throw new MetaosError('INVALID_ARGUMENT', `domain "${name}" is ${e.state}`)
    return e
  }

  #snapshot (name: string): ManagedDomain {
    const e = this.#entry(name)
    return {
      name,
      epr: e.instance.epr,
      endpoints: [...e.instance.endpoints],
      pid: e.instance.pid,
      state: e.state,
      spec: e.spec,
      restarts: e.restarts,
      startedAt: new Date(e.startedAt),
      ...(e.limits === undefined ? {} : { limits: e.limits }),
      ...(e.instance.hosting === undefined ? {} : { hosting: e.instance.hosting }),
      ...(e.exit === undefined || e.state === 'running' || e.state === 'paused' ? {} : { exit: e.exit }),
    }
  }

  async #serial<T> (name: string, op: () => Promise<T>): Promise<T> {
    const run = (this.#queues.get(name) ?? Promise.resolve()).then(op)
    const tail = run.then(() => {}, () => {})
    this.#queues.set(name, tail)
    void tail.then(() => { if (this.#queues.get(name) === tail) this.#queues.delete(name) })
    return await run
  }
}

function validateLimits (limits: DomainLimits): void {
  if (typeof limits !== 'object' || limits === null) throw new MetaosError('INVALID_ARGUMENT', 'limits must be an object')
  const { memoryBytes, cpuPercent } = limits
  if (memoryBytes !== undefined && !(Number.isSafeInteger(memoryBytes) && memoryBytes > 0)) throw new MetaosError('INVALID_ARGUMENT', 'limits.memoryBytes must be a positive integer')
  if (cpuPercent !== undefined && !(Number.isFinite(cpuPercent) && cpuPercent > 0)) throw new MetaosError('INVALID_ARGUMENT', 'limits.cpuPercent must be a positive number')
}

/** Only the fields that are set: the caller's later changes do not reach the spec. */
function copyLimits (l: DomainLimits): DomainLimits {
  return { ...(l.memoryBytes === undefined ? {} : { memoryBytes: l.memoryBytes }), ...(l.cpuPercent === undefined ? {} : { cpuPercent: l.cpuPercent }) }
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
