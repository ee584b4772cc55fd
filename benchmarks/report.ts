// Benchmark results: the row format of DESIGN.md §7 (a contract), the machine description, the
// JSON (bench-command.ts writes it). Each suite prints its own tables (peers-suite.ts, paper-report.ts…).
import { spawnSync } from 'node:child_process'
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

let mono: string | null | undefined

/** Mono's version (the WCF peer's runtime), or null without Mono; asked once. */
function monoVersion (): string | null {
  if (mono === undefined) {
    const r = spawnSync('mono', ['--version'], { encoding: 'utf8', timeout: 10_000 })
    mono = r.status === 0 ? (/version (\S+)/.exec(r.stdout)?.[1] ?? null) : null
  }
  return mono
}

/** The machine a run measured: CPU, cores, memory, kernel, Node and Mono versions, and when. */
export function machine (): Record<string, unknown> {
  const c = cpus()
  return { node: process.version, mono: monoVersion(), os: `${type()} ${release()}`, cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryBytes: totalmem(), date: new Date().toISOString() }
}

/** One line for people: "AMD EPYC, 2 cores, 24 GiB, Linux 6.1…, Node v20…, Mono 6.8…". */
export function machineLine (m: Record<string, unknown>): string {
  return `${String(m.cpu)}, ${String(m.cores)} cores, ${Math.round(Number(m.memoryBytes) / 2 ** 30)} GiB, ${String(m.os)}, Node ${String(m.node)}${typeof m.mono === 'string' ? `, Mono ${m.mono}` : ''}`
}

