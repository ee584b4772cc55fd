// The in-memory transport: a client Transport that hands each request's bytes straight to a
// message dispatcher (a ServiceHost's, or one built alone) and its answer's bytes back — the same
// envelopes, faults, MTOM packages and request ids as over HTTP, with no socket. For tests and for
// a service called from its own process. Its calls are not counted in a host's drain.
import type { MessageDispatcher, OutboundMessage } from './dispatcher.js'
import { MetaosError } from './errors.js'
import type { Transport, TransportRequest, TransportResponse } from './transport.js'
import { requestIdOf } from './request-id.js'

export interface MemoryTransportOptions {
  /** The transport's address, in messages (default `memory:` and the service's name). */
  readonly address?: string
}

/** A transport to `target` (a dispatcher, or anything that has one, such as a ServiceHost). */
export function createMemoryTransport (target: MessageDispatcher | { readonly dispatcher: MessageDispatcher }, o: MemoryTransportOptions = {}): Transport {
  const dispatcher = 'dispatcher' in target ? target.dispatcher : target
  const address = o.address ?? `memory:${dispatcher.descriptor.name}`
  let closed = false
  const answer = async (r: TransportRequest, requestId: string): Promise<OutboundMessage> => {
    const contentType = headerOf(r, 'content-type') ?? ''
    const m = { requestId, transport: 'memory' as const, peer: 'memory', contentType }
    if (r.length > dispatcher.limits.maxMessageBytes) {
      return dispatcher.reject(m, new MetaosError('MESSAGE_TOO_LARGE', `message of ${r.length} bytes is over the limit of ${dispatcher.limits.maxMessageBytes}`), 413)
    }
    const body = r.chunks.length === 1 ? r.chunks[0]! : Buffer.concat(r.chunks as Buffer[], r.length)
    return await dispatcher.dispatch({ ...m, body, accept: headerOf(r, 'accept') })
  }
  return {
    address,
    send: async (r) => {
      if (closed) throw new MetaosError('TRANSPORT_ERROR', `${address}: the transport is closed`)
      const requestId = requestIdOf(headerOf(r, 'x-request-id'))
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', `${address} did not answer within ${r.timeoutMs} ms`)) }, r.timeoutMs)
      })
      try {
        const out = await Promise.race([answer(r, requestId), timeout])
        const body = out.chunks.length === 1 ? out.chunks[0]! : Buffer.concat(out.chunks as Buffer[], out.length)
        return { status: out.status, contentType: out.contentType, body, requestId } satisfies TransportResponse
      } finally {
        clearTimeout(timer)
      }
    },
    close: async () => { closed = true },
  }
}

/** A request header, whatever its case. */
function headerOf (r: TransportRequest, name: string): string | undefined {
  for (const k in r.headers) if (k.toLowerCase() === name) return r.headers[k]
  return undefined
}
