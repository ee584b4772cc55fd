// The order of a move with a stream directory (issue 20): the dispatcher compare-and-sets the
// directory at the next epoch, naming the target, before it opens the stream there — a domain
// takes epochs from the directory, so the target's Open names an epoch the directory holds. When
// that Open fails, the stream stays on its domain and the directory names it there again, one
// epoch on; the stream goes on and moves later. Three storage domains of one volume with
// coordination (in this process), a real etcd.
import t from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectCoordination } from '../../coordination/connect.js'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { coordinatedStreams } from '../../frontend/assembly/stream-directory.js'
import { FRONTEND_CALLER } from '../../frontend/handlers/storage-proxy.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { FileStream, createStorageProxy } from '../../index.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('the directory first, then the target\'s Open; a failed Open writes the owner back', { skip: etcdMissing() }, async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const client = await connectCoordination({ url: etcd.url })
  t.teardown(async () => { await client.close() })
  const root = join(tempDir(t, 'metaos-dir-order-'), 'volume')
  mkdirSync(root)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const domains: StorageDomain[] = []
  const handlers = new Map<string, StorageHandler>()
  for (const name of ['x', 'y', 'z']) {
    const coordination = await connectCoordination({ url: etcd.url })
    const d = await startStorageDomain({ root, name, volume: 'v', listen: ['http://127.0.0.1:0'], coordination })
    t.teardown(async () => { await d.close(100); await coordination.close() })
    await d.lease!.whenValid()
    domains.push(d)
    handlers.set(d.epr, perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: 'x' }, volume: 'v' }, createStorageProxy(d.endpoints[0]!, { caller: FRONTEND_CALLER })))
  }
  t.teardown(async () => { for (const h of handlers.values()) await h.close() })
  for (const epr of handlers.keys()) await perf.probe(epr)
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'v', hangMs: 500, directory: coordinatedStreams(client) })
  const f = await FileStream.open('o.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  await f.write(Buffer.from('one '))
  const s = dispatcher.affinity.entries()[0]!
  const home = s.epr
  const [gone, last] = domains.filter((d) => d.epr !== home)
  t.match(await client.streams.get(s.stream), { owner: home, epoch: 1 })

  // The target dies before the move: its Open is refused (nothing listens), after the directory moved to epoch 2.
  await gone!.close(100)
  await t.rejects(dispatcher.migrate(s.id, 'test', gone!.epr), { code: 'TRANSPORT_ERROR' }, 'the migration fails')
  t.equal(s.epr, home, 'the stream stays on its domain')
  t.equal(s.epoch, 3, 'at epoch 3: 2 named the target, 3 its own domain again')
  t.match(await client.streams.get(s.stream), { owner: home, epoch: 3 }, 'the directory names the stream\'s domain again')
  await f.write(Buffer.from('two '))

  // Moved for real: the directory names the target at epoch 4 before the target opens it at 4.
  await dispatcher.migrate(s.id, 'test', last!.epr)
  t.equal(s.epr, last!.epr)
  t.equal(s.epoch, 4)
  t.match(await client.streams.get(s.stream), { owner: last!.epr, epoch: 4 })
  t.equal(last!.fence.epochOf(s.stream), 4, 'the target knows epoch 4 (from the directory)')
  await f.write(Buffer.from('three'))
  await f.close()
  t.equal(readFileSync(join(root, 'o.bin'), 'utf8'), 'one two three')
})
