// The memory budget of request bodies: bytes held at once across all connections and per peer
// address, so a host under abuse refuses (503) rather than grows. What is counted is what is held.

export class RequestBudget {
  #buffered = 0
  readonly #byPeer = new Map<string, number>()
  readonly #max: number
  readonly #maxPerPeer: number

  constructor (maxBufferedBytes: number, maxBufferedBytesPerPeer: number) {
    this.#max = maxBufferedBytes
    this.#maxPerPeer = maxBufferedBytesPerPeer
  }

  /** Why `n` more bytes from `peer` ("" = no per-peer limit) would be over budget, or undefined when they fit. */
  over (peer: string, n: number): string | undefined {
    if (this.#buffered + n > this.#max) return `the domain holds ${this.#buffered} request bytes, its limit`
    if (peer !== '' && (this.#byPeer.get(peer) ?? 0) + n > this.#maxPerPeer) return `${peer} has ${this.#byPeer.get(peer) ?? 0} request bytes in flight, its limit`
    return undefined
  }

  /** Counts `n` bytes (negative: released) held for `peer`. */
  charge (peer: string, n: number): void {
    this.#buffered += n
    if (peer === '') return
    const m = (this.#byPeer.get(peer) ?? 0) + n
    if (m <= 0) this.#byPeer.delete(peer)
    else this.#byPeer.set(peer, m)
  }
}
