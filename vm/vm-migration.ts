// Whole-domain live migration of a VM domain: the guest moves to a new QEMU process with QEMU's
// own migration (the RAM and device state over a Unix socket), while streams through its hypervisor
// bus go on. The steps, and why each:
//  1. The target QEMU starts with the same machine and `-incoming unix:…`, no host-forwarded
//     ports yet (the source still holds them). QMP, the control port and the bus's new link connect
//     to it at once, so when the guest arrives its virtio-serial ports find a host connected and the
//     guest never sees a disconnection (which would reset its bus channels).
//  2. The guest lets go of the volume: QEMU refuses to migrate a guest with a 9p export mounted
//     ("Migration is disabled when VirtFS export path … is mounted in the guest"), so the storage
//     domain holds its calls and closes its descriptors and the agent unmounts it.
//  3. The bus holds what its clients send and waits for a barrier (hypervisor-bus.ts relink): every
//     byte the old QEMU got has been taken by the guest, the rest waits for the new QEMU.
//  4. `migrate` on the source, `query-migrate` until completed (the target then runs the guest).
//  5. The new QEMU becomes the domain's; the old one quits; the bus reads the old link to its end,
//     then the new one; the forwarded ports move (`hostfwd_add`); the guest mounts the volume again
//     and the held calls go on — answered by the same process in the same guest.
// A failure before step 5 leaves the domain on the source as it was (volume and bus taken back).
import { rm } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { CgroupLimits } from '../domains/cgroup-limits.js'
import type { MigrationReport } from '../domains/driver.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { Control } from './control-port.js'
import type { HypervisorBusHost } from './hypervisor-bus.js'
import { QmpClient } from './qmp.js'
import type { Qemu } from './qemu-process.js'

/** One QEMU process running the guest, and what the host holds of it (vm-controls.ts follows the current one). */
export interface VmRun { readonly qemu: Qemu, readonly qmp: QmpClient, readonly control: Control, readonly cpu: CgroupLimits, readonly state: string }

/** The QEMU a migration moves to, started and waiting (`-incoming uri`). */
export interface MigrationTarget {
  readonly qemu: Qemu
  readonly paths: { readonly qmp: string, readonly bus: string, readonly control: string }
  readonly state: string
  readonly uri: string
}

export interface MigrateVmOptions {
  readonly name: string
  readonly from: VmRun
  readonly bus: HypervisorBusHost | undefined
  readonly volume: boolean
  readonly forwards: ReadonlyArray<{ readonly host: string, readonly port: number, readonly guestPort: number }>
  readonly launchTarget: () => Promise<MigrationTarget>
  /** Makes `run` the domain's, before the old QEMU quits. */
  readonly adopt: (run: VmRun) => Promise<void>
  readonly logger: Logger
  /** How long the migration may take (default 300 s: TCG). */
  readonly timeoutMs?: number
}

interface QueryMigrate { status?: string, 'error-desc'?: string, downtime?: number, 'total-time'?: number, ram?: { transferred?: number } }

const FINAL = new Set(['completed', 'failed', 'cancelled'])

export async function migrateVm (o: MigrateVmOptions): Promise<MigrationReport> {
  const { from, logger } = o
  const t0 = performance.now()
  const fromPid = from.qemu.proc.pid!
  const target = await o.launchTarget()
  const gone = target.qemu.exit.then((x) => { throw target.qemu.failed(`the target QEMU exited with ${x.signal ?? String(x.code)} during the migration`) })
  gone.catch(() => {})
  let qmp: QmpClient | undefined
  let control: Control | undefined
  let relink: Awaited<ReturnType<HypervisorBusHost['relink']>> | undefined
  let released = false
  let heldAt = 0
  let info: QueryMigrate
  try {
    qmp = await Promise.race([QmpClient.connect(target.paths.qmp), gone])
    control = await Promise.race([Control.connect(target.paths.control), gone])
    heldAt = performance.now()
    if (o.volume) { await from.control.ask({ op: 'release-volume' }, 'volume-released'); released = true }
    if (o.bus !== undefined) relink = await o.bus.relink(target.paths.bus)
    // QEMU's default bandwidth cap (32 MiB/s) is for links shared with others; this one is a socket.
    await from.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 * 2 ** 30, 'downtime-limit': 300 })
    await from.qmp.execute('migrate', { uri: target.uri })
    info = await Promise.race([finished(from.qmp, o.timeoutMs ?? 300_000), gone])
    if (info.status !== 'completed') throw new MetaosError('TRANSPORT_ERROR', `VM domain ${o.name}: QEMU's migration ${info.status ?? '?'}: ${info['error-desc'] ?? 'no reason given'}`)
  } catch (e) {
    // The domain stays where it was, as it was.
    relink?.abort()
    if (released) await from.control.ask({ op: 'take-volume' }, 'volume-taken', 60_000).catch((err: Error) => { logger.error({ domain: o.name, err }, 'the guest did not take its volume back') })
    target.qemu.proc.kill('SIGKILL')
    await target.qemu.exit
    qmp?.close(); control?.close()
    await rm(target.state, { recursive: true, force: true })
    logger.warn({ domain: o.name, err: e }, 'VM domain: live migration failed; the domain runs on where it was')
    throw e
  }
  const toPid = target.qemu.proc.pid!
  const run: VmRun = { qemu: target.qemu, qmp, control, cpu: new CgroupLimits(toPid, `metaos-vm-${o.name}-${toPid}`, logger), state: target.state }
  await o.adopt(run)
  const moved = relink?.commit()
  await from.qmp.execute('quit').catch(() => {})
  await Promise.race([from.qemu.exit, sleep(5000).then(async () => { from.qemu.proc.kill('SIGKILL'); await from.qemu.exit })])
  await moved
  from.qmp.close(); from.control.close()
  await from.cpu.release()
  await rm(from.state, { recursive: true, force: true })
  const notes: string[] = []
  for (const f of o.forwards) {
    const said = String(await qmp.execute('human-monitor-command', { 'command-line': `hostfwd_add net tcp:${f.host}:${f.port}-:${f.guestPort}` }).catch((e: Error) => e.message))
    if (said.trim() !== '') notes.push(`forwarded port ${f.host}:${f.port}: ${said.trim()}`)
  }
  if (o.forwards.length > 0) notes.push('connections through the forwarded ports were reset (the bus\'s went on)')
  if (released) await control.ask({ op: 'take-volume' }, 'volume-taken', 60_000)
  const done = performance.now()
  const report: MigrationReport = {
    fromPid,
    toPid,
    mechanism: `qemu live migration over ${target.uri.split(':')[0]!} socket`,
    downtimeMs: info.downtime ?? -1,
    migrationMs: info['total-time'] ?? -1,
    totalMs: Math.round(done - t0),
    stallMs: Math.round(done - heldAt),
    transferredBytes: info.ram?.transferred ?? 0,
    notes,
  }
  logger.info({ domain: o.name, ...report }, 'VM domain migrated')
  return report
}

/** query-migrate every 50 ms until it is completed, failed or cancelled; cancelled after `timeoutMs`. */
async function finished (qmp: QmpClient, timeoutMs: number): Promise<QueryMigrate> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const q = await qmp.execute('query-migrate') as QueryMigrate
    if (q.status !== undefined && FINAL.has(q.status)) return q
    if (Date.now() > deadline) {
      await qmp.execute('migrate_cancel').catch(() => {})
      throw new MetaosError('TIMED_OUT', `the migration did not complete within ${timeoutMs} ms (last status ${q.status ?? '?'})`)
    }
    await sleep(50)
  }
}
