// Placement reacts to real speed: three domains with a real delay inside the service (fault
// injection, switched at run time), a dispatcher placing streams. 'best' leaves a domain that
// slows down and comes back when probes see it recover; 'weighted' spreads streams by score.
// Also: the fault file of a domain process, SLA/cost declared in scopes, the adaptive probe
// schedule and what probing costs.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream, createStorageProxy } from '../../index.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { declaredFromScopes, declaredScopes } from '../../discovery/storage-announcement.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

const id = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: 'x' }, volume: 'v' })

t.test('best: away from a domain that slows down, back when it recovers', async (t) => {
  const doms = await Promise.all([0, 1, 2].map(async () => await startTestDomain(t)))
  // Margins wide enough for a loaded machine (the suite runs emulated VMs beside this file).
  doms[1]!.domain.faults.delayMs = 8
  doms[2]!.domain.faults.delayMs = 20
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 100 })
  const names = ['a', 'b', 'c']
  const handlers = new Map<string, StorageHandler>(doms.map((d, i) => [names[i]!, perf.track(id(names[i]!, d.bus), createStorageProxy(d.bus))]))
  t.teardown(async () => { perf.stop(); for (const h of handlers.values()) await h.close() })
  for (let i = 0; i < 5; i++) for (const n of names) await perf.probe(n) // past the cold first connection
  perf.start()
  const d = new Dispatcher(pmt, handlers)
  const run = async (ms: number): Promise<Record<string, number>> => {
    const counts: Record<string, number> = {}
    const end = Date.now() + ms
    while (Date.now() < end) {
      const before = new Map(d.placements)
      const f = await FileStream.open('x.bin', { mode: 'Create', access: 'Write', share: 'ReadWrite', destination: d })
      const chosen = [...d.placements].find(([k, v]) => v !== before.get(k))![0]
      await f.write(Buffer.alloc(1024, 1))
      await f.close()
      counts[chosen] = (counts[chosen] ?? 0) + 1
    }
    return counts
  }
  await run(1000) // warm-up: JIT, connections, and probes (every 100 ms) past any slow first measure
  const steady = await run(600)
  t.ok((steady.a ?? 0) > (steady.b ?? 0) + (steady.c ?? 0), `the fastest gets the streams (${JSON.stringify(steady)})`)
  doms[0]!.domain.faults.delayMs = 40
  await run(400) // the calls in flight measure the slow-down
  const slowed = await run(600)
  t.ok((slowed.a ?? 0) < (slowed.b ?? 0), `a slowed domain loses the streams (${JSON.stringify(slowed)})`)
  doms[0]!.domain.faults.delayMs = 0
  // Only probes see it now (every 100 ms here): within a few seconds it wins the streams back.
  let recovered: Record<string, number> = {}
  for (let i = 0; i < 20 && !((recovered.a ?? 0) > (recovered.b ?? 0)); i++) recovered = await run(300)
  t.ok((recovered.a ?? 0) > (recovered.b ?? 0), `a recovered domain wins them back (${JSON.stringify(recovered)})`)
  const o = perf.overhead()
  t.ok(o.probes > 0 && o.probeCallsPerCall < 0.5, `probes are a small share of the calls (${(o.probeCallsPerCall * 100).toFixed(1)}%)`)
})

t.test('weighted: streams in proportion to score^k among the first tier', async (t) => {
  let clock = 1_000_000
  const pmt = new PerformanceMappingTable({ now: () => clock })
  for (const [n, ms] of [['a', 1], ['b', 3]] as const) {
    pmt.upsert(id(n, n))
    for (let i = 0; i < 20; i++) pmt.record(n, { micros: ms * 1000, ok: true })
  }
  const handlers = new Map<string, StorageHandler>([['a', {} as StorageHandler], ['b', {} as StorageHandler]])
  let seed = 1
  const random = (): number => { seed = (seed * 16807) % 2147483647; return seed / 2147483647 }
  const d = new Dispatcher(pmt, handlers, { policy: 'weighted', random })
  const counts: Record<string, number> = { a: 0, b: 0 }
  for (let i = 0; i < 4000; i++) counts[d.place().chosen]!++
  const [sa, sb] = [pmt.row('a')!.score.score, pmt.row('b')!.score.score]
  const expected = sa * sa / (sa * sa + sb * sb)
  t.ok(Math.abs(counts.a! / 4000 - expected) < 0.03, `share of a ${(counts.a! / 4000).toFixed(3)} ≈ ${expected.toFixed(3)}`)
  t.ok(counts.b! > 0, 'the slower domain still gets some streams')
  pmt.setState('a', 'isolated')
  t.equal(d.place().chosen, 'b', 'only usable domains are drawn')
  clock += 1
})

t.test('the fault file of a domain process slows it down and back', async (t) => {
  const dir = tempDir(t, 'metaos-fault-')
  const file = join(dir, 'fault.json')
  const p = await spawnDomain(['storage', '--root', dir, '--listen', 'http://127.0.0.1:0', '--fault-file', file, '--log-level', 'silent'])
  const proxy = createStorageProxy(p.ready.endpoints[0]!)
  t.teardown(async () => { await proxy.close(); await p.stop() })
  // Service-side time (the timing header, ms): what the fault adds, not what a loaded machine does
  // to the round trip. The domain polls the file, so each change is awaited (up to 5 s) rather
  // than assumed after a fixed sleep.
  const time = async (): Promise<number> => ((await proxy.invoke('GetDomainInfo', {})).serviceMicros ?? Infinity) / 1000
  const until = async (ok: (ms: number) => boolean): Promise<number> => {
    let ms = await time()
    for (const end = Date.now() + 5000; !ok(ms) && Date.now() < end; ms = await time()) await sleep(50)
    return ms
  }
  await time()
  t.ok(await until((ms) => ms < 50) < 50, 'no fault: fast')
  writeFileSync(file, JSON.stringify({ delayMs: 150 }))
  t.ok(await until((ms) => ms >= 150) >= 150, 'the delay is in the service')
  writeFileSync(file, '{not json')
  t.ok(await until((ms) => ms < 50) < 50, 'a malformed file means no fault')
})

t.test('SLA and cost declared in scopes', async (t) => {
  const s = declaredScopes({ sla: 0.9, costPerCall: 0.25, costPerMB: 2 })
  t.same(s, ['metaos://sla/0.9', 'metaos://cost/call/0.25', 'metaos://cost/mb/2'])
  t.same(declaredFromScopes(['metaos://hosting/process', ...s]), { sla: 0.9, costPerCall: 0.25, costPerMB: 2 })
  t.same(declaredFromScopes(['metaos://sla/7', 'metaos://cost/call/-1', 'metaos://cost/mb/']), {}, 'out of range or malformed: ignored')
  const pmt = new PerformanceMappingTable()
  pmt.upsert(id('cheap', 'x'), { costPerCall: 0 })
  pmt.upsert(id('dear', 'y'), { costPerCall: 1 })
  for (const n of ['cheap', 'dear']) pmt.record(n, { micros: 1000, ok: true })
  t.ok(pmt.row('cheap')!.score.score > pmt.row('dear')!.score.score, 'a costlier domain scores lower, all else equal')
})

t.test('the probe schedule adapts to load', async (t) => {
  let clock = 0
  const pmt = new PerformanceMappingTable({ now: () => clock })
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 1000, idleProbeIntervalMs: 30_000, now: () => clock })
  const h = perf.track(id('a', 'a'), { destination: 'a', invoke: async () => ({ output: {}, totalMicros: 100, serviceMicros: 50 }) as never, close: async () => {} })
  t.equal(perf.probeIntervalMs, 30_000, 'quiet application: probes far apart')
  clock = 100_000
  await h.invoke('Flush', { handle: 'x' })
  t.equal(perf.probeIntervalMs, 1000, 'busy application: idle domains probed often')
  clock += 31_000
  t.equal(perf.probeIntervalMs, 30_000, 'quiet again: backs off')
})
