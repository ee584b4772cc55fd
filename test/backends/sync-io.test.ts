// Small Reads and Writes run as one synchronous system call on the domain's event loop when nothing
// is queued on their handle (backend-storage/storage-implementation.ts), the rest on libuv's
// threadpool; `--sync-io-max 0` sends all there. Either way a handle's calls take effect in the
// order they came: small and large ones sent at once, without waiting, over one net.uds session,
// leave the bytes in order, and reads return them in order — with the default, with 0, and with a
// limit between the sizes (test/cli/cli-usage feeds `metaos storage --sync-io-max` a bad value).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

for (const syncIoMax of [undefined, 0, 4096]) {
  t.test(`sync-io-max ${syncIoMax ?? 'default'}: mixed sizes sent at once keep their order`, async (t) => {
    const root = tempDir(t, 'metaos-sync-io-')
    const d = await startStorageDomain({ root, name: 's', listen: [`net.uds:${join(root, 'd.sock')}`], ...(syncIoMax === undefined ? {} : { syncIoMax }) })
    t.teardown(async () => { await d.close(500) })
    const p = createStorageProxy(d.endpoints[0]!)
    t.teardown(async () => { await p.close() })
    const sizes = [100, 200_000, 10, 4096, 4097, 70_000, 1, 65_536, 300]
    const parts = sizes.map((n) => randomBytes(n))
    const { output: w } = await p.invoke('Open', { path: 'f.bin', mode: 'Create', access: 'ReadWrite', share: 'None' })
    const writes = await Promise.all(parts.map(async (data) => (await p.invoke('Write', { handle: w.handle, data })).output.position))
    let end = 0
    t.same(writes, sizes.map((n) => (end += n)), 'each Write ended where the one before it left off')
    await p.invoke('Seek', { handle: w.handle, offset: 0, origin: 'Begin' })
    const reads = await Promise.all(sizes.map(async (count) => (await p.invoke('Read', { handle: w.handle, count })).output.data))
    t.equal(sha(Buffer.concat(reads)), sha(Buffer.concat(parts)), 'reads sent at once came back in order')
    await p.invoke('Close', { handle: w.handle })
    t.equal(sha(readFileSync(join(root, 'f.bin'))), sha(Buffer.concat(parts)), 'the bytes on disk are right')
    const gone = await p.invoke('Write', { handle: w.handle, data: Buffer.from('x') }).catch((e: { code?: string }) => e.code)
    t.equal(gone, 'INVALID_HANDLE', 'a small Write on a closed handle is refused as before')
  })
}
