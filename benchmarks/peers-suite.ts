// The peers suite: single Write round trips, one call at a time, side by side in one run — the
// local file system (the limit), metaos (a local handler, a domain over the bus and over HTTP, and
// in [MC-NMF] sessions over net.uds and net.tcp: `metaos/net.uds` in the binary encoding, the
// proxies' default, `metaos/net.uds (text)` in SOAP 1.2 text),
// bare node:http over the same two transports (the protocol floor of each), the npm soap package, and Mono WCF basicHttpBinding (the
// paper's own stack, in its default setup and tuned, wcf-peer.ts) — with every peer's ratio to
// metaos over HTTP, so a noisy machine shifts all of them alike. Two more kinds of rows: `(server
// only)`, one fixed minimal client (peers/fixed-client.ts, each request's bytes made once) against
// metaos's HTTP server and bare node:http's, so only the server differs; and `raw/net.uds`,
// `raw/tcp`, length-prefixed frames with the same file write and a one-byte reply
// (peers/raw-frame-server.ts): what the transport itself allows.
import { runCallSuite } from './call-suite.js'
import type { BenchRow } from './report.js'
import { runWcfPeer } from './wcf-peer.js'

export const PEERS = ['local-fs', 'raw', 'metaos', 'bare-http', 'soap', 'mono-wcf'] as const

export interface PeersSuiteOptions {
  readonly sizes: readonly number[]
  /** Measured seconds per peer and size (Mono runs its own client for as long). */
  readonly seconds: number
  readonly rounds: number
  /** Which peers (default all); metaos is always measured, the ratios need it. */
  readonly peers?: ReadonlySet<string>
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

export interface PeersResult {
  readonly rows: BenchRow[]
  /** One line per peer that could not run, with the reason. */
  readonly skipped: string[]
}

export async function runPeersSuite (o: PeersSuiteOptions): Promise<PeersResult> {
  const want = o.peers ?? new Set(PEERS)
  const callPeers = new Set([...want].filter((p) => p !== 'mono-wcf'))
  callPeers.add('metaos')
  // Mono WCF's net.tcp service is called like metaos's domains (wcf-nettcp-peer.ts); its basicHttp one by Mono's own client below.
  if (want.has('mono-wcf')) callPeers.add('mono-wcf-nettcp')
  const rows = (await runCallSuite({ sizes: o.sizes, peers: callPeers, secondsPerCase: o.seconds, rounds: o.rounds, serverOnly: true, ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }), ...(o.shouldStop === undefined ? {} : { shouldStop: o.shouldStop }) }))
    .map((r) => ({ ...r, suite: 'peers' }))
  const skipped: string[] = []
  if (want.has('mono-wcf') && o.shouldStop?.() !== true) {
    // The stock ServiceHost first (what a WCF user gets), then with the client's System.Net tuned
    // (Nagle and Expect: 100-continue off), then the service on its own reply channel too.
    for (const tuned of [false, 'client', true] as const) {
      o.onProgress?.(0, 1, `mono-wcf${tuned === false ? '' : tuned === 'client' ? ' (client tuned)' : ' (tuned)'}`)
      const r = await runWcfPeer({ sizes: [...o.sizes], seconds: o.seconds, tuned })
      if ('skipped' in r) { skipped.push(r.skipped); break }
      rows.push(...r)
    }
  }
  return { rows, skipped }
}

const fmtSize = (n: number): string => n >= 1048576 ? `${n / 1048576} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`
const label = (r: BenchRow): string => `${r.peer}/${r.hosting}${r.mode === 'call' ? '' : ` (${r.mode.replace(/^call-?/, '').replace(/^server-only$/, 'server only')})`}`
/** Fastest first: the limit on top, then each peer down to the slowest. */
const ORDER = ['local-fs/local', 'raw/net.uds', 'raw/tcp', 'metaos/local', 'metaos/net.uds', 'metaos/net.tcp', 'metaos/net.uds (text)', 'metaos/net.tcp (text)', 'mono-wcf/net.tcp', 'mono-wcf/net.tcp (text)', 'bare-http/bus', 'bare-http/http', 'bare-http/http (server only)', 'metaos/http (server only)', 'metaos/bus', 'metaos/http', 'soap/http', 'mono-wcf/http (tuned)', 'mono-wcf/http (client-tuned)', 'mono-wcf/http']
const rank = (r: BenchRow): number => { const i = ORDER.indexOf(label(r)); return i < 0 ? ORDER.length : i }

/** The rows of one payload size, ordered, with each one's ratio to metaos over HTTP. */
function bySize (rows: readonly BenchRow[]): Array<{ size: number, rows: Array<{ row: BenchRow, ratio: number | undefined }> }> {
  const sizes = [...new Set(rows.map((r) => r.payloadBytes!))].sort((a, b) => a - b)
  return sizes.map((size) => {
    const rs = rows.filter((r) => r.payloadBytes === size).sort((a, b) => rank(a) - rank(b))
    const ref = rs.find((r) => r.peer === 'metaos' && r.hosting === 'http' && r.mode === 'call')?.callsPerSec
    return { size, rows: rs.map((row) => ({ row, ratio: ref === undefined || row.callsPerSec === undefined ? undefined : row.callsPerSec / ref })) }
  })
}

const n = (x: number | undefined, d = 0): string => x === undefined ? '-' : x.toFixed(d)
/** A ratio with two significant digits at least: 15×, 1.02×, 0.0050×. */
const x = (r: number | undefined): string => r === undefined ? '-' : `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`

/** For a terminal. */
export function peersTable (res: PeersResult): string {
  let out = ''
  for (const g of bySize(res.rows)) {
    out += `\nWrite round trips of ${fmtSize(g.size)}, one call at a time\n`
    out += `  ${'peer/hosting'.padEnd(30)} ${'calls/s'.padStart(9)} ${'MB/s'.padStart(8)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'vs metaos/http'.padStart(15)}\n`
    for (const { row, ratio } of g.rows) out += `  ${label(row).padEnd(30)} ${n(row.callsPerSec).padStart(9)} ${n(row.mbPerSec, 1).padStart(8)} ${n(row.p50us).padStart(8)} ${n(row.p99us).padStart(8)} ${x(ratio).padStart(15)}\n`
    const s = serverOnlyRatio(g.rows.map((r) => r.row))
    if (s !== undefined) out += `  server only (the same fixed client): metaos's HTTP server at ${x(s)} bare node:http's\n`
  }
  for (const s of res.skipped) out += `\n${s}\n`
  return out
}

/** metaos's HTTP server over bare node:http's, both under the same fixed client. */
function serverOnlyRatio (rows: readonly BenchRow[]): number | undefined {
  const of = (peer: string): number | undefined => rows.find((r) => r.peer === peer && r.mode === 'call-server-only')?.callsPerSec
  const m = of('metaos')
  const b = of('bare-http')
  return m === undefined || b === undefined ? undefined : m / b
}

/** The peers table with ratios, for docs: one row per peer, columns per payload size. */
export function peersMarkdown (res: PeersResult): string {
  const groups = bySize(res.rows)
  const labels = [...new Set(groups.flatMap((g) => g.rows.map((r) => label(r.row))))].sort((a, b) => (ORDER.indexOf(a) < 0 ? 99 : ORDER.indexOf(a)) - (ORDER.indexOf(b) < 0 ? 99 : ORDER.indexOf(b)))
  let out = `| peer / hosting | ${groups.map((g) => `${fmtSize(g.size)}: calls/s (× metaos/http)`).join(' | ')} |\n`
  out += `| --- | ${groups.map(() => '---:').join(' | ')} |\n`
  for (const l of labels) {
    out += `| ${l} | ${groups.map((g) => { const r = g.rows.find((e) => label(e.row) === l); return r === undefined ? '-' : `${n(r.row.callsPerSec)} (${x(r.ratio)})` }).join(' | ')} |\n`
  }
  const so = groups.map((g) => ({ size: g.size, ratio: serverOnlyRatio(g.rows.map((r) => r.row)) })).filter((s) => s.ratio !== undefined)
  if (so.length > 0) out += `\nServer only (the same fixed client against each server): metaos's HTTP server at ${so.map((s) => `${x(s.ratio)} (${fmtSize(s.size)})`).join(', ')} bare node:http's.\n`
  for (const s of res.skipped) out += `\n${s}\n`
  return out
}
