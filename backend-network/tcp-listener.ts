// One TCP listener held for a caller: connections the kernel accepted wait here, paused (their
// data stays in the kernel, flow-controlled), until Accept takes them — within a bound: beyond
// it, or beyond the domain's socket limit, a new connection is reset at once rather than left to
// pile up. Accepts run one at a time. Closing the listener closes its waiting connections too.
import { createServer, type Server, type Socket } from 'node:net'
import { fromNetError, handleClosed } from './net-errors.js'
import { Lane, Signal, waitFor, type Resource } from './socket-table.js'

export interface ListenerHooks {
  /** May the domain hold one more socket? (maxSockets counts waiting connections too.) */
  readonly hasRoom: () => boolean
  /** A connection started (+1) or stopped (-1) waiting. */
  readonly pendingChanged: (delta: number) => void
}

export class TcpListener implements Resource {
  readonly kind = 'listener'
  readonly server: Server
  readonly #pending: Socket[] = []
  readonly #maxPending: number
  readonly #hooks: ListenerHooks
  readonly #news = new Signal()
  readonly #accepts = new Lane()
  #closed = false
  #gone: Promise<void> | undefined
  /** Connections reset because the queue or the domain was full. */
  refused = 0

  constructor (server: Server, maxPending: number, hooks: ListenerHooks) {
    this.server = server
    this.#maxPending = maxPending
    this.#hooks = hooks
    server.on('connection', (s: Socket) => { this.#incoming(s) })
    // After listen() succeeded the server reports only transient accept errors (EMFILE): libuv retries.
    server.on('error', () => undefined)
  }

  get bufferedBytes (): number { return 0 }
  get pending (): number { return this.#pending.length }

  #incoming (s: Socket): void {
    s.on('error', () => undefined) // a reset while waiting: the socket just closes
    if (this.#closed || this.#pending.length >= this.#maxPending || !this.#hooks.hasRoom()) {
      this.refused++
      s.resetAndDestroy()
      return
    }
    this.#pending.push(s)
    this.#hooks.pendingChanged(1)
    s.once('close', () => {
      const i = this.#pending.indexOf(s)
      if (i >= 0) { this.#pending.splice(i, 1); this.#hooks.pendingChanged(-1) }
    })
    this.#news.wake()
  }

  /**
   * The next waiting connection, waiting up to timeoutMs (undefined then). `admit` runs as the
   * connection leaves the queue and may throw (the caller's quota): the connection then stays.
   */
  async accept (timeoutMs: number, admit: () => void): Promise<Socket | undefined> {
    return await this.#accepts.run(async () => {
      const deadline = Date.now() + timeoutMs
      return await waitFor(this.#news, deadline, () => {
        if (this.#closed) throw handleClosed()
        while (this.#pending.length > 0 && this.#pending[0]!.destroyed) { this.#pending.shift(); this.#hooks.pendingChanged(-1) }
        if (this.#pending.length === 0) return undefined
        // Out of the queue first: a waiting connection is already counted against the domain.
        const s = this.#pending.shift()!
        this.#hooks.pendingChanged(-1)
        try { admit() } catch (e) { this.#pending.unshift(s); this.#hooks.pendingChanged(1); throw e }
        return s
      })
    })
  }

  expireWaits (): void { this.#news.expire() }

  async close (): Promise<void> {
    if (!this.#closed) {
      this.#closed = true
      this.#news.fail(handleClosed())
      const waiting = this.#pending.splice(0)
      this.#hooks.pendingChanged(-waiting.length)
      for (const s of waiting) s.resetAndDestroy()
      this.#gone = Promise.all([
        new Promise<void>((resolve) => { this.server.close(() => { resolve() }) }),
        ...waiting.map(async (s) => { await new Promise<void>((resolve) => { if (s.closed) resolve(); else s.once('close', () => { resolve() }) }) }),
      ]).then(() => undefined)
    }
    await this.#gone
  }
}

/** A server bound to address:port, or the error of listen(2) (EADDRINUSE → ADDRESS_IN_USE…). */
export async function listenTcp (address: string, port: number, backlog: number): Promise<Server> {
  // allowHalfOpen: the peer's FIN must not end our side (Shutdown is the caller's choice).
  // pauseOnConnect: nothing is read before Accept; the kernel buffers and flow-controls.
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true })
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => { server.close(); reject(fromNetError(e, `listen ${address}:${port}`)) })
    server.listen({ host: address, port, backlog, exclusive: true }, () => { resolve() })
  })
  server.removeAllListeners('error')
  return server
}
