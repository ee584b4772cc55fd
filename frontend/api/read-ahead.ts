// Read-ahead of a sequential FileStream (the exception-less treatment of reads): while the
// application consumes one block, the next one is already asked for. Adjacent blocks are coalesced
// into one Read (as exception-less writes coalesce Writes), growing from two blocks to
// `readAheadBytes`; one Read in flight at a time, so the handle's position is always known, and at
// most one more waits unconsumed. A block the application never takes is only counted (the stream
// moves the handle back when it stops). A short Read is the end of the file: nothing more is asked
// for. An error waits in the queue at the place it happened and reaches the application when it
// gets there; the bytes before it are good.
//
// Why one coalesced Read and not Batches of block-sized Reads or several calls in flight:
// `node dist/benchmarks/micro/read-shapes.js` reads a file from a domain process in each shape.
// Batches of 64 Reads of 4 KiB run well below one large Read at a time, and two positioned Batches
// (Seek + Read) in flight gain little over one 1 MiB Read while leaving the handle's position
// unknown after them (docs/api.md).
import { MetaosError, fromSystemError } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageHandler } from '../handlers/storage-handler.js'

export interface ReadAheadLimits {
  /** Most bytes one read-ahead Read asks for (default 1 MiB, at least the block); 0: no read-ahead. */
  readonly readAheadBytes: number
}

export const DEFAULT_READ_AHEAD_LIMITS: ReadAheadLimits = { readAheadBytes: 1024 * 1024 }

/** The end of the file: a block of no bytes. */
const EOF = Buffer.alloc(0)

export class ReadAhead {
  readonly #handler: StorageHandler
  readonly #handle: string
  readonly #account: (inv: Invocation<unknown>) => void
  readonly #max: number
  readonly #queue: Array<Buffer | Error> = []
  #queuedBytes = 0
  /** The next Read's count: two blocks first, doubling up to #max. */
  #count: number
  #inFlight: Promise<void> | undefined
  /** The end of the file, an error, or stop(): nothing more is asked for. */
  #done = false
  /** A failed Read leaves the handle's position unknown. */
  #lost = false
  #wake: (() => void) | undefined

  /** Starts reading ahead from the handle's position, for a stream that reads blocks of `block` bytes. */
  constructor (handler: StorageHandler, handle: string, block: number, account: (inv: Invocation<unknown>) => void, limits: Partial<ReadAheadLimits> = {}) {
    this.#handler = handler
    this.#handle = handle
    this.#account = account
    this.#max = Math.max(block, limits.readAheadBytes ?? DEFAULT_READ_AHEAD_LIMITS.readAheadBytes)
    this.#count = Math.min(2 * block, this.#max)
    this.#pump()
  }

  /** Everything was taken and nothing more will come: the stream can let it go (the handle is where the stream is). */
  get ended (): boolean { return this.#done && this.#queue.length === 0 && this.#inFlight === undefined }

  /** The next block at once when one is ready (an empty one is the end of the file), or undefined. A kept error is thrown when it is next. */
  take (): Buffer | undefined {
    const b = this.#queue.shift()
    if (b === undefined) return undefined
    if (b instanceof Error) throw b
    this.#queuedBytes -= b.length
    this.#pump()
    return b
  }

  /** The next block, waiting for it if needed. */
  async next (): Promise<Buffer> {
    for (;;) {
      const b = this.take()
      if (b !== undefined) return b
      if (this.#inFlight === undefined && this.#done) return EOF
      await new Promise<void>((resolve) => { this.#wake = resolve })
    }
  }

  /** Stops asking and waits for the Read in flight. How far the handle is past what was taken, or undefined when a failed Read left that unknown. */
  async stop (): Promise<number | undefined> {
    this.#done = true
    while (this.#inFlight !== undefined) await this.#inFlight
    let ahead = 0
    for (const b of this.#queue) if (!(b instanceof Error)) ahead += b.length
    this.#queue.length = 0
    this.#queuedBytes = 0
    return this.#lost ? undefined : ahead
  }

  #pump (): void {
    // One Read in flight and at most one more waiting: a slow reader does not make the stream read the file.
    if (this.#done || this.#inFlight !== undefined || this.#queuedBytes >= this.#count) return
    const count = this.#count
    this.#count = Math.min(count * 2, this.#max)
    this.#inFlight = this.#fetch(count).finally(() => {
      this.#inFlight = undefined
      const w = this.#wake
      this.#wake = undefined
      w?.()
      this.#pump()
    })
  }

  async #fetch (count: number): Promise<void> {
    try {
      const inv = await this.#handler.invoke('Read', { handle: this.#handle, count })
      this.#account(inv)
      const data = inv.output.data
      if (data.length > 0) { this.#queue.push(data); this.#queuedBytes += data.length }
      if (data.length < count) { this.#queue.push(EOF); this.#done = true }
    } catch (e) {
      this.#lost = true
      this.#done = true
      this.#queue.push(e instanceof MetaosError ? e : fromSystemError(e, 'Read'))
    }
  }
}
