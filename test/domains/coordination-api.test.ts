// The coordination API (coordination/) against a real 3-member etcd cluster on loopback: leases,
// share registrations checked across holders by .NET's FileShare rule, the stream directory's
// compare-and-set on epochs, PMT rows under a frontend's lease, and what quorum loss does to each.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectCoordination, type Coordination, type StreamEvent } from '../../coordination/connect.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p; return 'resolved' } catch (e) { return e instanceof MetaosError ? e.code : `${(e as Error).name}: ${(e as Error).message}` }
}

async function connect (t: Test, url: string, prefix: string): Promise<Coordination> {
  const c = await connectCoordination({ url, prefix, leaseTtlSeconds: 2 })
  t.teardown(async () => { await c.close() })
  return c
}

t.test('bad URLs and options fail at once with INVALID_ARGUMENT', async (t) => {
  for (const url of ['http://127.0.0.1:2379', 'etcd://', 'etcd://host:99999', 'etcd://a b:1', 'etcds://127.0.0.1:2379']) {
    t.equal(await codeOf(connectCoordination({ url })), 'INVALID_ARGUMENT', url)
  }
  t.equal(await codeOf(connectCoordination({ url: 'etcd://127.0.0.1:1', ca: 'x' })), 'INVALID_ARGUMENT', 'a CA without etcds://')
  t.equal(await codeOf(connectCoordination({ url: 'etcd://127.0.0.1:1', deadlineMs: 300 })), 'COORDINATION_UNAVAILABLE', 'nothing listens there')
})

t.test('with a 3-member cluster', async (t) => {
  const cluster = await startEtcdCluster(t)
  const a = await connect(t, cluster.url, '/t1')
  const b = await connect(t, cluster.url, '/t1')
  const la = a.domainLease('urn:uuid:a', { volume: 'v' })
  const lb = b.domainLease('urn:uuid:b', { volume: 'v' })
  await la.whenValid(5000)
  await lb.whenValid(5000)
  t.ok(la.valid() && lb.valid(), 'both leases granted')
  t.equal(la.generation, 1)
  t.same((await a.holders()).map((h) => h.id).sort(), ['urn:uuid:a', 'urn:uuid:b'], 'holders recorded')

  await t.test('share modes across holders', async (t) => {
    const sa = a.shares(la)
    const sb = b.shares(lb)
    const none = await sa.register({ volume: 'v', path: 'dir/f', access: 'ReadWrite', share: 'None' })
    t.equal(await codeOf(sb.register({ volume: 'v', path: 'dir/f', access: 'Read', share: 'ReadWrite' })), 'SHARING_VIOLATION', 'None on A refuses B')
    t.equal(await codeOf(sa.register({ volume: 'v', path: 'dir/f', access: 'Read', share: 'ReadWrite' })), 'SHARING_VIOLATION', 'and A itself')
    t.equal(await codeOf(sb.register({ volume: 'v', path: 'dir', access: 'Read', share: 'ReadWrite' })), 'resolved', 'another path (a prefix of it) is free')
    t.equal(await codeOf(sb.register({ volume: 'w', path: 'dir/f', access: 'Read', share: 'ReadWrite' })), 'resolved', 'the same path on another volume is free')
    t.equal(await codeOf(sb.checkDelete('v', 'dir/f')), 'SHARING_VIOLATION', 'delete refused while open without FileShare.Delete')
    await none.release()
    const r1 = await sb.register({ volume: 'v', path: 'dir/f', access: 'Read', share: 'Read' })
    const r2 = await sa.register({ volume: 'v', path: 'dir/f', access: 'Read', share: 'Read' })
    t.equal(await codeOf(sa.register({ volume: 'v', path: 'dir/f', access: 'Write', share: 'ReadWrite' })), 'SHARING_VIOLATION', 'readers sharing Read refuse a writer')
    t.same((await sa.list('v', 'dir/f')).map((r) => r.owner).sort(), ['urn:uuid:a', 'urn:uuid:b'], 'both registrations listed, with their domains')
    await r1.release(); await r2.release()
    t.equal(await codeOf(sb.register({ volume: 'v', path: 'x%2F..', access: 'Read', share: 'Read' })), 'resolved', 'odd characters stay inside their key part')
    t.equal(await codeOf(sb.register({ volume: 'bad/volume', path: 'f', access: 'Read', share: 'Read' })), 'INVALID_ARGUMENT')
    // 20 concurrent FileShare.None opens of one file from both holders: exactly one wins.
    const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => await codeOf((i % 2 === 0 ? sa : sb).register({ volume: 'v', path: 'race', access: 'Write', share: 'None' }))))
    t.equal(results.filter((r) => r === 'resolved').length, 1, 'one of 20 racing exclusive opens wins')
    t.equal(results.filter((r) => r === 'SHARING_VIOLATION').length, 19, 'the others get SHARING_VIOLATION')
  })

  await t.test('a released lease takes its registrations with it; leaseGone sees it', async (t) => {
    const c = await connect(t, cluster.url, '/t1')
    const lc = c.domainLease('urn:uuid:c')
    await lc.whenValid(5000)
    await c.shares(lc).register({ volume: 'v', path: 'held', access: 'Write', share: 'None' })
    const sb = b.shares(lb)
    t.equal(await codeOf(sb.register({ volume: 'v', path: 'held', access: 'Read', share: 'ReadWrite' })), 'SHARING_VIOLATION')
    const gone = a.leaseGone('urn:uuid:c')
    await lc.release()
    await gone
    t.equal(await codeOf(sb.register({ volume: 'v', path: 'held', access: 'Read', share: 'ReadWrite' })), 'resolved', 'free once the holder\'s lease is gone')
    t.equal(await codeOf(a.leaseGone('urn:uuid:nobody')), 'resolved', 'no holder: gone at once')
  })

  await t.test('revokeHolder: another client revokes a holder\'s lease (a fenced domain), only one granted before a time when asked', async (t) => {
    const c = await connect(t, cluster.url, '/t1')
    const ld = c.domainLease('urn:uuid:d')
    await ld.whenValid(5000)
    await c.shares(ld).register({ volume: 'v', path: 'fenced', access: 'Write', share: 'None' })
    const since = (await a.holders()).find((h) => h.id === 'urn:uuid:d')!.since
    t.equal(await a.revokeHolder('urn:uuid:d', { grantedBefore: since }), false, 'a lease granted at or after `grantedBefore` (a restarted run\'s) is left alone')
    t.equal(await codeOf(b.shares(lb).register({ volume: 'v', path: 'fenced', access: 'Read', share: 'ReadWrite' })), 'SHARING_VIOLATION', 'still held')
    t.equal(await a.revokeHolder('urn:uuid:d', { grantedBefore: since + 1 }), true, 'revoked')
    t.equal(await codeOf(b.shares(lb).register({ volume: 'v', path: 'fenced', access: 'Read', share: 'ReadWrite' })), 'resolved', 'its registrations went with it, at once')
    t.equal(await a.revokeHolder('urn:uuid:nobody'), false, 'no holder: nothing to revoke')
    await ld.release()
  })

  await t.test('the stream directory: compare-and-set on epochs, watched', async (t) => {
    const events: StreamEvent[] = []
    const stop = await b.streams.watch((e) => { events.push(e) })
    const rec = { stream: 'fe1/7', volume: 'v', path: 'big', owner: 'urn:uuid:a', epoch: 1, position: 0 }
    t.equal(await a.streams.open(rec), true)
    t.equal(await a.streams.open(rec), false, 'the same epoch again: refused')
    t.equal(await a.streams.checkpoint('fe1/7', 1, 4096), true)
    t.equal(await b.streams.move('fe1/7', 1, { ...rec, owner: 'urn:uuid:b', epoch: 2, position: 4096 }), true, 'moved 1 → 2')
    t.equal(await a.streams.move('fe1/7', 1, { ...rec, owner: 'urn:uuid:c', epoch: 2 }), false, 'a second move from epoch 1 loses')
    t.equal(await a.streams.checkpoint('fe1/7', 1, 8192), false, 'a checkpoint at the old epoch is refused')
    t.match(await a.streams.get('fe1/7'), { owner: 'urn:uuid:b', epoch: 2, position: 4096 })
    await a.streams.close('fe1/7')
    t.equal(await a.streams.get('fe1/7'), undefined)
    for (let i = 0; i < 50 && events.length < 4; i++) await sleep(20)
    t.same(events.map((e) => e.type === 'put' ? `${e.record.epoch}@${e.record.position}` : 'delete'), ['1@0', '1@4096', '2@4096', 'delete'], 'the watch saw every change in order')
    await stop()
  })

  await t.test('measures: published under a frontend lease, watched, gone with it', async (t) => {
    const f = await connect(t, cluster.url, '/t1')
    const lf = f.frontendLease('urn:uuid:fe')
    const seen: string[] = []
    const stop = await a.measures.watch((e) => { seen.push(e.type === 'put' ? `${e.moduleId}:${e.rows.length}` : `-${e.moduleId}`) })
    await f.measures.publish('urn:uuid:fe', [{ epr: 'x' }, { epr: 'y' }], lf)
    await lf.release()
    for (let i = 0; i < 50 && seen.length < 2; i++) await sleep(20)
    t.same(seen, ['urn:uuid:fe:2', '-urn:uuid:fe'])
    await stop()
  })

  await t.test('one member lost: nothing visible; two: COORDINATION_UNAVAILABLE within the deadline, leases lost; back: new leases', async (t) => {
    const sa = a.shares(la)
    const seen: string[] = []
    const unwatch = await b.streams.watch((e) => { if (e.type === 'put') seen.push(e.record.stream) })
    await cluster.kill(0)
    for (let i = 0; i < 5; i++) t.equal(await codeOf((await sa.register({ volume: 'v', path: `one-${i}`, access: 'Write', share: 'None' })).release()), 'resolved', `open ${i} with one member down`)
    await sleep(2500)
    t.ok(la.valid(), 'the lease is still held with one member down')
    const lost = new Promise((resolve) => la.once('lost', resolve))
    await cluster.kill(1)
    const t0 = performance.now()
    t.equal(await codeOf(sa.register({ volume: 'v', path: 'two', access: 'Write', share: 'None' })), 'COORDINATION_UNAVAILABLE')
    const took = performance.now() - t0
    t.comment(`refused after ${Math.round(took)} ms (the deadline is 2000 ms)`)
    await lost
    t.notOk(la.valid(), 'the lease is lost')
    const first = la.id
    const lostGeneration = la.generation
    const regained = new Promise((resolve) => la.once('regained', resolve))
    await cluster.start(0)
    await cluster.start(1)
    await cluster.healthy()
    await regained
    t.ok(la.valid(), 'a lease again')
    t.not(la.id, first, 'a new lease, not the lost one')
    // One more than the lost one (2, unless a keep-alive starved by a loaded machine lost an earlier one: a TTL of 2 s is short).
    t.equal(la.generation, lostGeneration + 1, 'the next generation')
    t.equal(await codeOf(sa.register({ volume: 'v', path: 'two', access: 'Write', share: 'None' })), 'resolved', 'opens work again')
    await a.streams.open({ stream: 'after-quorum', volume: 'v', path: 'p', owner: 'urn:uuid:a', epoch: 1, position: 0 })
    for (let i = 0; i < 100 && !seen.includes('after-quorum'); i++) await sleep(50)
    t.ok(seen.includes('after-quorum'), 'a watch made before the loss sees what is written after it')
    await unwatch()
  })
})
