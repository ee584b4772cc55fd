// Benchmark peer "mono-wcf": the paper's own stack (Mono's WCF, BasicHttpBinding) beside ours.
// Builds benchmarks/peers/wcf/StorageBench.cs with mcs (cached in os.tmpdir() by source hash),
// runs its service in one process and its client in another, one size at a time, and turns the
// client's JSON into BenchRows. Skips with a reason when Mono is missing; never installs it.
// Untuned = ServiceHost with stock System.Net settings; tuned = the same binding on a reply channel
// of its own (Mono's dispatcher sleeps 100 ms per accepted channel) and Nagle/Expect: 100-continue off.
import { execFile, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { createInterface } from 'node:readline'
import { packageFile } from '../wsdl/package-root.js'
import type { BenchRow } from './report.js'

export interface WcfPeerOptions {
  sizes: number[]
  seconds: number
  /** true: the service on its own reply channel and the client tuned; 'client': only the client tuned (Nagle, Expect: 100-continue), against the stock ServiceHost. */
  tuned: boolean | 'client'
}

const ASSEMBLIES = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll']

function which (name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin']) {
    if (dir === '') continue
    try { accessSync(join(dir, name), constants.X_OK); return join(dir, name) } catch { /* next */ }
  }
  return undefined
}

async function run (cmd: string, args: string[], timeoutMs: number): Promise<{ ok: boolean, stdout: string, stderr: string }> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => { resolve({ ok: err === null, stdout, stderr: stderr || String(err ?? '') }) })
  })
}

/** Mono's compiler, runtime and the WCF assemblies, or why they are missing (never installed here). */
export function monoToolchain (): { mcs: string, mono: string, assemblyDir: string } | { skipped: string } {
  const mcs = which('mcs')
  const mono = which('mono')
  if (mcs === undefined || mono === undefined) return { skipped: 'mono-wcf: Mono is not installed (mcs/mono not on PATH; apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil)' }
  const assemblyDir = ['/usr/lib/mono/4.5', '/usr/lib/mono/4.5-api'].find((d) => ASSEMBLIES.every((a) => existsSync(join(d, a))))
  if (assemblyDir === undefined) return { skipped: 'mono-wcf: System.ServiceModel.dll not found under /usr/lib/mono/4.5 (apt-get install libmono-system-servicemodel4.0a-cil)' }
  return { mcs, mono, assemblyDir }
}

/** Compiles `sources` into NAME.exe once per source version (cached in os.tmpdir() by their hash); its path or why it cannot. */
export async function compileCached (tools: { mcs: string, assemblyDir: string }, name: string, sources: readonly string[], options: readonly string[] = []): Promise<string | { skipped: string }> {
  const hash = createHash('sha256')
  for (const source of sources) hash.update(readFileSync(source))
  const dir = join(tmpdir(), `metaos-${name}-${hash.digest('hex').slice(0, 16)}`)
  const exe = join(dir, `${name}.exe`)
  if (existsSync(exe)) return exe
  mkdirSync(dir, { recursive: true })
  const tmp = join(dir, `${name}.${process.pid}.exe`)
  const cc = await run(tools.mcs, ['-nologo', '-optimize+', `-out:${tmp}`, ...options, ...ASSEMBLIES.map((a) => `-r:${join(tools.assemblyDir, a)}`), ...sources], 120_000)
  if (!cc.ok) return { skipped: `mono-wcf: mcs failed to compile ${sources.join(' ')}: ${(cc.stdout + cc.stderr).trim().slice(0, 500)}` }
  renameSync(tmp, exe) // atomic, so a concurrent run never sees half a file
  return exe
}

/** A Mono service process started, with what its ready line said; `stop` ends it (stdin EOF, then SIGKILL after 5 s). */
export interface MonoService<T> { readonly ready: T, stop: () => Promise<void> }

/**
 * Runs `mono exe args…` until its ready line (JSON, within 30 s): the value `ready` takes from it,
 * or undefined for another line. The service stops on stdin EOF.
 */
export async function startMonoService<T> (mono: string, exe: string, args: readonly string[], ready: (line: { event?: string, [k: string]: unknown }) => T | undefined): Promise<MonoService<T>> {
  const child = spawn(mono, [exe, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.stdin.end()
    const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
    await exited
    clearTimeout(timer)
  }
  try {
    const said = await new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`mono-wcf service not ready after 30 s: ${stderr.slice(0, 500)}`)) }, 30_000)
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mono-wcf service exited (${String(code)}): ${stderr.slice(0, 500)}`)) })
      createInterface({ input: child.stdout }).on('line', (line) => {
        let v: T | undefined
        try { v = ready(JSON.parse(line) as { event?: string }) } catch { /* not the ready line */ }
        if (v !== undefined) { clearTimeout(timer); resolve(v) }
      })
    })
    return { ready: said, stop }
  } catch (e) { await stop(); throw e }
}

interface ClientResult { calls: number, seconds: number, bytes: number, p50ms: number, p99ms: number }

function row (size: number, tuned: boolean | 'client', r: ClientResult): BenchRow {
  return {
    suite: 'peers',
    peer: 'mono-wcf',
    hosting: 'http',
    op: 'write',
    mode: tuned === 'client' ? 'call-client-tuned' : tuned ? 'call-tuned' : 'call',
    payloadBytes: size,
    runs: r.calls,
    callsPerSec: r.calls / r.seconds,
    mbPerSec: r.bytes / (1024 * 1024) / r.seconds,
    totalMs: (r.seconds * 1000) / Math.max(r.calls, 1),
    p50us: r.p50ms * 1000,
    p99us: r.p99ms * 1000,
  }
}

export async function runWcfPeer (o: WcfPeerOptions): Promise<BenchRow[] | { skipped: string }> {
  const tools = monoToolchain()
  if ('skipped' in tools) return tools
  const mono = tools.mono
  const exe = await compileCached(tools, 'wcf-peer', [packageFile('benchmarks', 'peers', 'wcf', 'StorageBench.cs')])
  if (typeof exe !== 'string') return exe
  const dir = mkdtempSync(join(tmpdir(), 'metaos-wcf-bench-'))
  const service = await startMonoService(mono, exe, ['serve', '0', join(dir, 'mono-wcf.bin'), ...(o.tuned === true ? ['tuned'] : [])],
    (m) => m.event === 'ready' && Array.isArray(m.endpoints) && typeof m.endpoints[0] === 'string' ? m.endpoints[0] : undefined)
  try {
    const rows: BenchRow[] = []
    for (const size of o.sizes) {
      const c = await run(mono, [exe, 'client', service.ready, String(size), String(o.seconds), ...(o.tuned !== false ? ['tuned'] : [])], o.seconds * 1000 + 120_000)
      const last = c.stdout.trim().split('\n').pop() ?? ''
      if (!c.ok || !last.startsWith('{')) throw new Error(`mono-wcf client failed for ${size} B: ${c.stderr.slice(0, 800)}`)
      rows.push(row(size, o.tuned, JSON.parse(last) as ClientResult))
    }
    return rows
  } finally {
    await service.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
