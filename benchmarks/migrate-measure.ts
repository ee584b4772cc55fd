// What `metaos domain migrate` costs a stream that writes through the domain, for the supervision
// suite (docs/supervision.md, "Moving a domain"):
//  - a process domain: clone + stream migration + stop (frontend/assembly/migrate-action.ts) on a
//    supervised cluster of three domains, 30% into the file;
//  - a VM domain: QEMU's live migration to a new QEMU process (vm/vm-migration.ts) while the file
//    is written through the hypervisor bus — QEMU's own downtime and total time, how long the
//    calls were held, the longest Write the application waited for. Skipped, with the reason, where
//    QEMU, busybox-static or cpio are missing or the image cannot be built.
// The writes are paced (10 ms apart) while the migration runs, so the stream spans it.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import { LocalCluster } from '../frontend/assembly/local-cluster.js'
import { clusterControl } from '../frontend/assembly/cluster-control.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import type { Dispatcher } from '../frontend/placement/dispatcher.js'
import { DomainManager } from '../domains/domain-manager.js'
import { VmDriver } from '../vm/vm-driver.js'
import { buildVmImage } from '../vm/vm-image.js'

export interface MigrateRow {
  readonly domain: 'process' | 'vm'
  readonly mechanism: string
  readonly fileBytes: number
  /** Longest single Write the application waited for (ms). */
  readonly stallMs: number
  /** VM: the guest's stop-and-copy pause, QEMU's query-migrate `downtime`. */
  readonly downtimeMs?: number
  /** VM: QEMU's query-migrate `total-time`. */
  readonly migrationMs?: number
  /** VM: how long calls to the domain were held (volume released, bus held). */
  readonly heldMs?: number
  /** From asking to done, as the host measured it (a process domain: the clone's start included). */
  readonly totalMs: number
  readonly bytesWrong: number
}

const BLOCK = 64 * 1024

/** Writes `data`, starting `migrate` 30% in and pacing the writes while it runs; the longest Write and the migration's result. */
async function writeAcross<T> (destination: StorageHandler | Dispatcher, data: Buffer, migrate: () => Promise<T>): Promise<{ stallMs: number, result: T }> {
  const f = await FileStream.open('migrating.bin', { mode: 'Create', access: 'Write', destination, bufferSize: 0 })
  let running: Promise<T> | undefined
  let settled = false
  let stallMs = 0
  for (let off = 0; off < data.length; off += BLOCK) {
    if (running === undefined && off >= Math.floor(data.length * 0.3 / BLOCK) * BLOCK) {
      running = migrate()
      void running.finally(() => { settled = true }).catch(() => {})
    }
    const t0 = performance.now()
    await f.write(data, off, Math.min(BLOCK, data.length - off))
    stallMs = Math.max(stallMs, performance.now() - t0)
    if (running !== undefined && !settled) await sleep(10)
  }
  const result = await running!
  await f.close()
  return { stallMs, result }
}

function wrongBytes (path: string, data: Buffer): number {
  const onDisk = readFileSync(path)
  let wrong = Math.abs(onDisk.length - data.length)
  for (let k = 0; k < Math.min(onDisk.length, data.length); k++) if (onDisk[k] !== data[k]) wrong++
  return wrong
}

export async function measureProcessMigrate (data: Buffer): Promise<MigrateRow> {
  const c = await LocalCluster.start()
  try {
    const control = clusterControl(c)
    const { stallMs, result } = await writeAcross(c.dispatcher, data, async () => {
      const epr = c.dispatcher.affinity.entries()[0]!.epr
      return await control.act({ action: 'migrate', name: c.names[c.index(epr)]!, by: 'metaos bench' })
    })
    const m = result.migration!
    return { domain: 'process', mechanism: m.mechanism, fileBytes: data.length, stallMs, totalMs: m.totalMs, bytesWrong: wrongBytes(join(c.root, 'migrating.bin'), data) }
  } finally {
    await c.close()
  }
}

/** Why a VM domain cannot run here, or undefined. */
export function vmMissing (): string | undefined {
  if (spawnSync('qemu-system-x86_64', ['--version']).status !== 0) return 'qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)'
  if (!existsSync('/bin/busybox')) return 'busybox-static is not installed'
  if (spawnSync('cpio', ['--version']).status !== 0) return 'cpio is not installed'
  return undefined
}

export async function measureVmMigrate (data: Buffer): Promise<MigrateRow> {
  const image = await buildVmImage()
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-vm-'))
  const vms = new DomainManager({ driver: new VmDriver({ image, readyTimeoutMs: 600_000 }), graceMs: 5000 })
  try {
    const vm = await vms.start({ name: 'vm-bench', root: dir, listen: [`unix:${join(dir, 'vm.sock')}`] })
    const proxy = createStorageProxy(vm.endpoints[0]!, { timeoutMs: 600_000 })
    try {
      const { stallMs, result } = await writeAcross(proxy, data, async () => await vms.migrate('vm-bench'))
      const r = result.report
      return { domain: 'vm', mechanism: r.mechanism, fileBytes: data.length, stallMs, downtimeMs: r.downtimeMs, migrationMs: r.migrationMs, heldMs: r.stallMs, totalMs: r.totalMs, bytesWrong: wrongBytes(join(dir, 'migrating.bin'), data) }
    } finally { await proxy.close() }
  } finally {
    await vms.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Both rows (the VM's where QEMU is installed and `vm` is not false; its file at most 16 MiB), and why one is missing. */
export async function measureMigrations (data: Buffer, vm: boolean | undefined, shouldStop?: () => boolean): Promise<{ rows: MigrateRow[], note?: string }> {
  const rows: MigrateRow[] = []
  if (shouldStop?.() !== true) rows.push(await measureProcessMigrate(data))
  const missing = vm === false ? 'not asked' : vmMissing()
  if (missing !== undefined) return { rows, note: `VM domain not measured: ${missing}` }
  if (shouldStop?.() === true) return { rows }
  try {
    rows.push(await measureVmMigrate(data.subarray(0, Math.min(data.length, 16 * 1024 * 1024))))
    return { rows }
  } catch (e) { return { rows, note: `VM domain not measured: ${(e as Error).message.split('\n')[0]!}` } }
}

export function migrateTable (rows: readonly MigrateRow[], note: string | undefined): string {
  let out = '\nmetaos domain migrate while a FileStream writes through the domain (started 30% in; writes paced 10 ms apart meanwhile)\n'
  out += `  ${'domain'.padEnd(8)} ${'how'.padEnd(36)} ${'file'.padStart(7)} ${'stall ms'.padStart(9)} ${'downtime ms'.padStart(12)} ${'QEMU total ms'.padStart(14)} ${'held ms'.padStart(8)} ${'total ms'.padStart(9)} ${'bytes wrong'.padStart(12)}\n`
  const n = (v: number | undefined): string => v === undefined ? '-' : v.toFixed(0)
  for (const r of rows) {
    out += `  ${r.domain.padEnd(8)} ${r.mechanism.padEnd(36)} ${`${(r.fileBytes / 1048576).toFixed(0)} MiB`.padStart(7)} ${n(r.stallMs).padStart(9)} ${n(r.downtimeMs).padStart(12)} ${n(r.migrationMs).padStart(14)} ${n(r.heldMs).padStart(8)} ${n(r.totalMs).padStart(9)} ${String(r.bytesWrong).padStart(12)}\n`
  }
  if (note !== undefined) out += `  (${note})\n`
  return out
}
