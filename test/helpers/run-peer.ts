// Test helper: runs a peer program (a compiler, a Mono or gSOAP client) to its end and reads its
// `key=value` output lines. Never rejects: the exit code (null when killed) and both streams are the result.
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { which } from './which.js'
import { partMissing } from './require-part.js'

export interface PeerRun { code: number | null, signal: string | null, stdout: string, stderr: string, output: string }

export async function runPeer (cmd: string, args: string[], opts: { cwd: string, timeout?: number, env?: NodeJS.ProcessEnv }): Promise<PeerRun> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeout ?? 60_000, maxBuffer: 16 << 20, encoding: 'utf8', env: opts.env ?? process.env }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string, signal?: string }) | null
      const code = e === null ? 0 : typeof e.code === 'number' ? e.code : null
      resolve({ code, signal: e?.signal ?? null, stdout, stderr, output: `${stdout}\n${stderr}` })
    })
  })
}

/** `key=value` lines (a trailing CR dropped); with `first`, a repeated key keeps its first value, else its last. */
export function parseLines (text: string, o: { first?: boolean } = {}): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0 && (o.first !== true || !(line.slice(0, i) in out))) out[line.slice(0, i)] = line.slice(i + 1).replace(/\r$/, '')
  }
  return out
}

/** Mono's compiler, runtime and the directory holding `assembly` (the WCF tests); `missing` says what is absent (partMissing: under CI a failure). */
export function monoTools (assembly = 'System.ServiceModel.dll'): { mcs?: string, mono?: string, assemblyDir?: string, missing?: string } {
  const mcs = which('mcs')
  const mono = which('mono')
  const assemblyDir = ['/usr/lib/mono/4.5', '/usr/lib/mono/4.5-api'].find((d) => existsSync(join(d, assembly)))
  const missing = mcs === undefined || mono === undefined
    ? partMissing('Mono', 'mcs or mono is not on PATH', 'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil')
    : undefined
  return { ...(mcs === undefined ? {} : { mcs }), ...(mono === undefined ? {} : { mono }), ...(assemblyDir === undefined ? {} : { assemblyDir }), ...(missing === undefined ? {} : { missing }) }
}
