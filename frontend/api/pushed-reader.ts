// How a NetSocket reads through a handler whose session carries pushed receives (a network proxy
// on net.uds or net.tcp, or the network dispatcher for a socket on a domain reached so): it attaches a receiver for its socket, Subscribes with a window of credit,
// then takes each Received in seq order into the stream; as the application consumes, it Grants
// the credit back in halves of the window, so a slow reader leaves the domain at most a window of
// bytes in flight (the rest waits in the domain's bounded buffer, then in TCP). The session lost:
// CONNECTION_LOST (the domain closes connections bound to a lost session). A domain that does not
// know Subscribe (MALFORMED_MESSAGE): the caller goes back to Receive long polls.
import { MetaosError, type ErrorCode } from '../../soap-runtime/errors.js'
import type { Received } from '../../wsdl/generated/network-service.js'
import type { PushChannel } from '../handlers/network-handler.js'

/** What the reader does to its stream. */
export interface PushedSink {
  /** Data in order (into the readable side). */
  data: (b: Buffer) => void
  /** The peer ended the stream. */
  end: () => void
  fail: (e: MetaosError) => void
  /** Bytes delivered and not yet consumed by the application. */
  unread: () => number
  subscribe: (window: number) => Promise<number>
  grant: (bytes: number) => Promise<void>
}

export class PushedReader {
  readonly #sink: PushedSink
  #detach: (() => void) | undefined
  #window: number
  #seq = 0
  #delivered = 0
  /** Total credit given: the window at Subscribe plus every Grant. */
  #granted: number
  #done = false

  constructor (sink: PushedSink, window: number) {
    this.#sink = sink
    this.#window = this.#granted = window
  }

  /** Subscribes; resolves false when the domain does not know pushes (read with Receive then). */
  async start (pushes: PushChannel, socket: string): Promise<boolean> {
    this.#detach = pushes.attach(socket, {
      received: (r) => { this.#received(r) },
      lost: (e) => { this.#fail(new MetaosError('CONNECTION_LOST', `receive: the session that carried this connection's pushed data was lost (${e.message}); the domain closed the connection`, { cause: e })) },
    })
    try {
      const window = await this.#sink.subscribe(this.#window)
      // The domain may give less than asked: the credit it holds is its window.
      this.#granted -= this.#window - window
      this.#window = window
      return true
    } catch (e) {
      this.stop()
      if (e instanceof MetaosError && e.code === 'MALFORMED_MESSAGE' && this.#seq === 0) return false
      throw e
    }
  }

  #received (r: Received): void {
    if (this.#done) return
    if (r.seq !== this.#seq + 1) { this.#fail(new MetaosError('PROTOCOL_ERROR', `receive: pushed data out of order (seq ${r.seq} after ${this.#seq})`)); return }
    this.#seq = r.seq
    if (r.data.length > 0) {
      this.#delivered += r.data.length
      if (this.#delivered > this.#granted) { this.#fail(new MetaosError('PROTOCOL_ERROR', `receive: the domain pushed ${this.#delivered - this.#granted} bytes beyond the credit`)); return }
      this.#sink.data(r.data)
    }
    if (r.code !== undefined) { this.#fail(new MetaosError(r.code as ErrorCode, `receive: ${r.message ?? r.code}`)); return }
    if (r.closed) { this.stop(); this.#sink.end(); return }
    this.consumed()
  }

  /** The application took data: credit goes back once half a window is owed. */
  consumed (): void {
    if (this.#done) return
    const owed = this.#delivered - this.#sink.unread() - (this.#granted - this.#window)
    if (owed <= 0 || owed < this.#window / 2) return
    this.#granted += owed
    this.#sink.grant(owed).catch((e: unknown) => { this.#fail(e instanceof MetaosError ? e : new MetaosError('IO_ERROR', String(e))) })
  }

  #fail (e: MetaosError): void {
    if (this.#done) return
    this.stop()
    this.#sink.fail(e)
  }

  /** No more pushes are taken (closed, failed, or the socket is being destroyed). */
  stop (): void {
    this.#done = true
    this.#detach?.()
    this.#detach = undefined
  }
}
