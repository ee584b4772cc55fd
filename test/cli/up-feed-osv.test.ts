// `metaos up --feed DIR` as a real process, with a directory of OSV records: one matches the Node.js
// version the domains report (the running node's), with a CVSS v3.1 vector of 7.5 — both domains
// are lowered, and `metaos status --json` shows the cut of their scores (exposure 0.325) and what
// matched; a malformed record beside it is logged with its file and id and skipped, the rest used.
import t from 'tap'
import { execFile, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { tempDir } from '../helpers/temp-dir.js'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
const dir = tempDir(t, 'metaos-up-osv-')
// A TMPDIR of this file's own: `metaos up` records where its status is in $TMPDIR.
const ENV = { ...process.env, METAOS_LOG_LEVEL: 'warn', TMPDIR: dir }
delete ENV.METAOS_CONFIG

const feed = join(dir, 'osv')
mkdirSync(feed)
const [major] = process.versions.node.split('.')
writeFileSync(join(feed, 'TEST-NODE-OSV.json'), JSON.stringify({
  schema_version: '1.5.0', id: 'TEST-NODE-OSV', modified: '2024-01-01T00:00:00Z', aliases: ['CVE-0000-0001'],
  affected: [{
    package: { ecosystem: 'Bitnami', name: 'node' },
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H' }],
    ranges: [{ type: 'SEMVER', events: [{ introduced: `${major!}.0.0` }, { fixed: `${Number(major) + 1}.0.0` }] }],
  }],
}))
writeFileSync(join(feed, 'broken-record.json'), JSON.stringify({ id: 'TEST-BROKEN', modified: 'x', affected: [{ package: { ecosystem: 'Bitnami', name: 'node' }, ranges: [{ type: 'SEMVER', events: [{ introduced: 'zero' }] }] }] }))

interface Row { name?: string, score: number, parts: { perf: number, health: number, sla: number, cost: number, exposure: number }, vulnerabilities?: { ids: string[], action: string, severity: number } }

t.test('an OSV record matching the domains\' Node.js lowers their scores', async (t) => {
  const child = spawn(process.execPath, [CLI, 'up', '--size', '1', '--feed', feed], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV })
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c })
  child.stderr.setEncoding('utf8').on('data', (c: string) => { if (err.length < 1_000_000) err += c })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  t.teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGINT'); await exited } })
  for (let i = 0; i < 1200 && !/Press Ctrl-C/.test(out) && child.exitCode === null; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.match(out, /Press Ctrl-C/, `metaos up runs (stderr: ${err.slice(-500)})`)
  t.match(out, /^Vulnerability feed: bus-domain TEST-NODE-OSV \(lower\); net-domain TEST-NODE-OSV \(lower\)$/m, 'both domains are affected, and lowered')
  t.match(out, /^Vulnerability feed: 1 record or file skipped as malformed \(why: on stderr, at warn\)$/m, 'metaos up says a record was skipped')
  t.match(err, /skipped record TEST-BROKEN of .*broken-record\.json: .*not a semantic version/, 'the malformed record is logged with its file, id and why')
  const status = JSON.parse((await promisify(execFile)(process.execPath, [CLI, 'status', '--json'], { env: ENV, timeout: 10_000 })).stdout) as { pmt: Row[] }
  const rows = status.pmt.filter((r) => r.name === 'bus-domain' || r.name === 'net-domain')
  t.equal(rows.length, 2)
  for (const r of rows) {
    t.same(r.vulnerabilities, { ids: ['TEST-NODE-OSV'], action: 'lower', severity: 7.5 }, `${r.name!}: what matched, in metaos status --json`)
    t.ok(Math.abs(r.parts.exposure - (1 - 0.9 * 0.75)) < 1e-9, `${r.name!}: exposure 0.325 (CVSS 7.5)`)
    const product = 100 * r.parts.perf * Math.pow(r.parts.health, 2) * r.parts.sla * r.parts.cost
    t.ok(Math.abs(r.score - product * r.parts.exposure) < 1e-6 * product, `${r.name!}: the score is cut by it (${r.score.toFixed(2)} of ${product.toFixed(2)})`)
  }
  child.kill('SIGINT')
  await exited
})
