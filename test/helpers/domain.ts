// Test helper: a real storage domain on 127.0.0.1 (ephemeral port) and a real Unix socket, over a
// fresh temporary root, closed when the test ends.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startStorageDomain, type StorageDomain, type StorageDomainOptions } from '../../backend-storage/storage-domain.js'
import { tempDir } from './temp-dir.js'

export interface TestDomain {
  readonly domain: StorageDomain
  /** The root directory served. */
  readonly root: string
  /** `http://127.0.0.1:PORT/storage` */
  readonly http: string
  /** `http+unix://…/storage` */
  readonly bus: string
}

export async function startTestDomain (t: Test, options: Partial<StorageDomainOptions> = {}): Promise<TestDomain> {
  const dir = tempDir(t, 'metaos-test-')
  const root = join(dir, 'root')
  const { mkdirSync } = await import('node:fs')
  mkdirSync(root)
  const domain = await startStorageDomain({ root, listen: ['http://127.0.0.1:0', `unix:${join(dir, 'bus.sock')}`], ...options })
  t.teardown(async () => {
    await domain.close(1000)
    rmSync(dir, { recursive: true, force: true })
  })
  return { domain, root, http: domain.endpoints[0]!, bus: domain.endpoints[1]! }
}
