// Fault injection with real processes and real signals: during a 100 MB sequential write and a
// 100 MB sequential read through a FileStream placed by the dispatcher on three storage domains of
// one volume, the domain serving the stream is killed (SIGKILL), hung (SIGSTOP, later SIGCONT),
// slowed (a real delay inside the service, switched on at run time), has its listening socket
// closed, or is restarted with the same EPR. Each time the application sees no error, the file's
// SHA-256 is the expected one, and the data read equals the data written; the stall is reported.
// When every domain of the volume is gone, the error names the volume and nothing acknowledged is lost.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../index.js'
import { spawnDomain, type DomainProcess } from '../frontend/domain-process.js'
import { PerformanceMappingTable } from '../frontend/pmt.js'
import { PerformanceModule } from '../frontend/performance-module.js'
import { Dispatcher } from '../frontend/dispatcher.js'
import { Supervisor } from '../frontend/supervisor.js'
import type { StorageHandler } from '../frontend/storage-handler.js'

const SIZE = 100 * 1024 * 1024
const BLOCK = 64 * 1024
const FAULT_AT = 30 * 1024 * 1024
const data = randomBytes(SIZE)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const expected = sha(data)

interface Cluster {
  root: string
  domains: DomainProcess[]
  args: string[][]
  faultFile: (i: number) => string
  pmt: PerformanceMappingTable
  dispatcher: Dispatcher
  supervisor: Supervisor
  index: (epr: string) => number
}

async function cluster (t: Test): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-failover-'))
  const root = join(dir, 'volume')
  mkdirSync(root)
  const faultFile = (i: number): string => join(dir, `fault-${i}.json`)
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const args = [0, 1, 2].map((i) => ['storage', '--root', root, '--volume', 'shared', '--name', `d${i}`, '--listen', 'http://127.0.0.1:0', '--fault-file', faultFile(i)])
  const domains = await Promise.all(args.map(async (a) => await spawnDomain(a, { env })))
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt, probeIntervalMs: 200 })
  const handlers = new Map<string, StorageHandler>()
  for (const d of domains) {
    handlers.set(d.ready.epr, perf.track({ epr: d.ready.epr, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'shared' }, createStorageProxy(d.ready.endpoints[0]!, { timeoutMs: 30_000 })))
  }
  for (let i = 0; i < 3; i++) for (const epr of handlers.keys()) await perf.probe(epr)
  perf.start()
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'shared', hangMs: 1000 })
  const supervisor = new Supervisor({ pmt, dispatchers: [dispatcher], recoverMs: 1000 })
  supervisor.start()
  const c: Cluster = { root, domains, args, faultFile, pmt, dispatcher, supervisor, index: (epr) => c.domains.findIndex((d) => d.ready.epr === epr) }
  t.teardown(async () => {
    supervisor.stop()
    perf.stop()
    for (const d of c.domains) { try { process.kill(d.child.pid!, 'SIGCONT') } catch { /* gone */ } }
    await Promise.all(c.domains.map(async (d) => await d.stop(2000)))
    for (const h of handlers.values()) await h.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return c
}

/** Writes the 100 MB, calling `fault` once the stream is 30 MB in; returns the longest single call (ms). */
async function writeAll (c: Cluster, path: string, fault: (epr: string) => Promise<void> | void): Promise<number> {
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let longest = 0
  for (let off = 0; off < SIZE; off += BLOCK) {
    if (off === FAULT_AT) await fault(c.dispatcher.affinity.entries()[0]!.epr)
    const t0 = performance.now()
    await f.write(data, off, BLOCK)
    longest = Math.max(longest, performance.now() - t0)
  }
  await f.close()
  return longest
}

async function readAll (c: Cluster, path: string, fault: (epr: string) => Promise<void> | void): Promise<{ back: Buffer, longest: number }> {
  const f = await FileStream.open(path, { mode: 'Open', access: 'Read', destination: c.dispatcher, bufferSize: 0 })
  const back = Buffer.alloc(SIZE)
  let n = 0
  let longest = 0
  let faulted = false
  while (n < SIZE) {
    if (!faulted && n >= FAULT_AT) { faulted = true; await fault(c.dispatcher.affinity.entries()[0]!.epr) }
    const t0 = performance.now()
    const k = await f.read(back, n, Math.min(BLOCK, SIZE - n))
    longest = Math.max(longest, performance.now() - t0)
    if (k === 0) break
    n += k
  }
  await f.close()
  return { back: back.subarray(0, n), longest }
}

const kinds: Array<[string, (c: Cluster, epr: string) => Promise<void> | void]> = [
  ['kill -9', (c, epr) => { process.kill(c.domains[c.index(epr)]!.child.pid!, 'SIGKILL') }],
  ['SIGSTOP (a hang), SIGCONT 3 s later', (c, epr) => {
    const pid = c.domains[c.index(epr)]!.child.pid!
    process.kill(pid, 'SIGSTOP')
    setTimeout(() => { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }, 3000).unref()
  }],
  ['slowed down (100 ms inside the service)', (c, epr) => { writeFileSync(c.faultFile(c.index(epr)), JSON.stringify({ delayMs: 100 })) }],
  ['listening socket closed, connections open', (c, epr) => { writeFileSync(c.faultFile(c.index(epr)), JSON.stringify({ closeListeners: true })) }],
  ['restarted with the same EPR', async (c, epr) => {
    const i = c.index(epr)
    const old = c.domains[i]!
    await old.stop()
    c.domains[i] = await spawnDomain(c.args[i]!, { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
    if (c.domains[i]!.ready.epr !== epr) throw new Error('the restarted domain has another EPR')
  }],
]

for (const [kind, fault] of kinds) {
  t.test(kind, async (t) => {
    const c = await cluster(t)
    const writeLongest = await writeAll(c, 'big.bin', async (epr) => { await fault(c, epr) })
    t.equal(sha(readFileSync(join(c.root, 'big.bin'))), expected, 'write: the file on the volume has the expected SHA-256')
    const movesAfterWrite = c.dispatcher.moves.length
    // Undo what can be undone, so the read starts on a healthy cluster of two or three domains.
    for (let i = 0; i < 3; i++) writeFileSync(c.faultFile(i), '{}')
    const { back, longest: readLongest } = await readAll(c, 'big.bin', async (epr) => { await fault(c, epr) })
    t.equal(back.length, SIZE, 'read: every byte came back')
    t.equal(sha(back), expected, 'read: the data read equals the data written')
    const moves = c.dispatcher.moves
    t.comment(`${kind}: longest write call ${writeLongest.toFixed(0)} ms, longest read call ${readLongest.toFixed(0)} ms; moves: ${moves.map((m) => `${m.kind} on ${m.op} (${m.reason}) stall ${m.stallMs.toFixed(0)} ms`).join('; ') || 'none'}`)
    t.comment(`supervisor: ${c.supervisor.decisions.map((d) => `${d.to}: ${d.reason}`).join(' | ') || 'no decision'}`)
    if (kind.startsWith('kill') || kind.startsWith('SIGSTOP') || kind.startsWith('restarted')) {
      t.ok(movesAfterWrite >= 1 && moves.length > movesAfterWrite, 'the stream moved to another domain, in the write and in the read')
      t.ok(Math.max(...moves.map((m) => m.stallMs)) < 2000, `stall under 2 s (${Math.max(...moves.map((m) => m.stallMs)).toFixed(0)} ms)`)
    }
    if (kind.startsWith('restarted')) {
      const epr = c.dispatcher.moves[0]!.from
      for (let i = 0; i < 100 && c.pmt.row(epr)!.state !== 'healthy'; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      t.equal(c.pmt.row(epr)!.state, 'healthy', 'the restarted domain (same EPR) is readmitted once its probes are good')
    }
    if (kind.startsWith('slowed')) t.ok(c.supervisor.decisions.some((d) => d.to === 'isolated' && /latency|throughput/.test(d.reason)), 'the supervisor saw the domain slow down and isolated it')
  })
}

t.test('every domain of the volume gone: a clear error, nothing acknowledged lost', async (t) => {
  const c = await cluster(t)
  const f = await FileStream.open('lost.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let acknowledged = 0
  let error: unknown
  try {
    for (let off = 0; off < SIZE; off += BLOCK) {
      if (off === 8 * BLOCK) for (const d of c.domains) process.kill(d.child.pid!, 'SIGKILL')
      await f.write(data, off, BLOCK)
      acknowledged = off + BLOCK
    }
  } catch (e) { error = e }
  t.match(error, { code: 'VOLUME_UNAVAILABLE', message: /volume shared/ }, 'VOLUME_UNAVAILABLE naming the volume')
  const onDisk = readFileSync(join(c.root, 'lost.bin'))
  t.ok(onDisk.length >= acknowledged, `the ${acknowledged} acknowledged bytes are on the volume`)
  t.equal(sha(onDisk.subarray(0, acknowledged)), sha(data.subarray(0, acknowledged)), 'and they are the bytes written')
  await f.close().catch(() => {})
})
