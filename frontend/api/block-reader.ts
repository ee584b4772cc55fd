// Where a FileStream's next block comes from: a synchronous Read of the local kernel (ReadByte's
// refill and read()'s, as .NET's), one awaited Read, or — in exception-less mode, from the second
// Read in a row without a move (the reads are sequential), on the local kernel too — read-ahead
// (read-ahead.ts), which stops when the stream moves, writes or closes. The stream keeps the
// block; this keeps track of the handle.
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
import type { ReadAhead, ReadAheadLimits } from './read-ahead.js'

/** Read-ahead's class (loaded by the first exception-less stream) and its limits. */
export interface ReadAheadOf { readonly Ahead: typeof ReadAhead, readonly limits: Partial<ReadAheadLimits> }

export class BlockReader {
  readonly #handler: StorageHandler
  readonly #handle: string
  readonly #account: (inv: Invocation<unknown>) => void
  readonly #sync: StorageHandler['invokeSync']
  readonly #readAheadOf: ReadAheadOf | undefined
  #ahead: ReadAhead | undefined
  /** Reads from the handler since the stream last moved: the second one starts read-ahead. */
  #sequential = 0

  constructor (handler: StorageHandler, handle: string, account: (inv: Invocation<unknown>) => void, sync: StorageHandler['invokeSync'], readAheadOf: ReadAheadOf | undefined) {
    this.#handler = handler
    this.#handle = handle
    this.#account = account
    this.#sync = sync
    this.#readAheadOf = readAheadOf
  }

  /** Read-ahead runs: the handle is ahead of the stream. */
  get readingAhead (): boolean { return this.#ahead !== undefined }

  /** The next block at once — one read ahead, or a synchronous Read of the local kernel — or undefined. Throws read-ahead's kept error. */
  now (count: number): Buffer | undefined {
    const a = this.#ahead
    if (a !== undefined) return this.#taken(a.take())
    // Exception-less and sequential: read-ahead (next() starts it) rather than a Read per block.
    if (this.#sync === undefined || (this.#readAheadOf !== undefined && this.#sequential >= 1)) return undefined
    const inv = this.#sync('Read', { handle: this.#handle, count })
    if (inv === undefined) return undefined
    this.#account(inv)
    this.#sequential++
    return inv.output.data
  }

  /** The next block (empty at the end of the file): `read` does one Read; read-ahead once the reads are sequential. */
  async next (count: number, read: (count: number) => Promise<Buffer>): Promise<Buffer> {
    const of = this.#readAheadOf
    if (this.#ahead === undefined && of !== undefined && this.#sequential >= 1) {
      this.#ahead = new of.Ahead(this.#handler, this.#handle, count, this.#account, of.limits)
    }
    const a = this.#ahead
    if (a === undefined) {
      const data = await read(count)
      this.#sequential++
      return data
    }
    return this.#taken(await a.next())
  }

  /** At the end of the file read-ahead is let go: the handle is where the stream is. */
  #taken<B extends Buffer | undefined> (b: B): B {
    if (this.#ahead?.ended === true) this.#ahead = undefined
    return b
  }

  /** The stream let its reads go (it moved or wrote): the next Read starts a new run. Read-ahead, if any, is stopped with stop(). */
  moved (): void { this.#sequential = 0 }

  /**
   * The stream moved (or is about to): read-ahead stops. How far the handle is past the stream
   * (bytes fetched and never taken), or undefined when a failed call left that unknown.
   */
  async stop (): Promise<number | undefined> {
    this.#sequential = 0
    const a = this.#ahead
    this.#ahead = undefined
    return a === undefined ? 0 : await a.stop()
  }

  /** After read-ahead's error reached the application: stops, and puts the handle back at `position` when it is not there. */
  async recover (position: number): Promise<number> {
    if (await this.stop() === 0) return position
    const at = await this.#handler.invoke('Seek', { handle: this.#handle, offset: position, origin: 'Begin' }).catch(() => undefined)
    if (at === undefined) return position
    this.#account(at)
    return at.output.position
  }
}
