// Test helper: a real storage domain with no listener at all, called through the in-memory
// transport (the same dispatcher, envelopes and faults as over HTTP, no socket), over a fresh
// temporary root, closed when the test ends. For tests that only need a service round trip.
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { tempDir } from './temp-dir.js'
import { startStorageDomain, type StorageDomain, type StorageDomainOptions } from '../../backend-storage/storage-domain.js'
import { createClient, type ClientOptions } from '../../soap-runtime/client.js'
import { createMemoryTransport } from '../../soap-runtime/memory-transport.js'
import type { ServiceHost } from '../../soap-runtime/service-host.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'

export interface MemoryDomain {
  readonly domain: StorageDomain
  /** The root directory served. */
  readonly root: string
  /** A storage proxy to it over the in-memory transport (closed when the test ends). */
  proxy: (options?: ClientOptions) => StorageHandler
}

/** A StorageHandler (what a FileStream calls) over the in-memory transport to `host`. */
export function memoryProxy (host: ServiceHost, options: ClientOptions = {}): StorageHandler {
  const transport = createMemoryTransport(host)
  const client = createClient<StorageOperations>(StorageServiceDescriptor, transport, { timingHeader: 'ServiceTiming', ...options })
  return { destination: transport.address, invoke: client.invoke, close: client.close }
}

export async function startMemoryDomain (t: Test, options: Partial<StorageDomainOptions> = {}): Promise<MemoryDomain> {
  const dir = tempDir(t, 'metaos-test-')
  const root = join(dir, 'root')
  mkdirSync(root)
  const domain = await startStorageDomain({ root, listen: [], ...options })
  t.teardown(async () => { await domain.close(1000) })
  return {
    domain,
    root,
    proxy: (o = {}) => {
      const p = memoryProxy(domain.host, o)
      t.teardown(async () => { await p.close() })
      return p
    },
  }
}
