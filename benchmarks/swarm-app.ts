// An application of the many-hosts tests and benchmark (docs/swarm.md), run where a frontend of the
// swarm runs: in the local swarm's client namespace (`ip netns exec <client> node …`) or in a
// container on the stack's overlay. One JSON argument says what to do; it prints one JSON line per
// event on stdout and exits 0, or prints an "error" event and exits 1.
//
//   node dist/benchmarks/swarm-app.js '{"mode":"write",…}'        (see WriteConfig)
//   node dist/benchmarks/swarm-app.js '{"mode":"roundtrips",…}'   (see RoundTripConfig)
//
// "write": a frontend of its own — a Performance Mapping Table, a performance module, a dispatcher
// with failover and a supervisor — over the storage domains of every node (mutual TLS with the
// stack's client certificate), each in the table with its node's zone. Each phase writes a file
// through a FileStream placed by a rule on the domain of one node (`on`), and reports the longest
// gap between two acknowledged writes (the stall an application sees), the moves, and the SHA-256 of
// what it wrote and of what another node's domain reads back. The test (or the benchmark) hurts the
// stream's node meanwhile: at `triggerAt` bytes the app says "trigger"; with `wait`, a phase starts
// only once a line comes on stdin.
//
// "roundtrips": 4 KiB Writes one at a time (calls/s, p50/p99) and 1 MiB Writes (MB/s) to each
// target domain directly, in interleaved rounds.
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { FileStream } from '../frontend/api/file-stream.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { Dispatcher } from '../frontend/placement/dispatcher.js'
import { PerformanceModule } from '../frontend/placement/performance-module.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { RulesEngine } from '../frontend/placement/rules-engine.js'
import { Supervisor } from '../frontend/assembly/supervisor.js'

export interface SwarmDomain { readonly name: string, readonly url: string, readonly zone: string }

export interface WritePhase {
  readonly file: string
  /** The node whose domain the stream is placed on (a rule prefers its zone). */
  readonly on: string
  readonly bytes: number
  /** Bytes per Write call (default 256 KiB). */
  readonly block?: number
  /** Print a "trigger" event once this many bytes are acknowledged. */
  readonly triggerAt?: number
  /** At most this many MB/s (MB = 2^20 B), so that a fault lands mid-write on a fast machine. */
  readonly paceMBps?: number
  /** Wait for a line on stdin before the phase (the caller checks things between phases). */
  readonly wait?: boolean
}

export interface WriteConfig {
  readonly mode: 'write'
  /** The directory of docker/swarm/make-secrets.sh: ca.crt, clients/swarm-client.{crt,key}. */
  readonly pki: string
  readonly client?: string
  readonly domains: readonly SwarmDomain[]
  /** The node whose domain reads every file back. */
  readonly reader: string
  readonly phases: readonly WritePhase[]
  /** The dispatcher's hang deadline (default its own, 1000 ms). */
  readonly hangMs?: number
  /**
   * The supervisor's soft alarms (default its own): on a noisy machine a latency blip makes it
   * move a stream before the fault does; a failure the dispatcher sees acts whatever these say.
   */
  readonly supervisor?: { readonly latencyFactor?: number, readonly latencyMarginMs?: number }
}

export interface RoundTripConfig {
  readonly mode: 'roundtrips'
  readonly pki: string
  readonly client?: string
  readonly targets: ReadonlyArray<{ readonly label: string, readonly url: string }>
  readonly seconds?: number
  readonly rounds?: number
  /** 1 MiB Writes per target and round (default 32). */
  readonly bigWrites?: number
}

export interface PhaseResult {
  readonly event: 'phase'
  readonly file: string
  readonly placedOn: string
  readonly bytes: number
  readonly sha256: string
  /** The longest time between two acknowledged writes (from the Open for the first), and where. */
  readonly maxGapMs: number
  readonly maxGapAt: number
  readonly writeMs: number
  readonly moves: ReadonlyArray<{ readonly from: string, readonly to: string, readonly reason: string, readonly stallMs: number, readonly position: number }>
  readonly readBack: { readonly via: string, readonly bytes: number, readonly sha256: string }
}

export interface RoundTripRow { readonly label: string, readonly url: string, readonly callsPerSec: number, readonly p50us: number, readonly p99us: number, readonly mbPerSec: number }

const say = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

function tlsOf (pki: string, client = 'swarm-client'): { ca: Buffer, cert: Buffer, key: Buffer } {
  return { ca: readFileSync(`${pki}/ca.crt`), cert: readFileSync(`${pki}/clients/${client}.crt`), key: readFileSync(`${pki}/clients/${client}.key`) }
}

async function write (c: WriteConfig): Promise<void> {
  const tls = tlsOf(c.pki, c.client)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  const nameOf = new Map<string, string>()
  const byName = new Map<string, StorageHandler>()
  for (const d of c.domains) {
    const proxy = createStorageProxy(d.url, { tls, timeoutMs: 10_000 })
    const { output: info } = await proxy.invoke('GetDomainInfo', {})
    nameOf.set(info.domainId, d.name)
    const tracked = perf.track({ epr: info.domainId, endpoints: [d.url], hosting: info.hosting, kernel: { sysname: info.kernel.sysname, release: info.kernel.release }, volume: info.volume, zone: d.zone, runtime: info.runtime }, proxy)
    handlers.set(info.domainId, tracked)
    byName.set(d.name, tracked)
  }
  const named = (epr: string): string => nameOf.get(epr) ?? epr
  say({ event: 'domains', domains: [...nameOf].map(([epr, name]) => ({ name, epr })) })
  const zoneOf = new Map(c.domains.map((d) => [d.name, d.zone]))
  const rules = new RulesEngine(c.phases.map((p) => ({ name: `${p.file} on ${p.on}`, when: { pathPrefix: p.file }, prefer: { zone: zoneOf.get(p.on)! } })))
  const volume = pmt.rows()[0]?.identity.volume
  const dispatcher = new Dispatcher(pmt, handlers, { rules, ...(volume === undefined ? {} : { volume }), ...(c.hangMs === undefined ? {} : { hangMs: c.hangMs }) })
  dispatcher.on('moved', (m) => { say({ event: 'moved', path: m.path, from: named(m.from), to: named(m.to), kind: m.kind, reason: m.reason, stallMs: m.stallMs, position: m.position }) })
  const supervisor = new Supervisor({ ...c.supervisor, pmt, perf, dispatchers: [dispatcher] })
  supervisor.onDecision((d) => { say({ event: 'decision', domain: named(d.epr), from: d.from, to: d.to, reason: d.reason }) })
  // Past each domain's first (TLS) connection before anything is placed.
  for (let i = 0; i < 3; i++) for (const epr of handlers.keys()) await perf.probe(epr)
  perf.start()
  supervisor.start()
  const stdin = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
  try {
    for (const p of c.phases) {
      if (p.wait === true) { say({ event: 'waiting', file: p.file }); await stdin.next() }
      // The supervisor may have isolated the node's domain for a blip of latency (a noisy machine):
      // it is readmitted after good probes; the stream goes there once it is healthy again.
      const target = [...nameOf].find(([, n]) => n === p.on)?.[0]
      const healthyBy = Date.now() + 20_000
      while (target !== undefined && pmt.row(target)?.state !== 'healthy' && Date.now() < healthyBy) await sleep(100)
      const data = randomBytes(p.bytes)
      const block = p.block ?? 256 * 1024
      const t0 = performance.now()
      const f = await FileStream.open(p.file, { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0, expectedBytes: p.bytes })
      const placedOn = named(dispatcher.affinity.entries().find((s) => s.path === p.file)!.epr)
      say({ event: 'placed', file: p.file, on: placedOn })
      let last = performance.now()
      let maxGap = 0
      let maxGapAt = 0
      let triggered = p.triggerAt === undefined
      const start = performance.now()
      for (let off = 0; off < p.bytes; off += block) {
        const n = Math.min(block, p.bytes - off)
        await f.write(data, off, n)
        const now = performance.now()
        if (now - last > maxGap) { maxGap = now - last; maxGapAt = off }
        last = now
        if (!triggered && off + n >= p.triggerAt!) { triggered = true; say({ event: 'trigger', file: p.file, bytes: off + n, on: named(dispatcher.affinity.entries().find((s) => s.path === p.file)?.epr ?? '') }) }
        if (p.paceMBps !== undefined) {
          const ahead = ((off + n) / 1048576 / p.paceMBps) * 1000 - (performance.now() - start)
          if (ahead > 0) await sleep(ahead)
          last = performance.now()
        }
      }
      await f.close()
      const writeMs = performance.now() - t0
      // Read back through another node's domain, as another application would.
      const back = Buffer.alloc(p.bytes + 1)
      const r = await FileStream.open(p.file, { mode: 'Open', access: 'Read', share: 'ReadWrite', destination: byName.get(c.reader)!, bufferSize: 0 })
      let got = 0
      for (let k; got < back.length && (k = await r.read(back, got, Math.min(1048576, back.length - got))) > 0;) got += k
      await r.close()
      const moves = dispatcher.moves.filter((m) => m.path === p.file).map((m) => ({ from: named(m.from), to: named(m.to), reason: m.reason, stallMs: m.stallMs, position: m.position }))
      const result: PhaseResult = { event: 'phase', file: p.file, placedOn, bytes: p.bytes, sha256: sha(data), maxGapMs: maxGap, maxGapAt, writeMs, moves, readBack: { via: c.reader, bytes: got, sha256: sha(back.subarray(0, got)) } }
      say(result)
    }
    say({ event: 'pmt', rows: pmt.rows().map((r) => ({ name: named(r.identity.epr), state: r.state, errorRate: r.measures.errorRate })), decisions: supervisor.decisions.map((d) => ({ domain: named(d.epr), from: d.from, to: d.to, reason: d.reason })) })
  } finally {
    supervisor.stop()
    perf.stop()
  }
}

async function roundTrips (c: RoundTripConfig): Promise<void> {
  const tls = tlsOf(c.pki, c.client)
  const targets = c.targets.map((t) => ({ ...t, h: createStorageProxy(t.url, { tls, timeoutMs: 30_000 }) }))
  const small = randomBytes(4096)
  const big = randomBytes(1048576)
  const rounds = c.rounds ?? 3
  const seconds = c.seconds ?? 2
  const acc = targets.map(() => ({ calls: 0, ms: 0, lat: [] as number[], mb: 0, mbMs: 0 }))
  const once = async (i: number, warm: boolean): Promise<void> => {
    const t = targets[i]!
    const path = `roundtrips-${process.pid}-${i}.bin`
    const { output } = await t.h.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })
    const a = acc[i]!
    const t0 = performance.now()
    while (performance.now() - t0 < (warm ? 0.3 : seconds) * 1000) {
      const s = performance.now()
      await t.h.invoke('Write', { handle: output.handle, data: small })
      if (!warm) { a.lat.push((performance.now() - s) * 1000); a.calls++ }
    }
    if (!warm) a.ms += performance.now() - t0
    const t1 = performance.now()
    const count = warm ? 2 : (c.bigWrites ?? 32)
    for (let k = 0; k < count; k++) await t.h.invoke('Write', { handle: output.handle, data: big })
    if (!warm) { a.mb += count; a.mbMs += performance.now() - t1 }
    await t.h.invoke('Close', { handle: output.handle })
    await t.h.invoke('Delete', { path })
  }
  for (let i = 0; i < targets.length; i++) await once(i, true)
  for (let r = 0; r < rounds; r++) {
    // The order rotates each round: a drift of the machine's speed hurts every target alike.
    for (let k = 0; k < targets.length; k++) await once((r + k) % targets.length, false)
  }
  const q = (xs: number[], f: number): number => { const s = [...xs].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(f * s.length))] ?? 0 }
  const rows: RoundTripRow[] = targets.map((t, i) => ({ label: t.label, url: t.url, callsPerSec: acc[i]!.calls / (acc[i]!.ms / 1000), p50us: q(acc[i]!.lat, 0.5), p99us: q(acc[i]!.lat, 0.99), mbPerSec: acc[i]!.mb / (acc[i]!.mbMs / 1000) }))
  for (const t of targets) await t.h.close()
  say({ event: 'roundtrips', seconds, rounds, rows })
}

async function main (arg: string | undefined): Promise<void> {
  if (arg === undefined) throw new Error('usage: node swarm-app.js \'{"mode":"write"|"roundtrips",…}\'')
  const c = JSON.parse(arg) as WriteConfig | RoundTripConfig
  if (c.mode === 'write') await write(c)
  else if (c.mode === 'roundtrips') await roundTrips(c)
  else throw new Error(`unknown mode ${(c as { mode: string }).mode}`)
}

// Exits at once when done: a proxy's socket to a dead host is no reason to linger.
main(process.argv[2]).then(() => { say({ event: 'done' }); process.exit(0) }, (e: unknown) => {
  say({ event: 'error', code: (e as { code?: string }).code, message: e instanceof Error ? e.message : String(e) })
  process.exit(1)
})
