// The swarm suite (`metaos bench --suite swarm`, docs/swarm.md): on a local swarm of three nodes
// (docker/swarm/local-swarm.sh, docker/swarm/stack.yaml deployed), what a frontend pays for a
// domain on its own node against one on another node, and what losing a host costs it.
// - Round trips: from a container on node1 attached to the stack's overlay, 4 KiB Writes one at a
//   time (calls/s, p50/p99) and 1 MiB Writes (MB/s) to node1's storage domain (the same node: the
//   overlay's bridge) and to node2's (another node: VXLAN through the switch), by their task names;
//   and from the client namespace (a host beside the nodes) to node2's host-mode port. Interleaved
//   rounds, mutual TLS, the stack's client certificate.
// - Failover: from the client namespace, a file written through a frontend with failover
//   (benchmarks/swarm-app.ts) on node2's domain, node2 killed mid-write (a host crash); then one on
//   node3's domain, node3's link cut mid-write and restored once the stream moved. Per fault: the
//   longest gap between two acknowledged writes, the failover, whether the file on the volume is
//   exact, and (host loss) when a surviving manager reported the node Down.
// Needs root, iproute2, util-linux, docker.io and about 2 minutes.
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalSwarm, sleep, swarmUnavailable, until, waitForOtherSwarms, type AppEvent, type AppProcess, type SwarmReady } from './local-swarm.js'
import type { PhaseResult, RoundTripConfig, RoundTripRow, WriteConfig } from './swarm-app.js'

export interface SwarmSuiteOptions {
  readonly seconds?: number
  readonly rounds?: number
  /** Bytes of each failover write (default 100 MiB). */
  readonly fileBytes?: number
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export interface SwarmRoundTrips extends RoundTripRow { readonly client: string, readonly target: string }

export interface SwarmFailover {
  readonly fault: string
  readonly fileBytes: number
  /** Longest time between two acknowledged writes (ms). */
  readonly maxGapMs: number
  readonly moves: ReadonlyArray<{ readonly from: string, readonly to: string, readonly reason: string, readonly stallMs: number }>
  /** The file on the volume is what the application wrote (SHA-256 and length). */
  readonly exact: boolean
  /** From kill-node to `docker node ls` on node1 saying Down (ms). */
  readonly downAfterMs?: number
}

export interface SwarmSuiteResult {
  readonly nodes: number
  readonly roundTrips: SwarmRoundTrips[]
  readonly failover: SwarmFailover[]
  /** Seconds: up, deploy → healthy, down. */
  readonly setup: Readonly<Record<string, number>>
}

const MiB = 1048576
// Paced so that the fault lands mid-write (100 MiB go in about a second here otherwise).
const PACE = 16

export async function runSwarmSuite (o: SwarmSuiteOptions = {}): Promise<SwarmSuiteResult> {
  const why = swarmUnavailable()
  if (why !== undefined) throw new Error(`the swarm suite needs a local swarm: ${why}`)
  const progress = (d: number, l: string): void => { o.onProgress?.(d, 6, l) }
  await waitForOtherSwarms(600_000, (others) => { progress(0, `waiting for another local swarm to end (${others.join(' ')})`) })
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-swarm-'))
  const swarm = new LocalSwarm(`mbsw${Math.random().toString(36).slice(2, 6)}`, dir)
  const setup: Record<string, number> = {}
  const timed = async <T>(k: string, f: () => T | Promise<T>): Promise<T> => { const t0 = performance.now(); try { return await f() } finally { setup[k] = (performance.now() - t0) / 1000 } }
  try {
    progress(0, 'up: three nodes')
    const ready = await timed('up', () => swarm.up(3))
    const pki = join(dir, 'pki')
    swarm.secrets(pki)
    progress(1, 'deploy: the stack healthy')
    await timed('healthy', async () => { swarm.deploy(pki); await swarm.waitHealthy() })
    const n2 = ready.nodes[1]!
    const rt = (targets: RoundTripConfig['targets'], pkiDir: string): RoundTripConfig => ({ mode: 'roundtrips', pki: pkiDir, targets, seconds: o.seconds ?? 2, rounds: o.rounds ?? 3 })

    progress(2, 'round trips from a container on node1')
    const rows = async (app: AppProcess, what: string): Promise<RoundTripRow[]> => {
      try { return (await app.next<AppEvent & { rows: RoundTripRow[] }>(what, (e) => e.event === 'roundtrips', 600_000)).rows } finally { app.kill() }
    }
    const fromOverlay = await rows(swarm.overlayApp(1, rt([{ label: 'node1 (same node)', url: 'https://node1.storage.metaos:8443/storage' }, { label: 'node2 (other node)', url: 'https://node2.storage.metaos:8443/storage' }], '/pki'), pki), 'round trips on the overlay')
    progress(3, 'round trips from the client namespace')
    const fromClient = await rows(swarm.clientApp(rt([{ label: 'node2 (host-mode port)', url: `https://${n2.address}:8443/storage` }], pki)), 'round trips from the client namespace')
    const roundTrips = [
      ...fromOverlay.map((r, i) => ({ ...r, client: 'container on node1 (overlay)', target: i === 0 ? 'same node' : 'other node' })),
      ...fromClient.map((r) => ({ ...r, client: 'client namespace', target: 'node port' })),
    ]

    progress(4, 'failover: node2 killed, node3 cut off, mid-write')
    const failover = await measureFailover(swarm, ready, pki, o.fileBytes ?? 100 * MiB)
    return { nodes: ready.nodes.length, roundTrips, failover, setup }
  } finally {
    progress(5, 'down')
    await timed('down', () => swarm.down())
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A host lost (node2 killed), then a link cut (node3) and restored, each a quarter into a paced write from the client namespace. */
async function measureFailover (swarm: LocalSwarm, ready: SwarmReady, pki: string, bytes: number): Promise<SwarmFailover[]> {
  const [n1, n2, n3] = ready.nodes as [typeof ready.nodes[0], typeof ready.nodes[0], typeof ready.nodes[0]]
  const config: WriteConfig = {
    mode: 'write',
    pki,
    reader: n1.name,
    supervisor: { latencyFactor: 20, latencyMarginMs: 1000 },
    domains: ready.nodes.map((n) => ({ name: n.name, url: `https://${n.address}:8443/storage`, zone: n.zone })),
    phases: [
      { file: 'bench-host-loss.bin', on: n2.name, bytes, triggerAt: Math.floor(bytes / 4), paceMBps: PACE },
      { file: 'bench-link-cut.bin', on: n3.name, bytes, triggerAt: Math.floor(bytes / 4), paceMBps: PACE, wait: true },
    ],
  }
  const app = swarm.clientApp(config)
  const failover: SwarmFailover[] = []
  const exact = (p: PhaseResult): boolean => {
    const b = readFileSync(join(ready.shared, p.file))
    return b.length === p.bytes && createHash('sha256').update(b).digest('hex') === p.sha256
  }
  const row = (fault: string, p: PhaseResult, downAfterMs?: number): SwarmFailover => ({ fault, fileBytes: p.bytes, maxGapMs: p.maxGapMs, moves: p.moves.map((m) => ({ from: m.from, to: m.to, reason: m.reason, stallMs: m.stallMs })), exact: exact(p), ...(downAfterMs === undefined ? {} : { downAfterMs }) })
  try {
    const [first, second] = config.phases.map((p) => p.file) as [string, string]
    await app.next('the first trigger', (e) => e.event === 'trigger' && e.file === first)
    const killedAt = Date.now()
    // Watched from the kill on, while the stream fails over.
    const down = until(`${n2.name} Down`, 120_000, async () => (await swarm.nodeStatusAsync(1))?.includes(`${n2.name} Down`) === true ? Date.now() - killedAt : undefined, 250)
    down.catch(() => {})
    await swarm.killNode(n2.name)
    const lost = await app.next<PhaseResult & AppEvent>('the host-loss write', (e) => e.event === 'phase' && e.file === first, 300_000)
    failover.push(row(`host loss (kill-node ${n2.name})`, lost, await down))
    app.send('go')
    await app.next('the second trigger', (e) => e.event === 'trigger' && e.file === second)
    await swarm.cutLink(n3.name)
    try {
      await app.next('the stream to leave the cut node', (e) => e.event === 'moved' && e.path === second, 60_000)
      await sleep(1000)
    } finally {
      await swarm.restoreLink(n3.name)
    }
    const cut = await app.next<PhaseResult & AppEvent>('the link-cut write', (e) => e.event === 'phase' && e.file === second, 300_000)
    await sleep(5000) // late packets to the node cut off land (or not) before the file is read
    failover.push(row(`link cut (${n3.name}, restored)`, cut))
  } finally {
    app.kill()
  }
  return failover
}

export function swarmTable (r: SwarmSuiteResult): string {
  let out = `\nA local swarm of ${r.nodes} nodes (docker/swarm/stack.yaml, mutual TLS): 4 KiB Write round trips one at a time, and 1 MiB Writes\n`
  out += `  ${'client'.padEnd(30)} ${'domain'.padEnd(24)} ${'calls/s'.padStart(8)} ${'p50 µs'.padStart(8)} ${'p99 µs'.padStart(8)} ${'MB/s'.padStart(7)}\n`
  for (const x of r.roundTrips) out += `  ${x.client.padEnd(30)} ${x.label.padEnd(24)} ${x.callsPerSec.toFixed(0).padStart(8)} ${x.p50us.toFixed(0).padStart(8)} ${x.p99us.toFixed(0).padStart(8)} ${x.mbPerSec.toFixed(1).padStart(7)}\n`
  out += `\nFailover: a ${(r.failover[0]?.fileBytes ?? 0) / MiB} MiB file written from the client namespace through a frontend with failover, the stream's node hurt a quarter in\n`
  out += `  ${'fault'.padEnd(30)} ${'stall ms'.padStart(9)}  ${'failover'.padEnd(40)} ${'file exact'.padEnd(10)} ${'Down after'.padStart(10)}\n`
  for (const f of r.failover) {
    const moves = f.moves.map((m) => `${m.from}→${m.to} ${m.reason} ${m.stallMs.toFixed(0)} ms`).join(', ')
    out += `  ${f.fault.padEnd(30)} ${f.maxGapMs.toFixed(0).padStart(9)}  ${moves.padEnd(40)} ${(f.exact ? 'yes' : 'NO').padEnd(10)} ${(f.downAfterMs === undefined ? '-' : `${(f.downAfterMs / 1000).toFixed(1)} s`).padStart(10)}\n`
  }
  out += `\nSetup: ${Object.entries(r.setup).map(([k, v]) => `${k} ${v.toFixed(0)} s`).join(', ')}\n`
  return out
}
