// The coordination suite through the CLI, on a tiny budget, for the shape of what it writes (not for
// speed): Open, Close and Write rows for a domain without coordination and with it on an etcd of 1
// and of 3 members, each with its ratios to the plain domain.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'
import type { CoordinationResult } from '../../benchmarks/coordination-suite.js'
import { etcdMissing } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

t.test('metaos bench --suite coordination writes rows and ratios', async (t) => {
  const json = join(tempDir(t, 'metaos-coordination-bench-'), 'c.json')
  const r = spawnSync(process.execPath, [packageFile('dist', 'cli', 'metaos.js'), 'bench', '--suite', 'coordination', '--rounds', '1', '--runs', '4', '--json', json], { encoding: 'utf8', env: { ...process.env, METAOS_LOG_LEVEL: 'silent' }, timeout: 120_000 })
  t.equal(r.status, 0, r.stderr)
  t.match(r.stdout, /Open +etcd 3/, 'the table')
  const c = (JSON.parse(readFileSync(json, 'utf8')) as { coordination: CoordinationResult }).coordination
  t.same(c.configs, ['plain', 'etcd 1', 'etcd 3'])
  t.match(c, { rounds: 1, stopped: false })
  t.same(c.rows.map((x) => `${x.op}/${x.config}`), ['Open/plain', 'Open/etcd 1', 'Open/etcd 3', 'Close/plain', 'Close/etcd 1', 'Close/etcd 3', 'Write 4 KiB/plain', 'Write 4 KiB/etcd 1', 'Write 4 KiB/etcd 3'])
  for (const x of c.rows) {
    t.ok(x.stat.n === 4 && x.stat.p50us > 0 && x.stat.p99us >= x.stat.p50us, `${x.op} ${x.config}: measured`)
    const ref = c.rows.find((y) => y.op === x.op && y.config === 'plain')!
    t.ok(Math.abs(x.p50Ratio - x.stat.p50us / ref.stat.p50us) < 1e-9, `${x.op} ${x.config}: its ratio to plain`)
  }
})
