// The security suite through the CLI, on a tiny budget, for the shape of what it writes (not for
// speed): one row per configuration with its ratios to plain http, authentication shown enforced,
// the new-connection rows, the negotiated TLS, and the Markdown tables.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'
import type { SecurityResult } from '../../benchmarks/security-suite.js'
import { portableCommand } from '../../benchmarks/report.js'

const CLI = packageFile('dist', 'cli', 'metaos.js')

t.test('metaos bench --suite security writes rows and ratios', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-security-bench-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const json = join(dir, 's.json')
  const md = join(dir, 's.md')
  const args = ['bench', '--suite', 'security', '--seconds', '0.1', '--rounds', '1', '--json', json, '--md', md]
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, METAOS_LOG_LEVEL: 'silent' }, timeout: 120_000 })
  t.equal(r.status, 0, r.stderr)
  const out = JSON.parse(readFileSync(json, 'utf8')) as { machine: { cores: number }, command: string, security: SecurityResult }
  t.equal(out.command, `metaos ${portableCommand(args, process.cwd())}`, 'the command that made it, with no path of this machine')
  t.ok(out.machine.cores > 0, 'the machine')
  const s = out.security
  t.match(s, { payloadBytes: 4096, bulkBytes: 1048576, rounds: 1, stopped: false }, 'what was measured')
  t.match(s.negotiated, { protocol: 'TLSv1.3', serverKey: /^ec prime256v1$/ }, 'TLS 1.3 with an ECDSA P-256 server key')
  t.same(s.rows.map((x) => x.config), ['http', 'https', 'https-mtls', 'https-digest', 'https-text', 'http-digest', 'bus'], 'one row per configuration')
  t.same(s.rows.map((x) => `${x.transport}/${x.tls}/${x.auth}`), ['http/none/none', 'https/server/none', 'https/mutual/certificate', 'https/server/digest', 'https/server/text', 'http/none/digest', 'bus/none/none'], 'what each configuration is')
  for (const row of s.rows) {
    t.match(row, { calls: Number, callsPerSec: Number, p50us: Number, p99us: Number, mibCalls: Number, mbPerSec: Number, mibP50us: Number, mibP99us: Number, callsVsHttp: Number, mbVsHttp: Number }, `${row.config}: measured`)
    t.ok(row.calls > 0 && row.mibCalls > 0 && row.callsPerSec > 0 && row.mbPerSec > 0, `${row.config}: Writes went through`)
    t.equal(row.authEnforced, row.auth === 'none' ? null : true, `${row.config}: a client without credentials is refused`)
    const ref = s.rows[0]!
    t.ok(Math.abs(row.callsVsHttp - row.callsPerSec / ref.callsPerSec) < 1e-9 && Math.abs(row.mbVsHttp - row.mbPerSec / ref.mbPerSec) < 1e-9, `${row.config}: ratios over http`)
  }
  t.same(s.fresh.map((x) => x.config), ['http', 'https', 'https-mtls'], 'a new connection per call: http, https, mutual TLS')
  for (const row of s.fresh) {
    t.match(row, { calls: Number, callsPerSec: Number, p50us: Number, p99us: Number, vsHttpFresh: Number, vsReused: Number }, `${row.config} (new connections): measured`)
    t.ok(row.calls > 0, `${row.config} (new connections): Writes went through`)
    t.ok(Math.abs(row.vsReused - row.callsPerSec / s.rows.find((x) => x.config === row.config)!.callsPerSec) < 1e-9, `${row.config}: ratio to the kept connection`)
  }
  t.equal(s.fresh[0]!.vsHttpFresh, 1, 'http with new connections is their reference')
  const page = readFileSync(md, 'utf8')
  t.match(page, /\| configuration \| 4 KiB calls\/s \| p50 µs \| p99 µs \| × http \| 1 MiB MB\/s \|/, 'the Markdown table')
  t.match(page, /\| http \(plain\) \| \d+ \| \d+ \| \d+ \| 1\.00× \| [\d.]+ \| \d+ \| \d+ \| 1\.00× \|/, 'http is the reference')
  t.notMatch(page, /NOT ENFORCED/)
  t.match(r.stdout, /A new connection per 4 KiB Write/, 'the terminal tables')
})
