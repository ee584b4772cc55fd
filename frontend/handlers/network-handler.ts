// The one interface for "execute this socket syscall", as StorageHandler is for files: the local
// kernel (LocalNetworkHandler, frontend/handlers/local-network-handler.ts), every proxy to a network domain
// (createNetworkProxy below), and the network dispatcher implement it, so NetSocket, NetServer and
// NetDatagramSocket sit on any of them. A registry shares one proxy (one connection pool) per
// endpoint among all sockets of the process (frontend/handlers/process-registry.ts). A proxy to a
// framed endpoint (net.uds, net.tcp) also serves pushed receives on its session (the callback
// contract NetworkCallbackPortType: each Received the domain sends one-way goes to the receiver
// attached for its socket; one for a socket nobody attached — closed meanwhile, or forged — is
// dropped; when the session carrying them is lost every receiver is told, for the domain closes
// the connections bound to it). Here rather than in a module of its own: `import 'metaos'` stays small.
import { createClient, type ClientOptions, type Invocation } from '../../soap-runtime/client.js'
import { compileCodecs } from '../../soap-runtime/codec.js'
import { parseEnvelope, readEnvelope, WSA10_NS } from '../../soap-runtime/envelope.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { SessionCallbacks } from '../../soap-runtime/nmf/client-transport.js'
import { DEFAULT_XML_LIMITS } from '../../soap-runtime/xml.js'
import { isFramed, parseEndpoint } from '../../soap-runtime/endpoint.js'
import { transportFor, type TransportOptions } from '../../soap-runtime/transport-for.js'
import { NetworkServiceDescriptor, type NetworkOperations, type Received } from '../../wsdl/generated/network-service.js'
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

export const RECEIVED_ACTION = 'urn:metaos:network:v1/NetworkCallback/Received'

/** Told of one socket's pushes. */
export interface PushReceiver {
  /** The next Received of the socket (the session keeps their order). */
  received: (r: Received) => void
  /** The session carrying the pushes is lost: no more will come. */
  lost: (err: MetaosError) => void
}

/** Pushed receives on a proxy's framed session. */
export interface PushChannel {
  /** `receiver` gets the socket's pushes from now on (attach before Subscribe); call the result to detach. */
  attach: (socket: string, receiver: PushReceiver) => () => void
  /**
   * Whether this channel carries `socket`'s pushes (absent: every socket's). A dispatcher's channel
   * carries those of sockets held by a domain whose session carries pushes; the others read with Receive.
   */
  readonly carries?: (socket: string) => boolean
}

const UNDERSTOOD = new Set([`{${WSA10_NS}}Action`, `{${WSA10_NS}}To`])

export function createPushRegistry (): { channel: PushChannel, callbacks: SessionCallbacks } {
  const receivers = new Map<string, PushReceiver>()
  const codec = compileCodecs(NetworkServiceDescriptor).get('Received')!
  const ns = NetworkServiceDescriptor.namespace
  const callbacks: SessionCallbacks = {
    message: (body, tree) => {
      const env = tree === undefined ? parseEnvelope(body.toString('utf8'), DEFAULT_XML_LIMITS, UNDERSTOOD) : readEnvelope(tree, UNDERSTOOD)
      if (env.body.local !== 'Received' || env.body.ns !== ns) return false
      const r = codec.decode(env.body) as Received
      receivers.get(r.socket)?.received(r)
      return true
    },
    lost: (err) => {
      const all = [...receivers.values()]
      receivers.clear()
      for (const r of all) r.lost(err)
    },
    active: () => receivers.size > 0,
  }
  return {
    callbacks,
    channel: {
      attach: (socket, receiver) => {
        if (receivers.has(socket)) throw new MetaosError('INVALID_ARGUMENT', `socket ${socket} already has a receiver of its pushes`)
        receivers.set(socket, receiver)
        return () => { if (receivers.get(socket) === receiver) receivers.delete(socket) }
      },
    },
  }
}
