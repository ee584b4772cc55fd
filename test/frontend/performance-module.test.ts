// The performance module measures real domains (and the local kernel) from real calls and from
// Open/Close probes of a sample file, probes only what real traffic left unmeasured, and records a
// domain that stops answering as failing — with a lower score that never reaches zero.
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../../index.js'
import { LocalHandler } from '../../frontend/index.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule, PROBE_FILE } from '../../frontend/placement/performance-module.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('measures from calls and probes', async (t) => {
  const a = await startTestDomain(t)
  const b = await startTestDomain(t)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 200 })
  const id = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: 'x' }, volume: 'v' })
  const pa = perf.track(id('a', a.bus), createStorageProxy(a.bus))
  const pb = perf.track(id('b', b.http), createStorageProxy(b.http, { timeoutMs: 1000 }))
  const local = perf.track(id('local', 'local'), new LocalHandler(), join(tempDir(t, 'metaos-perf-'), PROBE_FILE))
  t.teardown(async () => { perf.stop(); await pa.close(); await pb.close(); await local.close() })

  // Real calls through a FileStream on domain a.
  const fs = await FileStream.open('m.bin', { mode: 'Create', destination: pa, bufferSize: 4096 })
  for (let i = 0; i < 20; i++) await fs.write(Buffer.alloc(1000, i))
  await fs.write(Buffer.alloc(256 * 1024, 7))
  await fs.close()
  const ra = pmt.row('a')!
  t.ok(ra.measures.calls >= 8, `real calls counted (${ra.measures.calls})`)
  t.ok(ra.measures.latencyMs! > 0 && ra.p50Ms! > 0, 'latency learnt from them')
  t.ok(ra.measures.mbPerSec! > 0, 'throughput learnt from the large write')
  t.equal(ra.measures.probedAt, undefined, 'a busy domain was not probed')

  // Probes for what no call measured.
  await perf.probeIdle()
  t.ok(pmt.row('b')!.measures.probeLatencyMs! > 0, 'the idle domain was probed')
  t.ok(pmt.row('local')!.measures.probeLatencyMs! >= 0, 'the local kernel too')
  t.ok(existsSync(join(b.root, PROBE_FILE)), 'the sample file lives in the domain\'s root')
  t.equal(pmt.row('b')!.measures.calls, 0, 'probes are not application calls')

  // A domain that stops: probes fail, its score drops, never to zero.
  const before = pmt.row('b')!.score.score
  await b.domain.close(0)
  for (let i = 0; i < 5; i++) await perf.probe('b')
  const after = pmt.row('b')!
  t.ok(after.measures.errors >= 5, 'failed probes are errors')
  t.ok(after.score.score < before && after.score.score > 0, `score fell from ${before.toFixed(1)} to ${after.score.score.toFixed(1)}, not to zero`)
  t.equal(pmt.rows()[pmt.rows().length - 1]!.identity.epr, 'b', 'and it ranks last')

  // A caller's own mistake says nothing bad of the domain.
  const errorsA = pmt.row('a')!.measures.errors
  await t.rejects(FileStream.open('missing.bin', { destination: pa }), { code: 'FILE_NOT_FOUND' })
  t.equal(pmt.row('a')!.measures.errors, errorsA)
})
