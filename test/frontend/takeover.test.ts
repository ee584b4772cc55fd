// The dispatcher's takeover of a stream whose domain hangs (frontend/placement/takeover.ts), on
// three real storage domains of one volume: the hang is a real delay inside the service. The fence
// hook is the assembly's part (the domain manager's kill in LocalCluster: test/frontend/fencing);
// here the test plays that part. When the hung domain cannot be killed, the stream is not reopened
// elsewhere — it fails with DOMAIN_FENCED (the default) or waits until a fence succeeds — and every
// move bumps the stream's epoch, which the domains learn (the new one from the Open, the old one
// from the Close of its handle) and enforce (STALE_EPOCH).
import t, { type Test } from 'tap'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../../index.js'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher, type DispatcherOptions } from '../../frontend/placement/dispatcher.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { tempDir } from '../helpers/temp-dir.js'

interface Volume { readonly root: string, readonly domains: Map<string, StorageDomain>, readonly handlers: Map<string, StorageHandler>, readonly pmt: PerformanceMappingTable }

async function volume (t: Test): Promise<Volume> {
  const root = join(tempDir(t, 'metaos-takeover-'), 'volume')
  mkdirSync(root)
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const domains = new Map<string, StorageDomain>()
  const handlers = new Map<string, StorageHandler>()
  for (const name of ['x', 'y', 'z']) {
    const d = await startStorageDomain({ root, name, volume: 'v', listen: ['http://127.0.0.1:0'] })
    domains.set(d.epr, d)
    handlers.set(d.epr, perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: 'x' }, volume: 'v' }, createStorageProxy(d.endpoints[0]!)))
  }
  t.teardown(async () => {
    for (const h of handlers.values()) await h.close()
    for (const d of domains.values()) await d.close(100)
  })
  for (const epr of handlers.keys()) await perf.probe(epr)
  return { root, domains, handlers, pmt }
}

function dispatcher (v: Volume, o: DispatcherOptions): Dispatcher {
  return new Dispatcher(v.pmt, v.handlers, { volume: 'v', hangMs: 300, ...o })
}

t.test('a hung domain that cannot be killed: the stream fails with DOMAIN_FENCED and is not reopened elsewhere', async (t) => {
  const v = await volume(t)
  const fenced: string[] = []
  const d = dispatcher(v, { fence: async (epr) => { fenced.push(epr); return 'unreachable' } })
  const f = await FileStream.open('u.bin', { mode: 'Create', access: 'Write', destination: d, bufferSize: 0 })
  await f.write(Buffer.from('aaaa'))
  const s = d.affinity.entries()[0]!
  const hung = v.domains.get(s.epr)!
  hung.faults.delayMs = 1000
  await t.rejects(f.write(Buffer.from('bbbb')), { code: 'DOMAIN_FENCED', message: /stopped answering \(TIMED_OUT\), cannot be killed from this frontend and it did not close the stream's handle: the stream is not reopened elsewhere/ })
  t.same(fenced, [s.epr], 'the fence was asked for the hung domain')
  await t.rejects(f.write(Buffer.from('cccc')), { code: 'DOMAIN_FENCED' }, 'the stream stays failed')
  for (const [epr, dom] of v.domains) if (epr !== s.epr) t.equal(dom.engine.openHandles, 0, `nothing was opened on ${dom.name}: no second writer`)
  await f.close()
  t.equal(d.affinity.size, 0, 'Close releases the failed stream')
  // The held Write lands when the domain wakes: it was the only writer of the file.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  t.equal(readFileSync(join(v.root, 'u.bin'), 'utf8'), 'aaaabbbb')
})

t.test("unfenced: 'wait' — the takeover waits until the hung domain closes the stream's handle, then moves at the next epoch", async (t) => {
  const v = await volume(t)
  let calls = 0
  const d = dispatcher(v, { unfenced: 'wait', fenceRetryMs: 100, fence: async () => { calls++; return 'unreachable' } })
  const f = await FileStream.open('w.bin', { mode: 'Create', access: 'Write', destination: d, bufferSize: 0 })
  await f.write(Buffer.from('aaaa'))
  const s = d.affinity.entries()[0]!
  const from = s.epr
  const hung = v.domains.get(from)!
  hung.faults.delayMs = 600
  // The domain recovers after a while: then it answers the Close of the stream's handle.
  setTimeout(() => { hung.faults.delayMs = 0 }, 1200).unref()
  await f.write(Buffer.from('bbbb'))
  t.ok(calls >= 2, `the fence was tried again while the domain did not answer (${calls} times)`)
  const m = d.moves[0]!
  t.match(m, { kind: 'failover', from, reason: 'TIMED_OUT', epoch: 2 }, 'the stream moved, at epoch 2')
  t.ok(m.fenceMs !== undefined && m.fenceMs > 500, `the stall includes the wait for the Close (${m.fenceMs?.toFixed(0)} of ${m.stallMs.toFixed(0)} ms)`)
  t.equal(hung.engine.openHandles, 0, 'the old domain closed the stream\'s handle')
  t.equal(v.domains.get(s.epr)!.fence.epochOf(s.stream), 2, 'the new domain knows epoch 2')
  await f.seek(0)
  await f.write(Buffer.from('cc'))
  await f.close()
  t.equal(readFileSync(join(v.root, 'w.bin'), 'utf8'), 'ccaabbbb')
})

t.test('a refused connection delivered nothing: the stream moves without a fence, even where none can be done', async (t) => {
  const v = await volume(t)
  let fences = 0
  const d = dispatcher(v, { fence: async () => { fences++; return 'unreachable' } })
  const f = await FileStream.open('r.bin', { mode: 'Create', access: 'Write', destination: d, bufferSize: 0 })
  await f.write(Buffer.from('aaaa'))
  const gone = v.domains.get(d.affinity.entries()[0]!.epr)!
  await gone.close(100)
  await new Promise((resolve) => setTimeout(resolve, 100)) // its connections' ends reach the client
  await f.write(Buffer.from('bbbb'))
  await f.close()
  t.match(d.moves[0], { kind: 'failover', reason: 'TRANSPORT_ERROR', epoch: 2 })
  t.equal(fences, 0, 'no fence was asked for')
  t.equal(readFileSync(join(v.root, 'r.bin'), 'utf8'), 'aaaabbbb')
})

t.test('every move bumps the epoch; the old domain learns it from the Close of its handle and refuses older ones', async (t) => {
  const v = await volume(t)
  const d = dispatcher(v, { fence: async () => 'killed' })
  const f = await FileStream.open('e.bin', { mode: 'Create', access: 'Write', destination: d, bufferSize: 0 })
  await f.write(Buffer.from('one '))
  const s = d.affinity.entries()[0]!
  const first = s.epr
  const others = [...v.domains.keys()].filter((e) => e !== first)
  await d.migrate(s.id, 'test', others[0])
  await f.write(Buffer.from('two '))
  await d.migrate(s.id, 'test', others[1])
  await f.write(Buffer.from('three'))
  t.same(d.moves.map((m) => m.epoch), [2, 3], 'epochs 2 and 3')
  t.equal(s.epoch, 3)
  // The background Close of the old handle carried the new epoch.
  for (let i = 0; i < 50 && v.domains.get(others[0]!)!.fence.epochOf(s.stream) !== 3; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(v.domains.get(first)!.fence.epochOf(s.stream), 2, 'the first domain learned epoch 2 when its handle was closed')
  t.equal(v.domains.get(others[0]!)!.fence.epochOf(s.stream), 3, 'the second learned 3')
  // The dispatcher's own proxy (its caller identity): the epochs a caller named fence that caller's stream.
  await t.rejects(v.handlers.get(first)!.invoke('Open', { path: 'e.bin', mode: 'Open', access: 'Write', share: 'ReadWrite', stream: s.stream, epoch: 1 }), { code: 'STALE_EPOCH' }, 'an Open of the stream at its first epoch is refused there')
  // Another caller naming the stream names a stream of its own: it neither is fenced by nor fences the dispatcher's.
  const other = createStorageProxy(v.domains.get(first)!.endpoints[0]!)
  t.teardown(async () => { await other.close() })
  const foreign = await other.invoke('Open', { path: 'e.bin', mode: 'Open', access: 'Read', share: 'ReadWrite', stream: s.stream, epoch: 99 })
  await other.invoke('Close', { handle: foreign.output.handle })
  await f.write(Buffer.from('!'))
  t.equal(s.epoch, 3, 'the stream goes on at its epoch after another caller named epoch 99')
  await f.close()
  t.equal(readFileSync(join(v.root, 'e.bin'), 'utf8'), 'one two three!')
})
