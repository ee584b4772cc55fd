// A storage domain lets go of its volume and takes it again (backend-storage/volume-gate.ts), as a
// VM domain does while QEMU migrates it (QEMU migrates no guest with its 9p export mounted): calls
// made meanwhile wait — none fails — the domain holds no descriptor of the volume's files, and the
// open handles go on at their positions once it is taken again; the bytes are right.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
/** Descriptors of this process open on files under `dir`. */
const openUnder = (dir: string): number => readdirSync('/proc/self/fd').filter((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir) } catch { return false } }).length

t.test('release the volume: calls wait, no descriptor stays; take it: the handles go on', async (t) => {
  const root = tempDir(t, 'metaos-volume-release-')
  const d = await startStorageDomain({ root, name: 'r', volume: 'v', listen: ['http://127.0.0.1:0'] })
  t.teardown(async () => { await d.close(500) })
  const p = createStorageProxy(d.endpoints[0]!)
  t.teardown(async () => { await p.close() })
  const a = randomBytes(300_000)
  const b = randomBytes(200_000)
  const c = randomBytes(1000) // small: a Write the domain runs synchronously when its volume is there
  const { output: w } = await p.invoke('Open', { path: 'f.bin', mode: 'Create', access: 'Write', share: 'None' })
  await p.invoke('Write', { handle: w.handle, data: a })
  t.ok(openUnder(root) > 0, 'a descriptor of the file is open')

  await d.releaseVolume()
  t.equal(openUnder(root), 0, 'released: no descriptor under the volume')
  let done = false
  const pending = p.invoke('Write', { handle: w.handle, data: b }).finally(() => { done = true })
  const small = p.invoke('Write', { handle: w.handle, data: c })
  const listing = p.invoke('ListDirectory', { path: '' })
  await sleep(200)
  t.equal(done, false, 'a Write made meanwhile waits')
  t.equal(openUnder(root), 0, 'a small Write made meanwhile opened nothing either')
  t.equal((await p.invoke('GetDomainInfo', {})).output.volume, 'v', 'GetDomainInfo still answers')

  await d.takeVolume()
  const { output: written } = await pending
  t.equal(written.position, a.length + b.length, 'the held Write went on at the handle\'s position')
  t.equal((await small).output.position, a.length + b.length + c.length, 'then the small one, in order')
  t.ok((await listing).output.entry.some((e) => e.name === 'f.bin'), 'a held ListDirectory too')
  await p.invoke('Close', { handle: w.handle })
  t.equal(sha(readFileSync(join(root, 'f.bin'))), sha(Buffer.concat([a, b, c])), 'the bytes are right')
})
