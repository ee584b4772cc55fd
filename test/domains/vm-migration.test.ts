// Whole-domain live migration of a VM domain, with real QEMU (TCG here): a FileStream writes 16 MiB
// through the domain's hypervisor bus while the domain manager moves the domain to a new QEMU
// process with QEMU's own migration (vm/vm-migration.ts). The stream goes on — no error, the
// SHA-256 of the file on the host equal to what was written — the domain keeps its EPR and
// endpoints, the new QEMU's pid differs and the old one is gone; the forwarded port answers again.
// Prints QEMU's downtime and total time and the stall the stream saw. Skips, saying why, without
// QEMU, busybox-static or cpio (under CI: fails, naming what is missing).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream, createStorageProxy } from '../../index.js'
import { DomainManager } from '../../domains/domain-manager.js'
import type { MigrationReport } from '../../domains/driver.js'
import { VmDriver } from '../../vm/vm-driver.js'
import { buildVmImage } from '../../vm/vm-image.js'
import { vmPartsMissing } from '../helpers/vm-parts.js'
import { tempDir } from '../helpers/temp-dir.js'

t.setTimeout(1_500_000)
const MiB = 1024 * 1024
const CHUNK = 64 * 1024
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const gone = (pid: number): boolean => { try { process.kill(pid, 0); return false } catch (e) { return (e as NodeJS.ErrnoException).code === 'ESRCH' } }

t.test('a VM domain moves to a new QEMU while a FileStream writes through it', { skip: vmPartsMissing() }, async (t) => {
  const image = await buildVmImage()
  const dir = tempDir(t, 'metaos-vm-migrate-')
  const vms = new DomainManager({ driver: new VmDriver({ image, readyTimeoutMs: 600_000 }), graceMs: 5000 })
  t.teardown(async () => { await vms.close() })
  const vm = await vms.start({ name: 'vm-m', root: dir, listen: ['http://127.0.0.1:0', `unix:${join(dir, 'vm-m.sock')}`] })
  const [http, bus] = vm.endpoints as [string, string]
  const proxy = createStorageProxy(bus, { timeoutMs: 300_000 })
  const viaPort = createStorageProxy(http, { timeoutMs: 60_000 })
  t.teardown(async () => { await proxy.close(); await viaPort.close() })

  const data = randomBytes(16 * MiB)
  const f = await FileStream.open('moved.bin', { mode: 'Create', access: 'Write', destination: proxy, bufferSize: 0 })
  let migration: Promise<{ report: MigrationReport }> | undefined
  let settled = false
  let during = 0
  let after = 0
  for (let off = 0; off < data.length; off += CHUNK) {
    if (off === 4 * MiB) {
      migration = vms.migrate('vm-m')
      void migration.finally(() => { settled = true }).catch(() => {})
    }
    await f.write(data, off, CHUNK)
    if (migration !== undefined && !settled) { during++; await sleep(100) } else if (settled) after++
  }
  await f.close()
  t.ok(migration !== undefined, 'the migration started at 4 MiB')
  const { report } = await migration!
  t.ok(during > 0 && after > 0, `writes went on during the migration (${during}) and after it (${after}) on one open stream`)
  t.equal(sha(readFileSync(join(dir, 'moved.bin'))), sha(data), 'the 16 MiB on the host have the SHA-256 of what was written')

  const now = await vms.get('vm-m')
  t.equal(now.state, 'running', 'running')
  t.equal(now.epr, vm.epr, 'same EPR')
  t.same(now.endpoints, vm.endpoints, 'same endpoints')
  t.equal(report.fromPid, vm.pid, 'moved from the QEMU it booted in')
  t.not(report.toPid, vm.pid, 'to a new QEMU process')
  t.equal(now.pid, report.toPid, 'the manager reports the new pid')
  t.ok(gone(vm.pid), 'the old QEMU is gone')
  t.ok(report.downtimeMs >= 0 && report.migrationMs > 0, 'QEMU reported its downtime and total time')
  t.equal((await viaPort.invoke('GetDomainInfo', {})).output.domainId, vm.epr, 'the forwarded port reaches the domain on the new QEMU')
  t.equal((await proxy.invoke('GetDomainInfo', {})).output.domainId, vm.epr, 'the bus too')
  t.comment(`VM live migration (TCG): QEMU downtime ${report.downtimeMs} ms, QEMU total ${report.migrationMs} ms, ${(report.transferredBytes / MiB).toFixed(1)} MiB sent; host: asked → serving ${report.totalMs} ms, calls held ${report.stallMs} ms`)
  for (const n of report.notes) t.comment(`note: ${n}`)
})
