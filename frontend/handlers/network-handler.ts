// The one interface for "execute this socket syscall", as StorageHandler is for files: the local
// kernel (LocalNetworkHandler, frontend/handlers/local-network-handler.ts), every proxy to a network domain
// (createNetworkProxy below), and the network dispatcher implement it, so NetSocket, NetServer and
// NetDatagramSocket sit on any of them. A registry shares one proxy (one connection pool) per
// endpoint among all sockets of the process (frontend/handlers/process-registry.ts). A proxy to a
// framed endpoint (net.uds, net.tcp) also serves pushed receives on its session (network-pushes.ts).
import { createClient, type ClientOptions, type Invocation } from '../../soap-runtime/client.js'
import { isFramed, parseEndpoint } from '../../soap-runtime/endpoint.js'
import { transportFor, type TransportOptions } from '../../soap-runtime/transport-for.js'
import { NetworkServiceDescriptor, type NetworkOperations } from '../../wsdl/generated/network-service.js'
import { createPushRegistry, type PushChannel } from './network-pushes.js'
import { KEYS, obtain, release } from './process-registry.js'

export type NetworkOp = keyof NetworkOperations & string

export interface NetworkHandler {
  /** `local`, `dispatcher`, or the endpoint this handler reaches. */
  readonly destination: string
  invoke: <K extends NetworkOp>(operation: K, input: NetworkOperations[K]['input']) => Promise<Invocation<NetworkOperations[K]['output']>>
  close: () => Promise<void>
  /** Pushed receives (Subscribe), when the handler's session carries them (a framed endpoint); else Receive is the way to read. */
  readonly pushes?: PushChannel
}

import { NETWORK_PATH } from '../../wsdl/contracts.js'
export { NETWORK_PATH }

export type NetworkProxyOptions = ClientOptions & TransportOptions & {
  /** On a framed endpoint, sockets read by pushed receives (default true); false: by Receive long polls. */
  readonly pushes?: boolean
}

/**
 * Every open socket keeps one Receive long poll in flight (a listener one Accept, a datagram socket
 * one ReceiveFrom), each holding a connection of the pool: the pool is as large as a caller's socket
 * quota on a domain (512), so idle sockets never hold up the calls of others.
 */
export const NETWORK_POOL_SIZE = 1024

export function createNetworkProxy (endpoint: string, options: NetworkProxyOptions = {}): NetworkHandler {
  const pushes = options.pushes !== false && isFramed(parseEndpoint(endpoint, NETWORK_PATH)) ? createPushRegistry() : undefined
  const transport = transportFor(endpoint, NETWORK_PATH, { maxSockets: NETWORK_POOL_SIZE, ...options, ...(pushes === undefined ? {} : { callbacks: pushes.callbacks }) })
  const client = createClient<NetworkOperations>(NetworkServiceDescriptor, transport, { timingHeader: 'ServiceTiming', ...options })
  return { destination: transport.address, invoke: client.invoke, close: client.close, ...(pushes === undefined ? {} : { pushes: pushes.channel }) }
}

/** The process-wide proxy for a network domain endpoint (created on first use; kept in the process registry). */
export function sharedNetworkProxy (endpoint: string): NetworkHandler {
  return obtain(KEYS.networkProxy + endpoint, () => createNetworkProxy(endpoint), async (p) => { await p.close() })
}

export async function closeSharedNetworkProxies (): Promise<void> {
  await release(KEYS.networkProxy, { prefix: true })
}
