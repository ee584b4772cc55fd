// The paper suite's SVG charts from a synthetic result (no benchmark is run): which files come out,
// that each is well-formed XML with an <svg> root and a viewBox, that the legend names every hosting,
// that bars and values sit where the data puts them, that text is escaped, and the edge cases (no
// rows, one cell, zeros, NaN sd, long names). Set PAPER_SVG_SAMPLE_DIR to keep a copy of the charts.
import t from 'tap'
import { SaxesParser } from 'saxes'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { PaperHosting, PaperResult, PaperRow } from '../../benchmarks/paper-suite.js'
import { fmtNum, linearTicks, logTicks, paperSvgs, svgIndexMarkdown, xmlEscape } from '../../benchmarks/paper-svg.js'

const MiB = 1048576

function row (hostingName: string, op: 'write' | 'read', mode: string, fileBytes: number, cacheBytes: number, mbPerSec: number, extra: Partial<PaperRow> = {}): PaperRow {
  const totalMs = (fileBytes / MiB) / mbPerSec * 1000
  return {
    suite: 'paper', peer: 'metaos', hosting: 'http', hostingName: hostingName as PaperHosting, op, mode, exceptionLess: mode.endsWith('-batched'),
    fileBytes, cacheBytes, runs: 3, mbPerSec, mbPerSecStd: mbPerSec * 0.1,
    channelMs: hostingName === 'local' ? 0 : totalMs * 0.7, channelMsStd: 1, serviceMs: hostingName === 'local' ? totalMs : totalMs * 0.3, serviceMsStd: 1,
    totalMs, totalMsStd: 1, wallMs: totalMs, wallMsStd: 1, syscalls: 10, outliers: [], samplesMbPerSec: [mbPerSec], ...extra
  }
}

function result (rows: PaperRow[]): PaperResult {
  return { rows, skipped: [], pageCache: 'warm', pageCacheNote: 'warm', stopped: false, runs: 3, warmups: 1, wallMs: 1000 }
}

const HOSTINGS = ['local', 'process-http', 'container-bus', 'a&b<c>']
const SIZES = [65536, 10 * MiB]
const CACHES = [512, 4096]
const speed: Record<string, number> = { local: 512.25, 'process-http': 1.5, 'container-bus': 3.25, 'a&b<c>': 0.8 }

function synthetic (): PaperResult {
  const rows: PaperRow[] = []
  for (const h of HOSTINGS) {
    for (const [op, mode] of [['write', 'char'], ['write', 'char-batched'], ['write', 'block'], ['write', 'block-batched'], ['read', 'char'], ['read', 'block']] as const) {
      for (const size of SIZES) {
        for (const cache of CACHES) rows.push(row(h, op, mode, size, cache, speed[h]! * (mode.startsWith('block') ? 20 : 1) * (cache === 4096 ? 2 : 1)))
      }
    }
  }
  return result(rows)
}

interface Parsed { root: string, uri: string, attrs: Record<string, string>, elements: Array<{ name: string, attrs: Record<string, string>, text: string }> }

/** Parses with saxes, throwing on the first well-formedness error; collects each element's own text. */
function parse (xml: string): Parsed {
  const p = new SaxesParser({ xmlns: true })
  const out: Parsed = { root: '', uri: '', attrs: {}, elements: [] }
  const stack: Array<Parsed['elements'][number]> = []
  p.on('error', (e) => { throw e })
  p.on('opentag', (tag) => {
    const attrs: Record<string, string> = {}
    for (const [k, a] of Object.entries(tag.attributes)) attrs[k] = typeof a === 'string' ? a : a.value
    const el = { name: tag.local ?? tag.name, attrs, text: '' }
    if (stack.length === 0) { out.root = tag.name; out.uri = tag.uri ?? ''; out.attrs = attrs }
    stack.push(el); out.elements.push(el)
  })
  p.on('text', (s) => { if (stack.length > 0) stack[stack.length - 1]!.text += s })
  p.on('closetag', () => { stack.pop() })
  p.write(xml).close()
  return out
}

const byClass = (p: Parsed, name: string, cls: string): Parsed['elements'] => p.elements.filter((e) => e.name === name && (e.attrs.class ?? '').split(' ').includes(cls))

t.test('a synthetic run: file names, well-formed SVG, legend, bars, values, escaping', async (t) => {
  const charts = paperSvgs(synthetic())
  const modes = ['char', 'char-batched', 'block', 'block-batched']
  const expected = [...modes.flatMap((m) => [`throughput-write-${m}.svg`, `times-write-${m}.svg`]), ...['char', 'block'].flatMap((m) => [`throughput-read-${m}.svg`, `times-read-${m}.svg`])]
  t.same(charts.map((c) => c.file), expected)
  t.equal(new Set(charts.map((c) => c.title)).size, charts.length, 'titles are distinct')
  t.equal(charts.find((c) => c.file === 'throughput-write-char.svg')?.title, 'Write throughput, by characters, faithful')
  t.equal(charts.find((c) => c.file === 'throughput-write-block-batched.svg')?.title, 'Write throughput, by blocks, exception-less')

  const dir = mkdtempSync(join(tmpdir(), 'paper-svg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const c of charts) {
    writeFileSync(join(dir, c.file), c.svg)
    const p = parse(c.svg)
    t.equal(p.root, 'svg', c.file)
    t.equal(p.uri, 'http://www.w3.org/2000/svg', `${c.file}: root in the SVG namespace`)
    t.match(c.svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" /, `${c.file}: root first, with the namespace`)
    t.match(p.attrs.viewBox, /^0 0 \d+ \d+$/, `${c.file}: viewBox`)
    t.ok(Number(p.attrs.width) > 0 && Number(p.attrs.height) > 0, `${c.file}: width and height`)
    t.notMatch(c.svg, /NaN|undefined|Infinity|<script|foreignObject|href="http/, `${c.file}: no NaN, scripts or external references`)
    const legend = byClass(p, 'text', 'legend').map((e) => e.text)
    const expectHostings = c.file.startsWith('times-') ? HOSTINGS.filter((h) => h !== 'local') : HOSTINGS
    for (const h of expectHostings) t.ok(legend.includes(h), `${c.file}: legend names ${h}`)
    if (c.file.startsWith('times-')) t.notOk(legend.includes('local'), `${c.file}: local has no channel, not shown`)
  }
  t.same(readdirSync(dir).sort(), [...expected].sort())
  const sample = process.env.PAPER_SVG_SAMPLE_DIR
  if (sample !== undefined && sample !== '') {
    mkdirSync(sample, { recursive: true })
    for (const c of charts) writeFileSync(join(sample, c.file), c.svg)
  }

  const tp = parse(charts.find((c) => c.file === 'throughput-write-char.svg')!.svg)
  const bars = byClass(tp, 'rect', 'bar')
  t.equal(bars.length, HOSTINGS.length * SIZES.length * CACHES.length, 'one bar per hosting × size × cache')
  const localBig = bars.find((b) => b.attrs['data-hosting'] === 'local' && b.attrs['data-size'] === String(10 * MiB))
  t.equal(localBig?.attrs['data-value'], '512.25')
  t.ok(byClass(tp, 'text', 'value').some((e) => e.text === '512'), 'local 512.25 MB/s printed as 512')
  t.ok(byClass(tp, 'text', 'value').some((e) => e.text === '0.80'), 'the slowest bar printed too')
  t.ok(tp.elements.some((e) => e.name === 'text' && e.text === 'MB/s (log scale)'), '640x range: log axis')
  t.equal(byClass(tp, 'path', 'err').length, bars.length, 'an error bar per bar')
  t.ok(tp.elements.some((e) => e.name === 'text' && e.text === '64 KB') && tp.elements.some((e) => e.text === '10 MB'), 'size labels')
  t.ok(tp.elements.some((e) => e.text === 'cache 512 B') && tp.elements.some((e) => e.text === 'cache 4 KB'), 'a panel per cache')
  const heights = bars.filter((b) => b.attrs['data-size'] === '65536').map((b) => Number(b.attrs.height))
  t.ok(heights.every((h) => h > 0), 'every non-zero bar visible')

  const linear = parse(charts.find((c) => c.file === 'throughput-write-block.svg')!.svg)
  t.ok(linear.elements.some((e) => e.name === 'text' && e.text === 'MB/s (log scale)'), 'still 640x: log')
  const forcedLinear = parse(paperSvgs(synthetic(), { scale: 'linear' })[0]!.svg)
  t.ok(forcedLinear.elements.some((e) => e.name === 'text' && e.text === 'MB/s'), 'linear on request')

  const times = parse(charts.find((c) => c.file === 'times-write-char.svg')!.svg)
  const remote = HOSTINGS.length - 1
  t.equal(byClass(times, 'rect', 'seg-channel').length, remote * SIZES.length * CACHES.length)
  t.equal(byClass(times, 'rect', 'seg-service').length, remote * SIZES.length * CACHES.length)
  // process-http, 10 MB at 1.5 MB/s (cache 512): 6666.7 ms total, 70 % channel; the slowest case passes 10 s, so the unit is s
  t.ok(byClass(times, 'text', 'value').some((e) => e.text === '4.67 + 2.00 = 6.67 s'), 'channel + service = total printed')

  const raw = charts.find((c) => c.file === 'throughput-write-char.svg')!.svg
  t.ok(raw.includes('a&amp;b&lt;c&gt;'), 'hosting name escaped in the SVG text')
  t.notOk(raw.includes('a&b<c>'), 'never raw')
})

t.test('escaping, number formats and ticks', async (t) => {
  t.equal(xmlEscape(`a&b<c>"d'`), 'a&amp;b&lt;c&gt;&quot;d&apos;')
  t.equal(fmtNum(0), '0')
  t.equal(fmtNum(NaN), '–')
  t.equal(fmtNum(512.25), '512')
  t.equal(fmtNum(12345.6), '12,346')
  t.equal(fmtNum(0.01234), '0.012')
  t.equal(fmtNum(0.3), '0.30', 'two significant figures, trailing zero kept')
  t.same(linearTicks(0), [0, 1])
  t.same(linearTicks(9.3), [0, 2, 4, 6, 8, 10])
  t.same(linearTicks(512), [0, 200, 400, 600])
  t.same(linearTicks(0.37), [0, 0.1, 0.2, 0.3, 0.4])
  t.same(logTicks(0.8, 600), [0.1, 1, 10, 100, 1000])
  t.same(logTicks(3, 40), [1, 2, 5, 10, 20, 50, 100])
})

t.test('edge cases: no rows, one cell, zeros, NaN sd, long names', async (t) => {
  t.same(paperSvgs(result([])), [])
  t.equal(svgIndexMarkdown([], 'docs/img'), '')

  const long = 'container-http-with-a-very-long-hosting-name-that-goes-on-and-on'
  const rows = [
    row('local', 'write', 'char', 1024, 512, 0, { mbPerSecStd: NaN, channelMs: undefined, serviceMs: NaN }),
    row(long, 'write', 'char', 1024, 512, 0, { mbPerSecStd: undefined, channelMs: 0, serviceMs: 0 })
  ]
  const charts = paperSvgs(result(rows))
  t.same(charts.map((c) => c.file), ['throughput-write-char.svg', 'times-write-char.svg'])
  for (const c of charts) {
    const p = parse(c.svg)
    t.notMatch(c.svg, /NaN|undefined|Infinity/, c.file)
    t.ok(p.elements.filter((e) => e.name === 'title').some((e) => e.text === long), `${c.file}: full long name in a tooltip`)
    t.ok(p.elements.filter((e) => e.name === 'text').every((e) => e.text.length <= 120), `${c.file}: no runaway text`)
  }
  const tp = parse(charts[0]!.svg)
  t.equal(byClass(tp, 'rect', 'bar').length, 2)
  t.equal(byClass(tp, 'path', 'err').length, 0, 'no sd, no error bar')
  t.ok(byClass(tp, 'text', 'value').every((e) => e.text === '0'))

  const one = paperSvgs(result([row('local', 'read', 'block', 3 * MiB, 4096, 250)]))
  t.same(one.map((c) => c.file), ['throughput-read-block.svg'], 'local only: no times chart')
  t.equal(one[0]!.title, 'Read throughput, by blocks, faithful')
  t.ok(one[0]!.svg.includes('>3 MB<'))
})

t.test('svgIndexMarkdown: one image line per chart', async (t) => {
  const md = svgIndexMarkdown([{ file: 'throughput-write-char.svg', title: 'Write throughput, by characters, faithful' }, { file: 'times-read-block.svg', title: 'x [y]' }], 'docs/paper/')
  t.equal(md, '![Write throughput, by characters, faithful](docs/paper/throughput-write-char.svg)\n![x \\[y\\]](docs/paper/times-read-block.svg)\n')
})
