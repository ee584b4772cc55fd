// Confining one process with cgroup limits (memory, CPU) under cgroup v1 or v2: creating its
// groups, writing the limits (at start, and again in place on a resize), moving the pid in, and
// removing the groups once it has exited. It starts, signals and watches no process; what the host
// forbids becomes an outcome, never a throw.
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'

export interface DomainLimits {
  readonly memoryBytes?: number
  /** Share of one CPU: 50 = half a CPU, 200 = two CPUs. */
  readonly cpuPercent?: number
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

const CGROUP = '/sys/fs/cgroup'
const CONTROLLERS = ['memory', 'cpu'] as const
type Controller = typeof CONTROLLERS[number]
type Mechanism = 'cgroup-v1' | 'cgroup-v2'
/** Writes one controller's limit into a group; `undefined` lifts it. */
type Writer = (dir: string, value: number | undefined) => Promise<void>

const valueOf = (l: DomainLimits, c: Controller): number | undefined => c === 'memory' ? l.memoryBytes : l.cpuPercent
const cpuQuota = (periodUs: number, percent: number): number => Math.max(1000, Math.round(periodUs * percent / 100))

const WRITERS: Record<Mechanism, Record<Controller, Writer>> = {
  'cgroup-v1': {
    memory: async (dir, bytes) => { await put(join(dir, 'memory.limit_in_bytes'), String(bytes ?? -1)) },
    cpu: async (dir, percent) => {
      if (percent === undefined) { await put(join(dir, 'cpu.cfs_quota_us'), '-1'); return }
      const period = Number((await readFile(join(dir, 'cpu.cfs_period_us'), 'utf8')).trim()) || 100_000
      await put(join(dir, 'cpu.cfs_quota_us'), String(cpuQuota(period, percent)))
    },
  },
  'cgroup-v2': {
    memory: async (dir, bytes) => { await put(join(dir, 'memory.max'), bytes === undefined ? 'max' : String(bytes)) },
    cpu: async (dir, percent) => { await put(join(dir, 'cpu.max'), `${percent === undefined ? 'max' : cpuQuota(100_000, percent)} 100000`) },
  },
}

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

interface Host { readonly mechanism: Mechanism, readonly own: ReadonlyMap<string, string> }

/** Which cgroup version this host has, or why there are none to use. */
async function detectHost (): Promise<Host | string> {
  if (process.platform !== 'linux') return `cgroups are Linux-only (this is ${process.platform})`
  const v2 = await exists(join(CGROUP, 'cgroup.controllers'))
  if (!v2 && !(await exists(join(CGROUP, 'memory'))) && !(await exists(join(CGROUP, 'cpu')))) return `no cgroup filesystem under ${CGROUP}`
  return { mechanism: v2 ? 'cgroup-v2' : 'cgroup-v1', own: await ownGroups() }
}

/**
 * The cgroup limits of one process for its whole life. `set` puts limits in force — at start, and
 * again on each resize, in place: it rewrites the groups the process is in (lifting a limit left
 * out), creates the ones it lacks and moves the pid in. `release` removes the groups once the
 * process has exited. Calls run one after the other; none throws.
 */
export class CgroupLimits {
  readonly #pid: number
  readonly #group: string
  readonly #logger: Logger
  #host: Promise<Host | string> | undefined
  /** The group holding the process, per controller (one directory for both in v2). */
  #groups: { memory?: string, cpu?: string } = {}
  /** What those groups hold. */
  #inForce: DomainLimits = {}
  #released = false
  #queue: Promise<unknown> = Promise.resolve()

  /** `group`: the name of the groups to create, one per hierarchy. */
  constructor (pid: number, group: string, logger: Logger) {
    this.#pid = pid
    this.#group = group
    this.#logger = logger
  }

  /**
   * Makes `limits` the process's limits, all or nothing: when one cannot be written, those already
   * rewritten get their old values back, new groups go, and the outcome says why.
   */
  async set (limits: DomainLimits): Promise<LimitsOutcome> {
    return await this.#serial(async () => await this.#set(limits))
  }

  /** Removes the groups; call it once the process has exited. Later `set`s apply nothing. */
  async release (): Promise<void> {
    await this.#serial(async () => {
      this.#released = true
      await removeGroups([...new Set(Object.values(this.#groups))], this.#logger)
      this.#groups = {}
    })
  }

  async #set (limits: DomainLimits): Promise<LimitsOutcome> {
    const none = (mechanism: LimitsMechanism, reason: string): LimitsOutcome => ({ applied: false, mechanism, reason })
    if (this.#released) return none('none', 'the process has exited')
    const wanted = CONTROLLERS.filter((c) => valueOf(limits, c) !== undefined)
    const held = CONTROLLERS.filter((c) => this.#groups[c] !== undefined)
    if (wanted.length === 0 && held.length === 0) return none('none', 'no limit asked')
    this.#host ??= detectHost()
    const host = await this.#host
    if (typeof host === 'string') return none('none', host)
    const { mechanism } = host
    const write = WRITERS[mechanism]
    const groups = { ...this.#groups }
    const undo: Array<() => Promise<void>> = []
    try {
      // The groups the process is in get the new values (a limit left out is lifted)…
      for (const c of held) {
        const dir = groups[c]!
        const before = valueOf(this.#inForce, c)
        await write[c](dir, valueOf(limits, c))
        undo.push(async () => { await write[c](dir, before) })
      }
      // …and the controllers it has no group for yet get one.
      const fresh = wanted.filter((c) => groups[c] === undefined)
      if (mechanism === 'cgroup-v2' && held.length > 0 && fresh.length > 0) {
        // One directory for all controllers: the process stays in it; the parent lets it use more.
        const dir = groups[held[0]!]!
        await enableControllers(dirname(dir), fresh)
        for (const c of fresh) {
          await write[c](dir, valueOf(limits, c))
          undo.push(async () => { await write[c](dir, undefined) })
          groups[c] = dir
        }
      } else if (fresh.length > 0) {
        // v1: one hierarchy per controller; v2: one hierarchy for all.
        const hierarchies = mechanism === 'cgroup-v2'
          ? [{ mount: CGROUP, own: host.own.get('') ?? '/', controllers: fresh }]
          : fresh.map((c) => ({ mount: join(CGROUP, c), own: host.own.get(c) ?? '/', controllers: [c] }))
        for (const h of hierarchies) {
          const dir = await this.#create(mechanism, h.mount, h.own, h.controllers, limits)
          undo.push(async () => { await removeGroups([dir], this.#logger) })
          await put(join(dir, 'cgroup.procs'), String(this.#pid))
          // Back where it came from (best effort), so the group can go.
          undo.push(async () => { await writeFile(join(h.mount, h.own, 'cgroup.procs'), String(this.#pid)).catch(() => {}) })
          for (const c of h.controllers) groups[c] = dir
        }
      }
    } catch (e) {
      for (const u of undo.reverse()) await u().catch(() => {})
      const kept = held.length > 0 ? { groups: { ...this.#groups } } : {}
      return { applied: false, mechanism, reason: `${why(e)}${held.length > 0 ? '; the limits it had stay in force' : ''}`, ...kept }
    }
    this.#groups = groups
    this.#inForce = { ...(limits.memoryBytes === undefined ? {} : { memoryBytes: limits.memoryBytes }), ...(limits.cpuPercent === undefined ? {} : { cpuPercent: limits.cpuPercent }) }
    return { applied: true, mechanism, groups: { ...groups } }
  }

  /**
   * Creates the group inside this process's own group when the host lets us (nesting the domain's
   * limits in ours), else at the top, and writes the limits; the pid is not in it yet.
   */
  async #create (mechanism: Mechanism, mount: string, own: string, controllers: readonly Controller[], limits: DomainLimits): Promise<string> {
    const failures: string[] = []
    for (const parent of new Set([join(mount, own).replace(/(.)\/+$/, '$1'), mount])) {
      const dir = join(parent, this.#group)
      try {
        if (mechanism === 'cgroup-v2') await enableControllers(parent, controllers)
        await mkdir(dir)
      } catch (e) { failures.push(why(e)); continue }
      try {
        for (const c of controllers) await WRITERS[mechanism][c](dir, valueOf(limits, c))
        return dir
      } catch (e) { failures.push(why(e)); await rmdir(dir).catch(() => {}) }
    }
    throw new Error(`${controllers.join('+')}: ${failures.join('; ')}`)
  }

  async #serial<T> (op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op)
    this.#queue = run.catch(() => {})
    return await run
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
