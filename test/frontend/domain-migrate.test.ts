// `metaos domain migrate` of a process domain, through the control the CLI and the dashboard use
// (clusterControl): no live migration for a process, so clone + stream migration + stop — a clone
// starts on the volume, the stream open through the dispatcher moves to it at its acknowledged
// position, the domain stops. A FileStream writes 16 MiB meanwhile: no error, the SHA-256 right;
// the action is on the supervisor timeline with who asked, said as clone + stream migration + stop.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { ControlError, clusterControl, type ActionResult } from '../../frontend/assembly/cluster-control.js'

const MiB = 1024 * 1024
const CHUNK = 64 * 1024
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }

t.test('migrate a process domain with a stream open: clone + stream migration + stop', async (t) => {
  const c = await LocalCluster.start({ domains: ['bus'], names: ['solo'], probeIntervalMs: 200, isolation: 'none' })
  t.teardown(async () => { await c.close() })
  const control = clusterControl(c)
  const before = await c.manager.get('solo')

  const data = randomBytes(16 * MiB)
  const f = await FileStream.open('moving.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let migration: Promise<ActionResult> | undefined
  let settled = false
  let during = 0
  let after = 0
  for (let off = 0; off < data.length; off += CHUNK) {
    if (off === 4 * MiB) {
      migration = control.act({ action: 'migrate', name: 'solo', by: 'the test' })
      void migration.finally(() => { settled = true }).catch(() => {})
    }
    await f.write(data, off, CHUNK)
    // Paced while the migration runs, so the stream spans it.
    if (migration !== undefined && !settled) { during++; await sleep(20) } else if (settled) after++
  }
  const done = await migration!
  await f.close()
  t.ok(during > 0 && after > 0, `writes went on during the migration (${during}) and after it (${after}) on one open stream`)
  t.equal(sha(readFileSync(join(c.root, 'moving.bin'))), sha(data), 'the 16 MiB written across the migration: SHA-256 right, no error')

  const m = done.migration!
  t.equal(m.kind, 'clone', 'a process domain migrates by clone')
  t.equal(m.mechanism, 'clone + stream migration + stop', 'said as such')
  t.equal(m.streams, 1, 'the open stream moved')
  t.equal(m.to, 'solo-m1', 'to the clone (default name NAME-mN)')
  t.equal(done.domain.state, 'stopped', 'the domain stopped')
  t.notOk(alive(before.pid), 'its process is gone')
  const clone = await c.manager.get('solo-m1')
  t.equal(clone.state, 'running', 'the clone runs')
  t.not(clone.epr, before.epr, 'with a new EPR')
  t.equal(done.decision.action, 'migrate', 'on the timeline')
  t.equal(done.decision.by, 'the test', 'with who asked')
  t.match(done.decision.reason, /clone \+ stream migration \+ stop.*1 stream\(s\) moved/, 'saying how, and what moved')
  t.comment(`process-domain migrate: longest stream stall ${m.stallMs} ms, ${m.totalMs} ms in all (clone start included)`)

  const again = await control.act({ action: 'migrate', name: 'solo', by: 'the test' }).catch((e: unknown) => e)
  t.ok(again instanceof ControlError && again.code === 'INVALID_STATE', 'a stopped domain does not migrate: INVALID_STATE')
  const none = await control.act({ action: 'migrate', name: 'nobody', by: 'the test' }).catch((e: unknown) => e)
  t.ok(none instanceof ControlError && none.code === 'NO_SUCH_DOMAIN', 'an unknown domain: NO_SUCH_DOMAIN')
})
