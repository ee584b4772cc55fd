// Live migration of open streams between domains of one volume, on purpose (the supervisor's
// move): a write stream in exception-less mode with writes still pending, and a read stream with
// read-ahead, moved back and forth while they run; the bytes are exactly the ones written, and a
// stream never moves to a domain of another volume.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../../index.js'
import { startStorageDomain } from '../../domains/index.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('streams migrate while they run', async (t) => {
  const dir = tempDir(t, 'metaos-migrate-')
  const root = join(dir, 'v')
  const other = join(dir, 'w')
  mkdirSync(root)
  mkdirSync(other)
  const a = await startStorageDomain({ root, name: 'a', volume: 'v', listen: ['http://127.0.0.1:0'] })
  const b = await startStorageDomain({ root, name: 'b', volume: 'v', listen: [`unix:${join(dir, 'b.sock')}`] })
  const w = await startStorageDomain({ root: other, name: 'w', volume: 'w', listen: ['http://127.0.0.1:0'] })
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [d, volume] of [[a, 'v'], [b, 'v'], [w, 'w']] as const) {
    handlers.set(d.epr, perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume }, createStorageProxy(d.endpoints[0]!)))
  }
  t.teardown(async () => {
    for (const h of handlers.values()) await h.close()
    for (const d of [a, b, w]) await d.close(0)
    rmSync(dir, { recursive: true, force: true })
  })
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'v' })

  // Write: 8 MiB in 1000-byte writes, exception-less (pipelined Batches), moved every MiB.
  const data = randomBytes(8 * 1024 * 1024)
  const f = await FileStream.open('moving.bin', { mode: 'Create', access: 'Write', destination: dispatcher, exceptionLess: true })
  const id = dispatcher.affinity.entries()[0]!.id
  let nextMove = 1024 * 1024
  for (let off = 0; off < data.length; off += 1000) {
    await f.write(data, off, Math.min(1000, data.length - off))
    if (off >= nextMove) {
      nextMove += 1024 * 1024
      const s = dispatcher.affinity.get(id)!
      const to = s.epr === a.epr ? b.epr : a.epr
      const ev = await dispatcher.migrate(id, 'test', to)
      t.equal(dispatcher.affinity.lookup(id), to, `moved to ${to === a.epr ? 'a' : 'b'} at ${off} bytes (stall ${ev!.stallMs.toFixed(1)} ms)`)
    }
  }
  await f.close()
  t.equal(sha(readFileSync(join(root, 'moving.bin'))), sha(data), 'the file is exactly what was written, across 7 moves')
  t.equal(dispatcher.moves.filter((m) => m.kind === 'migration').length, 7)
  t.equal(dispatcher.affinity.size, 0, 'closed: out of the affinity table')

  // Read with a 4 KiB read-ahead buffer and seeks, moved in the middle.
  const r = await FileStream.open('moving.bin', { mode: 'Open', access: 'Read', destination: dispatcher, bufferSize: 4096 })
  const rid = dispatcher.affinity.entries()[0]!.id
  const back = Buffer.alloc(data.length)
  let n = 0
  let moved = 0
  while (n < data.length) {
    const k = await r.read(back, n, Math.min(3000, data.length - n))
    if (k === 0) break
    n += k
    if (n > (moved + 1) * 2_000_000) { moved++; await dispatcher.migrate(rid, 'test') }
  }
  t.equal(sha(back.subarray(0, n)), sha(data), 'read back across moves: the same bytes')
  await r.seek(12345)
  await dispatcher.migrate(rid, 'test')
  t.equal(await r.readByte(), data[12345]!, 'a seek, a move, then the byte at the new position')
  await t.rejects(dispatcher.migrate(rid, 'test', w.epr), { code: 'INVALID_ARGUMENT' }, 'never to a domain of another volume')
  await r.close()
})

t.test('a draining domain and a domain the vulnerability feed excludes lose their streams', async (t) => {
  const { VulnerabilityFeed } = await import('../../frontend/placement/vulnerability-feed.js')
  const { Supervisor } = await import('../../frontend/assembly/supervisor.js')
  const dir = tempDir(t, 'metaos-drain-')
  const root = join(dir, 'v')
  mkdirSync(root)
  const doms = await Promise.all(['a', 'b', 'c'].map(async (name) => await startStorageDomain({ root, name, volume: 'v', listen: ['http://127.0.0.1:0'] })))
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  // Each reports another runtime version (the feed will list one).
  for (const [i, d] of doms.entries()) handlers.set(d.epr, perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '6.1.0' }, volume: 'v', runtime: `node/20.20.${i}` }, createStorageProxy(d.endpoints[0]!)))
  const feed = VulnerabilityFeed.of([])
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'v', feed })
  const supervisor = new Supervisor({ pmt, dispatchers: [dispatcher], feed, perf, intervalMs: 50 })
  supervisor.start()
  t.teardown(async () => {
    supervisor.stop()
    for (const h of handlers.values()) await h.close()
    for (const d of doms) await d.close(0)
    rmSync(dir, { recursive: true, force: true })
  })
  for (const epr of handlers.keys()) await perf.probe(epr)
  const name = (epr: string): string => ['a', 'b', 'c'][doms.findIndex((d) => d.epr === epr)]!

  // Draining: the stream's domain starts shutting down while the stream writes.
  const data = randomBytes(4 * 1024 * 1024)
  const f = await FileStream.open('drain.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  await f.write(data, 0, 1024 * 1024)
  const first = dispatcher.affinity.entries()[0]!.epr
  const closing = doms.find((d) => d.epr === first)!.close(5000)
  for (let off = 1024 * 1024; off < data.length; off += 64 * 1024) await f.write(data, off, 64 * 1024)
  await f.close()
  await closing
  t.equal(sha(readFileSync(join(root, 'drain.bin'))), sha(data), 'every byte written, across the drain')
  t.ok(dispatcher.moves.some((m) => m.from === first && (m.reason === 'DOMAIN_DRAINING' || m.reason === 'TRANSPORT_ERROR')), `the stream left the draining domain ${name(first)} (${dispatcher.moves.map((m) => m.reason).join(', ')})`)
  t.ok(['draining', 'isolated'].includes(pmt.row(first)!.state), `and it takes no new stream (${pmt.row(first)!.state})`)

  // The feed: the domain serving a stream turns out to run an affected runtime.
  const g = await FileStream.open('feed.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  await g.write(data, 0, 1024)
  const serving = dispatcher.affinity.entries()[0]!.epr
  const runtime = pmt.row(serving)!.identity.runtime!
  const [, version] = runtime.split('/')
  feed.replace([{ id: 'TEST-RUNTIME-1', action: 'exclude', affected: [{ runtime: { name: 'node', ranges: [{ introduced: version!, fixed: `${version!}.1` }] } }] }])
  for (let i = 0; i < 100 && dispatcher.affinity.entries()[0]!.epr === serving; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.not(dispatcher.affinity.entries()[0]!.epr, serving, `the stream moved off ${name(serving)} (${runtime})`)
  t.ok(supervisor.decisions.some((d) => d.epr === serving && d.to === 'isolated' && /vulnerability feed/.test(d.reason)), 'isolated: listed in the vulnerability feed')
  await g.write(data, 1024, 1024)
  await g.close()
  t.equal(sha(readFileSync(join(root, 'feed.bin'))), sha(data.subarray(0, 2048)), 'and went on where it was')
})
