// Read-ahead of exception-less streams (issue 21): from the second Read in a row the next block is
// asked for while the application consumes, in coalesced Reads; it stops on a seek, a write or
// close, never reads past the end of the file in a way the application would see, and a failure
// reaches the application where it happened. Bytes checked by SHA-256 on the local kernel, on a
// domain process over a Unix socket, and through a domain killed in the middle of the read.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Writable } from 'node:stream'
import { FileStream, closeSharedProxies } from '../../index.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const BLOCK = 4096

/** Reads to the end in `block`-byte read() calls. */
async function readAll (fs: FileStream, block = BLOCK): Promise<Buffer> {
  const parts: Buffer[] = []
  const buf = Buffer.alloc(block)
  for (let n = await fs.read(buf); n > 0; n = await fs.read(buf)) parts.push(Buffer.from(buf.subarray(0, n)))
  return Buffer.concat(parts)
}

t.test('the bytes are right: local kernel and a domain process over a Unix socket', async (t) => {
  const dir = tempDir(t, 'metaos-ahead-')
  mkdirSync(join(dir, 'root'))
  const d = await spawnDomain(['storage', '--root', join(dir, 'root'), '--listen', `unix:${join(dir, 'bus.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
  t.teardown(async () => { await closeSharedProxies(); await d.stop(2000) })
  const data = randomBytes(5 * 1024 * 1024 + 333)
  writeFileSync(join(dir, 'root', 'f.bin'), data)
  for (const [name, destination, path] of [['local', 'local', join(dir, 'root', 'f.bin')], ['bus', d.ready.endpoints[0]!, 'f.bin']] as const) {
    await t.test(name, async (t) => {
      const faithful = await FileStream.open(path, { access: 'Read', bufferSize: BLOCK, destination })
      t.equal(sha(await readAll(faithful)), sha(data), 'faithful: one Read per block')
      await faithful.close()
      const blocks = Math.ceil(data.length / BLOCK)
      t.equal(faithful.stats.calls, blocks + 3, 'a Read per block, one at the end, Open and Close')

      const ahead = await FileStream.open(path, { access: 'Read', bufferSize: BLOCK, destination, exceptionLess: true })
      t.equal(sha(await readAll(ahead)), sha(data), 'read ahead: 4 KiB read() calls')
      t.equal(await ahead.read(Buffer.alloc(10)), 0, 'still the end')
      await ahead.close()
      t.ok(ahead.stats.calls < blocks / 32, `coalesced: ${ahead.stats.calls} calls for ${blocks} blocks`)
      t.equal(ahead.stats.bytesRead, data.length, 'bytesRead: what the application got')

      const odd = await FileStream.open(path, { access: 'Read', bufferSize: 1000, destination, exceptionLess: { readAheadBytes: 64 * 1024 } })
      t.equal(sha(await readAll(odd, 777)), sha(data), 'reads of 777 bytes through a 1000 B cache, 64 KiB read-ahead')
      await odd.close()

      const piped = await FileStream.open(path, { access: 'Read', destination, exceptionLess: true })
      const chunks: Buffer[] = []
      await pipeline(piped.readable(), new Writable({ write (c: Buffer, _e, cb) { chunks.push(c); cb() } }))
      t.equal(sha(Buffer.concat(chunks)), sha(data), 'the Node Readable')

      const off = await FileStream.open(path, { access: 'Read', bufferSize: BLOCK, destination, exceptionLess: { readAheadBytes: 0 } })
      t.equal(sha(await readAll(off)), sha(data))
      await off.close()
      t.equal(off.stats.calls, blocks + 3, 'readAheadBytes: 0 turns it off')
    })
  }
})

t.test('seek, write and the end of the file', async (t) => {
  const d = await startTestDomain(t)
  t.teardown(closeSharedProxies)
  const data = randomBytes(1024 * 1024)
  writeFileSync(join(d.root, 's.bin'), data)

  await t.test('a seek stops read-ahead; the bytes after it are the file\'s', async (t) => {
    const fs = await FileStream.open('s.bin', { access: 'Read', bufferSize: BLOCK, destination: d.bus, exceptionLess: true })
    const buf = Buffer.alloc(BLOCK)
    for (let i = 0; i < 3; i++) await fs.read(buf)
    t.same(buf, data.subarray(2 * BLOCK, 3 * BLOCK), 'three blocks in a row')
    t.equal(await fs.seek(100_001), 100_001, 'outside what was read')
    t.equal(await fs.read(buf), BLOCK)
    t.same(buf, data.subarray(100_001, 100_001 + BLOCK))
    t.equal(await fs.seek(-10, 'Current'), 100_001 + BLOCK - 10)
    t.equal(await fs.readByte(), data[100_001 + BLOCK - 10], 'a seek back inside the read buffer')
    t.equal(await fs.seek(-5, 'End'), data.length - 5)
    const tail = Buffer.alloc(100)
    t.equal(await fs.read(tail), 5)
    t.same(tail.subarray(0, 5), data.subarray(data.length - 5))
    t.equal(await fs.read(tail), 0)
    t.equal(fs.position, data.length)
    await fs.close()
  })

  await t.test('a write after read-ahead lands where the application is', async (t) => {
    const fs = await FileStream.open('s.bin', { mode: 'Open', access: 'ReadWrite', bufferSize: BLOCK, destination: d.bus, exceptionLess: true })
    const buf = Buffer.alloc(BLOCK)
    for (let i = 0; i < 3; i++) await fs.read(buf)
    const byte = fs.readByte()
    t.equal(typeof byte === 'number' ? byte : await byte, data[3 * BLOCK], 'a byte from what was read ahead')
    await fs.write(Buffer.from('XYZ'))
    t.equal(fs.position, 3 * BLOCK + 4)
    t.equal(await fs.read(buf), BLOCK, 'and reading goes on after it')
    t.same(buf, data.subarray(3 * BLOCK + 4, 4 * BLOCK + 4))
    await fs.close()
    const expected = Buffer.from(data)
    expected.write('XYZ', 3 * BLOCK + 1)
    t.equal(sha(readFileSync(join(d.root, 's.bin'))), sha(expected), 'the file has the write at its place and nothing else changed')
  })

  await t.test('the end of the file is not remembered: bytes appended later are read', async (t) => {
    writeFileSync(join(d.root, 'grow.bin'), data.subarray(0, 10 * BLOCK + 7))
    const fs = await FileStream.open('grow.bin', { access: 'Read', bufferSize: BLOCK, destination: d.bus, exceptionLess: true, share: 'ReadWrite' })
    t.equal(sha(await readAll(fs)), sha(data.subarray(0, 10 * BLOCK + 7)), 'to the end')
    appendFileSync(join(d.root, 'grow.bin'), data.subarray(10 * BLOCK + 7, 20 * BLOCK))
    t.equal(sha(await readAll(fs)), sha(data.subarray(10 * BLOCK + 7, 20 * BLOCK)), 'then what was appended')
    t.equal(fs.position, 20 * BLOCK)
    await fs.close()
  })
})

t.test('a failure of read-ahead reaches the application where it happened', async (t) => {
  // A real failure: the domain reaps the handle while read-ahead waits for the application.
  const d = await startTestDomain(t, { limits: { idleMs: 300 } })
  t.teardown(closeSharedProxies)
  const data = randomBytes(1024 * 1024)
  writeFileSync(join(d.root, 'r.bin'), data)
  const fs = await FileStream.open('r.bin', { access: 'Read', bufferSize: BLOCK, destination: d.bus, exceptionLess: { readAheadBytes: 16 * 1024 } })
  const buf = Buffer.alloc(BLOCK)
  let got = 0
  for (let i = 0; i < 2; i++) got += await fs.read(buf)
  await new Promise((resolve) => setTimeout(resolve, 2500))
  let error: unknown
  const back = Buffer.alloc(data.length)
  try {
    for (let n = await fs.read(back, got, BLOCK); n > 0; n = await fs.read(back, got, BLOCK)) got += n
  } catch (e) { error = e }
  t.match(error, { code: 'INVALID_HANDLE' }, 'the Read\'s own error')
  t.ok(got > 2 * BLOCK && got < data.length, `after the ${got} bytes read ahead before it`)
  t.equal(sha(back.subarray(2 * BLOCK, got)), sha(data.subarray(2 * BLOCK, got)), 'which are the file\'s')
  await fs.close()
})

t.test('failover in the middle of a read ahead: kill -9 of the domain serving it', async (t) => {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { recoverMs: 1000 }, isolation: 'none' })
  t.teardown(async () => { await c.close() })
  const data = randomBytes(24 * 1024 * 1024)
  writeFileSync(join(c.root, 'big.bin'), data)
  const fs = await FileStream.open('big.bin', { access: 'Read', bufferSize: BLOCK, destination: c.dispatcher, exceptionLess: true })
  const back = Buffer.alloc(data.length)
  let n = 0
  let killed = false
  while (n < data.length) {
    if (!killed && n >= 8 * 1024 * 1024) { killed = true; process.kill(await c.pid(c.dispatcher.affinity.entries()[0]!.epr), 'SIGKILL') }
    const k = await fs.read(back, n, Math.min(BLOCK, data.length - n))
    if (k === 0) break
    n += k
  }
  t.equal(await fs.read(Buffer.alloc(1)), 0)
  await fs.close()
  t.equal(n, data.length, 'every byte came back')
  t.equal(sha(back), sha(data), 'the bytes read are the file\'s')
  t.ok(c.dispatcher.moves.some((m) => m.kind === 'failover' && m.op === 'Read'), `a read-ahead Read failed over (${c.dispatcher.moves.map((m) => `${m.op} ${m.reason}`).join('; ')})`)
})
