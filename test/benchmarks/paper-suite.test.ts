// The paper-suite runner on tiny sizes (64 KB files, caches 512 B and 4 KB, 2 runs, local and a
// process domain over HTTP, by characters and by blocks): the shape of its outputs — JSON rows,
// Markdown tables laid out like the paper's Table 1, one CSV line per case — and the CLI writing
// them. Not speed.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runPaperSuite, outlierIndexes } from '../../benchmarks/paper-suite.js'
import { sd } from '../../benchmarks/report.js'
import { paperCsv, paperMarkdown, CSV_COLUMNS } from '../../benchmarks/paper-report.js'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))

t.test('statistics: sample sd, outliers named by Tukey fences', async (t) => {
  t.equal(sd([5]), 0)
  t.ok(Math.abs(sd([2, 4, 4, 4, 5, 5, 7, 9]) - 2.138) < 0.001)
  t.same(outlierIndexes([10, 10.1, 9.9, 10.05, 9.95, 30]), [5])
  t.same(outlierIndexes([1, 2, 3]), [], 'too few runs to call any an outlier')
})

t.test('runner on 64 KB files: rows, Markdown tables and CSV have the expected shape', async (t) => {
  const res = await runPaperSuite({ hostings: ['local', 'process-http'], sizes: [65536], caches: [512, 4096], modes: ['char', 'block'], runs: 2 })
  t.equal(res.stopped, false)
  t.same(res.skipped, [])
  t.ok(res.pageCache === 'dropped' || res.pageCache === 'warm')
  // 2 hostings × 2 modes × 2 caches × 1 size × (write faithful, write exception-less, read)
  t.equal(res.rows.length, 24)
  for (const r of res.rows) {
    const id = `${r.hostingName} ${r.mode} ${r.op} ${r.cacheBytes}`
    t.equal(r.suite, 'paper')
    t.equal(r.peer, 'metaos')
    t.ok(['local', 'http'].includes(r.hosting), id)
    t.ok(['char', 'char-batched', 'block', 'block-batched'].includes(r.mode), id)
    t.equal(r.runs, 2, id)
    t.equal(r.fileBytes, 65536)
    t.equal(r.samplesMbPerSec.length, 2)
    for (const k of ['mbPerSec', 'totalMs', 'wallMs'] as const) t.ok(r[k]! > 0, `${id}: ${k} > 0`)
    for (const k of ['channelMs', 'serviceMs'] as const) t.ok(r[k]! >= 0, `${id}: ${k} ≥ 0`)
    if (r.hosting === 'http') { t.ok(r.channelMs! > 0, `${id}: channel > 0`); t.ok(r.serviceMs! > 0, `${id}: service > 0`) }
    for (const k of ['mbPerSecStd', 'channelMsStd', 'serviceMsStd', 'totalMsStd'] as const) t.ok(r[k]! >= 0, `${id}: ${k} ≥ 0`)
    t.ok(Math.abs(r.totalMs! - (r.channelMs! + r.serviceMs!)) < 1e-6, 'total = channel + service')
    t.ok(Array.isArray(r.outliers))
    if (r.op === 'read') { t.equal(r.exceptionLess, false, 'reads are measured faithful only'); t.equal(r.pageCache, res.pageCache) }
    if (r.hosting === 'http' && !r.exceptionLess) t.ok(r.syscalls >= 65536 / r.cacheBytes!, `${id}: at least one syscall per cache-full`)
  }
  t.equal(JSON.parse(JSON.stringify(res.rows)).length, 24, 'rows serialize to JSON')

  const md = paperMarkdown(res, 'test')
  const tables = md.split('\n').filter((l) => l.startsWith('## ') && l !== '## Outliers')
  // per hosting: char faithful write, char exception-less write, char read, and the same by blocks
  t.equal(tables.length, 2 * 2 * 3, 'one table section per hosting × mode × op')
  t.match(md, /## local — char, faithful — write/)
  t.match(md, /## process-http — block, exception-less — write/)
  t.match(md, /## process-http — char, faithful — read/)
  const headers = md.split('\n').filter((l) => l.startsWith('| file size |'))
  t.equal(headers.length, tables.length * 2, 'a throughput table and a times table per section')
  for (const h of headers) t.equal(h, '| file size | cache 512 B | cache 4 KB |')
  const sizeRows = md.split('\n').filter((l) => l.startsWith('| 64 KB |'))
  t.equal(sizeRows.length, tables.length * 2, 'one row per size in each table')
  for (const l of sizeRows) t.equal(l.split('|').length - 2, 3, 'size + one cell per cache')
  t.match(sizeRows[0]!, /\| 64 KB \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \|/)
  t.match(md, /Machine: .+ cores/)
  t.match(md, /Reads: (reads after `sync`|warm cache)/)

  const csv = paperCsv(res.rows).trimEnd().split('\n')
  t.equal(csv[0], CSV_COLUMNS.join(','))
  t.equal(csv.length, 1 + 24, 'a header and one line per case')
  for (const l of csv.slice(1)) t.equal(l.split(',').length, CSV_COLUMNS.length)
})

t.test('CLI --suite paper writes JSON, CSV, Markdown and SVG charts', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-paper-cli-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const files = { json: join(dir, 'r.json'), csv: join(dir, 'r.csv'), md: join(dir, 'r.md') }
  const r = spawnSync(process.execPath, [CLI, 'bench', '--suite', 'paper', '--hostings', 'local', '--sizes', '64k', '--caches', '4k', '--modes', 'block', '--runs', '1',
    '--json', files.json, '--csv', files.csv, '--md', files.md, '--svg', join(dir, 'charts')], { encoding: 'utf8', env: { ...process.env, METAOS_LOG_LEVEL: 'silent' }, timeout: 30_000 })
  t.equal(r.status, 0, r.stderr)
  const json = JSON.parse(readFileSync(files.json, 'utf8')) as { machine: { cores: number }, rows: unknown[] }
  t.ok(json.machine.cores > 0)
  t.equal(json.rows.length, 3)
  t.equal(readFileSync(files.csv, 'utf8').trimEnd().split('\n').length, 4)
  t.match(readFileSync(files.md, 'utf8'), /## local — block, faithful — read/)
  // Local only: throughput charts, no channel/service chart (local has no channel).
  t.same(readdirSync(join(dir, 'charts')).sort(), ['throughput-read-block.svg', 'throughput-write-block-batched.svg', 'throughput-write-block.svg'], 'one throughput chart per operation and mode')
  t.match(readFileSync(join(dir, 'charts', 'throughput-write-block.svg'), 'utf8'), /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"[^>]* viewBox="/, 'an SVG document')
  const bad = spawnSync(process.execPath, [CLI, 'bench', '--suite', 'paper', '--hostings', 'moon'], { encoding: 'utf8', timeout: 30_000 })
  t.equal(bad.status, 2)
  t.match(bad.stderr, /^metaos bench: --hostings takes a comma-separated list, each one of .*; got "moon"/, 'one usage line naming the option and what it takes')
})
