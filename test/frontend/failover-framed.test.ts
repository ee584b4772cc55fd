// Failover over framed sessions: three storage domains of one volume, each reached over net.uds
// ([MC-NMF], one session per domain), a FileStream placed by the dispatcher. The domain serving
// the stream is killed (SIGKILL) mid-write, then again mid-read: the session lost mid-call fails
// that call with TRANSPORT_ERROR, the dispatcher moves the stream to another domain as it would
// over HTTP, the application sees no error and the bytes (SHA-256) are the ones written.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'

const SIZE = 16 * 1024 * 1024
const BLOCK = 64 * 1024
const FAULT_AT = 4 * 1024 * 1024
const data = randomBytes(SIZE)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('kill -9 of the serving net.uds domain, mid-write and mid-read', async (t) => {
  const c = await LocalCluster.start({ domains: ['net.uds', 'net.uds', 'net.uds'], probeIntervalMs: 200, supervisor: { recoverMs: 1000 }, isolation: 'none' })
  t.teardown(async () => { await c.close() })
  for (let i = 0; i < 3; i++) t.match((await c.get(i)).endpoints[0], /^net\.uds:\//, `domain ${i} is reached over net.uds`)
  const kill = async (): Promise<void> => { process.kill(await c.pid(c.dispatcher.affinity.entries()[0]!.epr), 'SIGKILL') }

  const w = await FileStream.open('f.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  for (let off = 0; off < SIZE; off += BLOCK) {
    if (off === FAULT_AT) await kill()
    await w.write(data, off, BLOCK)
  }
  await w.close()
  t.equal(sha(readFileSync(join(c.root, 'f.bin'))), sha(data), 'write: the file on the volume has the expected SHA-256')
  const afterWrite = c.dispatcher.moves.length
  t.ok(afterWrite >= 1, `the stream moved (${c.dispatcher.moves.map((m) => `${m.op} ${m.reason}`).join('; ')})`)

  const r = await FileStream.open('f.bin', { mode: 'Open', access: 'Read', destination: c.dispatcher, bufferSize: 0 })
  const back = Buffer.alloc(SIZE)
  let n = 0
  while (n < SIZE) {
    if (n === FAULT_AT) await kill()
    const k = await r.read(back, n, Math.min(BLOCK, SIZE - n))
    if (k === 0) break
    n += k
  }
  await r.close()
  t.equal(n, SIZE, 'read: every byte came back')
  t.equal(sha(back), sha(data), 'read: the data read equals the data written')
  t.ok(c.dispatcher.moves.length > afterWrite, 'the read moved too')
  t.ok(c.dispatcher.moves.some((m) => /TRANSPORT_ERROR/.test(m.reason)), `a move said why: the session was lost (${c.dispatcher.moves.map((m) => m.reason).join('; ')})`)
})
