// The mono-wcf benchmark peer (benchmarks/wcf-peer.ts): builds the C# service and client, runs one
// second of 512 B writes through the tuned stack and checks the row's shape; and its net.tcp rows
// (benchmarks/wcf-nettcp-peer.ts: Mono's net.tcp service called by metaos's proxy); skips with the
// runner's own reason when Mono is absent (under CI: fails, naming it).
import t from 'tap'
import { monoToolchain, runWcfPeer } from '../../benchmarks/wcf-peer.js'
import { runCallSuite } from '../../benchmarks/call-suite.js'
import { partMissing } from '../helpers/require-part.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('mono-wcf peer yields a call row for 512 B', { timeout: 60_000 }, async (t) => {
  // The runner caches the compiled client in os.tmpdir(): a TMPDIR of the test's own, removed after.
  const tmp = tempDir(t, 'metaos-wcf-peer-test-')
  const before = process.env.TMPDIR
  process.env.TMPDIR = tmp
  t.teardown(() => { if (before === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = before })
  const res = await runWcfPeer({ sizes: [512], seconds: 1, tuned: true })
  if (!Array.isArray(res)) { t.pass('the mono-wcf peer', { skip: partMissing('Mono', res.skipped, 'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil') }); return }
  t.equal(res.length, 1, 'one row per size')
  const r = res[0]!
  t.match(r, { suite: 'peers', peer: 'mono-wcf', hosting: 'http', op: 'write', mode: 'call-tuned', payloadBytes: 512 })
  t.ok(r.callsPerSec! > 0, `callsPerSec > 0 (${r.callsPerSec!.toFixed(0)})`)
  t.ok(r.runs > 0, 'calls were measured')
  t.ok(r.mbPerSec! > 0, 'mbPerSec > 0')
  t.ok(r.p50us! > 0 && r.p99us! >= r.p50us!, 'p50 > 0 and p99 >= p50')
})

t.test('mono-wcf on net.tcp: metaos\'s proxy calls Mono\'s NetTcpBinding and text net.tcp service', { timeout: 120_000 }, async (t) => {
  const tmp = tempDir(t, 'metaos-wcf-nettcp-peer-test-')
  const before = process.env.TMPDIR
  process.env.TMPDIR = tmp
  t.teardown(() => { if (before === undefined) delete process.env.TMPDIR; else process.env.TMPDIR = before })
  const tools = monoToolchain()
  if ('skipped' in tools) { t.pass('the mono-wcf net.tcp peer', { skip: partMissing('Mono', tools.skipped, 'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil') }); return }
  const rows = await runCallSuite({ sizes: [512], peers: new Set(['mono-wcf-nettcp']), secondsPerCase: 0.5, rounds: 1 })
  t.same(rows.map((r) => `${r.peer}/${r.hosting} ${r.mode}`), ['mono-wcf/net.tcp call', 'mono-wcf/net.tcp call-text'], 'a binary row and a text row')
  for (const r of rows) t.ok(r.runs > 0 && r.callsPerSec! > 0 && r.p99us! >= r.p50us!, `${r.mode}: calls were measured (${r.callsPerSec!.toFixed(0)}/s)`)
})
