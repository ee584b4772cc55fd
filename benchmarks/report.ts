// Benchmark results: the row format of DESIGN.md §7 (a contract), the machine description, the
// JSON (cli/bench-command.ts writes it). Each suite prints its own tables (peers-suite.ts, paper-report.ts…).
import { spawnSync } from 'node:child_process'
import { cpus, release, totalmem, type } from 'node:os'
import { basename, isAbsolute, relative } from 'node:path'

export interface BenchRow {
  suite: string
  peer: 'metaos' | 'local-fs' | 'bare-http' | 'soap' | 'mono-wcf' | 'raw'
  hosting: 'local' | 'bus' | 'http' | 'net.uds' | 'net.tcp' | 'tcp' | 'container-http' | 'container-bus' | 'vm-http' | 'vm-bus'
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
/** The mean of `xs` (NaN for none). */
export function mean (xs: readonly number[]): number { return xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length }
/** Sample standard deviation (n − 1); 0 for a single run. */
export function sd (xs: readonly number[]): number {
  if (xs.length < 2) return 0
  const m = mean(xs)
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1))
}

export function machine (): Record<string, unknown> {
  const c = cpus()
  return { node: process.version, mono: monoVersion(), os: `${type()} ${release()}`, cpu: c[0]?.model ?? 'unknown', cores: c.length, memoryBytes: totalmem(), date: new Date().toISOString() }
}

/** One line for people: "AMD EPYC, 2 cores, 24 GiB, Linux 6.1…, Node v20…, Mono 6.8…". */
export function machineLine (m: Record<string, unknown>): string {
  return `${String(m.cpu)}, ${String(m.cores)} cores, ${Math.round(Number(m.memoryBytes) / 2 ** 30)} GiB, ${String(m.os)}, Node ${String(m.node)}${typeof m.mono === 'string' ? `, Mono ${m.mono}` : ''}`
}


/**
 * A command line as recorded with its results: an absolute path in it (an output file) is shown
 * relative to `cwd` when inside it, else by its base name, so that no machine's paths reach the
 * docs (test/project/docs-paths.test.ts) and anyone can run the command as shown.
 */
export function portableCommand (args: readonly string[], cwd?: string): string {
  const portable = (p: string): string => {
    if (!isAbsolute(p)) return p
    const r = cwd === undefined ? '' : relative(cwd, p)
    return r !== '' && !r.startsWith('..') && !isAbsolute(r) ? r : basename(p)
  }
  return args.map((a) => {
    const eq = /^(--[^=]+=)(.*)$/.exec(a)
    return eq === null ? portable(a) : eq[1]! + portable(eq[2]!)
  }).join(' ')
}
