// The network suite: request/response round trips per second and bulk MB/s through a TCP echo
// server (a process of its own), side by side in one run: a direct node:net socket (the kernel,
// the floor), a NetSocket on the local kernel (metaos's local handler), and a NetSocket through a
// network domain process over the bus (Unix socket), over HTTP, and over a net.uds session — there
// read by pushed receives (the domain's Received callbacks) and, for comparison, by Receive long
// polls on the same transport. Rounds are interleaved so a noisy neighbour hurts every path alike.
import { connect, type Socket } from 'node:net'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { spawnDomain, spawnReady, type DomainProcess } from '../domains/domain-process.js'
import { packageFile } from '../wsdl/package-root.js'
import { NetSocket } from '../frontend/api/net-socket.js'
import { closeSharedNetworkProxies, createNetworkProxy, type NetworkHandler } from '../frontend/handlers/network-handler.js'

export interface NetworkSuiteOptions {
  /** Seconds of round trips per path and round (default 1). */
  readonly seconds?: number
  /** Bytes echoed per bulk measure (default 32 MiB). */
  readonly bulkBytes?: number
  readonly rounds?: number
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

export interface NetworkRow {
  readonly path: string
  readonly rttPerSec: number
  readonly bulkMBps: number
}

/** Reads exactly n bytes from a Duplex (resolves with them). */
async function readExactly (s: Duplex, n: number): Promise<number> {
  let got = 0
  await new Promise<void>((resolve, reject) => {
    const onData = (c: Buffer): void => { got += c.length; if (got >= n) { s.off('data', onData); s.off('error', reject); resolve() } }
    s.on('data', onData)
    s.once('error', reject)
  })
  return got
}

async function roundTrips (s: Duplex, ms: number): Promise<number> {
  const msg = Buffer.alloc(64, 7)
  let n = 0
  const end = performance.now() + ms
  while (performance.now() < end) {
    const back = readExactly(s, msg.length)
    s.write(msg)
    await back
    n++
  }
  return n / (ms / 1000)
}

async function bulk (s: Duplex, data: Buffer): Promise<number> {
  const t0 = performance.now()
  const back = readExactly(s, data.length)
  for (let off = 0; off < data.length; off += 1024 * 1024) {
    const ok = s.write(data.subarray(off, off + 1024 * 1024))
    if (!ok) await new Promise((resolve) => s.once('drain', resolve))
  }
  await back
  return data.length / 1048576 / ((performance.now() - t0) / 1000)
}

export async function runNetworkSuite (o: NetworkSuiteOptions = {}): Promise<NetworkRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-net-'))
  const procs: DomainProcess[] = []
  const proxies: NetworkHandler[] = []
  try {
    const echo = await spawnReady(packageFile('dist', 'benchmarks', 'peers', 'echo-server.js'), [])
    procs.push(echo)
    const port = Number(new URL(echo.ready.endpoints[0]!).port)
    const domain = await spawnDomain(['network', '--listen', 'http://127.0.0.1:0', '--listen', `unix:${join(dir, 'net.sock')}`, '--listen', `net.uds:${join(dir, 'nmf.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
    procs.push(domain)
    const [http, bus, uds] = domain.ready.endpoints as [string, string, string]
    const polled = createNetworkProxy(uds, { pushes: false })
    proxies.push(polled)
    const paths: Array<[string, () => Promise<Duplex>]> = [
      ['direct node:net', async () => await new Promise<Socket>((resolve, reject) => { const s = connect(port, '127.0.0.1', () => { resolve(s) }); s.setNoDelay(true); s.once('error', reject) })],
      ['NetSocket, local kernel', async () => await openNet({ host: '127.0.0.1', port, destination: 'local' })],
      ['NetSocket, domain over the bus', async () => await openNet({ host: '127.0.0.1', port, destination: bus })],
      ['NetSocket, domain over HTTP', async () => await openNet({ host: '127.0.0.1', port, destination: http })],
      ['NetSocket, net.uds, pushed', async () => await openNet({ host: '127.0.0.1', port, destination: uds })],
      ['NetSocket, net.uds, Receive', async () => await openNet({ host: '127.0.0.1', port, destination: polled })],
    ]
    const data = randomBytes(o.bulkBytes ?? 32 * 1024 * 1024)
    const sums = paths.map(() => ({ rtt: 0, mbps: 0, n: 0 }))
    const rounds = o.rounds ?? 3
    for (let r = 0; r < rounds && o.shouldStop?.() !== true; r++) {
      for (const [i, [name, open]] of paths.entries()) {
        if (o.shouldStop?.() === true) break
        o.onProgress?.(r * paths.length + i, rounds * paths.length, `round ${r + 1}: ${name}`)
        const s = await open()
        await roundTrips(s, 100) // warm-up
        sums[i]!.rtt += await roundTrips(s, (o.seconds ?? 1) * 1000)
        sums[i]!.mbps += await bulk(s, data)
        sums[i]!.n++
        s.destroy()
      }
    }
    return paths.map(([name], i) => ({ path: name, rttPerSec: sums[i]!.rtt / Math.max(1, sums[i]!.n), bulkMBps: sums[i]!.mbps / Math.max(1, sums[i]!.n) }))
  } finally {
    await closeSharedNetworkProxies()
    await Promise.all(proxies.map(async (p) => { await p.close() }))
    await Promise.all(procs.map(async (p) => await p.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

async function openNet (o: { host: string, port: number, destination: string | NetworkHandler }): Promise<Duplex> {
  return await new Promise<Duplex>((resolve, reject) => {
    const s = NetSocket.connect(o, () => { resolve(s) })
    s.once('error', reject)
  })
}

export function networkTable (rows: readonly NetworkRow[]): string {
  const direct = rows[0]
  let out = '\nTCP echo (a server process on 127.0.0.1): 64-byte round trips, and bulk echo (both directions)\n'
  out += `  ${'path'.padEnd(32)} ${'round trips/s'.padStart(14)} ${'vs direct'.padStart(10)} ${'bulk MB/s'.padStart(10)} ${'vs direct'.padStart(10)}\n`
  for (const r of rows) {
    out += `  ${r.path.padEnd(32)} ${r.rttPerSec.toFixed(0).padStart(14)} ${`${(r.rttPerSec / direct!.rttPerSec).toFixed(3)}x`.padStart(10)} ${r.bulkMBps.toFixed(1).padStart(10)} ${`${(r.bulkMBps / direct!.bulkMBps).toFixed(3)}x`.padStart(10)}\n`
  }
  return out
}
