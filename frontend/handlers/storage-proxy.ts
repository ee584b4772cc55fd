// Proxies to storage domains: the generic SOAP client bound to the storage descriptor and the
// transport the endpoint names: HTTP (TCP, TLS or the Unix-socket bus) or a framed [MC-NMF]
// session (net.uds:, net.tcp://: one session per domain, many calls in flight on it). P2 (process-hosted domain) and P1 (container-hosted)
// are this same code pointed at different endpoints. A registry shares one proxy (one connection
// pool) per endpoint among all FileStreams of the process (frontend/handlers/process-registry.ts).
import { createClient, type ClientOptions } from '../../soap-runtime/client.js'
import { transportFor, type TransportOptions } from '../../soap-runtime/transport-for.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler } from './storage-handler.js'
import { KEYS, obtain, release } from './process-registry.js'

export type StorageProxyOptions = ClientOptions & TransportOptions

export function createStorageProxy (endpoint: string, options: StorageProxyOptions = {}): StorageHandler {
  const transport = transportFor(endpoint, '/storage', options)
  const client = createClient<StorageOperations>(StorageServiceDescriptor, transport, { timingHeader: 'ServiceTiming', ...options })
  return {
    destination: transport.address,
    invoke: client.invoke,
    close: client.close,
  }
}

/** The process-wide proxy for an endpoint (created on first use; kept in the process registry). */
export function sharedProxy (endpoint: string): StorageHandler {
  return obtain(KEYS.storageProxy + endpoint, () => createStorageProxy(endpoint), async (p) => { await p.close() })
}

/** Closes every shared proxy's connections (tests, orderly shutdown). */
export async function closeSharedProxies (): Promise<void> {
  await release(KEYS.storageProxy, { prefix: true })
}
