// The compiled `metaos` CLI as a real child process for the CLI tests (dist/, built by `npm test`'s
// pretest): started with its stdout's first line (the ready line) awaited, or run to its exit; killed
// when the test ends.
import type { Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
export const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface Cli {
  readonly child: ChildProcess
  readonly stdout: () => string
  readonly stderr: () => string
  /** Resolves with the first stdout line (rejects if the process exits first). */
  readonly firstLine: Promise<string>
  readonly exited: Promise<Exit>
}

export function startCli (t: Test, args: string[], env: NodeJS.ProcessEnv = ENV): Cli {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let out = ''
  let err = ''
  child.stdout!.setEncoding('utf8')
  child.stderr!.setEncoding('utf8')
  const exited = new Promise<Exit>((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
  const firstLine = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (c: string) => {
      out += c
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(out.slice(0, nl))
    })
    void exited.then((e) => { reject(new Error(`metaos ${args.join(' ')} exited (${e.code ?? e.signal}) before its first line; stderr: ${err.slice(-2000)}`)) })
  })
  firstLine.catch(() => undefined)
  child.stderr!.on('data', (c: string) => { if (err.length < 1_000_000) err += c })
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL')
      await exited
    }
  })
  return { child, stdout: () => out, stderr: () => err, firstLine, exited }
}

/** Runs the CLI to its exit (SIGKILL after `timeoutMs`). */
export async function runCli (t: Test, args: string[], timeoutMs = 20_000): Promise<Exit & { stdout: string, stderr: string }> {
  const c = startCli(t, args)
  const timer = setTimeout(() => { c.child.kill('SIGKILL') }, timeoutMs)
  const e = await c.exited
  clearTimeout(timer)
  return { ...e, stdout: c.stdout(), stderr: c.stderr() }
}
