// The rules engine: validation with clear errors, release ranges, choose/exclude/prefer/avoid with
// the score deciding within a tier, and the shipped example rules driving a real dispatcher.
import t from 'tap'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RulesEngine, releaseInRange, validateRules } from '../../frontend/placement/rules-engine.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { FileStream, createStorageProxy } from '../../index.js'
import { LocalHandler } from '../../frontend/index.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('release ranges', async (t) => {
  t.ok(releaseInRange('6.1.0-28-cloud-amd64', '>=6.1 <6.2'))
  t.notOk(releaseInRange('6.18.44-fc', '>=6.1 <6.2'))
  t.ok(releaseInRange('6.18.44-fc', '>6.2'))
  t.ok(releaseInRange('5.10.0', '=5.10'))
  t.notOk(releaseInRange('5.10.0', 'garbage'))
})

t.test('validation errors name the rule and the field', async (t) => {
  const code = { code: 'INVALID_ARGUMENT' }
  t.throws(() => validateRules({}), code)
  t.throws(() => validateRules({ rules: [{ prefer: {} }] }), { message: /rule 1: "name"/ })
  t.throws(() => validateRules({ rules: [{ name: 'x' }] }), { message: /needs one of choose, exclude, prefer, avoid/ })
  t.throws(() => validateRules({ rules: [{ name: 'x', prefer: { colour: 'red' } }] }), { message: /unknown selector "prefer.colour"/ })
  t.throws(() => validateRules({ rules: [{ name: 'x', when: { size: 3 }, prefer: {} }] }), { message: /unknown condition "when.size"/ })
  t.throws(() => validateRules({ rules: [{ name: 'x', exclude: { release: 'new' } }] }), { message: /"exclude.release" must look like/ })
  const dir = tempDir(t, 'metaos-rules-')
  writeFileSync(join(dir, 'bad.json'), '{ "rules": [')
  t.throws(() => RulesEngine.fromFile(join(dir, 'bad.json')), { code: 'INVALID_ARGUMENT', message: /not readable JSON/ })
  t.equal(RulesEngine.fromFile(join(PACKAGE_ROOT, 'docs', 'examples', 'rules.json')).rules.length, 4, 'the shipped example is valid')
})

t.test('the example rules drive a real dispatcher', async (t) => {
  const bus = await startTestDomain(t)
  const net = await startTestDomain(t)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const id = (epr: string, endpoint: string, release = '6.18.44'): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release }, volume: 'v' })
  const scratch = tempDir(t, 'metaos-scratch-')
  const handlers = new Map<string, StorageHandler>([
    ['bus', perf.track(id('bus', bus.bus), createStorageProxy(bus.bus))],
    ['net', perf.track(id('net', net.http), createStorageProxy(net.http))],
    ['old', perf.track(id('old', net.http, '6.1.0-28'), createStorageProxy(net.http))],
    ['local', perf.track(id('local', 'local'), new LocalHandler(), join(scratch, '.metaos-probe'))],
  ])
  t.teardown(async () => { for (const h of handlers.values()) await h.close() })
  // The "old" kernel is the fastest on paper, but it is in the vulnerability feed.
  for (let i = 0; i < 20; i++) {
    pmt.record('old', { micros: 100, ok: true })
    pmt.record('net', { micros: 300, ok: true })
    pmt.record('bus', { micros: 600, ok: true })
    pmt.record('local', { micros: 50, ok: true })
  }
  const rules = RulesEngine.fromFile(join(PACKAGE_ROOT, 'docs', 'examples', 'rules.json'))
  const d = new Dispatcher(pmt, handlers, { rules, vulnerable: (r) => releaseInRange(r.identity.kernel.release, '>=6.1 <6.2') })
  const small = d.place({ op: 'Open', path: 'small.txt', bytes: 4096 })
  t.equal(small.chosen, 'net', 'small: the best score among what is left (old excluded, local avoided)')
  t.same(small.fired, ['kernels in the vulnerability feed are excluded', 'the local kernel only for scratch'])
  t.notOk(small.ranking.some((r) => r.epr === 'old'), 'the vulnerable kernel is not a candidate')
  const big = d.place({ op: 'Open', path: 'big.bin', bytes: 8 * 1048576 })
  t.equal(big.chosen, 'bus', 'writes over 1 MB prefer a bus domain, though its score is lower')
  const s = d.place({ op: 'Open', path: `/scratch/${'x'}` })
  t.equal(s.chosen, 'local', 'files under /scratch stay local')
  // And for real: a FileStream under /scratch lands on this machine's kernel.
  const target = join(scratch, 'note.txt')
  const rulesScratch = new RulesEngine([{ name: 'scratch dir stays local', when: { pathPrefix: scratch }, choose: { transport: 'local' } }, ...rules.rules])
  const d2 = new Dispatcher(pmt, handlers, { rules: rulesScratch, vulnerable: (r) => releaseInRange(r.identity.kernel.release, '>=6.1 <6.2') })
  const f = await FileStream.open(target, { mode: 'Create', destination: d2 })
  await f.write(Buffer.from('local'))
  await f.close()
  t.equal(readFileSync(target, 'utf8'), 'local')
})
