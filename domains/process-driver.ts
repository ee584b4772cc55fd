// The DomainDriver that runs each domain as `metaos storage …`, a child process of this one, moved
// into its cgroup limits right after spawn (and again on a resize), and signals it to stop, kill,
// pause and resume. It keeps no names or states (the DomainManager does) and never speaks SOAP to
// the domain.
import type { ChildProcess } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { CgroupLimits, type LimitsOutcome } from './cgroup-limits.js'
import type { DomainDriver, DomainExit, DomainInstance, DomainSpec } from './driver.js'
import { spawnDomain, type DomainProcess } from './domain-process.js'
import { silentLogger } from '../soap-runtime/logger.js'

export interface ProcessDriverOptions {
  readonly logger?: Logger
  /** How long a domain may take to print its ready line (default 20 s). */
  readonly readyTimeoutMs?: number
}

/** Runs each domain as `metaos storage …` (or `metaos network …`), a child process of this one. */
export class ProcessDriver implements DomainDriver {
  readonly #logger: Logger
  readonly #readyTimeoutMs: number | undefined

  constructor (options: ProcessDriverOptions = {}) {
    this.#logger = options.logger ?? silentLogger
    this.#readyTimeoutMs = options.readyTimeoutMs
  }

  async start (spec: DomainSpec): Promise<DomainInstance> {
    const args = spec.service === 'network'
      ? ['network', '--name', spec.name, ...spec.listen.flatMap((l) => ['--listen', l]), ...(spec.extraArgs ?? [])]
      : ['storage', '--root', spec.root, '--name', spec.name,
          ...(spec.volume === undefined ? [] : ['--volume', spec.volume]),
          ...spec.listen.flatMap((l) => ['--listen', l]), ...(spec.extraArgs ?? [])]
    let spawned: ChildProcess | undefined
    let confinement: CgroupLimits | undefined
    let limiting: Promise<LimitsOutcome> | undefined
    const onSpawn = (child: ChildProcess): void => {
      spawned = child
      if (child.pid === undefined) return
      // Made for every domain, limited or not, so a resize can confine one started without limits.
      confinement = new CgroupLimits(child.pid, `metaos-${spec.name}-${child.pid}`, this.#logger)
      // Moved while Node is still starting, so the limits hold for almost all the domain does; the
      // little it allocated before the move stays charged to this process's group.
      if (spec.limits !== undefined) limiting = confinement.set(spec.limits)
    }
    let p: DomainProcess
    try {
      p = await spawnDomain(args, { ...(this.#readyTimeoutMs === undefined ? {} : { timeoutMs: this.#readyTimeoutMs }), env: { ...process.env, ...spec.env }, onSpawn })
    } catch (e) {
      // It never got ready: its groups go once it has exited (release waits for a set in flight).
      const child = spawned
      const pending = confinement
      if (child !== undefined && pending !== undefined) void exitOf(child).then(async () => { await pending.release() })
      throw e
    }
    const { child } = p
    const pid = child.pid!
    const limits = confinement!
    const exit = exitOf(child)
    const outcome = await limiting
    if (outcome !== undefined && !outcome.applied) this.#logger.warn({ domain: spec.name, mechanism: outcome.mechanism, reason: outcome.reason }, 'resource limits not applied')
    const exited = exit.then(async (e) => { await limits.release(); return e })
    const gone = (): boolean => child.exitCode !== null || child.signalCode !== null
    const signal = (s: NodeJS.Signals): void => { if (!gone()) child.kill(s) }
    return {
      pid,
      epr: p.ready.epr,
      endpoints: p.ready.endpoints,
      ...(outcome === undefined ? {} : { limits: outcome }),
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
      // Works on a paused domain too: cgroups confine stopped processes the same.
      setLimits: async (l) => gone() ? { applied: false, mechanism: 'none', reason: 'the domain has exited' } : await limits.set(l),
    }
  }
}

/** How the child ended, whether it has already or not yet. */
async function exitOf (child: ChildProcess): Promise<DomainExit> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode }
  return await new Promise((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
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
