// Exception-less FileStream writes (FlexSC): pipelined, coalesced Batch calls with the semantics
// an application relies on — bytes in order, errors surfaced by flush/close, flush resolves only
// when everything is acknowledged, bounded memory.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream, closeSharedProxies, createStorageProxy } from '../../index.js'
import { startTestDomain } from '../helpers/domain.js'
import { startMemoryDomain } from '../helpers/memory-domain.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

t.test('exception-less writes', async (t) => {
  const d = await startTestDomain(t)
  t.teardown(closeSharedProxies)

  for (const [name, destination] of [['bus', d.bus], ['network', d.http]] as const) {
    await t.test(`char mode through a 512 B cache, over the ${name}`, async (t) => {
      const data = randomBytes(2 * 1024 * 1024 + 123)
      const fs = await FileStream.open(`el-${name}.bin`, { mode: 'Create', access: 'Write', bufferSize: 512, destination, exceptionLess: true })
      for (const b of data) await fs.writeByte(b)
      await fs.flush()
      t.equal(sha(readFileSync(join(d.root, `el-${name}.bin`))), sha(data), 'after flush every byte is on disk, in order')
      const calls = fs.stats.calls
      await fs.close()
      t.ok(calls < data.length / 512 / 4, `coalesced: ${calls} calls for ${Math.ceil(data.length / 512)} buffers`)
    })
  }

  await t.test('mixed with seek and reads: order holds', async (t) => {
    const fs = await FileStream.open('el-mixed.bin', { mode: 'Create', bufferSize: 4096, destination: d.http, exceptionLess: true })
    await fs.write(Buffer.alloc(10_000, 0x61))
    await fs.seek(100)
    await fs.write(Buffer.from('XYZ'))
    await fs.seek(0)
    const head = Buffer.alloc(110)
    t.equal(await fs.read(head), 110)
    t.equal(head.subarray(100, 103).toString(), 'XYZ', 'a read sees the pipelined writes before it')
    await fs.close()
    const disk = readFileSync(join(d.root, 'el-mixed.bin'))
    t.equal(disk.length, 10_000)
    t.equal(disk.subarray(99, 104).toString(), 'aXYZa')
  })

  await t.test('memory stays bounded', async (t) => {
    const fs = await FileStream.open('el-bounded.bin', { mode: 'Create', access: 'Write', bufferSize: 4096, destination: d.bus, exceptionLess: { maxPendingBytes: 256 * 1024 } })
    const block = randomBytes(64 * 1024)
    for (let i = 0; i < 64; i++) await fs.write(block)
    await fs.close()
    t.equal(readFileSync(join(d.root, 'el-bounded.bin')).length, 64 * 64 * 1024)
  })
})

t.test('errors surface no later than flush or close', async (t) => {
  // A real failure: the domain reaps the idle handle, so the pipelined writes get INVALID_HANDLE.
  const d = await startTestDomain(t, { limits: { idleMs: 300 } })
  const proxy = createStorageProxy(d.http)
  t.teardown(proxy.close)
  const fs = await FileStream.open('el-err.bin', { mode: 'Create', access: 'Write', bufferSize: 512, destination: proxy, exceptionLess: true })
  await new Promise((resolve) => setTimeout(resolve, 2500))
  for (let i = 0; i < 5000; i++) await fs.writeByte(i & 0xff) // returns at once: nothing waits for the domain
  await t.rejects(fs.flush(), { code: 'INVALID_HANDLE' }, 'flush reports the failed writes')
  await fs.close()
  t.equal(readFileSync(join(d.root, 'el-err.bin')).length, 0, 'nothing was written after the failure')

  // A fault of the whole Batch (over the domain's message limit) surfaces at close (a domain with
  // no listener, called through the in-memory transport: its message limit holds there too).
  const small = await startMemoryDomain(t, { limits: { maxMessageBytes: 64 * 1024 } })
  const fs2 = await FileStream.open('el-big.bin', { mode: 'Create', access: 'Write', bufferSize: 4096, destination: small.proxy(), exceptionLess: true })
  await fs2.write(randomBytes(512 * 1024))
  await t.rejects(fs2.close(), { code: 'MESSAGE_TOO_LARGE' })
  t.ok(fs2.closed)
})
