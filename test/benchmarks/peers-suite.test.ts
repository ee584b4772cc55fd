// The peers suite through the CLI, on a tiny budget, for the shape of what it writes (not for
// speed): JSON rows in DESIGN.md §7's format with the command and the machine, and the Markdown
// table with each peer's ratio to metaos over HTTP.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'
import { portableCommand } from '../../benchmarks/report.js'

const CLI = packageFile('dist', 'cli', 'metaos.js')

t.test('metaos bench --suite peers writes rows and ratios', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-peers-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const json = join(dir, 'p.json')
  const md = join(dir, 'p.md')
  const args = ['bench', '--suite', 'peers', '--sizes', '512', '--seconds', '0.3', '--rounds', '1', '--peers', 'metaos,bare-http', '--json', json, '--md', md]
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, METAOS_LOG_LEVEL: 'silent' }, timeout: 60_000 })
  t.equal(r.status, 0, r.stderr)
  const out = JSON.parse(readFileSync(json, 'utf8')) as { machine: { cores: number, node: string }, command: string, rows: Array<Record<string, unknown>>, skipped: string[] }
  t.equal(out.command, `metaos ${portableCommand(args, process.cwd())}`, 'the command that made it, with no path of this machine')
  t.ok(out.machine.cores > 0 && out.machine.node === process.version, 'the machine')
  const label = (x: Record<string, unknown>): string => `${String(x.peer)}/${String(x.hosting)}${x.mode === 'call' ? '' : ` (${String(x.mode)})`}`
  t.same(out.rows.map(label).sort(), ['bare-http/bus', 'bare-http/http', 'bare-http/http (call-server-only)', 'metaos/bus', 'metaos/http', 'metaos/http (call-server-only)', 'metaos/local', 'metaos/net.tcp', 'metaos/net.tcp (call-text)', 'metaos/net.uds', 'metaos/net.uds (call-text)'],
    'the peers asked for (metaos on each hosting; net.uds and net.tcp in binary and in text; both HTTP servers under the fixed client)')
  for (const row of out.rows) t.match(row, { suite: 'peers', op: 'write', mode: /^call(-text|-server-only)?$/, payloadBytes: 512, callsPerSec: Number, p50us: Number, p99us: Number }, `${label(row)}: a §7 row`)
  t.match(readFileSync(md, 'utf8'), /\| metaos\/net\.uds \(text\) \|/, 'the text rows are told apart in the table')
  const page = readFileSync(md, 'utf8')
  t.match(page, /\| peer \/ hosting \| 512 B: calls\/s \(× metaos\/http\) \|/, 'the Markdown table')
  t.match(page, /\| metaos\/http \| \d+ \(1\.00×\) \|/, 'metaos/http is the reference')
  t.match(r.stdout, /vs metaos\/http/, 'the terminal table has the ratio column')
  t.match(page, /\| metaos\/http \(server only\) \| \d+ \(/, 'the server-only rows')
  t.match(page, /Server only \(the same fixed client against each server\): metaos's HTTP server at [\d.]+× \(512 B\) bare node:http's/, 'and their ratio')
  t.match(r.stdout, /server only \(the same fixed client\): metaos's HTTP server at [\d.]+× bare node:http's/)

  // The transport's floor: raw frames over TCP and a Unix socket.
  const json2 = join(dir, 'raw.json')
  const raw = spawnSync(process.execPath, [CLI, 'bench', '--suite', 'peers', '--sizes', '512', '--seconds', '0.2', '--rounds', '1', '--peers', 'raw', '--json', json2], { encoding: 'utf8', env: { ...process.env, METAOS_LOG_LEVEL: 'silent' }, timeout: 60_000 })
  t.equal(raw.status, 0, raw.stderr)
  const rows2 = (JSON.parse(readFileSync(json2, 'utf8')) as { rows: Array<Record<string, unknown>> }).rows
  t.same(rows2.filter((x) => x.peer === 'raw').map(label).sort(), ['raw/net.uds', 'raw/tcp'], 'raw/net.uds and raw/tcp')
  for (const row of rows2) t.match(row, { callsPerSec: Number, p50us: Number }, `${label(row)}: measured`)
  const bad = spawnSync(process.execPath, [CLI, 'bench', '--suite', 'peers', '--peers', 'moon'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^metaos bench: --peers takes a comma-separated list, each one of .*; got "moon"/, 'one usage line naming the option and what it takes')
})
