// Two performance modules exchange their tables over SOAP: each learns the domains the other
// measured, the freshest measure wins, learnt rows are never sent back (no echo), and a module
// that goes silent is forgotten together with what only it knew. Modules find each other on
// WS-Discovery (in a network namespace of this file's own).
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { PmtExchange } from '../../frontend/placement/pmt-exchange.js'
import { createStorageProxy } from '../../index.js'
import { startTestDomain } from '../helpers/domain.js'

t.test('PMT exchange between modules', async (t) => {
  const d1 = await startTestDomain(t)
  const d2 = await startTestDomain(t)
  let clock = Date.now()
  const now = (): number => clock
  const pmtA = new PerformanceMappingTable({ now })
  const pmtB = new PerformanceMappingTable({ now })
  const id = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v' })
  const perfA = new PerformanceModule({ pmt: pmtA, now })
  const perfB = new PerformanceModule({ pmt: pmtB, now })
  const hA = perfA.track(id('d1', d1.http), createStorageProxy(d1.http))
  const hB = perfB.track(id('d2', d2.bus), createStorageProxy(d2.bus))
  const hB1 = perfB.track(id('d1', d1.http), createStorageProxy(d1.http))
  t.teardown(async () => { await hA.close(); await hB.close(); await hB1.close() })
  await perfA.probe('d1')
  await perfB.probe('d2')
  const a = new PmtExchange({ pmt: pmtA, moduleId: 'urn:module:a', now, peerTimeoutMs: 60_000 })
  const b = new PmtExchange({ pmt: pmtB, moduleId: 'urn:module:b', now, peerTimeoutMs: 60_000 })
  t.teardown(async () => { await a.close(); await b.close() })
  const [endpointA] = await a.serve(['http://127.0.0.1:0'])

  // b probes d1 a second after a did: fresher, but a's own measure of d1 is fresh too, and stands.
  clock += 1000
  await perfB.probe('d1')
  const ownAt = pmtA.row('d1')!.measures.measuredAt
  t.equal(await b.exchangeWith(endpointA!), 1, 'a sent the one row it measured itself')
  t.equal(pmtA.row('d1')!.measures.measuredAt, ownAt, 'a peer\'s row does not replace a\'s own fresh measure of d1')
  t.equal(a.refused.ownFresh, 1, 'counted')

  // A minute later a's own measure is stale: b's fresher one is taken.
  clock += 61_000
  await perfB.probe('d1')
  const received = await b.exchangeWith(endpointA!)
  t.equal(received, 1, 'a sent the one row it measured itself')
  t.ok(pmtA.row('d2') !== undefined, 'a learnt d2 from b')
  t.ok(pmtB.row('d1')!.measures.measuredAt === clock, 'b kept its own, fresher measure of d1')
  t.equal(pmtA.row('d1')!.measures.measuredAt, clock, 'and a took it: the freshest wins once a\'s own is stale')
  t.same(a.peers, ['urn:module:b'])
  t.same(pmtA.exportOwn().map((r) => r.epr), [], 'a learnt everything from b: nothing of its own to echo back')
  t.same(pmtB.exportOwn().map((r) => r.epr).sort(), ['d1', 'd2'])

  // A module that goes silent is forgotten, with the rows only it knew.
  clock += 120_000
  t.same(a.ageOut(), ['urn:module:b'])
  t.equal(pmtA.row('d2'), undefined, 'd2 was known only through b')
  t.ok(pmtA.row('d1') !== undefined, 'd1 is tracked by a itself and stays')
  t.equal(pmtA.exportOwn().length, 1, 'and is a\'s own again')
})

t.test('bounded', async (t) => {
  const pmt = new PerformanceMappingTable()
  const row = (i: number) => ({ epr: `e${i}`, endpoint: ['x'], hosting: 'process', sysname: 'Linux', release: '1', volume: 'v', errorRate: 0, calls: 1, measuredAt: Date.now(), state: 'healthy' as const, origin: 'self' })
  let taken = 0
  for (let i = 0; i < 50; i++) if (pmt.merge(row(i), 'm', 10)) taken++
  t.equal(taken, 10)
  t.equal(pmt.size, 10, 'no more rows than the bound')
})

t.test('modules find each other on WS-Discovery and exchange periodically', async (t) => {
  const d1 = await startTestDomain(t)
  const d2 = await startTestDomain(t)
  const make = async (epr: string, endpoint: string): Promise<{ pmt: PerformanceMappingTable, x: PmtExchange, close: () => Promise<void> }> => {
    const pmt = new PerformanceMappingTable()
    const perf = new PerformanceModule({ pmt })
    const h = perf.track({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v' }, createStorageProxy(endpoint))
    await perf.probe(epr)
    const x = new PmtExchange({ pmt, moduleId: `urn:uuid:${randomUUID()}` })
    await x.serve(['http://127.0.0.1:0'])
    await x.join({ intervalMs: 200 })
    return { pmt, x, close: async () => { await x.close(); await h.close() } }
  }
  const a = await make('d1', d1.http)
  const b = await make('d2', d2.bus)
  t.teardown(async () => { await a.close() })
  const until = async (cond: () => boolean): Promise<boolean> => {
    for (let i = 0; i < 100 && !cond(); i++) await new Promise((resolve) => setTimeout(resolve, 50))
    return cond()
  }
  t.ok(await until(() => a.pmt.row('d2') !== undefined && b.pmt.row('d1') !== undefined), 'each learnt the other\'s domain without configuration')
  t.equal(a.pmt.row('d2')!.identity.endpoints[0], d2.bus, 'with its identity')
  t.equal(a.x.failures, 0, 'no exchange failed')
  await b.close()
  t.ok(await until(() => a.pmt.row('d2') === undefined), 'the Bye of a module removes what only it knew')
})
