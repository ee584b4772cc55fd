// Confining one process with cgroup limits (memory, CPU) under cgroup v1 or v2: creating its
// groups, writing the limits, moving the pid in, and removing the groups once it has exited. It
// starts, signals and watches no process; what the host forbids becomes an outcome, never a throw.
import { access, mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
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

export interface AppliedLimits {
  readonly outcome: LimitsOutcome
  /** Removes the groups; call it once the process has exited. */
  release: () => Promise<void>
}

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
export async function applyLimits (pid: number, group: string, limits: DomainLimits, logger: Logger): Promise<AppliedLimits> {
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
