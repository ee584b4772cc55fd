// The paper suite's charts: hand-written, self-contained SVG strings (no library, no scripts, no
// external fonts or CSS, no foreignObject) that read the same in a browser and in GitHub's Markdown
// (which shows them through <img>), on a white background so they survive dark mode. Two kinds, one
// chart per (op, mode): throughput by file size per hosting, and channel + service time stacked.
// Measures nothing and writes no files (paper-suite.ts measures, the caller writes).
import type { PaperResult, PaperRow } from './paper-suite.js'

export interface PaperSvg { readonly file: string, readonly title: string, readonly svg: string }
export interface PaperSvgOptions {
  /**
   * Throughput axis. 'auto' (default) goes logarithmic when the largest mean is ≥ 100× the smallest
   * non-zero one: local fs at 500 MB/s beside remote char mode at 1 MB/s would otherwise flatten
   * every remote bar to a pixel, and the differences between remote hostings are the point.
   */
  readonly scale?: 'auto' | 'linear' | 'log'
}

const WIDTH = 900
const FONT = "system-ui, -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif"
const INK = '#222222'
const GRID = '#e3e3e3'
const MUTED = '#666666'
const MiB = 1048576
const LOG_RATIO = 100
const MAX_NAME = 28

/** Okabe–Ito, fixed per hosting so a hosting has one color in every chart. */
const HOSTING_COLORS: Readonly<Record<string, string>> = {
  local: '#000000',
  'process-bus': '#E69F00',
  'process-net.uds': '#AA4499',
  'process-http': '#56B4E9',
  'container-http': '#009E73',
  'container-bus': '#F0E442',
  'vm-http': '#0072B2',
  'vm-bus': '#D55E00'
}
const EXTRA_COLORS = ['#CC79A7', '#999999', '#882255', '#44AA99']
const HOSTING_ORDER = Object.keys(HOSTING_COLORS)
const MODE_ORDER = ['char', 'char-batched', 'block', 'block-batched']
const OP_ORDER = ['write', 'read']

export function xmlEscape (s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
}

export const fmtSize = (n: number): string => n >= MiB ? `${+(n / MiB).toFixed(2)} MB` : n >= 1024 ? `${+(n / 1024).toFixed(2)} KB` : `${n} B`

/** Three significant figures or so, never exponent notation. */
export function fmtNum (v: number): string {
  if (!Number.isFinite(v)) return '–'
  const a = Math.abs(v)
  if (a === 0) return '0'
  if (a >= 1000) return v.toLocaleString('en-US', { maximumFractionDigits: 0 })
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toPrecision(2)
}

const fmtTick = (v: number): string => Number(v.toPrecision(12)).toLocaleString('en-US', { maximumFractionDigits: 6 })
const num = (v: number | undefined): number => v !== undefined && Number.isFinite(v) ? v : 0
const r1 = (v: number): string => String(Math.round(v * 10) / 10)
const uniq = <T>(xs: readonly T[]): T[] => [...new Set(xs)]
/** Width of a string in the system sans-serif, slightly generous so labels never collide. */
const textWidth = (s: string, size: number): number => s.length * size * 0.6
const clip = (s: string, n = MAX_NAME): string => s.length > n ? s.slice(0, n - 1) + '…' : s

function hash (s: string): number { let h = 0; for (const c of s) h = (h * 31 + c.charCodeAt(0)) >>> 0; return h }
export function hostingColor (name: string): string { return HOSTING_COLORS[name] ?? EXTRA_COLORS[hash(name) % EXTRA_COLORS.length]! }

const byKnownOrder = (order: readonly string[]) => (a: string, b: string): number => {
  const ia = order.indexOf(a); const ib = order.indexOf(b)
  return (ia < 0 ? order.length : ia) - (ib < 0 ? order.length : ib) || (ia < 0 && ib < 0 ? a.localeCompare(b) : 0)
}
const hostingsOf = (rows: readonly PaperRow[]): string[] => uniq(rows.map((r) => r.hostingName as string)).sort(byKnownOrder(HOSTING_ORDER))
const ascending = (xs: readonly number[]): number[] => uniq(xs).sort((a, b) => a - b)

function modeTitle (mode: string): string {
  const base = mode.replace(/-batched$/, '')
  const how = base === 'char' ? 'by characters' : base === 'block' ? 'by blocks' : `by ${base}`
  return `${how}, ${mode.endsWith('-batched') ? 'exception-less' : 'faithful'}`
}
const opTitle = (op: string): string => op.charAt(0).toUpperCase() + op.slice(1)
const slug = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '')

function text (x: number, y: number, s: string, attrs = ''): string {
  return `<text x="${r1(x)}" y="${r1(y)}"${attrs === '' ? '' : ' ' + attrs}>${xmlEscape(s)}</text>`
}

/** 0-based linear ticks on a 1-2-2.5-5 grid, about five of them. */
export function linearTicks (max: number): number[] {
  if (!(max > 0)) return [0, 1]
  const raw = max / 5
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!
  const ticks: number[] = []
  for (let i = 0; ticks.length === 0 || ticks[ticks.length - 1]! < max - step * 1e-9; i++) ticks.push(Number((i * step).toPrecision(12)))
  return ticks
}

/** Decades covering [min, max]; with fewer than three decades, 2 and 5 in between as well. */
export function logTicks (min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min)); let hi = Math.ceil(Math.log10(max))
  if (hi === lo) hi++
  const ticks: number[] = []
  for (let e = lo; e <= hi; e++) {
    for (const m of hi - lo < 3 ? [1, 2, 5] : [1]) if (e < hi || m === 1) ticks.push(Number((m * 10 ** e).toPrecision(12)))
  }
  return ticks
}

/** Swatches and names in rows that wrap at `width`; long names clipped, the full name in a tooltip. */
function legend (items: ReadonlyArray<{ name: string, swatch: (x: number, y: number) => string }>, x0: number, y0: number, width: number): { svg: string, height: number } {
  let x = x0; let y = y0; let svg = ''
  for (const it of items) {
    const label = clip(it.name)
    const w = 14 + 6 + textWidth(label, 12) + 24
    if (x > x0 && x + w > x0 + width) { x = x0; y += 20 }
    svg += `<g class="legend-item"><title>${xmlEscape(it.name)}</title>${it.swatch(x, y)}${text(x + 20, y + 11, label, 'font-size="12" class="legend"')}</g>`
    x += w
  }
  return { svg, height: y - y0 + 20 }
}
const solidSwatch = (color: string) => (x: number, y: number): string => `<rect x="${x}" y="${y}" width="14" height="14" fill="${color}" stroke="${INK}" stroke-width="0.5"/>`

function doc (width: number, height: number, title: string, desc: string, body: string, defs = ''): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${Math.ceil(height)}" viewBox="0 0 ${width} ${Math.ceil(height)}" role="img" font-family="${xmlEscape(FONT)}" fill="${INK}">\n` +
    `<title>${xmlEscape(title)}</title>\n<desc>${xmlEscape(desc)}</desc>\n${defs === '' ? '' : `<defs>${defs}</defs>\n`}` +
    `<rect x="0" y="0" width="${width}" height="${Math.ceil(height)}" fill="#ffffff"/>\n` +
    text(20, 30, title, 'font-size="18" font-weight="600"') + '\n' + body + '</svg>\n'
}

function runsNote (rows: readonly PaperRow[]): string {
  const runs = ascending(rows.map((r) => r.runs))
  return runs.length === 1 ? `${runs[0]} run${runs[0] === 1 ? '' : 's'}` : `${runs[0]}–${runs[runs.length - 1]} runs`
}

/**
 * Grouped vertical bars, not lines: file sizes are categories (1, 10, 50, 100 MB are not evenly
 * spaced and nothing lies between them), and a bar carries an error bar and a printed value without
 * implying a trend. Panels (one per cache size) are stacked vertically so bars stay wide enough for a
 * printed value at 900 px (GitHub's column width), and share one y axis so panels compare honestly.
 * Every bar has its value printed above it: on a log axis lengths are not proportional, and on a
 * linear one the smallest bars are too short to read against the grid.
 */
function throughputSvg (rows: readonly PaperRow[], op: string, mode: string, o: PaperSvgOptions): PaperSvg {
  const title = `${opTitle(op)} throughput, ${modeTitle(mode)}`
  const hostings = hostingsOf(rows)
  const sizes = ascending(rows.map((r) => num(r.fileBytes)))
  const caches = ascending(rows.map((r) => num(r.cacheBytes)))
  const stat = (r: PaperRow): { m: number, s: number } => ({ m: Math.max(0, num(r.mbPerSec)), s: Math.max(0, num(r.mbPerSecStd)) })
  const positives = rows.map((r) => stat(r).m).filter((v) => v > 0)
  const maxTop = Math.max(0, ...rows.map((r) => stat(r).m + stat(r).s))
  const log = positives.length > 0 && (o.scale === 'log' || (o.scale !== 'linear' && Math.max(...positives) / Math.min(...positives) >= LOG_RATIO))
  // On a log axis the smallest bar would be a sliver when it sits just above the lowest decade: start
  // one decade lower then, so every non-zero bar stays visible.
  const minPos = Math.min(...positives)
  const floor = minPos < 2 * 10 ** Math.floor(Math.log10(minPos)) ? minPos / 10 : minPos
  const ticks = log ? logTicks(floor, Math.max(...positives, maxTop)) : linearTicks(maxTop)
  const lo = ticks[0]!; const hi = ticks[ticks.length - 1]!

  const left = 72; const right = 20; const plotW = WIDTH - left - right
  const plotH = 200
  const leg = legend(hostings.map((h) => ({ name: h, swatch: solidSwatch(hostingColor(h)) })), 20, 46, WIDTH - 40)
  let y = 46 + leg.height + 10
  let body = leg.svg + '\n'
  const gw = plotW / sizes.length
  const bw = Math.min(44, (gw * 0.8) / hostings.length)
  const labelSize = Math.max(7, Math.min(11, bw * 0.85))
  const yOf = (v: number, top: number): number => {
    const f = log ? (Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : v / hi
    return top + plotH - Math.min(1, Math.max(0, f)) * plotH
  }
  // Room above the plot for the printed values that stick out over its top, and no more.
  const headroom = Math.max(8, ...rows.map((r) => 8 + textWidth(fmtNum(stat(r).m), labelSize) - yOf(stat(r).m + stat(r).s, 0)))
  for (const cache of caches) {
    body += `<g class="panel" data-cache="${cache}">` + text(left, y + 14, `cache ${fmtSize(cache)}`, 'font-size="13" font-weight="600"')
    const top = y + 20 + headroom
    for (const t of ticks) {
      const ty = yOf(t, top)
      body += `<line x1="${left}" x2="${left + plotW}" y1="${r1(ty)}" y2="${r1(ty)}" stroke="${GRID}" stroke-width="1"/>` +
        text(left - 6, ty + 4, fmtTick(t), `font-size="11" text-anchor="end" fill="${MUTED}"`)
    }
    const ay = top + plotH / 2
    body += text(18, ay, log ? 'MB/s (log scale)' : 'MB/s', `font-size="12" text-anchor="middle" transform="rotate(-90 18 ${r1(ay)})"`)
    sizes.forEach((size, si) => {
      const gx = left + si * gw + (gw - bw * hostings.length) / 2
      body += text(left + si * gw + gw / 2, top + plotH + 16, fmtSize(size), 'font-size="12" text-anchor="middle"')
      hostings.forEach((h, hi2) => {
        const r = rows.find((x) => x.hostingName === h && num(x.fileBytes) === size && num(x.cacheBytes) === cache)
        if (r === undefined) return
        const { m, s } = stat(r)
        const x = gx + hi2 * bw; const cx = x + bw / 2
        const by = m > 0 ? yOf(m, top) : top + plotH
        body += `<rect class="bar" data-hosting="${xmlEscape(h)}" data-size="${size}" data-value="${m}" x="${r1(x + 1)}" y="${r1(by)}" width="${r1(Math.max(1, bw - 2))}" height="${r1(top + plotH - by)}" fill="${hostingColor(h)}" stroke="${INK}" stroke-width="0.5">` +
          `<title>${xmlEscape(`${h}, ${fmtSize(size)} file, cache ${fmtSize(cache)}: ${fmtNum(m)} ± ${fmtNum(s)} MB/s`)}</title></rect>`
        let labelY = by
        if (s > 0) {
          const e1 = yOf(m + s, top); const e0 = m - s > 0 ? yOf(m - s, top) : top + plotH
          const cap = Math.min(4, bw / 4)
          const d = `M${r1(cx)} ${r1(e0)}V${r1(e1)}M${r1(cx - cap)} ${r1(e1)}H${r1(cx + cap)}M${r1(cx - cap)} ${r1(e0)}H${r1(cx + cap)}`
          // A white halo under the whisker keeps it visible on the black (local) and dark bars.
          body += `<path class="err" d="${d}" stroke="#ffffff" stroke-width="3" fill="none"/>` +
            `<path d="${d}" stroke="${INK}" stroke-width="1.2" fill="none"/>`
          labelY = Math.min(labelY, e1)
        }
        if (bw >= 7) body += text(cx + labelSize * 0.35, labelY - 4, fmtNum(m), `class="value" font-size="${r1(labelSize)}" transform="rotate(-90 ${r1(cx + labelSize * 0.35)} ${r1(labelY - 4)})"`)
      })
    })
    body += `<line x1="${left}" x2="${left + plotW}" y1="${r1(top + plotH)}" y2="${r1(top + plotH)}" stroke="${INK}" stroke-width="1"/></g>\n`
    y = top + plotH + 30
  }
  body += text(left + plotW / 2, y + 6, 'file size', 'font-size="12" text-anchor="middle"')
  body += text(20, y + 28, `Mean ± 1 sd of ${runsNote(rows)}; MB = 2^20 bytes; throughput = file size / open-to-close time.`, `font-size="11" fill="${MUTED}"`) + '\n'
  const desc = `Grouped bars: MB/s by file size, one bar per hosting (${hostings.join(', ')}), one panel per cache size.`
  return { file: `throughput-${slug(op)}-${slug(mode)}.svg`, title, svg: doc(WIDTH, y + 42, title, desc, body) }
}

/**
 * Horizontal stacked bars (channel solid, service hatched in the hosting's color): horizontal so
 * every bar can carry "channel + service = total" in full beside it, which keeps the split legible
 * for the small files whose bars are short on an axis shared with the large ones. Panels per cache,
 * stacked vertically, one shared axis. 'local' has no channel and is left out.
 */
function timesSvg (rows: readonly PaperRow[], op: string, mode: string): PaperSvg | undefined {
  const remote = rows.filter((r) => r.hostingName !== 'local')
  if (remote.length === 0) return undefined
  const title = `${opTitle(op)} channel vs service time, ${modeTitle(mode)}`
  const hostings = hostingsOf(remote)
  const sizes = ascending(remote.map((r) => num(r.fileBytes)))
  const caches = ascending(remote.map((r) => num(r.cacheBytes)))
  const parts = (r: PaperRow): { c: number, s: number } => ({ c: Math.max(0, num(r.channelMs)), s: Math.max(0, num(r.serviceMs)) })
  const maxMs = Math.max(0, ...remote.map((r) => parts(r).c + parts(r).s))
  const secs = maxMs >= 10000
  const unit = secs ? 's' : 'ms'; const k = secs ? 1000 : 1
  const ticks = linearTicks(maxMs / k); const hi = ticks[ticks.length - 1]!
  const pid = `hatch-${slug(op)}-${slug(mode)}`
  const hatchId = (h: string): string => `${pid}-${hostings.indexOf(h)}`
  const defs = hostings.map((h) => `<pattern id="${hatchId(h)}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)">` +
    `<rect width="6" height="6" fill="#ffffff"/><rect width="3" height="6" fill="${hostingColor(h)}"/></pattern>`).join('')
  const greyHatch = `${pid}-key`
  const left = Math.min(200, Math.max(100, Math.max(...hostings.map((h) => textWidth(clip(h, 24), 11))) + 24))
  const labelW = 200; const plotW = WIDTH - left - labelW - 20
  const xOf = (v: number): number => left + Math.min(1, v / k / hi) * plotW
  const items = [...hostings.map((h) => ({ name: h, swatch: solidSwatch(hostingColor(h)) })),
    { name: 'channel (solid)', swatch: solidSwatch('#777777') },
    { name: 'service (hatched)', swatch: (x: number, y: number) => `<rect x="${x}" y="${y}" width="14" height="14" fill="url(#${greyHatch})" stroke="${INK}" stroke-width="0.5"/>` }]
  const leg = legend(items, 20, 46, WIDTH - 40)
  let body = leg.svg + '\n'
  let y = 46 + leg.height + 10
  const barH = 14; const gap = 4
  for (const cache of caches) {
    const top = y + 22
    const h = sizes.length * (18 + hostings.length * (barH + gap) + 6)
    body += `<g class="panel" data-cache="${cache}">` + text(20, y + 14, `cache ${fmtSize(cache)}`, 'font-size="13" font-weight="600"')
    for (const t of ticks) {
      const tx = left + (t / hi) * plotW
      body += `<line x1="${r1(tx)}" x2="${r1(tx)}" y1="${r1(top)}" y2="${r1(top + h)}" stroke="${GRID}" stroke-width="1"/>` +
        text(tx, top + h + 14, fmtTick(t), `font-size="11" text-anchor="middle" fill="${MUTED}"`)
    }
    let gy = top
    for (const size of sizes) {
      body += text(left - 8, gy + 13, `${fmtSize(size)} file`, 'font-size="12" font-weight="600" text-anchor="end"')
      gy += 18
      for (const hst of hostings) {
        const r = remote.find((x) => x.hostingName === hst && num(x.fileBytes) === size && num(x.cacheBytes) === cache)
        body += text(left - 8, gy + 11, clip(hst, 24), `font-size="11" text-anchor="end" fill="${MUTED}"`)
        if (r !== undefined) {
          const { c, s } = parts(r)
          const xc = xOf(c); const xt = xOf(c + s)
          const tip = `${hst}, ${fmtSize(size)} file, cache ${fmtSize(cache)}: channel ${fmtNum(c / k)} ${unit} + service ${fmtNum(s / k)} ${unit}`
          body += `<g class="stack" data-hosting="${xmlEscape(hst)}" data-size="${size}"><title>${xmlEscape(tip)}</title>` +
            `<rect class="seg-channel" data-value="${c}" x="${left}" y="${r1(gy)}" width="${r1(xc - left)}" height="${barH}" fill="${hostingColor(hst)}" stroke="${INK}" stroke-width="0.5"/>` +
            `<rect class="seg-service" data-value="${s}" x="${r1(xc)}" y="${r1(gy)}" width="${r1(xt - xc)}" height="${barH}" fill="url(#${hatchId(hst)})" stroke="${INK}" stroke-width="0.5"/>` +
            text(xt + 6, gy + 11, `${fmtNum(c / k)} + ${fmtNum(s / k)} = ${fmtNum((c + s) / k)} ${unit}`, 'class="value" font-size="11"') + '</g>'
        }
        gy += barH + gap
      }
      gy += 6
    }
    body += `<line x1="${left}" x2="${left}" y1="${r1(top)}" y2="${r1(top + h)}" stroke="${INK}" stroke-width="1"/></g>\n`
    y = top + h + 24
  }
  body += text(left + plotW / 2, y + 8, `time, ${unit} (channel + service = total)`, 'font-size="12" text-anchor="middle"')
  body += text(20, y + 32, `Means of ${runsNote(remote)}. Channel = wire and stack, service = time in the domain (ServiceTiming).`, `font-size="11" fill="${MUTED}"`) + '\n'
  const keyDef = `<pattern id="${greyHatch}" patternUnits="userSpaceOnUse" width="6" height="6" patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/><rect width="3" height="6" fill="#777777"/></pattern>`
  const desc = `Stacked horizontal bars: channel and service time per hosting (${hostings.join(', ')}) and file size, one panel per cache size.`
  return { file: `times-${slug(op)}-${slug(mode)}.svg`, title, svg: doc(WIDTH, y + 46, title, desc, body, defs + keyDef) }
}

/** Every chart of a run, throughput then times for each (op, mode): write before read, char before block. */
export function paperSvgs (res: PaperResult, o: PaperSvgOptions = {}): PaperSvg[] {
  const rows = res.rows
  const keys = uniq(rows.map((r) => `${r.op}\t${r.mode}`)).map((k) => k.split('\t') as [string, string])
    .sort((a, b) => byKnownOrder(OP_ORDER)(a[0], b[0]) || byKnownOrder(MODE_ORDER)(a[1], b[1]))
  const out: PaperSvg[] = []
  for (const [op, mode] of keys) {
    const rs = rows.filter((r) => r.op === op && r.mode === mode)
    out.push(throughputSvg(rs, op, mode, o))
    const t = timesSvg(rs, op, mode)
    if (t !== undefined) out.push(t)
  }
  return out
}

/** Markdown image lines for docs: `![title](dir/file)`, one per chart. */
export function svgIndexMarkdown (charts: ReadonlyArray<{ readonly file: string, readonly title: string }>, dir: string): string {
  const base = dir === '' ? '' : dir.replace(/\/+$/, '') + '/'
  const alt = (s: string): string => s.replace(/([\\[\]])/g, '\\$1')
  return charts.map((c) => `![${alt(c.title)}](${encodeURI(base + c.file)})\n`).join('')
}
