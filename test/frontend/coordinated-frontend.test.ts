// A frontend with coordination (in a network namespace of this file's own, a real etcd): PMT rows
// through the etcd measure board weighed by the direct exchange's rules; and FileStream's
// 'discover' with METAOS_COORDINATION — its stream is in the stream directory (owner, epoch) while
// it is open, and the frontend's measures are on the board.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectCoordination, type Coordination } from '../../coordination/connect.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { closeSharedFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { closeStorageRegistry } from '../../frontend/index.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PmtBoard } from '../../frontend/placement/pmt-board.js'
import { FileStream, closeSharedProxies } from '../../index.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const id = (epr: string): DomainIdentity => ({ epr, endpoints: ['http://127.0.0.1:1/storage'], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v' })

async function until (what: () => boolean, ms = 5000): Promise<boolean> {
  for (let i = 0; i < ms / 20 && !what(); i++) await sleep(20)
  return what()
}

t.test('with etcd', async (t) => {
  const cluster = await startEtcdCluster(t, { members: 1 })
  const client = async (): Promise<Coordination> => {
    const c = await connectCoordination({ url: cluster.url, leaseTtlSeconds: 2 })
    t.teardown(async () => { await c.close() })
    return c
  }

  await t.test('measures through etcd, weighed like the direct exchange', async (t) => {
    const [ca, cb] = [await client(), await client()]
    const [pmtA, pmtB] = [new PerformanceMappingTable(), new PerformanceMappingTable()]
    pmtA.upsert(id('urn:d1'))
    pmtA.upsert(id('urn:secret'))
    pmtA.record('urn:d1', { micros: 2000, ok: true })
    pmtA.record('urn:secret', { micros: 3000, ok: true })
    const la = ca.frontendLease('urn:module:a')
    const a = new PmtBoard({ pmt: pmtA, board: ca.measures, lease: la, moduleId: 'urn:module:a', intervalMs: 100 })
    const b = new PmtBoard({ pmt: pmtB, board: cb.measures, lease: cb.frontendLease('urn:module:b'), moduleId: 'urn:module:b', intervalMs: 100, knows: (epr) => epr === 'urn:d1' })
    t.teardown(async () => { await a.close(); await b.close() })
    await b.start()
    await a.start()
    t.ok(await until(() => pmtB.row('urn:d1') !== undefined), 'b learnt a\'s measure of d1 through etcd')
    t.equal(pmtB.row('urn:d1')?.measures.measuredAt, pmtA.row('urn:d1')?.measures.measuredAt, 'a\'s measure as a made it')
    t.same(pmtB.exportOwn(), [], 'learnt, not b\'s own: b never publishes it again (no echo)')
    t.equal(pmtB.row('urn:secret'), undefined, 'a domain b never heard announced is refused')
    t.ok(b.refused.unknown > 0, 'and counted')
    t.same([...b.peers], ['urn:module:a'])
    t.same(pmtA.exportOwn().map((r) => r.epr).sort(), ['urn:d1', 'urn:secret'], 'a\'s rows stay its own')
    await a.close()
    await la.release()
    t.ok(await until(() => pmtB.row('urn:d1') === undefined), 'a\'s lease gone: what only a knew goes from b\'s table')
    // A row out of bounds, published by hand, is refused.
    const lx = ca.frontendLease('urn:module:x')
    await ca.measures.publish('urn:module:x', [{ epr: 'urn:d1', endpoint: [], hosting: 'process', sysname: 'Linux', release: '1', volume: 'v', errorRate: 7, calls: 1, measuredAt: Date.now(), state: 'healthy', origin: 'self' }, { epr: 'urn:d1', endpoint: 'x' }], lx)
    t.ok(await until(() => b.refused.insane >= 2), 'insane rows refused (an error rate of 7, an endpoint that is no list)')
    t.equal(pmtB.row('urn:d1'), undefined)
  })

  await t.test("'discover' with METAOS_COORDINATION: the stream in the directory, the measures on the board", async (t) => {
    const root = join(tempDir(t, 'metaos-coord-front-'), 'v')
    mkdirSync(root)
    const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
    const d = await spawnDomain(['storage', '--root', root, '--volume', 'cv', '--listen', 'http://127.0.0.1:0', '--announce', '--coordination', cluster.url], { env })
    const saved = process.env.METAOS_COORDINATION
    process.env.METAOS_COORDINATION = cluster.url
    t.teardown(async () => {
      if (saved === undefined) delete process.env.METAOS_COORDINATION; else process.env.METAOS_COORDINATION = saved
      await closeSharedFrontend(); await closeSharedProxies(); await closeStorageRegistry()
      await d.stop()
    })
    const watcher = await client()
    const boards: string[] = []
    const stop = await watcher.measures.watch((e) => { if (e.type === 'put') boards.push(e.moduleId) })
    t.teardown(stop)
    const f = await FileStream.open('x.bin', { mode: 'Create', destination: 'discover', volume: 'cv' })
    await f.write(Buffer.from('coordinated'))
    const streams = await watcher.streams.list()
    t.equal(streams.length, 1, 'one stream in the directory')
    t.match(streams[0], { volume: 'cv', path: 'x.bin', owner: d.ready.epr, epoch: 1 }, 'its owner and epoch')
    t.match(streams[0]?.frontend, /^urn:uuid:/, 'and the frontend holding it')
    t.ok(await until(() => boards.includes(streams[0]!.frontend!)), 'the frontend publishes its measures on the board')
    t.ok((await watcher.holders()).some((h) => h.kind === 'frontend' && h.id === streams[0]!.frontend), 'under a lease of its own')
    await f.close()
    let left = 1
    for (let i = 0; i < 100 && left > 0; i++) { left = (await watcher.streams.list()).length; if (left > 0) await sleep(20) }
    t.equal(left, 0, 'closed: gone from the directory')
  })
})
