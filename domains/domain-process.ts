// Starting a domain as a child process of this one (`metaos storage …`) and waiting for its
// "ready" line: what `metaos up`, the benchmarks and the CLI tests share. Stopping sends SIGTERM,
// so the domain drains and exits 0.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { packageFile } from '../wsdl/package-root.js'
import { MetaosError } from '../soap-runtime/errors.js'

export interface ReadyLine {
  readonly event: 'ready'
  readonly service: string
  readonly endpoints: string[]
  readonly epr: string
}

export interface DomainProcess {
  readonly child: ChildProcess
  readonly ready: ReadyLine
  /** SIGTERM, then the exit code (SIGKILL after `graceMs`). */
  stop: (graceMs?: number) => Promise<number | null>
}

/** Path of the compiled CLI entry point. */
export const CLI_PATH = packageFile('dist', 'cli', 'metaos.js')

export interface SpawnOptions {
  timeoutMs?: number
  env?: NodeJS.ProcessEnv
  /**
   * Called right after the process is spawned, before its ready line: the moment to act on the pid
   * (e.g. move it into a control group) while the domain is still starting. If it throws, the
   * process is killed and the spawn fails with that error.
   */
  onSpawn?: (child: ChildProcess) => void
}

/** Starts `metaos <args>` (e.g. `storage --root …`) and waits for its ready line. */
export async function spawnDomain (args: readonly string[], options: SpawnOptions = {}): Promise<DomainProcess> {
  return await spawnReady(CLI_PATH, args, options)
}

/** Starts any Node script that announces itself with a ready line on stdout (domains, benchmark peers). */
export async function spawnReady (script: string, args: readonly string[], options: SpawnOptions = {}): Promise<DomainProcess> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env })
  try { options.onSpawn?.(child) } catch (e) { child.kill('SIGKILL'); throw e }
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { if (stderr.length < 64 * 1024) stderr += c.toString() })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  const lines = createInterface({ input: child.stdout! })
  const ready = await new Promise<ReadyLine>((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new MetaosError('TIMED_OUT', `domain did not get ready within ${options.timeoutMs ?? 20_000} ms: ${stderr.slice(-2000)}`)) }, options.timeoutMs ?? 20_000)
    lines.once('line', (line) => {
      clearTimeout(timer)
      try { resolve(JSON.parse(line) as ReadyLine) } catch { child.kill('SIGKILL'); reject(new MetaosError('PROTOCOL_ERROR', `unexpected first line from the domain: ${line}`)) }
    })
    void exited.then((code) => { clearTimeout(timer); reject(new MetaosError('TRANSPORT_ERROR', `domain exited with ${code} before it was ready: ${stderr.slice(-2000)}`)) })
  })
  return {
    child,
    ready,
    stop: async (graceMs = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
      child.kill('SIGTERM')
      const t = setTimeout(() => { child.kill('SIGKILL') }, graceMs)
      const code = await exited
      clearTimeout(t)
      return code
    },
  }
}
