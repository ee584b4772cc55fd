// FileStream end to end, on each of the three destinations (local kernel, bus, network): bytes
// on disk and read back are checked by SHA-256, and .NET semantics (buffering, seek, length,
// append, sharing) and typed errors hold alike everywhere.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Readable, Writable } from 'node:stream'
import { FileStream, FileMode, FileAccess, FileShare, SeekOrigin, MetaosError, closeSharedProxies } from '../../index.js'
import { startTestDomain } from '../helpers/domain.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

t.test('FileStream on every destination', async (t) => {
  const d = await startTestDomain(t)
  const localDir = mkdtempSync(join(tmpdir(), 'metaos-local-'))
  t.teardown(async () => { await closeSharedProxies(); rmSync(localDir, { recursive: true, force: true }) })
  const destinations = [
    { name: 'local', destination: 'local', path: (f: string) => join(localDir, f), disk: (f: string) => join(localDir, f) },
    { name: 'bus', destination: d.bus, path: (f: string) => `bus-${f}`, disk: (f: string) => join(d.root, `bus-${f}`) },
    { name: 'network', destination: d.http, path: (f: string) => `net-${f}`, disk: (f: string) => join(d.root, `net-${f}`) },
  ]
  for (const dst of destinations) {
    await t.test(dst.name, async (t) => {
      await t.test('char mode: WriteByte/ReadByte through a 512 B cache', async (t) => {
        const data = randomBytes(20_000)
        const w = await FileStream.open(dst.path('char.bin'), { mode: FileMode.Create, access: FileAccess.Write, bufferSize: 512, destination: dst.destination })
        for (const b of data) await w.writeByte(b)
        t.equal(w.position, data.length)
        await w.close()
        t.equal(w.stats.calls, 1 + Math.ceil(data.length / 512) + 1, 'one Write per full buffer, plus Open and Close')
        t.equal(sha(readFileSync(dst.disk('char.bin'))), sha(data), 'bytes on disk')
        const r = await FileStream.open(dst.path('char.bin'), { mode: FileMode.Open, access: FileAccess.Read, bufferSize: 512, destination: dst.destination })
        const back = Buffer.alloc(data.length)
        let i = 0
        for (let b = await r.readByte(); b !== -1; b = await r.readByte()) back[i++] = b
        t.equal(i, data.length)
        t.equal(await r.readByte(), -1, 'stays at end of file')
        await r.close()
        t.equal(sha(back), sha(data), 'bytes read back')
        t.ok(r.stats.channelMicros >= 0 && r.stats.serviceMicros > 0, 'service time is reported')
      })

      await t.test('block mode, seek, setLength, length, overwrite', async (t) => {
        const data = randomBytes(3 * 1024 * 1024 + 17)
        await using fs = await FileStream.open(dst.path('block.bin'), { mode: FileMode.CreateNew, bufferSize: 4096, destination: dst.destination })
        await fs.write(data, 0, 100) // buffered
        await fs.write(data, 100) // large: flushes, then goes straight through
        t.equal(await fs.length(), data.length)
        t.equal(await fs.seek(10, SeekOrigin.Begin), 10)
        const small = Buffer.alloc(50)
        t.equal(await fs.read(small), 50)
        t.same(small, data.subarray(10, 60))
        t.equal(fs.position, 60)
        t.equal(await fs.seek(-20, SeekOrigin.Current), 40, 'seek inside the read buffer')
        await fs.writeByte(0xAB) // read-ahead is dropped, the write lands at 40
        t.equal(fs.position, 41)
        t.equal(await fs.seek(-1, SeekOrigin.End), data.length - 1)
        t.equal(await fs.readByte(), data[data.length - 1])
        await fs.setLength(1000)
        t.equal(await fs.length(), 1000)
        t.equal(fs.position, 1000, 'position moves back to the new end')
        await fs.flush(true)
        await fs.close()
        const expected = Buffer.from(data.subarray(0, 1000))
        expected[40] = 0xAB
        t.equal(sha(readFileSync(dst.disk('block.bin'))), sha(expected))
      })

      await t.test('modes and typed errors', async (t) => {
        await t.rejects(FileStream.open(dst.path('missing.bin'), { mode: FileMode.Open, destination: dst.destination }), { code: 'FILE_NOT_FOUND' })
        await t.rejects(FileStream.open(dst.path('block.bin'), { mode: FileMode.CreateNew, destination: dst.destination }), { code: 'ALREADY_EXISTS' })
        await t.rejects(FileStream.open(dst.path('x.bin'), { mode: FileMode.Create, access: FileAccess.Read, destination: dst.destination }), { code: 'INVALID_ARGUMENT' })
        const a = await FileStream.open(dst.path('append.bin'), { mode: FileMode.Append, destination: dst.destination })
        await a.write(Buffer.from('one'))
        await a.close()
        const b = await FileStream.open(dst.path('append.bin'), { mode: FileMode.Append, destination: dst.destination })
        t.equal(b.position, 3, 'Append starts at the end')
        await b.write(Buffer.from('two'))
        await t.rejects(b.seek(0), { code: 'INVALID_ARGUMENT' }, 'Append cannot seek back over existing data')
        await t.rejects(b.read(Buffer.alloc(1)), { code: 'NOT_SUPPORTED' })
        await b.close()
        t.equal(readFileSync(dst.disk('append.bin'), 'utf8'), 'onetwo')
        await t.rejects(b.write(Buffer.from('x')), { code: 'STREAM_CLOSED' })
        await b.close() // harmless
        const s1 = await FileStream.open(dst.path('shared.bin'), { mode: FileMode.Create, share: FileShare.None, destination: dst.destination })
        const err = await FileStream.open(dst.path('shared.bin'), { mode: FileMode.Open, access: FileAccess.Read, destination: dst.destination }).catch((e: unknown) => e)
        t.ok(err instanceof MetaosError, 'a typed error')
        t.equal((err as MetaosError).code, 'SHARING_VIOLATION')
        await s1.writeByte(1)
        const flushing = s1.flush(true)
        await t.rejects(s1.writeByte(2), { code: 'STREAM_BUSY' }, 'one operation at a time')
        await flushing
        await s1.close()
        t.equal(readFileSync(dst.disk('shared.bin')).length, 1)
      })

      await t.test('Node stream adapters work with stream.pipeline', async (t) => {
        const data = randomBytes(1_000_000)
        const w = await FileStream.open(dst.path('piped.bin'), { mode: FileMode.Create, access: FileAccess.Write, destination: dst.destination })
        await pipeline(Readable.from([data.subarray(0, 123_457), data.subarray(123_457)]), w.writable())
        t.ok(w.closed, 'the writable closes the FileStream when it finishes')
        const r = await FileStream.open(dst.path('piped.bin'), { mode: FileMode.Open, access: FileAccess.Read, destination: dst.destination })
        const chunks: Buffer[] = []
        await pipeline(r.readable(), new Writable({ write (c: Buffer, _e, cb) { chunks.push(c); cb() } }))
        t.ok(r.closed)
        t.equal(sha(Buffer.concat(chunks)), sha(data))
      })
    })
  }

  await t.test('domain paths stay inside the root', async (t) => {
    writeFileSync(join(d.root, '..', 'outside.txt'), 'secret')
    await t.rejects(FileStream.open('../outside.txt', { destination: d.http }), { code: 'PATH_OUTSIDE_ROOT' })
    await t.rejects(FileStream.open(join(d.root, '..', 'outside.txt'), { destination: d.bus }), { code: 'PATH_OUTSIDE_ROOT' })
    t.equal(readFileSync(join(d.root, '..', 'outside.txt'), 'utf8'), 'secret')
  })
})
