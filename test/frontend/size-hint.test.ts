// The size of a stream reaches placement: FileStream's expectedBytes places it with a rules file's
// minBytes/maxBytes (two real domains; which one holds the file is read on their disks); a
// SetLength before the first write places it again at that size and moves it (two domains of one
// volume over one directory: which one holds the handle is read in each domain's engine); after
// the first write, the size set counts for the stream's later moves.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, createStorageProxy } from '../../index.js'
import { startStorageDomain, type StorageDomain } from '../../domains/index.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import { RulesEngine } from '../../frontend/placement/rules-engine.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { tempDir } from '../helpers/temp-dir.js'

const MiB = 1048576
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

/** A rules file: streams of 1 MiB or more to the zone `bulk`, smaller ones to the zone `small`. */
function rulesFile (dir: string): RulesEngine {
  const file = join(dir, 'rules.json')
  writeFileSync(file, JSON.stringify({
    rules: [
      { name: 'large streams to bulk', when: { op: ['Open'], minBytes: MiB }, choose: { zone: 'bulk' } },
      { name: 'small streams to small', when: { op: ['Open'], maxBytes: MiB - 1 }, choose: { zone: 'small' } },
    ],
  }))
  return RulesEngine.fromFile(file)
}

/** Two storage domains on roots of their own or one shared root, tracked in a PMT under zones small and bulk, behind a dispatcher with the rules file. */
async function setup (t: Test, sharedRoot: boolean): Promise<{ d: Dispatcher, roots: { small: string, bulk: string }, domains: { small: StorageDomain, bulk: StorageDomain }, pmt: PerformanceMappingTable, handlers: Map<string, StorageHandler> }> {
  const dir = tempDir(t, 'metaos-size-')
  const roots = { small: join(dir, sharedRoot ? 'volume' : 'small'), bulk: join(dir, sharedRoot ? 'volume' : 'bulk') }
  for (const r of Object.values(roots)) mkdirSync(r, { recursive: true })
  const small = await startStorageDomain({ root: roots.small, name: 'small', volume: 'v', listen: ['http://127.0.0.1:0'] })
  const bulk = await startStorageDomain({ root: roots.bulk, name: 'bulk', volume: 'v', listen: [`unix:${join(dir, 'bulk.sock')}`] })
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [zone, dom] of [['small', small], ['bulk', bulk]] as const) {
    handlers.set(zone, perf.track({ epr: zone, endpoints: [...dom.endpoints], hosting: 'process', kernel: { sysname: 'Linux', release: '6.1' }, volume: 'v', zone }, createStorageProxy(dom.endpoints[0]!)))
  }
  t.teardown(async () => {
    for (const h of handlers.values()) await h.close()
    await small.close(1000)
    await bulk.close(1000)
    rmSync(dir, { recursive: true, force: true })
  })
  return { d: new Dispatcher(pmt, handlers, { volume: 'v', rules: rulesFile(dir) }), roots, domains: { small, bulk }, pmt, handlers }
}

async function until (what: () => boolean): Promise<void> {
  for (let i = 0; i < 250 && !what(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
}

t.test('expectedBytes: the minBytes/maxBytes rules place a real stream', async (t) => {
  const { d, roots } = await setup(t, false)
  const big = randomBytes(2 * MiB)
  const w = await FileStream.open('big.bin', { mode: 'Create', access: 'Write', destination: d, expectedBytes: big.length })
  await w.write(big)
  await w.close()
  const s = await FileStream.open('note.txt', { mode: 'Create', destination: d, expectedBytes: 100 })
  await s.write(Buffer.from('a small file'))
  await s.close()
  const none = await FileStream.open('unsized.txt', { mode: 'Create', destination: d })
  await none.close()

  t.equal(sha(readFileSync(join(roots.bulk, 'big.bin'))), sha(big), 'the 2 MiB stream is on the bulk domain\'s disk, every byte')
  t.notOk(existsSync(join(roots.small, 'big.bin')), 'and not on the small one\'s')
  t.equal(readFileSync(join(roots.small, 'note.txt'), 'utf8'), 'a small file', 'the 100-byte stream is on the small domain\'s disk')
  t.notOk(existsSync(join(roots.bulk, 'note.txt')), 'and not on the bulk one\'s')
  t.ok(existsSync(join(roots.small, 'unsized.txt')), 'a stream without a size is placed as 0 bytes (maxBytes holds)')
  t.same(d.placed.filter((p) => p.kind === 'place').map((p) => [p.path, p.chosen, p.fired]), [
    ['big.bin', 'bulk', ['large streams to bulk']],
    ['note.txt', 'small', ['small streams to small']],
    ['unsized.txt', 'small', ['small streams to small']],
  ], 'each placement says which rule fired')

  for (const bad of [-1, 1.5, Number.NaN, 2 ** 60]) {
    await t.rejects(FileStream.open('x', { mode: 'Create', destination: d, expectedBytes: bad }), { code: 'INVALID_ARGUMENT', message: /expectedBytes must be a whole number of bytes/ }, `expectedBytes ${bad} refused`)
  }
  const local = await FileStream.open(join(roots.small, 'local.txt'), { mode: 'Create', expectedBytes: 5 * MiB })
  await local.close()
  t.ok(existsSync(join(roots.small, 'local.txt')), 'a destination that does not place ignores the size')
})

t.test('setLength before the first write places the stream again; after it, the size counts for moves', async (t) => {
  const { d, roots, domains } = await setup(t, true)
  const data = randomBytes(3 * MiB)
  const f = await FileStream.open('grown.bin', { mode: 'Create', destination: d, bufferSize: 0 })
  const id = d.affinity.entries()[0]!.id
  t.equal(d.affinity.lookup(id), 'small', 'opened without a size: on the small domain')
  t.equal(domains.small.engine.openHandles, 1, 'which holds its handle')

  await f.setLength(data.length)
  t.equal(d.affinity.lookup(id), 'bulk', 'setLength(3 MiB) before any write: moved to the bulk domain')
  t.match(d.moves.at(-1), { kind: 'migration', from: 'small', to: 'bulk', op: 'SetLength', reason: /size 3145728 B \(SetLength before the first write\)/ }, 'a migration, saying why')
  t.match(d.placed.at(-1), { kind: 'migration', chosen: 'bulk', fired: ['large streams to bulk'] }, 'the placement and the rule that fired are recorded')
  await until(() => domains.small.engine.openHandles === 0)
  t.same([domains.small.engine.openHandles, domains.bulk.engine.openHandles], [0, 1], 'the bulk domain holds the handle now, the small one none')

  await f.write(data, 0, MiB)
  await f.setLength(100)
  t.equal(d.affinity.lookup(id), 'bulk', 'after the first write, setLength(100) does not move the stream')
  t.equal(d.moves.length, 1, 'no other move')
  const moved = await d.migrate(id, 'operator')
  t.match(moved, { from: 'bulk', to: 'small' }, 'but a later migration chooses for the size set: 100 B go to the small domain')
  t.match(d.placed.at(-1), { kind: 'migration', chosen: 'small', fired: ['small streams to small'] })
  await f.seek(0)
  await f.write(data)
  await f.close()
  t.equal(sha(readFileSync(join(roots.small, 'grown.bin'))), sha(data), 'every byte on the volume')
  await until(() => domains.bulk.engine.openHandles === 0 && domains.small.engine.openHandles === 0)
  t.same([domains.small.engine.openHandles, domains.bulk.engine.openHandles], [0, 0], 'no handle left behind')
})

t.test('the stream keeps its size: expectedBytes, then each setLength', async (t) => {
  const { d } = await setup(t, true)
  const f = await FileStream.open('sized.bin', { mode: 'Create', destination: d, expectedBytes: 8 * MiB })
  const id = d.affinity.entries()[0]!.id
  t.equal(d.affinity.lookup(id), 'bulk')
  t.equal(d.affinity.get(id)!.bytes, 8 * MiB, 'the stream keeps its size')
  await f.write(Buffer.from('x'))
  await f.setLength(MiB - 1)
  t.equal(d.affinity.get(id)!.bytes, MiB - 1, 'setLength replaces it')
  await f.close()
})

t.test('setLength moves a stream only when its domain leaves the first tier, not for the score or a weighted draw', async (t) => {
  const { pmt, handlers } = await setup(t, true)
  let draw = 0
  // Weighted, no rules: both domains are one tier; the draw picks the first, then the last.
  const d = new Dispatcher(pmt, handlers, { volume: 'v', policy: 'weighted', random: () => [0, 0.999][draw++ % 2]! })
  const f = await FileStream.open('same-tier.bin', { mode: 'Create', destination: d })
  const id = d.affinity.entries()[0]!.id
  const first = d.affinity.lookup(id)
  await f.setLength(16 * MiB)
  t.equal(d.affinity.lookup(id), first, 'a stream of the first tier stays at setLength, though the draw would pick the other domain')
  t.equal(d.moves.length, 0, 'no move')
  await f.close()
})
