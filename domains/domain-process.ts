// Starting a domain as a child process of this one (`metaos storage …`) and waiting for its
// "ready" line: what `metaos up`, the benchmarks and the CLI tests share. Stopping sends SIGTERM,
// so the domain drains and exits 0. A domain that cannot start prints an error line instead of its
// ready line (`{"event":"error","code":…}`): the spawn fails with a MetaosError of that code — a
// port already taken is ADDRESS_IN_USE, whatever words the system used.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { packageFile } from '../wsdl/package-root.js'
import { ERRORS, MetaosError, type ErrorCode } from '../soap-runtime/errors.js'
import { domainNodeFlags } from '../service-domain/node-flags.js'

export interface ReadyLine {
  readonly event: 'ready'
  readonly service: string
  readonly endpoints: string[]
  readonly epr: string
}

/** What a domain prints instead of its ready line when it cannot start. */
export interface ErrorLine {
  readonly event: 'error'
  readonly service: string
  readonly code: ErrorCode
  readonly message: string
}

/** A domain's failure to start as a MetaosError when it has a code of the catalogue (a listener's EADDRINUSE is ADDRESS_IN_USE); anything else as it is. */
export function startFailure (e: unknown): unknown {
  if (e instanceof MetaosError) return e
  const errno = e as NodeJS.ErrnoException | undefined
  if (errno?.code === 'EADDRINUSE') return new MetaosError('ADDRESS_IN_USE', errno.message, { cause: e })
  return e
}

/** The error line a domain command prints for its failure (one JSON line), or undefined when the failure has no code. */
export function errorLine (service: string, e: unknown): string | undefined {
  const f = startFailure(e)
  if (!(f instanceof MetaosError)) return undefined
  const line: ErrorLine = { event: 'error', service, code: f.code, message: f.message }
  return JSON.stringify(line) + '\n'
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
  /** Flags for `node` before the script (spawnDomain: the domain's, service-domain/node-flags.ts; spawnReady: none). */
  nodeFlags?: readonly string[]
}

/** Starts `metaos <args>` (e.g. `storage --root …`) with the domain's Node flags and waits for its ready line. */
export async function spawnDomain (args: readonly string[], options: SpawnOptions = {}): Promise<DomainProcess> {
  return await spawnReady(CLI_PATH, args, { nodeFlags: domainNodeFlags(options.env ?? process.env), ...options })
}

/** Starts any Node script that announces itself with a ready line on stdout (domains, benchmark peers). */
export async function spawnReady (script: string, args: readonly string[], options: SpawnOptions = {}): Promise<DomainProcess> {
  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env })
  try { options.onSpawn?.(child) } catch (e) { child.kill('SIGKILL'); throw e }
  let stderr = ''
  child.stderr!.on('data', (c: Buffer) => { if (stderr.length < 64 * 1024) stderr += c.toString() })
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  // Its stdout and stderr read to the end too: an error line printed just before the exit is seen.
  const closed = new Promise<number | null>((resolve) => { child.once('close', (code) => { resolve(code) }) })
  const lines = createInterface({ input: child.stdout! })
  const timeoutMs = options.timeoutMs ?? 20_000
  const ready = await new Promise<ReadyLine>((resolve, reject) => {
    let failure: ErrorLine | undefined
    let timer = setTimeout(() => { child.kill('SIGKILL'); reject(new MetaosError('TIMED_OUT', `domain did not get ready within ${timeoutMs} ms: ${stderr.slice(-2000)}`)) }, timeoutMs)
    lines.once('line', (line) => {
      clearTimeout(timer)
      let first: ReadyLine | ErrorLine
      try { first = JSON.parse(line) as ReadyLine | ErrorLine } catch { child.kill('SIGKILL'); reject(new MetaosError('PROTOCOL_ERROR', `unexpected first line from the domain: ${line}`)); return }
      if (first.event !== 'error') { resolve(first); return }
      // It could not start and is exiting: the exit rejects, with the line's code (killed if it lingers).
      failure = first
      timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
    })
    void closed.then((code) => {
      clearTimeout(timer)
      const known = failure !== undefined && Object.hasOwn(ERRORS, failure.code) ? failure.code : 'TRANSPORT_ERROR'
      reject(new MetaosError(known, `domain exited with ${code} before it was ready: ${stderr.slice(-2000)}`))
    })
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
