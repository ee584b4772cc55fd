// Pushed receives (NetworkService.wsdl: Subscribe, Grant; NetworkCallbackPortType: Received): a TCP
// connection bound to the framed session that subscribed. What the connection receives is sent to
// the caller as one-way Received envelopes on that session, numbered by seq from 1, in order, never
// more bytes unacknowledged than the credit the caller granted (the window at Subscribe, topped up
// by Grant). At zero credit nothing is taken from the connection: its buffer fills, it stops
// reading, and TCP flow control slows the remote sender — so what the domain holds for one
// connection stays below its buffer bound plus the window. The last Received says closed (the
// peer ended) or carries the error's code; none follows. While the session itself has more than
// SESSION_HIGH_WATER bytes unsent (a caller that does not read its socket), no subscription on it
// pushes: a caller's many windows cannot pile up in the domain. Knows the envelope, not the transport.
import { compileCodecs, type ElementCodec } from '../soap-runtime/codec.js'
import { buildEnvelope, WSA10_NS } from '../soap-runtime/envelope.js'
import { MetaosError } from '../soap-runtime/errors.js'
import type { CallbackMessage, SessionChannel } from '../soap-runtime/host-types.js'
import { NetworkFaultCodes, NetworkServiceDescriptor, type FaultCode, type Received } from '../wsdl/generated/network-service.js'
import type { TcpConnection } from './tcp-connection.js'

export const RECEIVED_ACTION = 'urn:metaos:network:v1/NetworkCallback/Received'
const ANONYMOUS = 'http://www.w3.org/2005/08/addressing/anonymous'
/** Largest data one Received carries (a larger credit is sent in several). */
export const MAX_PUSH_BYTES = 1024 * 1024
/** Bytes unsent on a session above which its subscriptions wait for it to drain. */
export const SESSION_HIGH_WATER = 4 * 1024 * 1024

let codec: ElementCodec | undefined
const HEADERS = `<a:Action xmlns:a="${WSA10_NS}" s:mustUnderstand="1">${RECEIVED_ACTION}</a:Action>` +
  `<a:To xmlns:a="${WSA10_NS}" s:mustUnderstand="1">${ANONYMOUS}</a:To>`

/** The callback as WCF's duplex channel sends a one-way operation: SOAP 1.2, Action and To, no MessageID. */
export function receivedEnvelope (r: Received): Buffer {
  codec ??= compileCodecs(NetworkServiceDescriptor).get('Received')!
  return Buffer.from(buildEnvelope('1.2', HEADERS, codec.encode(r)), 'utf8')
}

/** The callback for the session's encoding: XML text, or the value a binary session writes. */
function receivedMessage (r: Received): CallbackMessage {
  return { xml: () => receivedEnvelope(r), value: { action: RECEIVED_ACTION, to: ANONYMOUS, body: { element: 'Received', value: r } }, descriptor: NetworkServiceDescriptor }
}

export class PushSubscription {
  readonly #conn: TcpConnection
  readonly #socket: string
  readonly #session: SessionChannel
  readonly window: number
  #credit: number
  #seq = 0
  #done = false
  #pumping = false
  #waitingDrain = false
  #scheduled = false
  readonly #release: () => void

  /** While it pushes, the subscription holds its session (not ended for being idle). */
  constructor (conn: TcpConnection, socket: string, session: SessionChannel, window: number) {
    this.#conn = conn
    this.#socket = socket
    this.#session = session
    this.window = this.#credit = window
    this.#release = session.hold()
    // News is taken once the socket's reads of this turn are in (setImmediate): a burst goes out as one push, not one per 64 KiB read.
    conn.listen(() => { this.#schedule() })
  }

  /** Bytes pushed that the caller has not granted back yet (at most the window). */
  get unacknowledged (): number { return this.window - this.#credit }

  /** Credit back: never above the window. */
  grant (bytes: number): void {
    this.#credit = Math.min(this.window, this.#credit + bytes)
    this.pump()
  }

  #schedule (): void {
    if (this.#scheduled || this.#done) return
    this.#scheduled = true
    setImmediate(() => { this.#scheduled = false; this.pump() })
  }

  /** Pushes what is ready, as far as the credit goes. */
  pump (): void {
    if (this.#pumping) return // re-entered from a news the push itself caused
    this.#pumping = true
    try {
      while (!this.#done) {
        if (!this.#session.open || this.#conn.closed) { this.stop(); return }
        if (this.#credit === 0 && this.#conn.bufferedBytes > 0) return
        if (this.#session.pendingBytes >= SESSION_HIGH_WATER) { this.#afterDrain(); return }
        let r
        try { r = this.#conn.take(Math.min(this.#credit, MAX_PUSH_BYTES)) } catch (e) {
          const err = e instanceof MetaosError ? e : new MetaosError('IO_ERROR', String(e))
          this.#send({ socket: this.#socket, seq: ++this.#seq, data: Buffer.alloc(0), closed: false, code: (NetworkFaultCodes as readonly string[]).includes(err.code) ? err.code as FaultCode : 'IO_ERROR', message: err.message })
          this.stop()
          return
        }
        if (r === undefined || (r.data.length === 0 && !r.closed)) return
        this.#credit -= r.data.length
        this.#send({ socket: this.#socket, seq: ++this.#seq, data: r.data, closed: r.closed })
        if (r.closed) { this.stop(); return }
      }
    } finally {
      this.#pumping = false
    }
  }

  #afterDrain (): void {
    if (this.#waitingDrain) return
    this.#waitingDrain = true
    this.#session.whenDrained(() => { this.#waitingDrain = false; this.pump() })
  }

  #send (r: Received): void {
    if (!this.#session.send(receivedMessage(r))) this.stop()
  }

  /** No more pushes (the last was sent, the session or the connection is gone). */
  stop (): void {
    if (this.#done) return
    this.#done = true
    this.#conn.listen(undefined)
    this.#release()
  }
}
