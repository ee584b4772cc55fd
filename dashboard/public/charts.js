// The dashboard's SVG drawings: a line chart of one measure over time, and the supervisor's
// timeline (one lane per domain, a mark per event). Plain SVG elements built with dom.js.
import { s, time } from './dom.js'

const W = 320
const H = 110
const PAD = { l: 34, r: 6, t: 8, b: 16 }

/** A round upper bound for the y axis (1, 2, 5 × 10^k). */
function niceMax (v) {
  if (!(v > 0)) return 1
  const e = Math.pow(10, Math.floor(Math.log10(v)))
  return [1, 2, 5, 10].map((m) => m * e).find((m) => m >= v)
}

/**
 * A line chart of `points` ({ t, …}) between `from` and `to` (ms): one polyline per line spec
 * ({ key, cls }); gaps (null values) break the line. Shades where the domain was not healthy.
 */
export function lineChart (points, lines, { from, to, unit, label }) {
  const values = points.flatMap((p) => lines.map((l) => p[l.key])).filter((v) => v !== null && v !== undefined && Number.isFinite(v))
  const max = niceMax(Math.max(0, ...values))
  const x = (t) => PAD.l + (W - PAD.l - PAD.r) * Math.min(1, Math.max(0, (t - from) / Math.max(1, to - from)))
  const y = (v) => H - PAD.b - (H - PAD.t - PAD.b) * Math.min(1, v / max)
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, 'data-points': String(points.length) })
  // Stretches where the PMT did not call the domain healthy: isolated, suspect, draining.
  let downFrom
  for (const [i, p] of points.entries()) {
    const down = p.state !== 'healthy'
    if (down && downFrom === undefined) downFrom = p.t
    if (downFrom !== undefined && (!down || i === points.length - 1)) {
      svg.append(s('rect', { class: 'down', x: x(downFrom), y: PAD.t, width: Math.max(1, x(p.t) - x(downFrom)), height: H - PAD.t - PAD.b }, s('title', {}, `not healthy from ${time(downFrom)} to ${time(p.t)}`)))
      downFrom = undefined
    }
  }
  svg.append(
    s('line', { class: 'axis', x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b }),
    s('line', { class: 'axis', x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b }),
    s('text', { class: 'label', x: PAD.l - 3, y: PAD.t + 7, 'text-anchor': 'end' }, `${max}`),
    s('text', { class: 'label', x: PAD.l - 3, y: H - PAD.b, 'text-anchor': 'end' }, '0'),
    s('text', { class: 'label', x: PAD.l, y: H - 3 }, time(from)),
    s('text', { class: 'label', x: W - PAD.r, y: H - 3, 'text-anchor': 'end' }, `${time(to)} · ${unit}`),
  )
  for (const l of lines) {
    let seg = []
    const flush = () => { if (seg.length > 0) svg.append(s('polyline', { class: l.cls, points: seg.join(' ') })); seg = [] }
    for (const p of points) {
      const v = p[l.key]
      if (v === null || v === undefined || !Number.isFinite(v)) { flush(); continue }
      seg.push(`${x(p.t).toFixed(1)},${y(v).toFixed(1)}`)
    }
    flush()
  }
  return svg
}

/**
 * The supervisor's timeline: one lane per domain name, events ({ at, name, cls, text }) as marks
 * between `from` and `to`, each with its text as a tooltip.
 */
export function timeline (names, events, { from, to }) {
  const lane = 22
  const left = 110
  const width = 960
  const height = Math.max(1, names.length) * lane + 18
  const x = (t) => left + (width - left - 8) * Math.min(1, Math.max(0, (t - from) / Math.max(1, to - from)))
  const svg = s('svg', { class: 'timeline', viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'supervisor timeline', 'data-events': String(events.length) })
  names.forEach((n, i) => {
    const yy = i * lane + lane / 2
    svg.append(s('line', { class: 'lane', x1: left, y1: yy, x2: width - 8, y2: yy }), s('text', { class: 'label', x: left - 6, y: yy + 3, 'text-anchor': 'end' }, n))
  })
  for (const e of events) {
    const i = names.indexOf(e.name)
    if (i < 0 || e.at < from) continue
    const cx = x(e.at)
    const cy = i * lane + lane / 2
    const mark = e.cls === 'migration' || e.cls === 'failover'
      ? s('rect', { class: e.cls, x: cx - 4, y: cy - 4, width: 8, height: 8, transform: `rotate(45 ${cx} ${cy})` })
      : s('circle', { class: e.cls, cx, cy, r: 5 })
    mark.append(s('title', {}, `${time(e.at)} ${e.name}: ${e.text}`))
    svg.append(mark)
  }
  const axisY = names.length * lane + 12
  svg.append(s('text', { class: 'label', x: left, y: axisY }, time(from)), s('text', { class: 'label', x: width - 8, y: axisY, 'text-anchor': 'end' }, `${time(to)} (now)`))
  return svg
}
