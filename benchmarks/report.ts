// Benchmark results: the row format of DESIGN.md §7 (a contract), the machine description, the
// JSON file, and the tables and ratios printed for people.
import { writeFileSync } from 'node:fs'
import { cpus, release, totalmem, type } from 'node:os'

export interface BenchRow {
  suite: string
  peer: 'metaos' | 'local-fs' | 'bare-http' | 'soap' | 'mono-wcf'
  hosting: 'local' | 'bus' | 'http' | 'container-http' | 'container-bus' | 'vm-http' | 'vm-bus'
  op: 'write' | 'read'
  mode: string
  fileBytes?: number
  cacheBytes?: number
  payloadBytes?: number
  runs: number
  mbPerSec?: number
  mbPerSecStd?: number
  callsPerSec?: number
  channelMs?: number
  serviceMs?: number
  totalMs?: number
  p50us?: number
  p99us?: number
}

export function machine (): Record<string, unknown> {
  const c = cpus()
  return { node: process.version, os: `${type()} ${release()}`, cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryBytes: totalmem(), date: new Date().toISOString() }
}

export function writeJson (file: string, rows: readonly BenchRow[]): void {
  writeFileSync(file, JSON.stringify({ machine: machine(), rows }, null, 2) + '\n')
}

const fmtSize = (n: number): string => n >= 1048576 ? `${n / 1048576} MiB` : n >= 1024 ? `${n / 1024} KiB` : `${n} B`
const f = (n: number | undefined, d = 1): string => (n === undefined ? '-' : n.toFixed(d))

/** The call-suite table: one block per payload size, slowest first, with ratios to the peers. */
export function callTable (rows: readonly BenchRow[]): string {
  let out = ''
  const sizes = [...new Set(rows.map((r) => r.payloadBytes!))]
  for (const size of sizes) {
    const rs = rows.filter((r) => r.payloadBytes === size).sort((a, b) => (a.callsPerSec ?? 0) - (b.callsPerSec ?? 0))
    out += `\nWrite round trips of ${fmtSize(size)}\n`
    out += `  ${'peer/hosting'.padEnd(18)} ${'calls/s'.padStart(9)} ${'MB/s'.padStart(8)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'service µs'.padStart(10)}\n`
    for (const r of rs) {
      out += `  ${`${r.peer}/${r.hosting}`.padEnd(18)} ${f(r.callsPerSec, 0).padStart(9)} ${f(r.mbPerSec).padStart(8)} ${f(r.p50us, 0).padStart(8)} ${f(r.p99us, 0).padStart(8)} ${(r.serviceMs === undefined ? '-' : (r.serviceMs * 1000).toFixed(0)).padStart(10)}\n`
    }
    const get = (peer: string, hosting: string): BenchRow | undefined => rs.find((r) => r.peer === peer && r.hosting === hosting)
    const ratio = (a: BenchRow | undefined, b: BenchRow | undefined): string => a?.callsPerSec !== undefined && b?.callsPerSec !== undefined ? `${(a.callsPerSec / b.callsPerSec).toFixed(2)}x` : 'n/a'
    const http = get('metaos', 'http')
    out += `  ratios: metaos-http/bare-http ${ratio(http, get('bare-http', 'http'))}, metaos-http/soap ${ratio(http, get('soap', 'http'))}, metaos-bus/metaos-http ${ratio(get('metaos', 'bus'), http)}\n`
  }
  return out
}
