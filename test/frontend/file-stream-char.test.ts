// The char paths (issue 21): writeByte/readByte complete synchronously while the FileStream's
// buffer has room or data — `void` and a number, no promise — and return a promise only when a call
// must be waited for. On the local kernel a full buffer is a synchronous write(2) (as .NET's
// WriteByte), so no promise at all; over a domain (a process on a Unix socket) one promise per
// buffer; exception-less, none. Errors are never thrown: always a rejected promise (STREAM_BUSY,
// STREAM_CLOSED, NOT_SUPPORTED, a background Batch's failure on the next call). Bytes by SHA-256.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, closeSharedProxies, createStorageProxy, type StorageHandler } from '../../index.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const CACHE = 512

/** Writes every byte with writeByte, awaiting only what is a promise; the indexes that returned one. */
async function writeBytes (fs: FileStream, data: Buffer): Promise<number[]> {
  const promised: number[] = []
  for (let i = 0; i < data.length; i++) {
    const p = fs.writeByte(data[i]!)
    if (p !== undefined) { promised.push(i); await p }
  }
  return promised
}

/** Reads to the end with readByte, awaiting only what is a promise; the bytes and how many calls returned one. */
async function readBytes (fs: FileStream, size: number): Promise<{ back: Buffer, promised: number }> {
  const back = Buffer.alloc(size)
  let promised = 0
  let n = 0
  for (;;) {
    let b = fs.readByte()
    if (typeof b !== 'number') { promised++; b = await b }
    if (b === -1) break
    back[n++] = b
  }
  return { back: back.subarray(0, n), promised }
}

/** Calls `fn`, which must not throw, and returns what it returned. */
function noThrow<T> (t: Test, fn: () => T, what: string): T {
  let r: T | undefined
  t.doesNotThrow(() => { r = fn() }, `${what}: never thrown`)
  return r as T
}

t.test('local kernel: no promise at all, one synchronous syscall per buffer', async (t) => {
  const dir = tempDir(t, 'metaos-char-')
  const data = randomBytes(100_000 + 17)
  const w = await FileStream.open(join(dir, 'c.bin'), { mode: 'Create', access: 'Write', bufferSize: CACHE })
  t.same(await writeBytes(w, data), [], 'writeByte returned undefined for every byte, full buffers included')
  t.equal(w.position, data.length)
  await w.close()
  t.equal(w.stats.calls, 1 + Math.ceil(data.length / CACHE) + 1, 'one Write per full buffer (and the rest at close), plus Open and Close')
  t.equal(sha(readFileSync(join(dir, 'c.bin'))), sha(data), 'bytes on disk')

  const r = await FileStream.open(join(dir, 'c.bin'), { mode: 'Open', access: 'Read', bufferSize: CACHE })
  const { back, promised } = await readBytes(r, data.length + 1)
  t.equal(promised, 0, 'readByte returned a number for every byte, refills and the end included')
  t.equal(sha(back), sha(data), 'bytes read back')
  t.equal(r.readByte(), -1, 'stays at the end, at once')
  await r.close()
  t.equal(r.stats.calls, 1 + Math.ceil(data.length / CACHE) + 2 + 1, 'one Read per buffer, one per readByte at the end, plus Open and Close')

  // Unbuffered: every byte is its own syscall, still without a promise.
  const u = await FileStream.open(join(dir, 'u.bin'), { mode: 'Create', bufferSize: 0 })
  t.same(await writeBytes(u, data.subarray(0, 100)), [])
  t.equal(await u.seek(0), 0)
  t.equal((await readBytes(u, 101)).back.toString('hex'), data.subarray(0, 100).toString('hex'))
  await u.close()
})

t.test('local kernel: block write() and read() are synchronous syscalls when nothing waits, mixed with seeks and the char paths', async (t) => {
  const dir = tempDir(t, 'metaos-char-')
  const BLOCK = 4096
  const data = randomBytes(40 * BLOCK + 1000)
  const fs = await FileStream.open(join(dir, 'b.bin'), { mode: 'Create', bufferSize: BLOCK })
  for (let j = 0; j < data.length; j += BLOCK) await fs.write(data, j, Math.min(BLOCK, data.length - j))
  t.equal(fs.position, data.length)
  t.equal(await fs.seek(0), 0)
  const back = Buffer.alloc(data.length)
  let n = 0
  for (let k = await fs.read(back, 0, BLOCK); k > 0; k = await fs.read(back, n, Math.min(BLOCK, back.length - n))) n += k
  t.equal(n, data.length)
  t.equal(sha(back), sha(data), 'bytes read back in blocks')
  t.equal(fs.stats.calls, 1 + 41 + 1 + 41, 'Open, one Write per block (the last at the seek), the Seek, one Read per block')
  // Back into the file: a byte, a block, then a write over what was read.
  t.equal(await fs.seek(BLOCK - 1), BLOCK - 1)
  t.equal(fs.readByte(), data[BLOCK - 1], 'readByte after the seek: a synchronous Read')
  t.equal(await fs.read(back, 0, BLOCK), BLOCK - 1, 'the rest of that buffer')
  t.equal(back.subarray(0, BLOCK - 1).toString('hex'), data.subarray(BLOCK, 2 * BLOCK - 1).toString('hex'))
  t.equal(await fs.read(back, 0, 10), 10, 'a new block: a synchronous Read')
  t.equal(back.subarray(0, 10).toString('hex'), data.subarray(2 * BLOCK - 1, 2 * BLOCK + 9).toString('hex'))
  const patch = randomBytes(2 * BLOCK)
  await fs.write(patch)
  t.equal(fs.position, 4 * BLOCK + 9, 'the write went where the application was, not where the handle had read to')
  await fs.close()
  data.set(patch, 2 * BLOCK + 9)
  t.equal(sha(readFileSync(join(dir, 'b.bin'))), sha(data), 'bytes on disk')

  // Exception-less: sequential block reads coalesce in read-ahead, on the local kernel too.
  const ahead = await FileStream.open(join(dir, 'b.bin'), { mode: 'Open', access: 'Read', bufferSize: BLOCK, exceptionLess: true })
  n = 0
  for (let k = await ahead.read(back, 0, BLOCK); k > 0; k = await ahead.read(back, n, Math.min(BLOCK, back.length - n))) n += k
  await ahead.close()
  t.equal(sha(back.subarray(0, n)), sha(data), 'bytes read ahead')
  t.ok(ahead.stats.calls < 10, `${ahead.stats.calls} calls for 41 blocks`)
})

t.test('a domain process over a Unix socket (the bus)', async (t) => {
  const dir = tempDir(t, 'metaos-char-bus-')
  mkdirSync(join(dir, 'root'))
  const d = await spawnDomain(['storage', '--root', join(dir, 'root'), '--listen', `unix:${join(dir, 'bus.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
  t.teardown(async () => { await closeSharedProxies(); await d.stop(2000) })
  const bus = d.ready.endpoints[0]!
  t.match(bus, /unix/, `the bus endpoint: ${bus}`)
  const data = randomBytes(20_000)

  await t.test('faithful: a promise only for the byte that fills the buffer, and for each refill', async (t) => {
    const w = await FileStream.open('f.bin', { mode: 'Create', access: 'Write', bufferSize: CACHE, destination: bus })
    const promised = await writeBytes(w, data)
    t.same(promised, Array.from({ length: Math.floor(data.length / CACHE) }, (_, i) => (i + 1) * CACHE - 1), 'exactly the bytes that fill the buffer')
    await w.close()
    t.equal(sha(readFileSync(join(dir, 'root', 'f.bin'))), sha(data))
    const r = await FileStream.open('f.bin', { mode: 'Open', access: 'Read', bufferSize: CACHE, destination: bus })
    const got = await readBytes(r, data.length + 1)
    await r.close()
    t.equal(got.promised, Math.ceil(data.length / CACHE) + 1, 'one promise per Read: each refill and the end')
    t.equal(sha(got.back), sha(data))
  })

  await t.test('exception-less: no promise while the pipeline has room; reads ahead', async (t) => {
    const big = randomBytes(2 * 1024 * 1024 + 5)
    const w = await FileStream.open('e.bin', { mode: 'Create', access: 'Write', bufferSize: CACHE, destination: bus, exceptionLess: true })
    t.same(await writeBytes(w, big), [], 'every byte, full buffers included, without a promise')
    await w.close()
    t.equal(sha(readFileSync(join(dir, 'root', 'e.bin'))), sha(big), 'bytes on disk after close')
    const r = await FileStream.open('e.bin', { mode: 'Open', access: 'Read', bufferSize: CACHE, destination: bus, exceptionLess: true })
    const got = await readBytes(r, big.length + 1)
    await r.close()
    t.equal(sha(got.back), sha(big), 'bytes read back')
    t.ok(r.stats.calls < big.length / CACHE / 64, `read ahead in coalesced Reads: ${r.stats.calls} calls for ${Math.ceil(big.length / CACHE)} buffers`)
    t.ok(got.promised < big.length / CACHE / 64, `and few promises: ${got.promised}`)
  })

  await t.test('one operation at a time, errors as rejected promises', async (t) => {
    const s = await FileStream.open('busy.bin', { mode: 'Create', bufferSize: CACHE, destination: bus })
    for (let i = 0; i < CACHE - 1; i++) t.equal(s.writeByte(i & 0xff), undefined)
    const filling = s.writeByte(0xff)
    t.ok(filling instanceof Promise, 'the byte that fills the buffer waits for a Write')
    await t.rejects(noThrow(t, () => s.writeByte(1), 'writeByte while busy') as Promise<void>, { code: 'STREAM_BUSY' })
    await t.rejects(noThrow(t, () => s.readByte(), 'readByte while busy') as Promise<number>, { code: 'STREAM_BUSY' })
    await filling
    t.equal(s.position, CACHE, 'the refused byte was not written')
    t.equal(await s.seek(0), 0)
    const first = s.readByte()
    t.ok(first instanceof Promise, 'an empty buffer waits for a Read')
    t.equal(await first, 0)
    for (let i = 1; i < 20; i++) t.equal(s.readByte(), i, 'then from the buffer, at once')
    // The read buffer holds the file: a writeByte now drops it and lands where the application is.
    t.equal(await s.seek(10), 10, 'inside the read buffer')
    t.equal(s.readByte(), 10, 'from the buffer, at once')
    const w = s.writeByte(0xAB)
    if (w !== undefined) await w
    t.equal(s.position, 12)
    await s.close()
    const disk = readFileSync(join(dir, 'root', 'busy.bin'))
    t.equal(disk.length, CACHE)
    t.equal(disk[11], 0xAB, 'the byte landed at the application position, not past the read buffer')
    t.equal(disk[12], 12)
    await t.rejects(noThrow(t, () => s.writeByte(1), 'writeByte after close') as Promise<void>, { code: 'STREAM_CLOSED' })
    await t.rejects(noThrow(t, () => s.readByte(), 'readByte after close') as Promise<number>, { code: 'STREAM_CLOSED' })
    const ro = await FileStream.open('busy.bin', { mode: 'Open', access: 'Read', destination: bus })
    await t.rejects(noThrow(t, () => ro.writeByte(1), 'writeByte on a read-only stream') as Promise<void>, { code: 'NOT_SUPPORTED' })
    await ro.close()
    const wo = await FileStream.open('busy.bin', { mode: 'Open', access: 'Write', destination: bus })
    await t.rejects(noThrow(t, () => wo.readByte(), 'readByte on a write-only stream') as Promise<number>, { code: 'NOT_SUPPORTED' })
    await wo.close()
  })
})

t.test('a background Batch that failed reaches the application on its next call', async (t) => {
  // A real failure: the domain reaps the idle handle, so the pipelined writes get INVALID_HANDLE.
  const d = await startTestDomain(t, { limits: { idleMs: 300 } })
  const proxy = createStorageProxy(d.bus)
  t.teardown(proxy.close)
  // Watches the proxy's Batch answers (the calls themselves are the domain's).
  let answered: () => void = () => {}
  const batchAnswered = new Promise<void>((resolve) => { answered = resolve })
  const watched: StorageHandler = {
    destination: proxy.destination,
    invoke: async (op, input) => { try { return await proxy.invoke(op, input) } finally { if (op === 'Batch') answered() } },
    close: proxy.close,
  }
  const fs = await FileStream.open('bg.bin', { mode: 'Create', access: 'Write', bufferSize: CACHE, destination: watched, exceptionLess: true })
  await new Promise((resolve) => setTimeout(resolve, 2500))
  t.same(await writeBytes(fs, randomBytes(CACHE)), [], 'the full buffer is queued at once')
  await batchAnswered
  await new Promise((resolve) => setImmediate(resolve)) // the stream has taken the answer in
  const next = noThrow(t, () => fs.writeByte(1), 'the next writeByte')
  t.ok(next instanceof Promise, 'is not taken at once: an error waits')
  await t.rejects(next as Promise<void>, { code: 'INVALID_HANDLE' }, 'the failed Batch\'s own error')
  await fs.close()
  t.equal(readFileSync(join(d.root, 'bg.bin')).length, 0, 'nothing was written')

  // With room for one buffer only, the second full buffer waits for the first Batch and gets its error.
  const d2 = await startTestDomain(t, { limits: { idleMs: 300 } })
  const fs2 = await FileStream.open('bg2.bin', { mode: 'Create', access: 'Write', bufferSize: CACHE, destination: d2.bus, exceptionLess: { maxPendingBytes: CACHE } })
  await new Promise((resolve) => setTimeout(resolve, 2500))
  let failedAt = -1
  const data = randomBytes(4 * CACHE)
  for (let i = 0; i < data.length && failedAt < 0; i++) {
    const p = fs2.writeByte(data[i]!)
    if (p !== undefined) await p.catch((e: unknown) => { t.match(e, { code: 'INVALID_HANDLE' }); failedAt = i })
  }
  t.equal(failedAt, 2 * CACHE - 1, 'the byte that fills the second buffer reports the first one\'s failure')
  await fs2.close()
  await closeSharedProxies()
})
