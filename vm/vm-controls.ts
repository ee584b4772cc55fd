// A running VM domain as the domain manager drives it (vm/vm-driver.ts boots it): stop (drain
// through the guest agent), kill, pause and resume (QMP stop/cont), setLimits (balloon, cgroup
// quota) and migrate (vm/vm-migration.ts: a new QEMU process, QEMU's own live migration). The QEMU
// process behind the instance changes on a migration: its pid, QMP, control port and cgroup follow
// (`current`), the hypervisor bus and the announcement stay, and `exited` is the exit of the QEMU
// that runs the guest at the time.
import { rm } from 'node:fs/promises'
import type { Logger } from 'pino'
import type { CgroupLimits, DomainLimits, LimitsOutcome } from '../domains/cgroup-limits.js'
import type { DomainExit, DomainHosting, DomainInstance, MigrationReport } from '../domains/driver.js'
import type { TargetService } from '../discovery/target-service.js'
import { MetaosError } from '../soap-runtime/errors.js'
import type { GuestReady } from './guest-config.js'
import type { HypervisorBusHost } from './hypervisor-bus.js'
import type { QmpClient } from './qmp.js'
import { migrateVm, type MigrationTarget, type VmRun } from './vm-migration.js'

export type { VmRun } from './vm-migration.js'

/** The guest needs this much RAM: the initramfs (~150 MiB unpacked) lives in it, then Node. */
export const MIN_GUEST_MIB = 320


export interface Running {
  readonly name: string
  readonly run: VmRun
  readonly bus: HypervisorBusHost | undefined
  readonly target: TargetService | undefined
  readonly limits: DomainLimits
  readonly memoryMiB: number
  /** A storage domain's volume is a 9p share the guest lets go of while it migrates. */
  readonly volume: boolean
  readonly forwards: ReadonlyArray<{ readonly host: string, readonly port: number, readonly guestPort: number }>
  /** Starts the QEMU a migration moves the guest to, waiting for it (`-incoming`). */
  readonly launchTarget: () => Promise<MigrationTarget>
  readonly logger: Logger
}

/** A running VM domain: a DomainInstance, and what its boot took and which kernel it runs. */
export interface VmDomainInstance extends DomainInstance {
  /** From QEMU's start to the domain's ready line, as the host measured it. */
  readonly bootMs: number
  readonly kernel: GuestReady['kernel']
}

export interface VmFacts { readonly epr: string, readonly endpoints: readonly string[], readonly limits?: LimitsOutcome, readonly bootMs: number, readonly kernel: GuestReady['kernel'], readonly hosting: DomainHosting }

export function vmInstance (r: Running, facts: VmFacts): VmDomainInstance {
  const { target, logger, bus } = r
  let cur = r.run
  let guestExit: DomainExit | undefined
  let withdrawn = false
  let migrating = false
  /** Bye once, when the domain goes on purpose; a kill or a crash says nothing (as a killed process would not). */
  const withdraw = async (bye: boolean): Promise<void> => {
    if (withdrawn || target === undefined) return
    withdrawn = true
    if (bye) await target.stop().catch(() => {})
    else await target.udp.close().catch(() => {})
  }
  let ended: (x: DomainExit) => void = () => {}
  const exited = new Promise<DomainExit>((resolve) => { ended = resolve })
  /** The domain's exit is the exit of the QEMU current at the time (one a migration left is not). */
  const watch = (run: VmRun): void => {
    run.control.on('exit', (x) => { if (run === cur) guestExit = x })
    void run.qemu.exit.then(async (x) => {
      if (run !== cur) return
      await withdraw(false)
      run.qmp.close(); run.control.close(); await bus?.close()
      await run.cpu.release()
      await rm(run.state, { recursive: true, force: true })
      logger.info({ domain: r.name, qemu: x, guest: guestExit }, 'VM domain exited')
      logger.debug({ domain: r.name, console: run.qemu.console() }, 'VM domain console (last 8000 characters)')
      // The domain's own exit when the guest said it; QEMU's otherwise (a kill, a crash).
      ended(guestExit ?? x)
    })
  }
  watch(cur)
  const alive = (): boolean => cur.qemu.proc.exitCode === null && cur.qemu.proc.signalCode === null
  let inForce: DomainLimits = { ...(r.limits.cpuPercent === undefined ? {} : { cpuPercent: r.limits.cpuPercent }) }
  return {
    ...facts,
    get pid () { return cur.qemu.proc.pid! },
    exited,
    stop: async (graceMs) => {
      await withdraw(true)
      if (alive()) {
        const { qmp, control, qemu } = cur
        // A paused guest cannot drain: it runs again first.
        await qmp.execute('cont').catch(() => {})
        control.send({ op: 'stop', graceMs })
        const t = setTimeout(() => { void qmp.execute('quit').catch(() => {}); setTimeout(() => { if (alive()) qemu.proc.kill('SIGKILL') }, 5000).unref() }, graceMs + 5000)
        await exited.finally(() => { clearTimeout(t) })
      }
      return await exited
    },
    kill: async () => { if (alive()) cur.qemu.proc.kill('SIGKILL'); return await exited },
    pause: async () => { if (alive()) await cur.qmp.execute('stop') },
    resume: async () => { if (alive()) await cur.qmp.execute('cont') },
    setLimits: async (l) => {
      if (!alive()) return { applied: false, mechanism: 'none', reason: 'the domain has exited' }
      const outcome = await resize(l, inForce, cur.qmp, cur.cpu, r.memoryMiB)
      if (outcome.applied) inForce = { ...l }
      return outcome
    },
    migrate: async (): Promise<MigrationReport> => {
      if (!alive()) throw new MetaosError('INVALID_ARGUMENT', `VM domain ${r.name} has exited`)
      if (migrating) throw new MetaosError('INVALID_ARGUMENT', `VM domain ${r.name} is migrating already`)
      migrating = true
      try {
        return await migrateVm({
          name: r.name, from: cur, bus, volume: r.volume, forwards: r.forwards, launchTarget: r.launchTarget, logger,
          adopt: async (run) => {
            cur = run
            watch(run)
            if (inForce.cpuPercent !== undefined) await run.cpu.set({ cpuPercent: inForce.cpuPercent })
          },
        })
      } finally { migrating = false }
    },
  }
}

/** Memory by the balloon (up to the RAM the guest booted with), CPU by the QEMU process's cgroup quota. */
async function resize (l: DomainLimits, inForce: DomainLimits, qmp: QmpClient, cpu: CgroupLimits, memoryMiB: number): Promise<LimitsOutcome> {
  const notes: string[] = []
  let applied = true
  let mechanism: LimitsOutcome['mechanism'] = 'none'
  if (l.memoryBytes !== undefined || inForce.memoryBytes !== undefined) {
    // The balloon takes back what the guest may use, up to the RAM it booted with.
    const target = Math.min(l.memoryBytes ?? memoryMiB * 2 ** 20, memoryMiB * 2 ** 20)
    if (target < MIN_GUEST_MIB * 2 ** 20) { applied = false; notes.push(`memory: at least ${MIN_GUEST_MIB} MiB`) } else {
      try { await qmp.execute('balloon', { value: target }); notes.push(`memory: balloon at ${target} bytes of ${memoryMiB} MiB`) } catch (e) { applied = false; notes.push(`memory: ${(e as Error).message}`) }
    }
  }
  if (l.cpuPercent !== undefined || inForce.cpuPercent !== undefined) {
    const c = await cpu.set(l.cpuPercent === undefined ? {} : { cpuPercent: l.cpuPercent })
    mechanism = c.mechanism
    if (!c.applied) { applied = false; notes.push(`cpu: ${c.reason ?? ''}`) }
  }
  return { applied, mechanism, ...(notes.length === 0 ? {} : { reason: notes.join('; ') }) }
}
