// The live dashboard: loads the charted history once (/api/history), then follows the status the
// server pushes every second (/api/events, Server-Sent Events) and redraws the panels: domains,
// the PMT with the parts of each score, charts per domain, the supervisor's timeline, placements
// with the rules that fired, open streams. Everything shown goes through dom.js (text nodes only).
import { h, rows, badge, fmt, pct, time, ago, bytes } from './dom.js'
import { lineChart, timeline } from './charts.js'
import { setupActions, updateActions } from './actions.js'

const $ = (id) => document.getElementById(id)
const series = new Map() // epr → points, oldest first
let capacity = 600
let intervalMs = 1000

async function loadHistory () {
  const res = await fetch('/api/history', { cache: 'no-store' })
  if (!res.ok) throw new Error(`/api/history: HTTP ${res.status}`)
  const body = await res.json()
  capacity = body.capacity || capacity
  intervalMs = body.intervalMs || intervalMs
  for (const [epr, points] of Object.entries(body.series)) series.set(epr, points)
}

function append (latest) {
  for (const [epr, p] of Object.entries(latest)) {
    const pts = series.get(epr) ?? []
    if (pts.length === 0 || pts[pts.length - 1].t < p.t) pts.push(p)
    if (pts.length > capacity) pts.splice(0, pts.length - capacity)
    series.set(epr, pts)
  }
}

function names (st) {
  const m = new Map(st.domains.map((d) => [d.epr, d.name]))
  for (const r of st.pmt) if (r.name !== undefined && !m.has(r.epr)) m.set(r.epr, r.name)
  return m
}

function render (st) {
  const now = Date.now()
  const who = names(st)
  const name = (epr) => who.get(epr) ?? epr
  const pmtBy = new Map(st.pmt.map((r) => [r.epr, r]))
  $('summary').textContent = `volume ${st.volume} · ${st.title ?? 'metaos up'} pid ${st.pid ?? '?'} · ${st.domains.length} domains · ${st.streams.length} open streams · updated ${time(now)}`

  rows($('domains').tBodies[0], st.domains.map((d) => {
    const r = pmtBy.get(d.epr)
    return h('tr', { 'data-domain': d.name, 'data-state': d.state, 'data-pmt-state': r?.state ?? '' },
      h('td', {}, h('strong', {}, d.name)),
      h('td', {}, d.service),
      h('td', {}, d.hosting ?? '–'),
      h('td', {}, d.kernel === undefined ? '–' : `${d.kernel.sysname} ${d.kernel.release}`),
      h('td', {}, d.volume ?? '–'),
      h('td', { class: 'wrap' }, h('ul', { class: 'plain' }, d.endpoints.map((e) => h('li', {}, e)))),
      h('td', { class: 'state' }, badge(d.state)),
      h('td', { class: 'pmt-state' }, r === undefined ? '–' : badge(r.state)),
      h('td', { class: 'num pid' }, d.pid),
      h('td', { class: 'num restarts' }, d.restarts),
      h('td', { class: 'num' }, d.state === 'running' ? ago(d.startedAt, now) : '–'))
  }), 'no domains', 11)

  const best = Math.max(1, ...st.pmt.map((r) => r.score))
  rows($('pmt').tBodies[0], st.pmt.map((r) => h('tr', { 'data-domain': name(r.epr), 'data-state': r.state },
    h('td', {}, h('strong', {}, name(r.epr))),
    h('td', {}, badge(r.state)),
    h('td', { class: 'num score' }, h('span', { class: 'bar' }), fmt(r.score)),
    h('td', { class: 'num' }, fmt(r.parts.perf, 3)),
    h('td', { class: 'num' }, fmt(r.parts.health, 3)),
    h('td', { class: 'num' }, fmt(r.parts.sla, 2)),
    h('td', { class: 'num' }, fmt(r.parts.cost, 2)),
    h('td', { class: 'num' }, fmt(r.parts.freshness, 2)),
    h('td', { class: 'num' }, fmt(r.latencyMs, 2)),
    h('td', { class: 'num' }, fmt(r.p50Ms, 2)),
    h('td', { class: 'num' }, fmt(r.p99Ms, 2)),
    h('td', { class: 'num' }, pct(r.errorRate)),
    h('td', { class: 'num' }, fmt(r.mbPerSec)),
    h('td', { class: 'num' }, r.calls),
    h('td', { class: 'num' }, r.errors),
    h('td', { class: 'num' }, r.timeouts),
    h('td', { class: 'num' }, fmt(r.probeLatencyMs, 2)),
    h('td', { class: 'num' }, r.probedAt === undefined ? '–' : `${ago(r.probedAt, now)} ago`))), 'the PMT is empty', 18)
  // Score bars: a width set through the CSSOM (the CSP forbids style attributes from markup).
  for (const tr of $('pmt').tBodies[0].rows) {
    const r = st.pmt.find((x) => name(x.epr) === tr.dataset.domain)
    const bar = tr.querySelector('.bar')
    if (r !== undefined && bar !== null) bar.style.width = `${Math.round(60 * r.score / best)}px`
  }

  renderCharts(st, name, pmtBy, now)
  renderTimeline(st, name, now)

  $('rules').textContent = st.rules.length === 0
    ? 'No rules file: the score alone places streams (metaos up --rules FILE loads one; see docs/rules.md).'
    : `Rules, in file order: ${st.rules.join(' · ')}`
  rows($('placements').tBodies[0], st.placements.slice(-30).reverse().map((p) => h('tr', { 'data-kind': p.kind },
    h('td', {}, time(p.at)),
    h('td', {}, p.kind),
    h('td', {}, p.op),
    h('td', { class: 'wrap' }, p.path ?? '–'),
    h('td', {}, h('strong', {}, name(p.chosen))),
    h('td', { class: 'list fired' }, p.fired.length === 0 ? h('span', { class: 'empty' }, 'none: by score') : p.fired.join(' · ')),
    h('td', { class: 'list' }, p.ranking.map((x) => `${name(x.epr)} ${fmt(x.score)}`).join(' · ')))), 'no placement yet', 7)

  rows($('streams').tBodies[0], st.streams.map((x) => h('tr', { 'data-domain': name(x.epr) },
    h('td', { class: 'wrap' }, x.path),
    h('td', {}, h('strong', {}, name(x.epr))),
    h('td', { class: 'num' }, bytes(x.position)),
    h('td', { class: 'num' }, x.moves),
    h('td', { class: 'num' }, x.epoch ?? '–'),
    h('td', {}, x.access),
    h('td', {}, x.share),
    h('td', {}, x.volume))), 'no open stream', 8)

  // Thread affinity (docs/rules.md): each task and the domain its streams go to.
  rows($('tasks').tBodies[0], (st.tasks ?? []).slice(-30).map((x) => h('tr', { 'data-domain': name(x.epr) },
    h('td', {}, x.task),
    h('td', {}, h('strong', {}, name(x.epr))),
    h('td', { class: 'num' }, x.placed),
    h('td', { class: 'num' }, x.kept),
    h('td', { class: 'num' }, x.switches),
    h('td', {}, time(x.since)))), st.tasks === undefined ? 'thread affinity off' : 'no task yet', 6)
}

function renderCharts (st, name, pmtBy, now) {
  const eprs = [...new Set([...st.pmt.map((r) => r.epr), ...series.keys()])]
  const from = Math.min(now - 60_000, ...eprs.map((e) => series.get(e)?.[0]?.t ?? now))
  const window = { from: Math.max(from, now - capacity * intervalMs), to: now }
  $('charts-window').textContent = `last ${Math.round((window.to - window.from) / 60_000 * 10) / 10} min, a point a second; shaded: not healthy`
  $('charts').replaceChildren(...eprs.map((epr) => {
    const pts = (series.get(epr) ?? []).filter((p) => p.t >= window.from)
    const r = pmtBy.get(epr)
    const lastPt = pts[pts.length - 1]
    return h('div', { class: 'chart-card', 'data-domain': name(epr) },
      h('h3', {}, name(epr), r === undefined ? null : badge(r.state)),
      h('div', { class: 'chart-pair' },
        h('div', {}, h('div', { class: 'chart-title' }, `throughput: ${fmt(lastPt?.mbPerSec, 2)} MB/s, ${fmt(lastPt?.callsPerSec, 0)} calls/s`),
          lineChart(pts, [{ key: 'mbPerSec', cls: 'mbps' }], { ...window, unit: 'MB/s', label: `throughput of ${name(epr)}` })),
        h('div', {}, h('div', { class: 'chart-title' }, `latency: EWMA ${fmt(lastPt?.latencyMs, 2)} ms, p99 ${fmt(lastPt?.p99Ms, 2)} ms${forecastText(r?.forecast)}`),
          lineChart(pts, [{ key: 'p99Ms', cls: 'p99' }, { key: 'latencyMs', cls: 'lat' }], { ...window, unit: 'ms', label: `latency of ${name(epr)}` }))))
  }))
}

/** The supervisor's forecast of a domain's p99 against its SLA (docs/supervision.md), when it has one. */
function forecastText (f) {
  const p = f?.p99
  if (p === undefined) return ''
  return `; forecast p99 in ${fmt(p.horizonMs / 1000, 1)} s: ${fmt(p.forecast, 1)} ms (${p.trend >= 0 ? '+' : ''}${fmt(p.trend, 1)} ms/s; SLA ${p.limit} ms)`
}

/** Supervisor decisions, the domain manager's starts and exits, and the streams' moves, as one list of events. */
function events (st, name) {
  const out = []
  // The manager's events first: an exit and the isolation it causes share a millisecond, and the sort keeps this order.
  for (const l of st.lifecycle) {
    out.push({ at: l.at, name: l.name, cls: l.kind, what: l.kind, change: l.pid > 0 ? `pid ${l.pid}` : '', reason: l.detail ?? '' })
  }
  for (const d of st.decisions) {
    // An operator's action (metaos domain): what was done and who asked, beside the supervisor's own decisions.
    if (d.action) { out.push({ at: d.at, name: name(d.epr), cls: 'operator', what: `operator ${d.action}`, change: `by ${d.by ?? '?'}`, reason: d.reason }); continue }
    out.push({ at: d.at, name: name(d.epr), cls: d.to, what: d.to === 'healthy' ? 'readmitted' : d.to, change: `${d.from} → ${d.to}`, reason: d.reason + (d.migrated ? ` (${d.migrated} stream${d.migrated === 1 ? '' : 's'} migrated)` : '') })
  }
  for (const m of st.moves) {
    if (m.at === undefined) continue
    out.push({ at: m.at, name: name(m.from), cls: m.kind, what: m.kind, change: `${name(m.from)} → ${name(m.to)}`, reason: `${m.path} at ${bytes(m.position)}: ${m.reason} (${m.op}, stall ${fmt(m.stallMs)} ms)` })
  }
  return out.sort((a, b) => a.at - b.at)
}

function renderTimeline (st, name, now) {
  const evs = events(st, name)
  const lanes = [...new Set([...st.domains.map((d) => d.name), ...evs.map((e) => e.name)])]
  const from = Math.max(now - 10 * 60_000, Math.min(now - 60_000, ...evs.map((e) => e.at)))
  $('timeline').replaceChildren(timeline(lanes, evs.map((e) => ({ ...e, text: `${e.what} ${e.change} ${e.reason}` })), { from, to: now }))
  rows($('events').tBodies[0], evs.slice(-40).reverse().map((e) => h('tr', { 'data-domain': e.name, 'data-kind': e.what },
    h('td', {}, time(e.at)),
    h('td', {}, h('strong', {}, e.name)),
    h('td', {}, badge(e.what)),
    h('td', {}, e.change),
    h('td', { class: 'list' }, e.reason))), 'no event yet', 5)
}

function connect () {
  const link = $('link')
  const es = new EventSource('/api/events')
  es.addEventListener('open', () => { link.dataset.state = 'live'; link.textContent = 'live' })
  es.addEventListener('error', () => { link.dataset.state = 'reconnecting'; link.textContent = 'reconnecting…' })
  es.addEventListener('status', (ev) => {
    const { status, latest } = JSON.parse(ev.data)
    append(latest)
    render(status)
    updateActions(status)
  })
  es.addEventListener('failure', (ev) => { $('summary').textContent = `the status failed: ${JSON.parse(ev.data).message}` })
}

setupActions()
loadHistory().catch((e) => { $('summary').textContent = String(e) }).finally(connect)
