// One real domain, many callers at once: 16 FileStreams (8 over HTTP, 8 over the bus), each through
// its own proxy and caller identity, write and read back their own 2 MiB file concurrently in
// random-sized pieces; the bytes on disk and the bytes read back are checked. Then FileShare
// between callers, and the reaping of idle handles (a domain with no listener, called through the
// in-memory transport: those need a service round trip, not a socket).
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../../frontend/api/file-stream.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { startTestDomain } from '../helpers/domain.js'
import { startMemoryDomain } from '../helpers/memory-domain.js'
import { prng } from '../helpers/prng.js'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** A small seeded PRNG (mulberry32), so the piece sizes are the same on every run. */

/** Piece sizes: mostly below the 4 KiB buffer, some across it, a few far above it. */
function pieceSize (rand: () => number): number {
  const r = rand()
  if (r < 0.05) return 1
  if (r < 0.80) return 1 + Math.floor(rand() * 5000)
  if (r < 0.98) return 4096 + Math.floor(rand() * 65536)
  return 65536 + Math.floor(rand() * 262144)
}

function proxyFor (t: Test, endpoint: string, caller: string): StorageHandler {
  const p = createStorageProxy(endpoint, { caller })
  t.teardown(async () => { await p.close() })
  return p
}

t.test('16 callers (8 over HTTP, 8 over the bus) write and read back 2 MiB each, concurrently', async (t) => {
  const d = await startTestDomain(t)
  const SIZE = 2 * 1024 * 1024
  const workers = Array.from({ length: 16 }, (_, i) => ({
    i,
    via: i < 8 ? 'http' : 'bus',
    name: `writer-${String(i).padStart(2, '0')}.bin`,
    data: randomBytes(SIZE),
    proxy: proxyFor(t, i < 8 ? d.http : d.bus, `urn:test:writer-${i}`),
  }))
  const spans: Array<[number, number]> = []
  const results = await Promise.all(workers.map(async (w) => {
    const rand = prng(1000 + w.i)
    const fs = await FileStream.open(w.name, { mode: 'Create', destination: w.proxy, bufferSize: 4096 })
    const started = performance.now()
    let writes = 0
    for (let off = 0; off < SIZE;) {
      const n = Math.min(pieceSize(rand), SIZE - off)
      if (n === 1) await fs.writeByte(w.data[off]!)
      else await fs.write(w.data, off, n)
      off += n
      writes++
    }
    await fs.flush()
    const length = await fs.length()
    const position = fs.position
    t.equal(await fs.seek(0), 0)
    const back = Buffer.alloc(SIZE + 1)
    let got = 0
    let reads = 0
    for (;;) {
      const want = Math.min(pieceSize(rand), back.length - got)
      let k: number
      if (want === 1) {
        const b = await fs.readByte() // a number at once from the buffer, or a promise of one
        if (b >= 0) back[got] = b
        k = b < 0 ? 0 : 1
      } else k = await fs.read(back, got, want)
      if (k === 0) break
      got += k
      reads++
    }
    const stats = { ...fs.stats }
    await fs.close()
    spans.push([started, performance.now()])
    return { w, length, position, got, back: back.subarray(0, got), writes, reads, stats }
  }))
  t.ok(Math.max(...spans.map((s) => s[0])) < Math.min(...spans.map((s) => s[1])), 'the 16 streams really ran at the same time')
  for (const r of results) {
    const { w } = r
    const expected = sha256(w.data)
    t.equal(r.length, SIZE, `${w.name} (${w.via}): length after ${r.writes} writes`)
    t.equal(r.position, SIZE, `${w.name}: position at the end`)
    t.equal(r.got, SIZE, `${w.name}: read back ${r.got} bytes in ${r.reads} reads, then end of file`)
    t.equal(sha256(r.back), expected, `${w.name}: the bytes read back are the bytes written`)
    t.equal(sha256(readFileSync(join(d.root, w.name))), expected, `${w.name}: the bytes on disk are the bytes written`)
    t.equal(r.stats.bytesWritten, SIZE, `${w.name}: stats.bytesWritten`)
    t.equal(r.stats.bytesRead, SIZE, `${w.name}: stats.bytesRead`)
    t.ok(r.stats.calls > 2 && r.stats.serviceMicros > 0 && r.stats.channelMicros > 0, `${w.name}: ${r.stats.calls} calls, service and channel time measured`)
  }
  t.equal(d.domain.engine.openHandles, 0, 'every handle was closed')
})

t.test('FileShare between two callers: None excludes, ReadWrite shares', async (t) => {
  const d = await startMemoryDomain(t)
  const a = d.proxy({ caller: 'urn:test:share-a' })
  const b = d.proxy({ caller: 'urn:test:share-b' })

  const first = await FileStream.open('shared.bin', { mode: 'Create', share: 'None', destination: a })
  await t.rejects(FileStream.open('shared.bin', { mode: 'Open', share: 'None', destination: b }), { code: 'SHARING_VIOLATION' }, 'share None: the second open fails')
  await t.rejects(FileStream.open('shared.bin', { mode: 'Open', access: 'Read', share: 'ReadWrite', destination: b }), { code: 'SHARING_VIOLATION' }, 'even for reading, whatever the second one\'s share')
  await t.rejects(FileStream.open('shared.bin', { mode: 'Open', access: 'Read', share: 'ReadWrite', destination: a }), { code: 'SHARING_VIOLATION' }, 'and for the first caller too')
  await t.rejects(b.invoke('Delete', { path: 'shared.bin' }), { code: 'SHARING_VIOLATION' }, 'nor can it be deleted')
  await first.write(Buffer.from('only mine'))
  await first.close()
  t.equal(readFileSync(join(d.root, 'shared.bin'), 'utf8'), 'only mine')

  const sa = await FileStream.open('shared.bin', { mode: 'Open', access: 'ReadWrite', share: 'ReadWrite', destination: a })
  const sb = await FileStream.open('shared.bin', { mode: 'Open', access: 'ReadWrite', share: 'ReadWrite', destination: b })
  t.pass('share ReadWrite: both opens succeed')
  await sa.seek(0, 'End')
  await sa.write(Buffer.from(', now shared'))
  await sa.flush()
  const buf = Buffer.alloc(64)
  const n = await sb.read(buf)
  t.equal(buf.subarray(0, n).toString(), 'only mine, now shared', 'what one writes, the other reads')
  await sb.write(Buffer.from('!'))
  await sb.flush()
  t.equal(await sa.length(), 'only mine, now shared!'.length, 'and the other way round')
  await t.rejects(b.invoke('Delete', { path: 'shared.bin' }), { code: 'SHARING_VIOLATION' }, 'share ReadWrite does not admit Delete')
  await sa.close()
  await sb.close()
  t.equal(readFileSync(join(d.root, 'shared.bin'), 'utf8'), 'only mine, now shared!')
  await b.invoke('Delete', { path: 'shared.bin' })
  t.equal(d.domain.engine.openHandles, 0)
})

t.test('idle handles are reaped: INVALID_HANDLE afterwards; handles in use are kept', async (t) => {
  const d = await startMemoryDomain(t, { limits: { idleMs: 300 } })
  const p = d.proxy({ caller: 'urn:test:idle' })
  const idle = (await p.invoke('Open', { path: 'idle.bin', mode: 'Create', access: 'ReadWrite', share: 'Read' })).output.handle
  await p.invoke('Write', { handle: idle, data: Buffer.from('written before the reaping') })
  const stream = await FileStream.open('idle-stream.bin', { mode: 'Create', destination: d.proxy(), bufferSize: 4096 })
  await stream.write(Buffer.from('buffered, then flushed'))
  await stream.flush()
  const busy = (await p.invoke('Open', { path: 'busy.bin', mode: 'Create', access: 'ReadWrite', share: 'Read' })).output.handle
  t.equal(d.domain.engine.openHandles, 3)

  // The reaper runs every max(1000, idleMs / 4) ms: after 2.5 s an idle handle is surely gone.
  const until = Date.now() + 2500
  let kept = 0
  while (Date.now() < until) {
    await p.invoke('GetLength', { handle: busy })
    kept++
    await sleep(50)
  }
  t.equal(d.domain.engine.openHandles, 1, 'the two idle handles were reaped, the busy one kept')
  await t.rejects(p.invoke('Read', { handle: idle, count: 10 }), { code: 'INVALID_HANDLE' }, 'a call with the reaped handle: INVALID_HANDLE')
  await t.rejects(p.invoke('Write', { handle: idle, data: Buffer.from('late') }), { code: 'INVALID_HANDLE' })
  await t.rejects(stream.length(), { code: 'INVALID_HANDLE' }, 'a FileStream whose handle was reaped sees INVALID_HANDLE')
  await stream.close()
  t.ok(stream.closed, 'closing it afterwards is harmless')
  t.equal((await p.invoke('GetLength', { handle: busy })).output.length, 0, `the handle used ${kept} times meanwhile still works`)
  await p.invoke('Close', { handle: busy })
  t.equal(readFileSync(join(d.root, 'idle.bin'), 'utf8'), 'written before the reaping', 'what was written before the reaping stays')
  t.equal(readFileSync(join(d.root, 'idle-stream.bin'), 'utf8'), 'buffered, then flushed')
  t.equal(d.domain.engine.openHandles, 0)
})
