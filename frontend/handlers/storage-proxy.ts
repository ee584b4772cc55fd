// Proxies to storage domains: the generic SOAP client bound to the storage descriptor and an
// HTTP transport (TCP or the Unix-socket bus). P2 (process-hosted domain) and P1 (container-hosted)
// are this same code pointed at different endpoints. A registry shares one proxy (one connection
// pool) per endpoint among all FileStreams of the process.
import { createClient, type ClientOptions } from '../../soap-runtime/client.js'
import { createHttpTransport, type HttpTransportOptions } from '../../soap-runtime/http-transport.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler } from './storage-handler.js'

export type StorageProxyOptions = ClientOptions & HttpTransportOptions

export function createStorageProxy (endpoint: string, options: StorageProxyOptions = {}): StorageHandler {
  const transport = createHttpTransport(endpoint, '/storage', options)
  const client = createClient<StorageOperations>(StorageServiceDescriptor, transport, { timingHeader: 'ServiceTiming', ...options })
  return {
    destination: transport.address,
    invoke: client.invoke,
    close: client.close,
  }
}

const shared = new Map<string, StorageHandler>()

/** The process-wide proxy for an endpoint (created on first use). */
export function sharedProxy (endpoint: string): StorageHandler {
  let p = shared.get(endpoint)
  if (p === undefined) shared.set(endpoint, p = createStorageProxy(endpoint))
  return p
}

/** Closes every shared proxy's connections (tests, orderly shutdown). */
export async function closeSharedProxies (): Promise<void> {
  const all = [...shared.values()]
  shared.clear()
  await Promise.all(all.map(async (p) => { await p.close() }))
}
