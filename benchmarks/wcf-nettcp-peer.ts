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
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { packageFile } from '../wsdl/package-root.js'
import { compileCached, monoToolchain, startMonoService } from './wcf-peer.js'

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
  try {
    const s = await startMonoService(tools.mono, exe, [root, '0', '0'],
      (m) => m.event === 'ready' && typeof m.binary === 'string' && typeof m.text === 'string' ? { binary: m.binary, text: m.text } : undefined)
    return { ...s.ready, stop: async () => { await s.stop(); rmSync(root, { recursive: true, force: true }) } }
  } catch (e) { rmSync(root, { recursive: true, force: true }); throw e }
}
