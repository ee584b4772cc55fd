// The "quick" suite: single Write round trips of 512 B, 4 KiB, 64 KiB and 1 MiB, side by side in
// one run for local fs, metaos (local handler, bus, HTTP, net.uds and net.tcp in the binary and the
// text encodings), bare node:http and the npm `soap`
// package. Servers run as child processes, like real domains; one client, one call at a time.
// Peers are interleaved in short rounds so a noisy neighbour hurts all of them alike.
import { mkdtempSync, openSync, closeSync, rmSync, write as fsWrite } from 'node:fs'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import soap from 'soap'
import { packageFile } from '../wsdl/package-root.js'
import { spawnDomain, spawnReady, type DomainProcess } from '../domains/domain-process.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import { LocalHandler } from '../frontend/handlers/local-handler.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import type { BenchRow } from './report.js'
import { createClient, type SoapClient } from '../soap-runtime/client.js'
import type { Transport, TransportRequest } from '../soap-runtime/transport.js'
import { StorageServiceDescriptor, type StorageOperations } from '../wsdl/generated/storage-service.js'
import { FixedHttpClient, httpRequestBytes, RawFrameClient, type Target } from './peers/fixed-client.js'
import { startWcfNetTcpService } from './wcf-nettcp-peer.js'

/** Writes wrap around at this offset so files stay small. */
const WRAP = 64 * 1024 * 1024

export interface CallPeer {
  readonly peer: BenchRow['peer']
  readonly hosting: BenchRow['hosting']
  /** The row's mode when not plain `call` (`call-text`: a framed session in the text encoding). */
  readonly mode?: string
  /** One Write of `payload` at `offset`; returns the service time in µs when the peer reports it. */
  call: (payload: Buffer, offset: number) => Promise<number | undefined>
  close: () => Promise<void>
}

async function handlerPeer (peer: CallPeer['peer'], hosting: CallPeer['hosting'], handler: StorageHandler, file: string, mode?: string): Promise<CallPeer> {
  const { output } = await handler.invoke('Open', { path: file, mode: 'Create', access: 'Write', share: 'None' })
  let pos = 0
  return {
    peer,
    hosting,
    ...(mode === undefined ? {} : { mode }),
    call: async (payload, offset) => {
      if (offset !== pos) { await handler.invoke('Seek', { handle: output.handle, offset, origin: 'Begin' }); pos = offset }
      const r = await handler.invoke('Write', { handle: output.handle, data: payload })
      pos = r.output.position
      return r.serviceMicros
    },
    close: async () => { await handler.invoke('Close', { handle: output.handle }); await handler.close() },
  }
}

/**
 * A `(server only)` peer: the fixed client (peers/fixed-client.ts) sending each size's request,
 * made once by `prepare`, to an HTTP server; the same client for every server. `seek` (made once per
 * offset) moves a server's file position back when the suite's offsets wrap, as handlerPeer's Seek does.
 */
async function serverOnlyPeer (peer: CallPeer['peer'], target: Target, prepare: (payload: Buffer) => Promise<Buffer>, seek?: (offset: number) => Promise<Buffer>): Promise<CallPeer> {
  const client = await FixedHttpClient.connect(target)
  let last: Buffer | undefined
  let request: Buffer = Buffer.alloc(0)
  const seeks = new Map<number, Buffer>()
  let pos = 0
  const send = async (r: Buffer): Promise<void> => {
    const res = await client.roundTrip(r)
    if (res.status !== 200) throw new Error(`${peer} (server only): HTTP ${res.status}: ${res.body.toString('utf8', 0, 300)}`)
  }
  return {
    peer,
    hosting: 'http',
    mode: 'call-server-only',
    call: async (payload, offset) => {
      if (payload !== last) { request = await prepare(payload); last = payload }
      if (seek !== undefined && offset !== pos) {
        let r = seeks.get(offset)
        if (r === undefined) seeks.set(offset, r = await seek(offset))
        await send(r)
      }
      await send(request)
      pos = offset + payload.length
      return undefined
    },
    close: async () => { client.close() },
  }
}

/** The bytes metaos's own client sends for a call (on a handle the same caller opened), captured from its transport. */
async function metaosRequest (url: string, caller: string, call: (c: SoapClient<StorageOperations>) => Promise<unknown>): Promise<Buffer> {
  let sent: TransportRequest | undefined
  const capture: Transport = { address: url, send: async (r) => { sent = r; throw new Error('captured') }, close: async () => {} }
  await call(createClient<StorageOperations>(StorageServiceDescriptor, capture, { timingHeader: 'ServiceTiming', caller })).catch(() => {})
  if (sent === undefined) throw new Error('the metaos client sent nothing')
  return httpRequestBytes(new URL(url).pathname, sent.headers, Buffer.concat(sent.chunks as Buffer[], sent.length))
}

/** The floor of each transport: raw length-prefixed frames over TCP and a Unix socket (peers/raw-frame-server.ts). */
async function rawPeers (dir: string, env: NodeJS.ProcessEnv, procs: DomainProcess[]): Promise<CallPeer[]> {
  const p = await spawnReady(packageFile('dist', 'benchmarks', 'peers', 'raw-frame-server.js'), [dir], { env })
  procs.push(p)
  const [tcp, uds] = p.ready.endpoints
  const u = new URL(tcp!)
  const peers: CallPeer[] = []
  for (const [hosting, target] of [['tcp', { host: u.hostname, port: Number(u.port) }], ['net.uds', { path: uds!.slice('unix:'.length) }]] as const) {
    const c = await RawFrameClient.connect(target)
    peers.push({ peer: 'raw', hosting, call: async (payload, offset) => { await c.write(payload, offset); return undefined }, close: async () => { c.close() } })
  }
  return peers
}

export async function startPeers (dir: string, which: ReadonlySet<string>, serverOnly = false): Promise<CallPeer[]> {
  const peers: CallPeer[] = []
  const procs: DomainProcess[] = []
  const env = { ...process.env, METAOS_LOG_LEVEL: 'warn' }
  if (which.has('local-fs')) {
    const fd = openSync(join(dir, 'local-fs.bin'), 'w')
    peers.push({
      peer: 'local-fs',
      hosting: 'local',
      call: async (payload, offset) => await new Promise((resolve, reject) => { fsWrite(fd, payload, 0, payload.length, offset, (e) => { e === null ? resolve(undefined) : reject(e) }) }),
      close: async () => { closeSync(fd) },
    })
  }
  if (which.has('metaos')) {
    peers.push(await handlerPeer('metaos', 'local', new LocalHandler(), join(dir, 'metaos-local.bin')))
    const root = join(dir, 'volume')
    const { mkdirSync } = await import('node:fs')
    mkdirSync(root, { recursive: true })
    const d = await spawnDomain(['storage', '--root', root, '--listen', `unix:${join(dir, 'bus.sock')}`, '--listen', 'http://127.0.0.1:0',
      '--listen', `net.uds:${join(dir, 'nmf.sock')}`, '--listen', 'net.tcp://127.0.0.1:0'], { env })
    procs.push(d)
    const [bus, http, uds, tcp] = d.ready.endpoints
    peers.push(await handlerPeer('metaos', 'bus', createStorageProxy(bus!), 'bus.bin'))
    peers.push(await handlerPeer('metaos', 'http', createStorageProxy(http!), 'http.bin'))
    // net.uds and net.tcp in the binary encoding (the proxies' default, NetTcpBinding's), and in text.
    peers.push(await handlerPeer('metaos', 'net.uds', createStorageProxy(uds!), 'net-uds.bin'))
    peers.push(await handlerPeer('metaos', 'net.tcp', createStorageProxy(tcp!), 'net-tcp.bin'))
    peers.push(await handlerPeer('metaos', 'net.uds', createStorageProxy(uds!, { encoding: 'text' }), 'net-uds-text.bin', 'call-text'))
    peers.push(await handlerPeer('metaos', 'net.tcp', createStorageProxy(tcp!, { encoding: 'text' }), 'net-tcp-text.bin', 'call-text'))
    if (serverOnly) {
      const caller = 'urn:metaos:bench:server-only'
      const opener = createStorageProxy(http!, { caller })
      const { handle } = (await opener.invoke('Open', { path: 'server-only.bin', mode: 'Create', access: 'Write', share: 'None' })).output
      await opener.close()
      const u = new URL(http!)
      peers.push(await serverOnlyPeer('metaos', { host: u.hostname, port: Number(u.port) },
        async (payload) => await metaosRequest(http!, caller, async (c) => await c.invoke('Write', { handle, data: payload })),
        async (offset) => await metaosRequest(http!, caller, async (c) => await c.invoke('Seek', { handle, offset, origin: 'Begin' }))))
    }
  }
  if (which.has('bare-http')) {
    const p = await spawnReady(packageFile('dist', 'benchmarks', 'peers', 'bare-http-server.js'), [dir], { env })
    procs.push(p)
    // The floor of each transport: TCP on 127.0.0.1, and the Unix socket of the bus.
    const url = new URL(p.ready.endpoints[0]!)
    const socketPath = join(dir, 'bare-http.sock')
    for (const [hosting, target] of [['http', { host: url.hostname, port: url.port }], ['bus', { socketPath }]] as const) {
      const agent = new Agent({ keepAlive: true, maxSockets: 16 })
      peers.push({
        peer: 'bare-http',
        hosting,
        call: async (payload, offset) => await new Promise((resolve, reject) => {
          const req = request({ ...target, path: `${url.pathname}?off=${offset}`, method: 'POST', agent, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': payload.length } }, (res) => {
            res.resume()
            res.on('end', () => { res.statusCode === 200 ? resolve(undefined) : reject(new Error(`HTTP ${res.statusCode}`)) })
          })
          req.setNoDelay(true)
          req.on('error', reject)
          req.end(payload)
        }),
        close: async () => { agent.destroy() },
      })
    }
    if (serverOnly) {
      const path = `${url.pathname}?off=0`
      peers.push(await serverOnlyPeer('bare-http', { host: url.hostname, port: Number(url.port) }, async (payload) => httpRequestBytes(path, { 'Content-Type': 'application/octet-stream' }, payload)))
    }
  }
  if (which.has('raw')) peers.push(...await rawPeers(dir, env, procs))
  if (which.has('soap')) peers.push(await soapPeer(dir, env, procs))
  if (which.has('mono-wcf-nettcp')) peers.push(...await wcfNetTcpPeers())
  const last = peers[peers.length - 1]
  if (last !== undefined) {
    const closeLast = last.close
    peers[peers.length - 1] = { ...last, close: async () => { await closeLast(); await Promise.all(procs.map(async (p) => await p.stop())) } }
  }
  return peers
}

/** The npm soap package's client against its own server (a child process). */
async function soapPeer (dir: string, env: NodeJS.ProcessEnv, procs: DomainProcess[]): Promise<CallPeer> {
  const p = await spawnReady(packageFile('dist', 'benchmarks', 'peers', 'soap-server.js'), [dir], { env })
  procs.push(p)
  const client = await soap.createClientAsync(`${p.ready.endpoints[0]}?wsdl`, { wsdl_options: { forever: true } }) as any // eslint-disable-line @typescript-eslint/no-explicit-any
  client.setEndpoint(p.ready.endpoints[0]) // its WSDL keeps the placeholder address
  const [opened] = await client.OpenAsync({ path: 'soap.bin', mode: 'Create', access: 'Write', share: 'None' })
  let pos = 0
  return {
    peer: 'soap',
    hosting: 'http',
    call: async (payload, offset) => {
      if (offset !== pos) { await client.SeekAsync({ handle: opened.handle, offset, origin: 'Begin' }); pos = offset }
      const [r] = await client.WriteAsync({ handle: opened.handle, data: payload.toString('base64') })
      pos = Number(r.position)
      return undefined
    },
    close: async () => { await client.CloseAsync({ handle: opened.handle }) },
  }
}

/** Mono WCF's net.tcp service in both encodings, called by metaos's proxy (wcf-nettcp-peer.ts); none without Mono (the peers suite says why under its basicHttp rows). */
async function wcfNetTcpPeers (): Promise<CallPeer[]> {
  const s = await startWcfNetTcpService()
  if ('skipped' in s) return []
  const binary = await handlerPeer('mono-wcf', 'net.tcp', createStorageProxy(s.binary), 'wcf-net-tcp.bin')
  const text = await handlerPeer('mono-wcf', 'net.tcp', createStorageProxy(s.text, { encoding: 'text' }), 'wcf-net-tcp-text.bin', 'call-text')
  return [binary, { ...text, close: async () => { await text.close(); await s.stop() } }]
}

export interface CallSuiteOptions {
  readonly sizes: readonly number[]
  readonly peers: ReadonlySet<string>
  /** Measured time per peer and size, split over `rounds` interleaved rounds. */
  readonly secondsPerCase: number
  readonly rounds: number
  /** Also the `(server only)` rows: one fixed client (peers/fixed-client.ts) against metaos's HTTP server and bare node:http's. */
  readonly serverOnly?: boolean
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

export async function runCallSuite (o: CallSuiteOptions): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-'))
  const peers = await startPeers(dir, o.peers, o.serverOnly === true)
  const rows: BenchRow[] = []
  try {
    const total = o.sizes.length * o.rounds * peers.length
    let done = 0
    for (const size of o.sizes) {
      const payload = Buffer.alloc(size, 0x5a)
      const acc = peers.map((p) => ({ p, lat: [] as number[], service: [] as number[], offset: 0 }))
      // Warm up every peer (JIT, connections, page cache) before measuring.
      for (const a of acc) for (let i = 0; i < 20; i++) { await a.p.call(payload, a.offset); a.offset = (a.offset + size) % WRAP }
      for (let round = 0; round < o.rounds && o.shouldStop?.() !== true; round++) {
        for (const a of acc) {
          o.onProgress?.(done++, total, `${a.p.peer}/${a.p.hosting}${a.p.mode === undefined ? '' : ` (${a.p.mode})`} ${size} B`)
          const until = performance.now() + (o.secondsPerCase * 1000) / o.rounds
          while (performance.now() < until) {
            const t0 = performance.now()
            const s = await a.p.call(payload, a.offset)
            a.lat.push((performance.now() - t0) * 1000)
            if (s !== undefined) a.service.push(s)
            a.offset = (a.offset + size) % WRAP
          }
        }
      }
      for (const a of acc) rows.push(callRow(a.p, size, a.lat, a.service))
    }
  } finally {
    for (const p of peers) await p.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

function callRow (p: CallPeer, size: number, lat: number[], service: number[]): BenchRow {
  const sorted = [...lat].sort((a, b) => a - b)
  const sum = lat.reduce((s, x) => s + x, 0)
  const meanUs = sum / Math.max(lat.length, 1)
  const serviceUs = service.length === 0 ? undefined : service.reduce((s, x) => s + x, 0) / service.length
  const q = (f: number): number => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] ?? 0
  const row: BenchRow = {
    suite: 'quick',
    peer: p.peer,
    hosting: p.hosting,
    op: 'write',
    mode: p.mode ?? 'call',
    payloadBytes: size,
    runs: lat.length,
    callsPerSec: lat.length / (sum / 1e6),
    mbPerSec: (size * lat.length) / (1024 * 1024) / (sum / 1e6),
    totalMs: meanUs / 1000,
    p50us: q(0.5),
    p99us: q(0.99),
  }
  if (serviceUs !== undefined) { row.serviceMs = serviceUs / 1000; row.channelMs = (meanUs - serviceUs) / 1000 }
  return row
}
