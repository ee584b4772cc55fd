// The caller's side of pushed receives (NetworkService.wsdl: Subscribe, Grant; the callback
// contract NetworkCallbackPortType: Received): what a network proxy on a framed endpoint (net.uds,
// net.tcp) serves on its session. Each Received the domain sends one-way is read and handed to the
// receiver attached for its socket; one for a socket nobody attached (closed meanwhile, or forged) is
// dropped. When the session carrying them is lost, every attached receiver is told: the domain
// closes the connections bound to it, so their streams end with CONNECTION_LOST.
import { compileCodecs } from '../../soap-runtime/codec.js'
import { parseEnvelope, WSA10_NS } from '../../soap-runtime/envelope.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { SessionCallbacks } from '../../soap-runtime/nmf/client-transport.js'
import { DEFAULT_XML_LIMITS } from '../../soap-runtime/xml.js'
import { NetworkServiceDescriptor, type Received } from '../../wsdl/generated/network-service.js'

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
}

const UNDERSTOOD = new Set([`{${WSA10_NS}}Action`, `{${WSA10_NS}}To`])

export function createPushRegistry (): { channel: PushChannel, callbacks: SessionCallbacks } {
  const receivers = new Map<string, PushReceiver>()
  const codec = compileCodecs(NetworkServiceDescriptor).get('Received')!
  const ns = NetworkServiceDescriptor.namespace
  const callbacks: SessionCallbacks = {
    message: (body) => {
      const env = parseEnvelope(body.toString('utf8'), DEFAULT_XML_LIMITS, UNDERSTOOD)
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
