// `metaos status`: what a running `metaos up` is doing — its domains (state, pid, restarts), the
// Performance Mapping Table, the supervisor's decisions with their reasons, the open streams with
// their affinity, and the moves made. `metaos up` serves it as JSON on 127.0.0.1 (`serveStatus`,
// beside the live dashboard) and records where in STATUS_FILE; this command reads it there (or at
// --url) and prints it.
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { flag, httpUrl, parseOptions } from './options.js'
import type { ClusterStatus } from '../frontend/assembly/local-cluster.js'
import type { DashboardOptions } from '../dashboard/dashboard-server.js'

/** Where a running `metaos up` says where its status is (and, 0600, its control token). */
export const STATUS_FILE = join(tmpdir(), `metaos-up-${process.getuid?.() ?? 'user'}.json`)

const HELP = `usage: metaos status [--url URL] [--json]

Shows what the running \`metaos up\` is doing: its domains, the Performance Mapping Table, the
supervisor's decisions (isolations, readmissions, with their reasons), the open streams and the
moves made (failovers, migrations).

  --url URL   the status endpoint (default: the one the running \`metaos up\` recorded in
              ${STATUS_FILE})
  --json      print the JSON as served
  --help      this text
`

/**
 * Serves `snapshot()` as JSON at /status on 127.0.0.1, beside the live dashboard at / (dashboard/),
 * and records the status URL in STATUS_FILE.
 */
export async function serveStatus (snapshot: () => Promise<object>, port = 0, extras: Omit<DashboardOptions, 'snapshot'> = {}): Promise<{ url: string, dashboardUrl: string, close: () => Promise<void> }> {
  // Loaded here, not at the top: `metaos status` itself needs no express.
  const { serveDashboard } = await import('../dashboard/dashboard-server.js')
  const served = await serveDashboard({ ...extras, snapshot }, port)
  const url = served.statusUrl
  writeFileSync(STATUS_FILE, JSON.stringify({ url, pid: process.pid, ...(extras.control === undefined ? {} : { token: extras.control.token }) }) + '\n', { mode: 0o600 })
  // The mode of a file that was there already is not changed by writeFileSync.
  chmodSync(STATUS_FILE, 0o600)
  return {
    url,
    dashboardUrl: served.url,
    close: async () => {
      try { if ((JSON.parse(readFileSync(STATUS_FILE, 'utf8')) as { pid: number }).pid === process.pid) rmSync(STATUS_FILE) } catch { /* gone */ }
      await served.close()
    },
  }
}

type Status = ClusterStatus & { pid: number }

/** The options of `metaos status` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = { url: { kind: httpUrl('a status URL such as http://127.0.0.1:PORT/status') }, json: flag } as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  let url = values.url
  if (url === undefined) {
    try {
      const rec = JSON.parse(readFileSync(STATUS_FILE, 'utf8')) as { url: string, pid: number }
      process.kill(rec.pid, 0)
      url = rec.url
    } catch {
      process.stderr.write('metaos status: no running `metaos up` found (start one, or give --url)\n')
      return 1
    }
  }
  let s: Status
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) })
    if (!res.ok) throw new Error(`HTTP ${res.status}`)
    s = await res.json() as Status
  } catch (e) {
    process.stderr.write(`metaos status: ${url}: ${(e as Error).message}\n`)
    return 1
  }
  if (values.json === true) { process.stdout.write(JSON.stringify(s, null, 2) + '\n'); return 0 }
  process.stdout.write(render(s, url))
  return 0
}

function render (s: Status, url?: string): string {
  const name = new Map(s.domains.map((d) => [d.epr, d.name]))
  const who = (epr: string): string => name.get(epr) ?? epr
  const pmt = new Map(s.pmt.map((r) => [r.epr, r]))
  const fmt = (n: number | undefined, d = 1): string => n === undefined ? '-' : n.toFixed(d)
  const time = (ms: number): string => new Date(ms).toISOString().slice(11, 23)
  let out = `metaos up (pid ${s.pid}), volume ${s.volume}${url === undefined ? '' : `, live dashboard ${new URL('/', url).href}`}\n\ndomains\n`
  out += table(['name', 'process', 'pid', 'restarts', 'PMT state', 'score', 'latency ms', 'p99 ms', 'errors', 'MB/s', 'calls', 'endpoint'],
    s.domains.map((d) => { const r = pmt.get(d.epr); return [d.name, d.state, String(d.pid), String(d.restarts), r?.state ?? '-', fmt(r?.score), fmt(r?.latencyMs, 2), fmt(r?.p99Ms, 2), r === undefined ? '-' : `${(r.errorRate * 100).toFixed(0)}%`, fmt(r?.mbPerSec), String(r?.calls ?? 0), d.endpoints[0] ?? ''] }))
  const forecasts = s.pmt.filter((r) => r.forecast !== undefined)
  if (forecasts.length > 0) {
    out += '\nforecasts against the SLA (Holt: level, trend, where it will be at the horizon)\n'
    const unit = { p99: 'ms', throughput: 'MB/s', errors: '' } as const
    out += table(['domain', 'measure', 'level', 'trend /s', 'forecast', 'in', 'SLA'], forecasts.flatMap((r) => Object.entries(r.forecast!).map(([m, f]) => {
      const v = (x: number): string => m === 'errors' ? `${(x * 100).toFixed(1)}%` : `${x.toFixed(1)} ${unit[m as keyof typeof unit]}`
      return [who(r.epr), m, v(f.level), (f.trend >= 0 ? '+' : '') + (m === 'errors' ? `${(f.trend * 100).toFixed(1)}%` : f.trend.toFixed(1)), v(f.forecast), `${(f.horizonMs / 1000).toFixed(1)} s`, `${m === 'throughput' ? '≥' : '≤'} ${v(f.limit)}`]
    })))
  }
  out += `\nsupervisor decisions${s.decisions.length > 20 ? ' (latest 20)' : ''}\n`
  out += s.decisions.length === 0 ? '  none\n' : table(['time', 'domain', 'from', 'to', 'reason'], s.decisions.slice(-20).map((d) => [time(d.at), who(d.epr), d.action === undefined ? d.from : `operator ${d.action}`, d.action === undefined ? d.to : `by ${d.by ?? '?'}`, d.reason]))
  out += '\nopen streams\n'
  out += s.streams.length === 0 ? '  none\n' : table(['path', 'domain', 'position', 'moves', 'epoch'], s.streams.map((x) => [x.path, who(x.epr), String(x.position), String(x.moves), String(x.epoch ?? '-')]))
  if (s.directory !== undefined) {
    out += '\nstream directory (coordination: every frontend\'s streams)\n'
    out += s.directory.length === 0 ? '  none\n' : table(['path', 'volume', 'owner', 'epoch', 'position'], s.directory.map((x) => [x.path, x.volume, who(x.owner), String(x.epoch), String(x.position)]))
  }
  if (s.tasks !== undefined) {
    out += `\nthread affinity (task → domain)${s.tasks.length > 20 ? ' (latest 20)' : ''}\n`
    out += s.tasks.length === 0 ? '  none\n' : table(['task', 'domain', 'streams placed', 'kept there', 'switches', 'since'], s.tasks.slice(-20).map((x) => [x.task, who(x.epr), String(x.placed), String(x.kept), String(x.switches), time(x.since)]))
  }
  out += `\nmoves${s.moves.length > 20 ? ' (latest 20)' : ''}\n`
  out += s.moves.length === 0 ? '  none\n' : table(['kind', 'path', 'from', 'to', 'op', 'reason', 'stall ms'], s.moves.slice(-20).map((m) => [m.kind, m.path, who(m.from), who(m.to), m.op, m.reason, m.stallMs.toFixed(1)]))
  return out
}

function table (head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => '  ' + cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n'
  return line(head) + rows.map(line).join('')
}
