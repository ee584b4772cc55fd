// The PMT exchange across hosts (issue 19, part 4): over https with mutual TLS, peers proven by a
// certificate of the cluster's CA naming their module id; what a peer says is weighed, not obeyed.
// A real frontend's stack in this process — a PMT, a performance module probing two real storage
// domains, a Supervisor — serves the exchange; an honest peer, a rogue frontend holding a valid
// certificate, and callers without one talk to it. The rogue reports errorRate 1 for every domain,
// from the future, out of bounds, for EPRs nobody announced, and floods: no healthy domain is
// isolated, each refusal is counted. Finally two modules find each other through an https
// discovery proxy (no multicast between hosts) and exchange over TLS.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { DiscoveryProxy } from '../../discovery/discovery-proxy.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { PERFORMANCE_PATH, PmtExchange, type ExchangeTls } from '../../frontend/placement/pmt-exchange.js'
import { Supervisor } from '../../frontend/assembly/supervisor.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { initCa, issueClientCertificate, issueDomainCertificate, type IssuedCertificate } from '../../security/pki.js'
import { createClient } from '../../soap-runtime/client.js'
import { createHttpTransport, type ClientTls } from '../../soap-runtime/http-transport.js'
import { PerformanceServiceDescriptor, type PerformanceOperations, type PmtEntry } from '../../wsdl/generated/performance-service.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const identity = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v' })
const row = (epr: string, o: Partial<PmtEntry> = {}): PmtEntry => ({ epr, endpoint: ['http://127.0.0.1:1/storage'], hosting: 'process', sysname: 'Linux', release: '6.1', volume: 'v', latencyMs: 1, errorRate: 0, calls: 1, measuredAt: Date.now(), state: 'healthy', origin: 'self', ...o })

async function cluster (t: Test): Promise<{ ca: Buffer, tls: (c: IssuedCertificate) => ExchangeTls, certs: Record<'f' | 'h' | 'r' | 'proxy', IssuedCertificate & { epr: string }>, app: IssuedCertificate, rogueCa: IssuedCertificate & { epr: string } }> {
  const dir = tempDir(t, 'metaos-pmt-tls-')
  const { caCertPath } = await initCa(join(dir, 'pki'))
  const ca = readFileSync(caCertPath)
  const certs = {
    f: await issueDomainCertificate(join(dir, 'pki'), { name: 'frontend-f' }),
    h: await issueDomainCertificate(join(dir, 'pki'), { name: 'frontend-h' }),
    r: await issueDomainCertificate(join(dir, 'pki'), { name: 'frontend-r' }),
    proxy: await issueDomainCertificate(join(dir, 'pki'), { name: 'proxy' }),
  }
  const app = await issueClientCertificate(join(dir, 'pki'), { identity: 'app' })
  await initCa(join(dir, 'rogue'))
  const rogueCa = await issueDomainCertificate(join(dir, 'rogue'), { name: 'frontend-r', epr: certs.r.epr })
  const tls = (c: IssuedCertificate): ExchangeTls => ({ ca, cert: readFileSync(c.certPath), key: readFileSync(c.keyPath) })
  return { ca, tls, certs, app, rogueCa }
}

/** A raw SOAP client of the exchange: what a rogue can send, row by row. */
function rawPeer (t: Test, endpoint: string, tls: ClientTls): { send: (moduleId: string, rows: PmtEntry[]) => Promise<unknown> } {
  const c = createClient<PerformanceOperations>(PerformanceServiceDescriptor, createHttpTransport(endpoint, PERFORMANCE_PATH, { tls }), { timingHeader: 'ServiceTiming', timeoutMs: 5000 })
  t.teardown(async () => { await c.close() })
  return { send: async (moduleId, rows) => (await c.invoke('ExchangeTable', { moduleId, row: rows })).output }
}

t.test('over mutual TLS a rogue peer with a valid certificate isolates no healthy domain', async (t) => {
  const { ca, tls, certs, app, rogueCa } = await cluster(t)
  const d1 = await startTestDomain(t)
  const d2 = await startTestDomain(t)
  const D1 = 'urn:uuid:00000000-0000-4000-8000-0000000000d1'
  const D2 = 'urn:uuid:00000000-0000-4000-8000-0000000000d2'
  const ANNOUNCED = 'urn:uuid:00000000-0000-4000-8000-0000000000d4' // heard announced, not tracked here
  const NOBODY = 'urn:uuid:00000000-0000-4000-8000-0000000000d9'

  // The frontend F: PMT, performance module probing d1 and d2, supervisor, exchange over https.
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 100 })
  const h1 = perf.track(identity(D1, d1.http), createStorageProxy(d1.http))
  const h2 = perf.track(identity(D2, d2.bus), createStorageProxy(d2.bus))
  const supervisor = new Supervisor({ pmt, dispatchers: [], perf, intervalMs: 50 })
  const known = new Set([D1, D2, ANNOUNCED])
  const f = new PmtExchange({ pmt, moduleId: certs.f.epr, tls: tls(certs.f), knows: (epr) => known.has(epr) })
  t.teardown(async () => { supervisor.stop(); perf.stop(); await f.close(); await h1.close(); await h2.close() })
  perf.start()
  supervisor.start()
  const [endpoint] = await f.serve(['https://127.0.0.1:0'])
  t.match(endpoint, /^https:\/\/127\.0\.0\.1:\d+\/performance$/, 'the exchange is served over https')
  for (let i = 0; i < 100 && !(pmt.row(D1)!.measures.measuredAt > 0 && pmt.row(D2)!.measures.measuredAt > 0); i++) await sleep(20)

  // Who may talk: a certificate of the CA naming the module id it claims.
  const asRogue = rawPeer(t, endpoint!, { ...tls(certs.r), expectUri: certs.f.epr })
  await t.rejects(rawPeer(t, endpoint!, { ca }).send(certs.r.epr, []), { code: 'UNAUTHORIZED', message: /client certificate/ }, 'no client certificate: fault UNAUTHORIZED')
  await t.rejects(rawPeer(t, endpoint!, { ca, cert: readFileSync(rogueCa.certPath), key: readFileSync(rogueCa.keyPath) }).send(certs.r.epr, []), { code: 'UNAUTHORIZED' }, 'a certificate of another CA: refused')
  await t.rejects(rawPeer(t, endpoint!, { ca, cert: readFileSync(app.certPath), key: readFileSync(app.keyPath) }).send(certs.h.epr, [row(D1)]), { code: 'UNAUTHORIZED', message: /not the module/ },
    'a valid certificate claiming another module\'s id: refused')
  t.equal(f.refused.identity, 3, 'each counted')

  // The honest peer H exchanges both ways; its view of d1 does not override F's own fresh measure.
  const hPmt = new PerformanceMappingTable()
  const hPerf = new PerformanceModule({ pmt: hPmt })
  const hh = hPerf.track(identity(D1, d1.http), createStorageProxy(d1.http))
  await hPerf.probe(D1)
  const h = new PmtExchange({ pmt: hPmt, moduleId: certs.h.epr, tls: tls(certs.h) })
  t.teardown(async () => { await h.close(); await hh.close() })
  const [hEndpoint] = await h.serve(['https://127.0.0.1:0'])
  await t.rejects(f.exchangeWith(hEndpoint!), { code: 'INVALID_ARGUMENT' }, 'over TLS a peer is named')
  await t.rejects(f.exchangeWith(hEndpoint!, certs.r.epr), { code: 'UNAUTHORIZED' }, 'a peer whose certificate does not name the module expected: refused (TLS)')
  const ownBefore = pmt.row(D1)!.measures.measuredAt
  t.equal(await f.exchangeWith(hEndpoint!, certs.h.epr), 1, 'F asked H over mutual TLS: H sent its one row')
  t.equal(await h.exchangeWith(endpoint!, certs.f.epr), 2, 'H asked F: F sent its two rows')
  t.ok(hPmt.row(D2) !== undefined, 'H learnt d2 from F')
  t.ok(pmt.row(D1)!.measures.measuredAt >= ownBefore && f.refused.ownFresh >= 1, 'H\'s row of d1 did not replace F\'s own fresh measure')

  // Rows out of bounds, from the future, for nobody's EPR are refused; a sane row of an announced EPR is taken.
  const now = Date.now()
  await asRogue.send(certs.r.epr, [
    row(D1, { latencyMs: NaN }), row(D1, { latencyMs: -5 }), row(D2, { errorRate: 1.5 }), row(D2, { mbPerSec: 1e12 }),
    row(D1, { errorRate: 1, measuredAt: now + 3_600_000 }), row(NOBODY, { errorRate: 1 }), row(ANNOUNCED, { latencyMs: 7 }),
  ])
  t.same({ insane: f.refused.insane, future: f.refused.future, unknown: f.refused.unknown }, { insane: 4, future: 1, unknown: 1 }, 'NaN and negative latency, errorRate 1.5, 10^12 MB/s; a row an hour ahead; an EPR nobody announced')
  t.equal(pmt.row(NOBODY), undefined, 'the unannounced EPR did not enter the table')
  t.equal(pmt.row(ANNOUNCED)?.measures.latencyMs, 7, 'the sane row of an announced domain F does not track was taken')

  // The rogue reports errorRate 1 for every domain, now and again, while the supervisor watches.
  const refusedBefore = f.refused.ownFresh
  for (let i = 0; i < 20; i++) {
    await asRogue.send(certs.r.epr, [row(D1, { errorRate: 1, latencyMs: 5000 }), row(D2, { errorRate: 1, latencyMs: 5000 })]).catch((e: { code?: string }) => { if (e.code !== 'QUOTA_EXCEEDED') throw e })
    await sleep(100)
  }
  // And a rogue module F pulls from: its own table, measured as failing calls, says the same.
  const rPmt = new PerformanceMappingTable()
  for (const [epr, ep] of [[D1, d1.http], [D2, d2.bus]] as const) { rPmt.upsert(identity(epr, ep)); for (let i = 0; i < 30; i++) rPmt.record(epr, { micros: 5e6, ok: false }) }
  const r = new PmtExchange({ pmt: rPmt, moduleId: certs.r.epr, tls: tls(certs.r) })
  t.teardown(async () => { await r.close() })
  const [rEndpoint] = await r.serve(['https://127.0.0.1:0'])
  t.ok(rPmt.exportOwn().every((x) => x.errorRate > 0.99), 'the rogue\'s own table says the domains fail')
  for (let i = 0; i < 5; i++) { t.equal(await f.exchangeWith(rEndpoint!, certs.r.epr), 2, `pull ${i + 1} from the rogue: two rows came`); await sleep(100) }
  await sleep(500)

  t.ok(f.refused.ownFresh - refusedBefore >= 10, `the rogue's rows were weighed and refused against F's own fresh measures (${f.refused.ownFresh - refusedBefore})`)
  t.same(supervisor.decisions.filter((d) => d.epr === D1 || d.epr === D2), [], 'the supervisor made no decision about d1 or d2')
  for (const epr of [D1, D2]) {
    const x = pmt.row(epr)!
    t.equal(x.state, 'healthy', `${epr.slice(-2)} is healthy`)
    t.ok(x.measures.errorRate < 0.3, `${epr.slice(-2)}: error rate ${x.measures.errorRate.toFixed(3)}, F's own`)
  }

  // A burst: the rogue's token bucket (2 a second, burst 10) refuses what goes beyond, before reading the rows.
  const rateBefore = f.refused.rate
  const burst = await Promise.allSettled(Array.from({ length: 40 }, async () => await asRogue.send(certs.r.epr, [row(D1, { errorRate: 1 })])))
  const quota = burst.filter((x) => x.status === 'rejected' && (x.reason as { code?: string }).code === 'QUOTA_EXCEEDED').length
  t.ok(quota >= 20, `40 exchanges at once: ${quota} refused with QUOTA_EXCEEDED`)
  t.equal(quota + burst.filter((x) => x.status === 'fulfilled').length, 40, 'the others answered')
  t.equal(f.refused.rate - rateBefore, quota, 'counted')

  // The control: the same rows merged without the exchange's rules would isolate d1.
  const cPmt = new PerformanceMappingTable()
  cPmt.upsert(identity(D1, d1.http))
  cPmt.record(D1, { micros: 500, ok: true, probe: true })
  const control = new Supervisor({ pmt: cPmt, dispatchers: [] })
  for (let i = 1; i <= 3; i++) { cPmt.merge(row(D1, { errorRate: 1, measuredAt: Date.now() + i }), certs.r.epr); control.tick(); await sleep(5) }
  for (let i = 0; i < 50 && cPmt.row(D1)!.state !== 'isolated'; i++) await sleep(10)
  t.equal(cPmt.row(D1)!.state, 'isolated', 'control: without the rules, the rogue\'s rows isolate a healthy domain')
})

t.test('modules on different hosts find each other through an https discovery proxy and exchange over TLS', async (t) => {
  const { ca, tls, certs } = await cluster(t)
  const d1 = await startTestDomain(t)
  const proxy = new DiscoveryProxy({ epr: 'urn:uuid:00000000-0000-4000-8000-00000000abcd', listen: ['https://127.0.0.1:0'], tls: { cert: readFileSync(certs.proxy.certPath), key: readFileSync(certs.proxy.keyPath), clientCa: ca } })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  const url = proxy.xaddrs[0]!
  const make = async (c: IssuedCertificate & { epr: string }, measure: string | undefined): Promise<{ pmt: PerformanceMappingTable, x: PmtExchange }> => {
    const pmt = new PerformanceMappingTable()
    const perf = new PerformanceModule({ pmt })
    if (measure !== undefined) {
      const handler = perf.track(identity(measure, d1.http), createStorageProxy(d1.http))
      t.teardown(async () => { await handler.close() })
      await perf.probe(measure)
    }
    const x = new PmtExchange({ pmt, moduleId: c.epr, tls: tls(c) })
    t.teardown(async () => { await x.close() })
    await x.serve(['https://127.0.0.1:0'])
    await x.join({ proxy: url, intervalMs: 200 })
    return { pmt, x }
  }
  const a = await make(certs.f, 'urn:uuid:00000000-0000-4000-8000-0000000000d1')
  const b = await make(certs.h, undefined)
  for (let i = 0; i < 100 && b.pmt.row('urn:uuid:00000000-0000-4000-8000-0000000000d1') === undefined; i++) await sleep(50)
  t.ok(b.pmt.row('urn:uuid:00000000-0000-4000-8000-0000000000d1') !== undefined, 'b learnt a\'s measure, both found through the proxy')
  t.same([...proxy.registry.keys()].sort(), [certs.f.epr, certs.h.epr].sort(), 'each module registered itself, under the EPR its certificate names')
  t.equal(a.x.failures + b.x.failures, 0, 'no exchange failed')
  t.equal(proxy.refused.count, 0, 'and the proxy refused nothing')
})
