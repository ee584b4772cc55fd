// `metaos pmt`: discovers real announced domains, measures them, prints the table and explains a
// placement with the shipped example rules.
import { isolateNetwork } from './helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { CLI_PATH, spawnDomain } from '../domains/domain-process.js'
import { PACKAGE_ROOT } from '../wsdl/package-root.js'
import { tempDir } from './helpers/temp-dir.js'

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
