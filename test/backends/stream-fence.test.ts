// Fencing inside a storage domain (backend-storage/fencing.ts): a domain refuses a stream's
// operation — or a new Open of the stream — whose epoch is older than the newest it knows for that
// stream (STALE_EPOCH), learned from the stream's Opens and operations and from the stream
// directory (`learn`); Close is always admitted; callers that carry no epoch work as before. A
// domain whose lease is not valid refuses handle operations with DOMAIN_FENCED, and a handle opened
// under a lease since lost stays refused. Over SOAP against a real domain, and on the engine itself
// for the lease (a switch standing in for coordination's lease), then with a real etcd: epochs
// learned from the stream directory's watch, DOMAIN_FENCED once etcd is gone for longer than the
// TTL, and for good on handles opened before.
import t from 'tap'
import { mkdirSync, readFileSync, realpathSync } from 'node:fs'
import { join } from 'node:path'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { StorageEngine } from '../../backend-storage/storage-engine.js'
import { StreamFence } from '../../backend-storage/fencing.js'
import { confinedTo } from '../../backend-storage/path-policy.js'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { connectCoordination } from '../../coordination/connect.js'

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

t.test('with coordination: epochs from the stream directory, DOMAIN_FENCED once the lease is lost', { skip: etcdMissing() }, async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const frontend = await connectCoordination({ url: etcd.url, leaseTtlSeconds: 1 })
  const own = await connectCoordination({ url: etcd.url, leaseTtlSeconds: 1 })
  t.teardown(async () => { await frontend.close(); await own.close() })
  const d = await startTestDomain(t, { coordination: own, volume: 'v' })
  await d.domain.lease!.whenValid()
  const p = createStorageProxy(d.http)
  t.teardown(async () => { await p.close() })
  const until = async (ok: () => boolean, what: string): Promise<void> => {
    for (let i = 0; i < 200 && !ok(); i++) await new Promise((resolve) => setTimeout(resolve, 25))
    t.ok(ok(), what)
  }
  const { handle } = (await p.invoke('Open', { path: 'c.bin', mode: 'Create', access: 'Write', share: 'ReadWrite', stream: 'st-1', epoch: 1 })).output
  await p.invoke('Write', { handle, data: Buffer.from('one'), epoch: 1 })
  const rec = { stream: 'st-1', volume: 'v', path: 'c.bin', owner: d.domain.epr, epoch: 1, position: 3 }
  await frontend.streams.open(rec)
  await frontend.streams.move('st-1', 1, { ...rec, owner: 'another-domain', epoch: 2 })
  await until(() => d.domain.fence.epochOf('st-1') === 2, 'the domain learned epoch 2 from the directory\'s watch')
  await t.rejects(p.invoke('Write', { handle, data: Buffer.from('OLD'), epoch: 1 }), { code: 'STALE_EPOCH' }, 'its handle of the moved stream is refused')
  const plain = (await p.invoke('Open', { path: 'p.bin', mode: 'Create', access: 'Write', share: 'ReadWrite' })).output.handle
  await p.invoke('Write', { handle: plain, data: Buffer.from('ok') })
  await etcd.kill(0)
  await until(() => !d.domain.lease!.valid(), 'etcd gone: the lease stops being valid within the TTL')
  await t.rejects(p.invoke('Write', { handle: plain, data: Buffer.from('XX') }), { code: 'DOMAIN_FENCED' }, 'no lease: handle operations are refused')
  await etcd.start(0)
  await etcd.healthy()
  // Until a new lease has held for a few renewals (the first grants after an outage may be lost again).
  for (let held = 0, i = 0; held < 5 && i < 300; i++) { held = d.domain.lease!.valid() ? held + 1 : 0; await new Promise((resolve) => setTimeout(resolve, 50)) }
  t.ok(d.domain.lease!.valid() && d.domain.lease!.generation > 1, `a new lease is held (generation ${d.domain.lease!.generation})`)
  await t.rejects(p.invoke('Write', { handle: plain, data: Buffer.from('YY') }), { code: 'DOMAIN_FENCED', message: /since lost/ }, 'a new lease: the handle opened under the lost one stays refused')
  const fresh = (await p.invoke('Open', { path: 'p.bin', mode: 'Open', access: 'Write', share: 'ReadWrite' })).output.handle
  await p.invoke('Seek', { handle: fresh, offset: 2, origin: 'Begin' })
  await p.invoke('Write', { handle: fresh, data: Buffer.from('!') })
  for (const h of [handle, plain, fresh]) await p.invoke('Close', { handle: h })
  t.equal(readFileSync(join(d.root, 'c.bin'), 'utf8'), 'one')
  t.equal(readFileSync(join(d.root, 'p.bin'), 'utf8'), 'ok!', 'only admitted writes landed')
})

t.test('with coordination: the opens of one stream on two domains do not conflict; another open does', { skip: etcdMissing() }, async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const clients = [await connectCoordination({ url: etcd.url }), await connectCoordination({ url: etcd.url })]
  t.teardown(async () => { for (const c of clients) await c.close() })
  const root = join(tempDir(t, 'metaos-fence-'), 'volume')
  mkdirSync(root)
  const [a, b] = await Promise.all(clients.map(async (coordination, i) => {
    const d = await startStorageDomain({ root, name: `d${i}`, volume: 'v', listen: ['http://127.0.0.1:0'], coordination })
    t.teardown(async () => { await d.close(500) })
    await d.lease!.whenValid()
    return createStorageProxy(d.endpoints[0]!)
  })) as [ReturnType<typeof createStorageProxy>, ReturnType<typeof createStorageProxy>]
  t.teardown(async () => { await a.close(); await b.close() })
  const open = { path: 's.bin', mode: 'OpenOrCreate', access: 'Write', share: 'Read' } as const
  await a.invoke('Open', { ...open, stream: 'st-9', epoch: 1 })
  await b.invoke('Open', { ...open, stream: 'st-9', epoch: 2 })
  t.pass('the stream moved to the second domain while its first open is still registered')
  await t.rejects(b.invoke('Open', open), { code: 'SHARING_VIOLATION' }, 'an open of no stream is refused (Write with share Read)')
  await t.rejects(b.invoke('Open', { ...open, stream: 'st-10', epoch: 1 }), { code: 'SHARING_VIOLATION' }, 'so is another stream\'s')
})

t.test('an operation queued behind a Close of its handle finds no handle (its descriptor is closed)', async (t) => {
  const root = join(tempDir(t, 'metaos-fence-'), 'root')
  mkdirSync(root)
  const engine = new StorageEngine(confinedTo(realpathSync(root)), {}, new StreamFence())
  t.teardown(async () => { await engine.closeAll() })
  const { handle } = await engine.open({ path: 'q.bin', mode: 'Create', access: 'Write', share: 'ReadWrite' }, 'app')
  const first = engine.write({ handle, data: Buffer.from('before') }, 'app')
  const close = engine.close({ handle }, 'app')
  const late = engine.write({ handle, data: Buffer.from('after') }, 'app')
  await first
  await close
  await t.rejects(late, { code: 'INVALID_HANDLE' }, 'the Write queued after the Close is refused')
  t.equal(readFileSync(join(root, 'q.bin'), 'utf8'), 'before')
})
