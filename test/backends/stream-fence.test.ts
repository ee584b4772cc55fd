// Fencing inside a storage domain (backend-storage/fencing.ts): a domain refuses a stream's
// operation — or a new Open of the stream — whose epoch is older than the newest it knows for that
// stream (STALE_EPOCH), learned from the stream's Opens and operations and from the stream
// directory (`learn`); Close is always admitted; callers that carry no epoch work as before. A
// domain whose lease is not valid refuses handle operations with DOMAIN_FENCED, and a handle opened
// under a lease since lost stays refused. Over SOAP against a real domain, and on the engine itself
// for the lease (the lease object is coordination's; here a switch stands in for etcd).
import t from 'tap'
import { mkdirSync, readFileSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { StorageEngine } from '../../backend-storage/storage-engine.js'
import { StreamFence } from '../../backend-storage/fencing.js'
import { confinedTo } from '../../backend-storage/path-policy.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('stream epochs over SOAP', async (t) => {
  const d = await startTestDomain(t)
  const p = createStorageProxy(d.http)
  t.teardown(async () => { await p.close() })
  const open = async (epoch: number): Promise<string> => (await p.invoke('Open', { path: 'e.bin', mode: 'OpenOrCreate', access: 'Write', share: 'ReadWrite', stream: 'vh:s1', epoch })).output.handle
  const h1 = await open(1)
  await p.invoke('Write', { handle: h1, data: Buffer.from('aaaa'), epoch: 1 })
  // The stream moved away and came back: a new handle at epoch 2.
  const h2 = await open(2)
  t.equal(d.domain.fence.epochOf('vh:s1'), 2, 'the domain learned epoch 2 from the Open')
  await t.rejects(p.invoke('Write', { handle: h1, data: Buffer.from('OLD!'), epoch: 1 }), { code: 'STALE_EPOCH', message: /epoch 1 refused: the stream is at epoch 2/ }, 'a Write at epoch 1 is refused')
  await t.rejects(p.invoke('Write', { handle: h1, data: Buffer.from('OLD!') }), { code: 'STALE_EPOCH' }, 'without an epoch, the handle\'s own (1) counts')
  await t.rejects(p.invoke('SetLength', { handle: h1, length: 0, epoch: 1 }), { code: 'STALE_EPOCH' }, 'SetLength too')
  await t.rejects(open(1), { code: 'STALE_EPOCH' }, 'an Open of the stream at an older epoch is refused')
  await p.invoke('Write', { handle: h2, data: Buffer.from('bb'), epoch: 2 })
  // A Batch: the stale operation is refused, the dependent ones are not run.
  const b = await p.invoke('Batch', { op: [{ Write: { handle: h1, data: Buffer.from('OLD!'), epoch: 1 } }, { Write: { handle: h2, data: Buffer.from('cc'), epoch: 2 } }] })
  t.match(b.output.result[0], { StorageFault: { code: 'STALE_EPOCH' } }, 'in a Batch the stale Write is refused')
  t.ok('WriteResponse' in b.output.result[1]!, 'and the current handle\'s Write runs')
  // The stream directory says the stream moved on (coordination's watch): epoch 2 is stale now.
  d.domain.fence.learn('vh:s1', 3)
  await t.rejects(p.invoke('Write', { handle: h2, data: Buffer.from('XX'), epoch: 2 }), { code: 'STALE_EPOCH' }, 'an epoch learned from the directory fences the handle')
  await p.invoke('Close', { handle: h1, epoch: 1 })
  await p.invoke('Close', { handle: h2 })
  t.pass('Close is admitted at any epoch (it only releases the descriptor)')
  t.equal(readFileSync(join(d.root, 'e.bin'), 'utf8'), 'bbcc', 'no refused byte landed (the new handle wrote from position 0)')
  t.same(d.domain.fence.refused, { DOMAIN_FENCED: 0, STALE_EPOCH: 6 })
  // Callers that carry no epoch: as before.
  const h = (await p.invoke('Open', { path: 'plain.bin', mode: 'Create', access: 'Write', share: 'Read' })).output.handle
  await p.invoke('Write', { handle: h, data: Buffer.from('plain') })
  await p.invoke('Close', { handle: h })
  t.equal(readFileSync(join(d.root, 'plain.bin'), 'utf8'), 'plain')
})

t.test('a domain without a valid lease refuses handle operations with DOMAIN_FENCED', async (t) => {
  const root = join(tempDir(t, 'metaos-fence-'), 'root')
  mkdirSync(root)
  let held = true
  const fence = new StreamFence({ valid: () => held })
  const engine = new StorageEngine(confinedTo(realpathSync(root)), {}, fence)
  t.teardown(async () => { await engine.closeAll() })
  const { handle: old } = await engine.open({ path: 'l.bin', mode: 'Create', access: 'Write', share: 'ReadWrite' }, 'app')
  await engine.write({ handle: old, data: Buffer.from('1') }, 'app')
  held = false
  await t.rejects(engine.write({ handle: old, data: Buffer.from('2') }, 'app'), { code: 'DOMAIN_FENCED' }, 'lease not valid: Write refused')
  await t.rejects(engine.open({ path: 'l.bin', mode: 'Open', access: 'Write', share: 'ReadWrite' }, 'app'), { code: 'DOMAIN_FENCED' }, 'and Open')
  fence.leaseLost()
  held = true // a new lease was granted
  await t.rejects(engine.write({ handle: old, data: Buffer.from('3') }, 'app'), { code: 'DOMAIN_FENCED', message: /opened under a lease this domain has since lost/ }, 'a handle opened under the lost lease stays fenced')
  const { handle: fresh } = await engine.open({ path: 'l.bin', mode: 'Open', access: 'Write', share: 'ReadWrite' }, 'app')
  await engine.seek({ handle: fresh, offset: 1, origin: 'Begin' }, 'app')
  await engine.write({ handle: fresh, data: Buffer.from('4') }, 'app')
  await engine.close({ handle: old }, 'app')
  await engine.close({ handle: fresh }, 'app')
  t.equal(readFileSync(join(root, 'l.bin'), 'utf8'), '14', 'only the admitted writes landed')
  t.same(fence.refused, { DOMAIN_FENCED: 3, STALE_EPOCH: 0 })
})

t.test('a handle opened under an earlier lease generation stays fenced', async (t) => {
  const root = join(tempDir(t, 'metaos-fence-'), 'root')
  mkdirSync(root)
  const lease = { generation: 1, valid: () => true }
  const engine = new StorageEngine(confinedTo(realpathSync(root)), {}, new StreamFence(lease))
  t.teardown(async () => { await engine.closeAll() })
  const { handle: old } = await engine.open({ path: 'g.bin', mode: 'Create', access: 'Write', share: 'ReadWrite' }, 'app')
  lease.generation = 2 // lost and granted again between two operations
  await t.rejects(engine.setLength({ handle: old, length: 10 }, 'app'), { code: 'DOMAIN_FENCED' })
  const { handle: fresh } = await engine.open({ path: 'g.bin', mode: 'Open', access: 'Write', share: 'ReadWrite' }, 'app')
  await engine.write({ handle: fresh, data: Buffer.from('g2') }, 'app')
  await engine.close({ handle: old }, 'app')
  await engine.close({ handle: fresh }, 'app')
  t.equal(readFileSync(join(root, 'g.bin'), 'utf8'), 'g2')
})
