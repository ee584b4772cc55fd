// Benchmark peer "mono-wcf" on net.tcp: a Mono WCF storage service with metaos's StorageService
// contract — the one test/interop/wcf-nettcp-service.test.ts checks, NetTcpStorageService.cs with
// the contracts of wcf/StorageClient.cs and wcf-nettcp/NetTcpStorageClient.cs — self-hosted with
// NetTcpBinding(SecurityMode.None) (binary, [MC-NBFX] with session strings) and a CustomBinding of
// text + TcpTransport, called by metaos's own proxy in the same Write round trips as every other
// peer (call-suite.ts): rows `mono-wcf/net.tcp` and `mono-wcf/net.tcp (text)`, so only the server
// differs from `metaos/net.tcp`. Expect ~20 calls/s: Mono's TcpDuplexSessionChannel.WaitForMessage,
// on the service side as on the client's, sleeps 50 ms whenever no byte is waiting on the socket
// (Thread.Sleep(50) in a poll loop), so every call waits once; the row measures that, and says what
// a metaos client meets in Mono's net.tcp service. Compiled once per source version (wcf-peer.ts);
// skipped without Mono (the peers suite says why under its basicHttp rows).
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { packageFile } from '../wsdl/package-root.js'
import { compileCached, monoToolchain } from './wcf-peer.js'

export interface WcfNetTcpService {
  /** The binary (NetTcpBinding) and text (CustomBinding) endpoints. */
  readonly binary: string
  readonly text: string
  stop: () => Promise<void>
}

const SOURCES = ['wcf/StorageClient.cs', 'wcf-nettcp/NetTcpStorageClient.cs', 'wcf-nettcp/NetTcpStorageService.cs']

/** Compiles (once) and starts the service on two free ports of 127.0.0.1; `{ skipped }` without Mono. */
export async function startWcfNetTcpService (): Promise<WcfNetTcpService | { skipped: string }> {
  const tools = monoToolchain()
  if ('skipped' in tools) return tools
  const exe = await compileCached(tools, 'wcf-nettcp-service', SOURCES.map((f) => packageFile('test', 'interop', f)), ['-main:Metaos.Interop.NetTcpServiceProgram'])
  if (typeof exe !== 'string') return exe
  const root = mkdtempSync(join(tmpdir(), 'metaos-wcf-nettcp-bench-'))
  const child = spawn(tools.mono, [exe, root, '0', '0'], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve() }))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end() // the service stops on stdin EOF
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 5000)
      await exited
      clearTimeout(timer)
    }
    rmSync(root, { recursive: true, force: true })
  }
  try {
    const ready = await new Promise<{ binary: string, text: string }>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`mono-wcf net.tcp service not ready after 30 s: ${stderr.slice(0, 500)}`)) }, 30_000)
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`mono-wcf net.tcp service exited (${String(code)}): ${stderr.slice(0, 500)}`)) })
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const m = JSON.parse(line) as { event?: string, binary?: string, text?: string }
          if (m.event === 'ready' && m.binary !== undefined && m.text !== undefined) { clearTimeout(timer); resolve({ binary: m.binary, text: m.text }) }
        } catch { /* not the ready line */ }
      })
    })
    return { ...ready, stop }
  } catch (e) { await stop(); throw e }
}
