// The dispatcher places each new stream on the best-scoring usable domain and keeps the stream's
// calls there (affinity). Real domains; the slow one is reached through a relay that really holds
// every packet for 5 ms, not through a mock.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../../index.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { startTestDomain } from '../helpers/domain.js'
import { delayRelay } from '../helpers/delay-relay.js'

t.test('placement by score, affinity per stream', async (t) => {
  const fast = await startTestDomain(t)
  const slow = await startTestDomain(t)
  const relay = await delayRelay(t, { host: '127.0.0.1', port: Number(new URL(slow.http).port) }, 5)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const id = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: 'x' }, volume: 'v' })
  const handlers = new Map<string, StorageHandler>([
    ['fast', perf.track(id('fast', fast.bus), createStorageProxy(fast.bus))],
    ['slow', perf.track(id('slow', slow.http), createStorageProxy(relay.url('/storage')))],
  ])
  t.teardown(async () => { for (const h of handlers.values()) await h.close() })
  for (let i = 0; i < 5; i++) await perf.probeIdle().then(async () => { for (const e of handlers.keys()) await perf.probe(e) })
  t.ok(pmt.row('slow')!.measures.latencyMs! > 5, `the delayed domain measures slow (${pmt.row('slow')!.measures.latencyMs!.toFixed(1)} ms)`)
  const d = new Dispatcher(pmt, handlers)
  const p = d.place()
  t.equal(p.chosen, 'fast', 'the faster domain is chosen')
  t.same(p.ranking.map((r) => r.epr), ['fast', 'slow'], 'and the ranking explains it')

  const a = await FileStream.open('a.bin', { mode: 'Create', destination: d })
  await a.write(Buffer.from('on the fast domain'))
  pmt.setState('fast', 'isolated')
  const b = await FileStream.open('b.bin', { mode: 'Create', destination: d })
  await b.write(Buffer.from('on the slow domain'))
  await a.write(Buffer.from(', still')) // affinity: the open stream stays where it was placed
  await a.close()
  await b.close()
  t.equal(readFileSync(join(fast.root, 'a.bin'), 'utf8'), 'on the fast domain, still')
  t.equal(readFileSync(join(slow.root, 'b.bin'), 'utf8'), 'on the slow domain', 'an isolated domain gets no new stream')
  t.equal(d.affinity.size, 0, 'closed streams leave the affinity table')
  t.same(Object.fromEntries(d.placements), { fast: 1, slow: 1 })
  pmt.setState('slow', 'isolated')
  await t.rejects(FileStream.open('c.bin', { mode: 'Create', destination: d }), { code: 'NO_ELIGIBLE_DOMAIN', message: /(fast isolated by the supervisor; slow isolated|slow isolated by the supervisor; fast isolated)/ }, 'nothing usable: a clear error saying why for each domain')
})
