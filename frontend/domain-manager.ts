// Instantiates and drives storage service domains on this host, by name: start, stop, kill,
// pause, resume, restart, clone. The manager owns names, states and events; a DomainDriver owns how
// a domain runs. ProcessDriver runs `metaos storage` as a child process and confines it with cgroup
// limits where the host allows; a container driver can join through the same interface. The
// manager never speaks SOAP to the domains it runs.
import { EventEmitter } from 'node:events'
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { spawnDomain } from './domain-process.js'
import { parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'

export interface DomainLimits {
  readonly memoryBytes?: number
  /** Share of one CPU: 50 = half a CPU, 200 = two CPUs. */
  readonly cpuPercent?: number
}

export interface DomainSpec {
  /** Part of the domain's stable EPR (with the host and the root's real path). */
  readonly name: string
  readonly root: string
  readonly volume?: string
  /** `http://HOST:PORT` (port 0 = any free port) and/or `unix:/path.sock`; none = the CLI's default. */
  readonly listen: readonly string[]
  /** More `metaos storage` arguments, e.g. `['--fault-file', f, '--announce']`. */
  readonly extraArgs?: readonly string[]
  readonly limits?: DomainLimits
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
}

export type LimitsMechanism = 'cgroup-v1' | 'cgroup-v2' | 'none'

export interface LimitsOutcome {
  readonly applied: boolean
  readonly mechanism: LimitsMechanism
  /** Why the limits are not in force. */
  readonly reason?: string
  /** The control group holding the domain, per controller (one directory for both in v2). */
  readonly groups?: { readonly memory?: string, readonly cpu?: string }
}

export interface DomainExit { readonly code: number | null, readonly signal: NodeJS.Signals | null }

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
  /** Present when the spec asks for limits. */
  readonly limits?: LimitsOutcome
  /** How the last run ended (stopped or exited states). */
  readonly exit?: DomainExit
}

/** One running domain, as a driver hands it to the manager. */
export interface DomainInstance {
  readonly pid: number
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly limits?: LimitsOutcome
  /** Resolves once the domain has exited, whatever the cause, and its resources are released. */
  readonly exited: Promise<DomainExit>
  /** Asks the domain to drain and say Bye; forces it after `graceMs`. */
  stop: (graceMs: number) => Promise<DomainExit>
  kill: () => Promise<DomainExit>
  /** Resolves once the domain is frozen. */
  pause: () => Promise<void>
  resume: () => Promise<void>
}

/** How domains are run: a local process, a container… */
export interface DomainDriver {
  start: (spec: DomainSpec) => Promise<DomainInstance>
}

export interface ProcessDriverOptions {
  readonly logger?: Logger
  /** How long a domain may take to print its ready line (default 20 s). */
  readonly readyTimeoutMs?: number
}

/** Runs each domain as `metaos storage …`, a child process of this one. */
export class ProcessDriver implements DomainDriver {
  readonly #logger: Logger
  readonly #readyTimeoutMs: number | undefined

  constructor (options: ProcessDriverOptions = {}) {
    this.#logger = options.logger ?? silentLogger
    this.#readyTimeoutMs = options.readyTimeoutMs
  }

  async start (spec: DomainSpec): Promise<DomainInstance> {
    const args = ['storage', '--root', spec.root, '--name', spec.name,
      ...(spec.volume === undefined ? [] : ['--volume', spec.volume]),
      ...spec.listen.flatMap((l) => ['--listen', l]), ...(spec.extraArgs ?? [])]
    const p = await spawnDomain(args, { ...(this.#readyTimeoutMs === undefined ? {} : { timeoutMs: this.#readyTimeoutMs }), env: { ...process.env, ...spec.env } })
    const { child } = p
    const pid = child.pid!
    const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
    const exit = new Promise<DomainExit>((resolve) => {
      if (gone()) resolve({ code: child.exitCode, signal: child.signalCode })
      else child.once('exit', (code, signal) => { resolve({ code, signal }) })
    })
    // The pid is known only once the domain is ready, so what it allocated before stays charged
    // to this process's group; the limits hold for everything after.
    const limits = spec.limits === undefined ? undefined : await applyLimits(pid, `metaos-${spec.name}-${pid}`, spec.limits, this.#logger)
    if (limits !== undefined && !limits.outcome.applied) this.#logger.warn({ domain: spec.name, mechanism: limits.outcome.mechanism, reason: limits.outcome.reason }, 'resource limits not applied')
    const exited = exit.then(async (e) => { await limits?.release(); return e })
    const signal = (s: NodeJS.Signals): void => { if (!gone()) child.kill(s) }
    return {
      pid,
      epr: p.ready.epr,
      endpoints: p.ready.endpoints,
      ...(limits === undefined ? {} : { limits: limits.outcome }),
      exited,
      stop: async (graceMs) => {
        signal('SIGTERM')
        signal('SIGCONT') // a paused domain handles the SIGTERM once it runs again
        const force = setTimeout(() => { signal('SIGKILL') }, graceMs)
        try { return await exited } finally { clearTimeout(force) }
      },
      kill: async () => { signal('SIGKILL'); return await exited },
      pause: async () => { signal('SIGSTOP'); await untilState(pid, (s) => s === 'T') },
      resume: async () => { signal('SIGCONT'); await untilState(pid, (s) => s !== 'T') },
    }
  }
}

/** Waits (≤ 2 s) until /proc says the process state fits; returns at once where there is no /proc. */
async function untilState (pid: number, ok: (state: string) => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    let stat: string
    try { stat = await readFile(`/proc/${pid}/stat`, 'utf8') } catch { return }
    if (ok(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3))) return
    await sleep(5)
  }
}

// ---- cgroup limits ----

const CGROUP = '/sys/fs/cgroup'
type Controller = 'memory' | 'cpu'
type Writer = (dir: string, l: DomainLimits) => Promise<void>

const cpuQuota = (periodUs: number, percent: number): number => Math.max(1000, Math.round(periodUs * percent / 100))

const WRITERS: Record<'cgroup-v1' | 'cgroup-v2', Record<Controller, Writer>> = {
  'cgroup-v1': {
    memory: async (dir, l) => { await put(join(dir, 'memory.limit_in_bytes'), String(l.memoryBytes)) },
    cpu: async (dir, l) => {
      const period = Number((await readFile(join(dir, 'cpu.cfs_period_us'), 'utf8')).trim()) || 100_000
      await put(join(dir, 'cpu.cfs_quota_us'), String(cpuQuota(period, l.cpuPercent!)))
    },
  },
  'cgroup-v2': {
    memory: async (dir, l) => { await put(join(dir, 'memory.max'), String(l.memoryBytes)) },
    cpu: async (dir, l) => { await put(join(dir, 'cpu.max'), `${cpuQuota(100_000, l.cpuPercent!)} 100000`) },
  },
}

interface AppliedLimits { readonly outcome: LimitsOutcome, release: () => Promise<void> }

const exists = async (p: string): Promise<boolean> => await access(p).then(() => true, () => false)
const why = (e: unknown): string => {
  const err = e as NodeJS.ErrnoException
  return err?.code === undefined ? (e instanceof Error ? e.message : String(e)) : `${err.code}${err.path === undefined ? '' : ` on ${err.path}`}`
}
/** writeFile whose error names the file (cgroupfs write errors otherwise carry none). */
async function put (path: string, value: string): Promise<void> {
  await writeFile(path, value).catch((e: unknown) => { throw new Error(`writing "${value}" to ${path}: ${why(e)}`) })
}

/** This process's group in each hierarchy (key: controller, '' for v2), from /proc/self/cgroup. */
async function ownGroups (): Promise<Map<string, string>> {
  const own = new Map<string, string>()
  const text = await readFile('/proc/self/cgroup', 'utf8').catch(() => '')
  for (const line of text.split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line)
    if (m === null) continue
    if (m[1] === '') own.set('', m[2]!)
    else for (const c of m[1]!.split(',')) own.set(c, m[2]!)
  }
  return own
}

/**
 * Creates `group` (inside this process's own group when the host lets us, nesting the domain's
 * limits in ours, else at the top), writes the limits and moves `pid` into it. Never throws:
 * what could not be done is the outcome's reason.
 */
async function applyLimits (pid: number, group: string, limits: DomainLimits, logger: Logger): Promise<AppliedLimits> {
  const none = (mechanism: LimitsMechanism, reason: string): AppliedLimits => ({ outcome: { applied: false, mechanism, reason }, release: async () => {} })
  const wanted = (['memory', 'cpu'] as const).filter((c) => (c === 'memory' ? limits.memoryBytes : limits.cpuPercent) !== undefined)
  if (wanted.length === 0) return none('none', 'no limit asked')
  if (process.platform !== 'linux') return none('none', `cgroups are Linux-only (this is ${process.platform})`)
  const own = await ownGroups()
  const v2 = await exists(join(CGROUP, 'cgroup.controllers'))
  if (!v2 && !(await exists(join(CGROUP, 'memory'))) && !(await exists(join(CGROUP, 'cpu')))) return none('none', `no cgroup filesystem under ${CGROUP}`)
  const mechanism = v2 ? 'cgroup-v2' : 'cgroup-v1'
  // v1: one hierarchy per controller; v2: one hierarchy for all.
  const hierarchies = v2
    ? [{ mount: CGROUP, own: own.get('') ?? '/', controllers: wanted }]
    : wanted.map((c) => ({ mount: join(CGROUP, c), own: own.get(c) ?? '/', controllers: [c] }))
  const created: string[] = []
  const movedFrom: string[] = []
  const groups: { memory?: string, cpu?: string } = {}
  try {
    for (const h of hierarchies) {
      const failures: string[] = []
      let placed: string | undefined
      for (const parent of new Set([join(h.mount, h.own).replace(/(.)\/+$/, '$1'), h.mount])) {
        const dir = join(parent, group)
        try {
          if (v2) await enableControllers(parent, h.controllers)
          await mkdir(dir)
        } catch (e) { failures.push(why(e)); continue }
        try {
          for (const c of h.controllers) await WRITERS[mechanism][c](dir, limits)
          placed = dir
          break
        } catch (e) { failures.push(why(e)); await rmdir(dir).catch(() => {}) }
      }
      if (placed === undefined) throw new Error(`${h.controllers.join('+')}: ${failures.join('; ')}`)
      created.push(placed)
      for (const c of h.controllers) groups[c] = placed
    }
    for (const [i, dir] of created.entries()) {
      await put(join(dir, 'cgroup.procs'), String(pid))
      movedFrom.push(join(hierarchies[i]!.mount, hierarchies[i]!.own))
    }
    return { outcome: { applied: true, mechanism, groups }, release: async () => { await removeGroups(created, logger) } }
  } catch (e) {
    // Back where it came from (best effort), so the groups can go.
    for (const from of movedFrom) await writeFile(join(from, 'cgroup.procs'), String(pid)).catch(() => {})
    await removeGroups(created, logger)
    return none(mechanism, why(e))
  }
}

/** v2 only lets a group's children use the controllers its cgroup.subtree_control enables. */
async function enableControllers (parent: string, controllers: readonly Controller[]): Promise<void> {
  const offered = (await readFile(join(parent, 'cgroup.controllers'), 'utf8')).split(/\s+/)
  const absent = controllers.filter((c) => !offered.includes(c))
  if (absent.length > 0) throw new Error(`${parent} offers no ${absent.join(', ')} controller`)
  const enabled = (await readFile(join(parent, 'cgroup.subtree_control'), 'utf8')).split(/\s+/)
  const missing = controllers.filter((c) => !enabled.includes(c))
  // Left enabled afterwards: other groups may rely on it, and it limits nothing by itself.
  if (missing.length > 0) await put(join(parent, 'cgroup.subtree_control'), missing.map((c) => `+${c}`).join(' '))
}

/** rmdir can fail with EBUSY for a moment after the last process left. */
async function removeGroups (dirs: readonly string[], logger: Logger): Promise<void> {
  for (const dir of dirs) {
    for (let i = 0; ; i++) {
      try { await rmdir(dir); break } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') break
        if (i >= 40) { logger.warn({ group: dir, err: why(e) }, 'cannot remove control group'); break }
        await sleep(25)
      }
    }
  }
}

// ---- the manager ----

export interface DomainManagerEvents {
  started: [domain: ManagedDomain]
  /** A domain stopped because it was asked to (stop, kill, restart, close). */
  stopped: [domain: ManagedDomain]
  /** A domain exited without being asked (crash, a kill from outside). */
  exited: [name: string, code: number | null, signal: NodeJS.Signals | null]
}

export interface DomainManagerOptions {
  /** Default: a ProcessDriver with this logger. */
  readonly driver?: DomainDriver
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

  constructor (options: DomainManagerOptions = {}) {
    super()
    this.#logger = options.logger ?? silentLogger
    this.#driver = options.driver ?? new ProcessDriver({ logger: this.#logger })
    this.#graceMs = options.graceMs ?? 10_000
  }

  async start (spec: DomainSpec): Promise<ManagedDomain> {
    this.#validate(spec)
    // A copy: the caller's later changes do not reach restarts and clones.
    const own: DomainSpec = { ...spec, listen: [...spec.listen], ...(spec.extraArgs === undefined ? {} : { extraArgs: [...spec.extraArgs] }), ...(spec.limits === undefined ? {} : { limits: { ...spec.limits } }), ...(spec.env === undefined ? {} : { env: { ...spec.env } }) }
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

  /** Stops the domain (kills it when paused) and starts it with the same spec: same EPR. */
  async restart (name: string, graceMs = this.#graceMs): Promise<ManagedDomain> {
    return await this.#serial(name, async () => {
      const e = this.#entry(name)
      if (this.#closed) throw new MetaosError('INVALID_ARGUMENT', 'the domain manager is closed')
      // A paused domain is killed: draining would serve calls whose callers have given up.
      await this.#halt(e, e.state === 'paused', graceMs)
      return await this.#launch(e.spec)
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

  async #launch (spec: DomainSpec): Promise<ManagedDomain> {
    if (this.#closed) throw new MetaosError('INVALID_ARGUMENT', 'the domain manager is closed')
    const prev = this.#entries.get(spec.name)
    if (prev !== undefined && (prev.state === 'running' || prev.state === 'paused')) throw new MetaosError('INVALID_ARGUMENT', `domain "${spec.name}" is already ${prev.state}`)
    const instance = await this.#driver.start(spec)
    const entry: Entry = { spec, instance, state: 'running', restarts: prev === undefined ? 0 : prev.restarts + 1, startedAt: new Date(), asked: false }
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
    if (spec.root === '') throw new MetaosError('INVALID_ARGUMENT', 'the root must not be empty')
    // The manager's own flags: another value in extraArgs would silently win (and change the EPR).
    const clash = spec.extraArgs?.find((a) => OWN_FLAGS.includes(a.split('=')[0]!))
    if (clash !== undefined) throw new MetaosError('INVALID_ARGUMENT', `extraArgs must not set ${clash}; it is a field of the spec`)
    const { memoryBytes, cpuPercent } = spec.limits ?? {}
    if (memoryBytes !== undefined && !(Number.isSafeInteger(memoryBytes) && memoryBytes > 0)) throw new MetaosError('INVALID_ARGUMENT', 'limits.memoryBytes must be a positive integer')
    if (cpuPercent !== undefined && !(Number.isFinite(cpuPercent) && cpuPercent > 0)) throw new MetaosError('INVALID_ARGUMENT', 'limits.cpuPercent must be a positive number')
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
      if (ep.protocol !== 'unix') return `${ep.protocol}://${ep.host!.includes(':') ? `[${ep.host}]` : ep.host}:0`
      const dir = dirname(ep.socketPath!)
      let path = join(dir, `${newName}.sock`)
      while (taken.has(path)) path = join(dir, `${newName}-${++n}.sock`)
      taken.add(path)
      return `unix:${path}`
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
      ...(e.instance.limits === undefined ? {} : { limits: e.instance.limits }),
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

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
