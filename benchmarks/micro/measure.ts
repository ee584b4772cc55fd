// What the micro-benchmarks of benchmarks/micro/ share: timing a function in interleaved rounds
// (a shared, noisy machine shifts every candidate of a round alike) and printing where and how it
// ran. Each script there reproduces a figure that docs/dependencies.md quotes; run it with
// `npm run build && node dist/benchmarks/micro/<name>.js`.
import { machine, machineLine } from '../report.js'

export interface Candidate {
  readonly name: string
  /** One operation; its result is kept so the work cannot be optimized away. */
  readonly run: () => unknown
}

/** Median microseconds per operation of each candidate: `rounds` interleaved rounds of about `ms` each. */
export function timeEach (candidates: readonly Candidate[], o: { rounds?: number, ms?: number } = {}): Map<string, number> {
  const rounds = o.rounds ?? 7
  const ms = o.ms ?? 300
  const samples = new Map<string, number[]>(candidates.map((c) => [c.name, []]))
  let sink: unknown
  for (const c of candidates) for (let i = 0; i < 20; i++) sink = c.run() // warm-up: the JIT settles first
  for (let r = 0; r < rounds; r++) {
    for (const c of candidates) {
      let n = 0
      const t0 = performance.now()
      let t = t0
      while (t - t0 < ms) {
        for (let i = 0; i < 10; i++) sink = c.run()
        n += 10
        t = performance.now()
      }
      samples.get(c.name)!.push(((t - t0) * 1000) / n)
    }
  }
  if (sink === Symbol.for('never')) process.stdout.write('')
  return new Map([...samples].map(([name, s]) => [name, median(s)]))
}

export function median (xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

/** The first lines of every report: which script, on which machine. */
export function header (script: string): string {
  return `${script} on ${machineLine(machine())}\n`
}

/** A Markdown table. */
export function table (head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |\n`
  return line(head) + line(head.map(() => '---')) + rows.map(line).join('')
}

export const fmt = (n: number, digits = 1): string => n >= 100 ? n.toFixed(0) : n.toFixed(digits)
