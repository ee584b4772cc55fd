// `metaos pmt`: discovers real announced domains, measures them, prints the table and explains a
// placement with the shipped example rules.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, type } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CLI_PATH, spawnDomain } from '../../domains/domain-process.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('metaos pmt --json --explain', async (t) => {
  const dir = tempDir(t, 'metaos-pmt-')
  mkdirSync(join(dir, 'a'))
  mkdirSync(join(dir, 'b'))
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const bus = await spawnDomain(['storage', '--root', join(dir, 'a'), '--listen', `unix:${join(dir, 'a.sock')}`, '--announce'], { env })
  t.teardown(async () => { await bus.stop() })
  const net = await spawnDomain(['storage', '--root', join(dir, 'b'), '--listen', 'http://127.0.0.1:0', '--announce', '--zone', 'rack2'], { env })
  t.teardown(async () => { await net.stop() })
  const { stdout } = await promisify(execFile)(process.execPath, [CLI_PATH, 'pmt', '--json', '--probes', '3', '--rules', join(PACKAGE_ROOT, 'docs', 'examples', 'rules.json'), '--explain', 'Open big.bin 8388608'], { env, timeout: 30_000 })
  const out = JSON.parse(stdout) as { rows: Array<{ identity: { epr: string, zone?: string, kernel: { release: string } }, score: { score: number }, measures: { probedAt?: number } }>, explanation: { chosen: string, fired: string[] } }
  const eprs = out.rows.map((r) => r.identity.epr)
  t.ok(eprs.includes(bus.ready.epr) && eprs.includes(net.ready.epr) && eprs.includes('local'), 'both discovered domains and the local kernel')
  t.ok(out.rows.every((r) => r.score.score > 0 && r.measures.probedAt !== undefined), 'every row measured by probes and scored')
  t.equal(out.rows.find((r) => r.identity.epr === net.ready.epr)?.identity.zone, 'rack2', 'the zone comes from the announced scope')
  t.equal(out.explanation.chosen, bus.ready.epr, 'a large write goes to the bus domain')
  t.ok(out.explanation.fired.includes('writes over 1 MB prefer a bus domain'), 'and the explanation names the rule')
})

t.test('metaos pmt --explain when no domain can take the syscall: the table, why each is out, NO_ELIGIBLE_DOMAIN, exit 3', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-pmt-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'a'))
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const bus = await spawnDomain(['storage', '--root', join(dir, 'a'), '--listen', `unix:${join(dir, 'a.sock')}`, '--announce'], { env })
  t.teardown(async () => { await bus.stop() })
  const run = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => {
    try {
      const r = await promisify(execFile)(process.execPath, [CLI_PATH, 'pmt', '--probes', '1', ...args], { env, timeout: 30_000 })
      return { code: 0, ...r }
    } catch (e) {
      const x = e as { code: number, stdout: string, stderr: string }
      return { code: x.code, stdout: x.stdout, stderr: x.stderr }
    }
  }
  const short = bus.ready.epr.replace('urn:uuid:', '').slice(0, 13)

  // Rules that leave nothing: each domain is out by a rule of its own.
  const rules = join(dir, 'rules.json')
  writeFileSync(rules, JSON.stringify({ rules: [{ name: 'never the bus', exclude: { transport: 'bus' } }, { name: 'never the local kernel', exclude: { transport: 'local' } }] }))
  const byRule = await run(['--rules', rules, '--explain', 'Open big.bin 8388608'])
  t.equal(byRule.code, 3, 'exit 3: no eligible domain')
  t.match(byRule.stdout, /^domain +endpoint/, 'the table is printed')
  t.match(byRule.stdout, new RegExp(`Open big\\.bin 8388608 → no domain \\(NO_ELIGIBLE_DOMAIN\\)`))
  t.match(byRule.stdout, new RegExp(`out: ${short} +excluded by the rule "never the bus"`), 'the bus domain: out by its rule')
  t.match(byRule.stdout, /out: local +excluded by the rule "never the local kernel"/, 'the local kernel: out by its rule')
  t.equal(byRule.stderr.split('\n').filter((l) => l !== '').length, 1, 'one line on stderr')
  t.match(byRule.stderr, /^metaos pmt: NO_ELIGIBLE_DOMAIN: no storage domain can take Open big\.bin: /)

  // A vulnerability feed that lists this machine's kernel: every domain is out, and the JSON says why.
  const feed = join(dir, 'feed.json')
  writeFileSync(feed, JSON.stringify({ vulnerabilities: [{ id: 'TEST-ALL-KERNELS', action: 'exclude', affected: [{ kernel: { sysname: type(), ranges: [{ introduced: '0' }] } }] }] }))
  const byFeed = await run(['--json', '--feed', feed, '--explain', 'Write notes.txt'])
  t.equal(byFeed.code, 3, 'exit 3 with --json too')
  const out = JSON.parse(byFeed.stdout) as { rows: unknown[], explanation: { error: { code: string }, out: Array<{ epr: string, why: string }> } }
  t.equal(out.rows.length, 2, 'the rows are there')
  t.equal(out.explanation.error.code, 'NO_ELIGIBLE_DOMAIN')
  t.same(out.explanation.out.map((x) => x.epr).sort(), [bus.ready.epr, 'local'].sort(), 'each domain is listed as out')
  for (const x of out.explanation.out) t.equal(x.why, 'excluded by the vulnerability feed (TEST-ALL-KERNELS)', `${x.epr}: why`)
})
