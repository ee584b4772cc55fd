// Cross-cutting concerns of a served call, plugged into the dispatcher's pipeline (WCF's message
// inspectors): each sees a call once its operation is known (and may refuse it, say who is calling,
// hold something until the call ends) and once it is answered. Three come with the runtime:
// authentication (an Authenticator), metrics (a CallRecorder such as DomainMetrics) and logging.
import type { Logger } from 'pino'
import type { Authenticator, CallTransport, Principal, TlsFacts } from './host-types.js'
import type { XmlElement } from './xml.js'

/** How a message reached the dispatcher. */
export interface MessageOrigin {
  readonly requestId: string
  readonly transport: CallTransport
  /** The peer's IP address, or "unix" (or "memory"). */
  readonly peer: string
  /** For https: the TLS layer's verdict on the client's certificate (read on demand). */
  readonly tls?: () => TlsFacts
}

/** A call whose envelope is read and whose operation is known; nothing is decoded yet. */
export interface ReceivedCall {
  readonly operation: string
  readonly headers: readonly XmlElement[]
  readonly origin: MessageOrigin
  /** Bytes of the request as received. */
  readonly requestBytes: number
  /** Who is calling (handles are bound to it): the Caller header at the peer, unless an inspector says otherwise. */
  caller: string
  principal?: Principal
}

/** A call answered, with a response or a fault. */
export interface CallOutcome {
  /** The operation, `?` when the message could not be read far enough to say. */
  readonly operation: string
  readonly origin: MessageOrigin
  readonly micros: number
  readonly requestBytes: number
  readonly responseBytes: number
  /** The code of the fault sent back (the catalogue's, before the contract narrows it), if the call failed. */
  readonly faultCode?: string | undefined
  /** The fault's message, if the call failed. */
  readonly faultMessage?: string
  /** What was thrown (for logs), if the call failed. */
  readonly error?: unknown
  /** Turned away before it was dispatched (over a size or memory limit): counted, not a call. */
  readonly refused?: boolean
}

export interface CallInspector {
  /** Header names (Clark notation) it reads, so mustUnderstand on them is honoured. */
  readonly understood?: readonly string[]
  /** Sees a received call: may throw (the call gets that fault) and return what to release when it ends. */
  readonly received?: (call: ReceivedCall) => (() => void) | undefined
  /** Sees every answered call. */
  readonly completed?: (outcome: CallOutcome) => void
}

/** Every call must authenticate (who it is comes before anything is decoded) and is admitted against its identity's limits. */
export function authenticationInspector (auth: Authenticator): CallInspector {
  return {
    understood: auth.understood,
    received: (call) => {
      const o = call.origin
      const principal = auth.authenticate({ transport: o.transport, peer: o.peer, headers: call.headers, ...(o.tls === undefined ? {} : { tls: o.tls() }) })
      const release = auth.admit(principal, call.requestBytes)
      call.caller = auth.ownerOf(principal)
      call.principal = principal
      return release
    },
  }
}

/** One finished call, as a recorder takes it. */
export interface CallRecord {
  /** The operation (`unknown` when the message could not be read far enough to say). */
  readonly operation: string
  readonly transport: CallTransport
  readonly micros: number
  readonly requestBytes: number
  readonly responseBytes: number
  /** The fault code sent back, if the call failed. */
  readonly faultCode?: string | undefined
}

export interface CallRecorder { record: (c: CallRecord) => void }

/** Records every answered call (refusals too) in `metrics`, and tells `onCall` of each dispatched one. */
export function metricsInspector (o: { metrics?: CallRecorder | undefined, onCall?: ((operation: string, micros: number, faultCode: string | undefined) => void) | undefined }): CallInspector {
  const { metrics, onCall } = o
  return {
    completed: (c) => {
      if (onCall !== undefined && c.refused !== true) onCall(c.operation, c.micros, c.faultCode)
      metrics?.record({ operation: c.operation === '?' ? 'unknown' : c.operation, transport: c.origin.transport, micros: c.micros, requestBytes: c.requestBytes, responseBytes: c.responseBytes, faultCode: c.faultCode })
    },
  }
}

/** Logs each call at debug level with its request id; an IO_ERROR (the implementation failed) as a warning. */
export function loggingInspector (logger: Logger): CallInspector {
  return {
    completed: (c) => {
      if (c.refused === true) return
      const reqId = c.origin.requestId
      if (c.faultCode === undefined) {
        if (logger.isLevelEnabled('debug')) logger.debug({ reqId, operation: c.operation, caller: c.origin.transport === 'unix' ? 'unix' : c.origin.peer, micros: c.micros, bytesIn: c.requestBytes, bytesOut: c.responseBytes }, 'call')
      } else if (c.faultCode === 'IO_ERROR') {
        logger.warn({ err: c.error, operation: c.operation, reqId }, 'operation failed')
      } else if (logger.isLevelEnabled('debug')) {
        logger.debug({ reqId, code: c.faultCode, operation: c.operation, msg: c.faultMessage }, 'fault')
      }
    },
  }
}
