// The char suite: the paper's char mode and sequential block reads through a FileStream, to the
// local kernel and to a storage domain process over net.uds ([MC-NMF] sessions on a Unix socket),
// the bus (HTTP over a Unix socket) and HTTP, faithful and exception-less. Written byte by byte with writeByte and read back with
// readByte through a `cacheBytes` buffer (the paper's "cache"), and read in read() calls of
// `blockBytes`. node:fs alone (a JS loop over a buffer of the same size, one syscall per buffer)
// is the floor of the loop. With `baseline`, another build's dist (e.g. main's) is measured beside
// this one — a child process per build, the cases alternated A/B, B/A over the rounds on one domain
// process — and each row has both builds' MB/s (the median of the rounds). A warm-up round runs
// first, not counted: the first round otherwise measures V8 compiling the loops, and files written
// for the first time. Each case runs its own copy of its loop (char-worker.ts).
import { fork, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { spawnDomain } from '../domains/domain-process.js'
import { packageFile } from '../wsdl/package-root.js'
import type { BenchRow } from './report.js'
import type { CharCase, CharSample } from './char-worker.js'

export interface CharSuiteOptions {
  readonly fileBytes: number
  readonly cacheBytes: number
  /** read() calls of this size in block mode (default 4096). */
  readonly blockBytes?: number
  /** Measured rounds; each build runs each case once per round (default 3). */
  readonly rounds?: number
  /** Rounds run first and not counted: the code of every case compiled, the files written once (default 1). */
  readonly warmup?: number
  readonly hostings?: ReadonlyArray<'local' | 'net.uds' | 'bus' | 'http'>
  /** Another build's dist directory, measured as "before" beside this build ("after"). */
  readonly baseline?: string
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export interface CharRow extends BenchRow {
  readonly exceptionLess: boolean
  /** 'before' is the baseline build, 'after' this one; node:fs alone is 'bare'. */
  readonly build: 'before' | 'after' | 'bare'
  readonly samplesMbPerSec: readonly number[]
  /** Rounds run before the measured ones, not counted (results recorded before the warm-up existed have none). */
  readonly warmup?: number
  readonly calls: number
  /** The git commit the build was made from, when its checkout says. */
  readonly commit?: string
}

/** The commit of the checkout a dist directory was built in (`-dirty` with uncommitted changes), if git knows it. */
function commitOf (dist: string): string | undefined {
  const git = (...a: string[]): string | undefined => { const r = spawnSync('git', ['-C', join(dist, '..'), ...a], { encoding: 'utf8', timeout: 10_000 }); return r.status === 0 ? r.stdout.trim() : undefined }
  const head = git('rev-parse', '--short', 'HEAD')
  return head === undefined ? undefined : `${head}${git('status', '--porcelain', '--untracked-files=no') === '' ? '' : '-dirty'}`
}

const median = (xs: readonly number[]): number => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2 }

/** One build's child process; `measure` runs one case in it. */
interface Worker { readonly child: ChildProcess, measure: (c: CharCase) => Promise<CharSample>, end: () => Promise<void> }

/** The worker runs compiled (beside this module in dist/, or dist/ when this runs from the sources). */
const WORKER = existsSync(join(import.meta.dirname, 'char-worker.js')) ? join(import.meta.dirname, 'char-worker.js') : packageFile('dist', 'benchmarks', 'char-worker.js')

async function startWorker (dist: string | undefined): Promise<Worker> {
  const child = fork(WORKER, dist === undefined ? [] : [dist], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  let pending: { resolve: (s: CharSample) => void, reject: (e: Error) => void } | undefined
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => { const e = new Error(`the char worker${dist === undefined ? '' : ` of ${dist}`} exited (${code})`); reject(e); pending?.reject(e) })
    child.on('message', (m: { ready?: boolean, sample?: CharSample, error?: string }) => {
      if (m.ready === true) { resolve(); return }
      const p = pending
      pending = undefined
      if (m.error !== undefined) p?.reject(new Error(m.error)); else p?.resolve(m.sample!)
    })
  })
  await ready
  return {
    child,
    measure: async (c) => await new Promise<CharSample>((resolve, reject) => { pending = { resolve, reject }; child.send({ case: c }) }),
    end: async () => { if (child.exitCode !== null) return; const gone = new Promise((resolve) => child.once('exit', resolve)); child.send({ end: true }); await gone },
  }
}

export async function runCharSuite (o: CharSuiteOptions): Promise<CharRow[]> {
  const rounds = o.rounds ?? 3
  const warmup = o.warmup ?? 1
  const blockBytes = o.blockBytes ?? 4096
  const hostings = o.hostings ?? ['local', 'net.uds', 'bus', 'http']
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-char-'))
  const root = join(dir, 'volume')
  mkdirSync(root)
  const data = randomBytes(o.fileBytes)
  const sha256 = createHash('sha256').update(data).digest('hex')
  const src = join(dir, 'source.bin')
  writeFileSync(src, data)
  writeFileSync(join(root, 'in.bin'), data)
  const d = await spawnDomain(['storage', '--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${join(dir, 'bus.sock')}`, '--listen', `net.uds:${join(dir, 'nmf.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
  const [http, bus, uds] = d.ready.endpoints as [string, string, string]
  const where = { local: 'local', 'net.uds': uds, bus, http, bare: 'local' } as const
  const cases: CharCase[] = []
  for (const hosting of ['bare', ...hostings] as const) {
    for (const [op, mode] of [['write', 'char'], ['read', 'char'], ['read', 'block']] as const) {
      for (const exceptionLess of hosting === 'bare' ? [false] : [false, true]) {
        if (hosting === 'bare' && mode === 'block') continue
        const local = hosting === 'local' || hosting === 'bare'
        const path = op === 'read' ? (local ? join(root, 'in.bin') : 'in.bin') : (local ? join(dir, `out-${hosting}.bin`) : 'out.bin')
        cases.push({ hosting, destination: where[hosting], path, op, mode, exceptionLess, cacheBytes: mode === 'block' ? blockBytes : o.cacheBytes, blockBytes, source: src, sha256 })
      }
    }
  }
  const builds: Array<{ build: CharRow['build'], worker: Worker }> = [{ build: 'after', worker: await startWorker(undefined) }]
  const rows: CharRow[] = []
  try {
    if (o.baseline !== undefined) builds.push({ build: 'before', worker: await startWorker(o.baseline) })
    const samples = new Map<string, CharSample[]>()
    const total = (warmup + rounds) * cases.reduce((n, c) => n + (c.hosting === 'bare' ? 1 : builds.length), 0)
    let done = 0
    for (let r = -warmup; r < rounds; r++) {
      for (const [i, c] of cases.entries()) {
        // A/B, then B/A: neither build always runs first.
        const order = c.hosting === 'bare' ? [builds[0]!] : (r + warmup + i) % 2 === 0 ? builds : [...builds].reverse()
        for (const b of order) {
          o.onProgress?.(done++, total, `${r < 0 ? 'warm-up' : `round ${r + 1}`}: ${b.build} ${c.hosting} ${c.op} ${c.mode}${c.exceptionLess ? ' exception-less' : ''}`)
          const key = `${c.hosting === 'bare' ? 'bare' : b.build}|${cases.indexOf(c)}`
          const s = await b.worker.measure(c)
          if (r >= 0) samples.set(key, [...samples.get(key) ?? [], s])
        }
      }
    }
    const commits = { after: commitOf(packageFile('dist')), before: o.baseline === undefined ? undefined : commitOf(o.baseline), bare: undefined }
    for (const [key, ss] of samples) {
      const [build, index] = key.split('|') as [CharRow['build'], string]
      const c = cases[Number(index)]!
      const mb = ss.map((s) => s.bytes / 1048576 / (s.ms / 1000))
      rows.push({
        suite: 'char', peer: c.hosting === 'bare' ? 'local-fs' : 'metaos', hosting: c.hosting === 'bare' ? 'local' : c.hosting, op: c.op,
        mode: c.exceptionLess ? `${c.mode}-batched` : c.mode, exceptionLess: c.exceptionLess, build,
        fileBytes: o.fileBytes, cacheBytes: c.cacheBytes, runs: ss.length,
        mbPerSec: median(mb), samplesMbPerSec: mb, warmup, calls: Math.round(median(ss.map((s) => s.calls))),
        ...(commits[build] === undefined ? {} : { commit: commits[build] }),
      })
    }
  } finally {
    for (const b of builds) await b.worker.end().catch(() => {})
    await d.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

const MODE: Record<string, string> = { char: 'char', 'char-batched': 'char, exception-less', block: 'block', 'block-batched': 'block, exception-less' }

/** The rows side by side: per case, before and after MB/s, their ratio, and after against the local kernel's faithful row of the same op and mode. */
export function charTable (rows: readonly CharRow[]): string {
  const r0 = rows[0]
  if (r0 === undefined) return '\n(no rows)\n'
  const cache = rows.find((r) => r.mode.startsWith('char'))?.cacheBytes ?? 0
  const block = rows.find((r) => r.mode.startsWith('block'))?.cacheBytes ?? 0
  const before = rows.some((r) => r.build === 'before')
  const find = (r: CharRow, build: CharRow['build'], hosting = r.hosting, mode = r.mode): CharRow | undefined => rows.find((x) => x.build === build && x.hosting === hosting && x.op === r.op && x.mode === mode && x.peer === 'metaos')
  const f = (n: number | undefined, w: number): string => (n === undefined ? '—' : n >= 100 ? n.toFixed(0) : n.toFixed(1)).padStart(w)
  const x = (a: number | undefined, b: number | undefined, w: number): string => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}x`).padStart(w)
  const commit = (b: CharRow['build']): string => { const c = rows.find((r) => r.build === b)?.commit; return c === undefined ? '' : ` (${c})` }
  let out = `\nwriteByte/readByte through a ${cache} B cache and read() of ${block} B blocks, ${(r0.fileBytes ?? 0) / 1048576} MiB file; MB/s, median of ${r0.runs} rounds${r0.warmup === undefined ? '' : ` after ${r0.warmup} not counted`}${before ? `; before = the baseline build${commit('before')}, after = this build${commit('after')}` : ''}\n`
  out += `  ${'hosting'.padEnd(8)} ${'op'.padEnd(6)} ${'mode'.padEnd(22)} ${before ? `${'before'.padStart(7)} ` : ''}${'after'.padStart(7)} ${before ? `${'after/before'.padStart(12)} ` : ''}${'vs local'.padStart(9)} ${'calls'.padStart(7)}\n`
  for (const r of rows.filter((x) => x.build !== 'before')) {
    if (r.build === 'bare') {
      out += `  ${'node:fs'.padEnd(8)} ${r.op.padEnd(6)} ${'char (no FileStream)'.padEnd(22)} ${before ? `${''.padStart(7)} ` : ''}${f(r.mbPerSec, 7)} ${before ? `${''.padStart(12)} ` : ''}${''.padStart(9)} ${String(r.calls).padStart(7)}\n`
      continue
    }
    const b = find(r, 'before')
    out += `  ${r.hosting.padEnd(8)} ${r.op.padEnd(6)} ${(MODE[r.mode] ?? r.mode).padEnd(22)} ${before ? `${f(b?.mbPerSec, 7)} ` : ''}${f(r.mbPerSec, 7)} ${before ? `${x(r.mbPerSec, b?.mbPerSec, 12)} ` : ''}${x(r.mbPerSec, find(r, 'after', 'local', r.mode.replace('-batched', ''))?.mbPerSec, 9)} ${String(r.calls).padStart(7)}\n`
  }
  return out
}
