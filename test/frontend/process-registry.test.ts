// The process-wide state lives in one registry (frontend/handlers/process-registry.ts): what the
// destinations resolve to ('local', an endpoint's shared proxy, the local network kernel), the
// storage registry; each older close function releases its own entries, closeAll() everything,
// newest first; after it the next stream starts afresh.
import t from 'tap'
import { createHash } from 'node:crypto'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { FileStream, NetSocket, MetaosError, closeAll, closeSharedProxies } from '../../index.js'
import { storageRegistry, closeStorageRegistry } from '../../frontend/index.js'
import { KEYS, keys, keep, obtain, release } from '../../frontend/handlers/process-registry.js'
import { startTestDomain } from '../helpers/domain.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

t.test('the destinations keep their handlers in the registry; closeSharedProxies releases only the proxies; closeAll all', async (t) => {
  t.teardown(closeAll)
  await closeAll()
  const dir = tempDir(t, 'metaos-registry-')
  const d = await startTestDomain(t)
  const server = createServer((s) => { s.end('pong') })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })

  const local = await FileStream.open(join(dir, 'local.bin'), { mode: 'Create' })
  await local.write(Buffer.from('held open'))
  await local.flush()
  const remote = await FileStream.open('remote.bin', { mode: 'Create', destination: d.http })
  await remote.write(Buffer.from('through the shared proxy'))
  await remote.close()
  const s = NetSocket.connect({ host: '127.0.0.1', port: (server.address() as { port: number }).port })
  let got = ''
  for await (const chunk of s) got += String(chunk)
  t.equal(got, 'pong', 'a local socket round trip')
  const client = await storageRegistry()

  t.same(keys(), [KEYS.localStorageHandler, KEYS.storageProxy + d.http, KEYS.localNetworkHandler, KEYS.storageRegistry], 'one entry each, in the order they were made')
  t.equal(await storageRegistry(), client, 'the registry is shared')

  await closeSharedProxies()
  t.same(keys(), [KEYS.localStorageHandler, KEYS.localNetworkHandler, KEYS.storageRegistry], 'closeSharedProxies releases the proxies only')
  await closeStorageRegistry()
  t.same(keys(), [KEYS.localStorageHandler, KEYS.localNetworkHandler], 'closeStorageRegistry its registry only')
  const again = await storageRegistry()
  t.not(again, client, 'a registry asked for after it is closed is a new one')

  await closeAll()
  t.same(keys(), [], 'closeAll leaves nothing')
  // The local kernel's handles went with it: the stream held open cannot write any more.
  const err = await local.write(Buffer.alloc(8192)).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof MetaosError, 'a stream opened before closeAll fails with a MetaosError')
  t.equal((err as MetaosError).code, 'INVALID_HANDLE', 'INVALID_HANDLE: its handle was closed')

  // The next stream starts afresh.
  const data = Buffer.from('after closeAll')
  const f = await FileStream.open(join(dir, 'after.bin'), { mode: 'Create' })
  await f.write(data)
  await f.close()
  const r = await FileStream.open(join(dir, 'after.bin'))
  const back = Buffer.alloc(data.length)
  t.equal(await r.read(back), data.length)
  await r.close()
  t.equal(sha(back), sha(data), 'a new local stream after closeAll: the same bytes back')
  t.same(keys(), [KEYS.localStorageHandler], 'with a new local handler')
})

t.test('closeAll closes newest first, closes every entry even when one fails, then throws', async (t) => {
  await closeAll()
  const closed: string[] = []
  obtain('test:a', () => 'a', (v) => { closed.push(v) })
  obtain('test:b', () => 'b', () => { closed.push('b'); throw new Error('b failed') })
  keep('test:c', 'c', async (v) => { closed.push(v) })
  t.equal(obtain('test:a', () => 'other', () => {}), 'a', 'obtain returns the kept value')
  await t.rejects(closeAll(), /b failed/, 'the failure is thrown after all closed')
  t.same(closed, ['c', 'b', 'a'], 'newest first, none skipped')
  t.same(keys(), [])

  obtain('test:x1', () => 1, () => { closed.push('x1') })
  obtain('test:x2', () => 2, () => { closed.push('x2') })
  obtain('test:y', () => 3, () => { closed.push('y') })
  await release('test:x', { prefix: true })
  t.same(keys(), ['test:y'], 'release by prefix')
  await release('test:y')
  t.same(closed.slice(3), ['x1', 'x2', 'y'])
})
