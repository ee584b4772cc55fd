// Stream epochs cannot be poisoned (issue 20): a stream id and an epoch are a caller's word, and
// `metaos status` shows every stream of the directory. With coordination a storage domain takes a
// stream's epochs from the stream directory only — an Open naming an epoch the directory does not
// hold is refused with STALE_EPOCH and teaches the domain nothing — so a client sending an Open at
// epoch 99 for another application's live stream, on every domain of the volume, leaves that
// stream's next migration and failover working. Real `metaos storage` processes (a LocalCluster),
// a real etcd; the file is checked by SHA-256. Without coordination, epochs are known per caller
// (the handle owner): another caller naming the stream at epoch 99 names a stream of its own.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectCoordination } from '../../coordination/connect.js'
import { FileStream, createStorageProxy } from '../../index.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { cluster } from '../helpers/hung-writer.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('a hostile Open at epoch 99 for a live stream: refused, and the stream still moves', { skip: etcdMissing() }, async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const client = await connectCoordination({ url: etcd.url, leaseTtlSeconds: 1 })
  t.teardown(async () => { await client.close() })
  const c = await cluster(t, { isolation: 'none', coordination: { client, domainArgs: ['--coordination', etcd.url, '--coordination-ttl', '1'] } })
  const data = randomBytes(3 * 256 * 1024)
  const part = (i: number): Buffer => data.subarray(i * 256 * 1024, (i + 1) * 256 * 1024)
  const f = await FileStream.open('victim.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  await f.write(part(0))
  const s = c.dispatcher.affinity.entries()[0]!
  // What `metaos status` shows anyone: the stream directory.
  const listed = (await client.streams.list()).find((r) => r.path === 'victim.bin')!
  t.match(listed, { stream: s.stream, owner: s.epr, epoch: 1 })

  const hostile = await Promise.all([...c.handlers.keys()].map(async (epr) => {
    const p = createStorageProxy((await c.get(c.index(epr))).endpoints[0]!)
    t.teardown(async () => { await p.close() })
    return p
  }))
  const poison = { path: 'victim.bin', mode: 'Open', access: 'Read', share: 'ReadWrite', stream: listed.stream } as const
  for (const p of hostile) {
    await t.rejects(p.invoke('Open', { ...poison, epoch: 99 }), { code: 'STALE_EPOCH', message: /the stream directory does not name that epoch \(it holds epoch 1/ }, 'an Open at epoch 99 is refused on every domain')
    await t.rejects(p.invoke('Open', { ...poison, epoch: 2 }), { code: 'STALE_EPOCH' }, 'so is one at the next epoch, before the directory names it')
  }

  // Migration: the directory moves to epoch 2 first, then the target opens the stream at it.
  const from = s.epr
  await c.dispatcher.migrate(s.id, 'test')
  t.not(s.epr, from, 'the stream migrated')
  t.equal(s.epoch, 2, 'at epoch 2')
  await f.write(part(1))
  t.match(await client.streams.get(s.stream), { owner: s.epr, epoch: 2 }, 'the directory names the new owner at epoch 2')
  for (const p of hostile) await t.rejects(p.invoke('Open', { ...poison, epoch: 99 }), { code: 'STALE_EPOCH' }, 'refused again at epoch 2')

  // Failover: the stream's domain is killed; the fence (the manager) and the directory move it on.
  process.kill(await c.pid(s.epr), 'SIGKILL')
  await f.write(part(2))
  t.equal(s.epoch, 3, 'the stream failed over, at epoch 3')
  t.match(await client.streams.get(s.stream), { owner: s.epr, epoch: 3 })
  await f.close()
  t.equal(sha(readFileSync(join(c.root, 'victim.bin'))), sha(data), 'the file is what the application wrote (SHA-256)')
})

t.test('without coordination: the epoch another caller names is its own stream\'s, never the application\'s', async (t) => {
  const c = await cluster(t, { isolation: 'none' })
  const data = randomBytes(2 * 256 * 1024)
  const f = await FileStream.open('single.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  await f.write(data.subarray(0, 256 * 1024))
  const s = c.dispatcher.affinity.entries()[0]!
  for (const epr of c.handlers.keys()) {
    const p = createStorageProxy((await c.get(c.index(epr))).endpoints[0]!)
    t.teardown(async () => { await p.close() })
    // Admitted as that caller's own stream (the file's share allows a reader): its epoch fences only its own handles.
    const h = await p.invoke('Open', { path: 'single.bin', mode: 'Open', access: 'Read', share: 'ReadWrite', stream: s.stream, epoch: 99 })
    await p.invoke('Close', { handle: h.output.handle })
  }
  await c.dispatcher.migrate(s.id, 'test')
  t.equal(s.epoch, 2, 'the stream migrated at epoch 2')
  await f.write(data.subarray(256 * 1024))
  await f.close()
  t.equal(sha(readFileSync(join(c.root, 'single.bin'))), sha(data), 'the file is what the application wrote (SHA-256)')
})
