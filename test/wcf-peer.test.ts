// The mono-wcf benchmark peer (benchmarks/wcf-peer.ts): builds the C# service and client, runs one
// second of 512 B writes through the tuned stack and checks the row's shape; skips with the
// runner's own reason when Mono is absent.
import t from 'tap'
import { runWcfPeer } from '../benchmarks/wcf-peer.js'

t.test('mono-wcf peer yields a call row for 512 B', { timeout: 60_000 }, async (t) => {
  const res = await runWcfPeer({ sizes: [512], seconds: 1, tuned: true })
  if (!Array.isArray(res)) { t.skip(res.skipped); return }
  t.equal(res.length, 1, 'one row per size')
  const r = res[0]!
  t.match(r, { suite: 'peers', peer: 'mono-wcf', hosting: 'http', op: 'write', mode: 'call-tuned', payloadBytes: 512 })
  t.ok(r.callsPerSec! > 0, `callsPerSec > 0 (${r.callsPerSec!.toFixed(0)})`)
  t.ok(r.runs > 0, 'calls were measured')
  t.ok(r.mbPerSec! > 0, 'mbPerSec > 0')
  t.ok(r.p50us! > 0 && r.p99us! >= r.p50us!, 'p50 > 0 and p99 >= p50')
})
