// Exception-less writes (FlexSC, the paper's future work): a FileStream in this mode does not wait
// for each Write to return. Writes are queued, adjacent ones coalesced into larger Write
// operations, and sent in Batch calls, one Batch in flight per stream so the domain applies them
// in order. Memory is bounded (a writer waits when too much is unacknowledged), and every error
// is kept and surfaced no later than the next drain (flush, close, or any call that needs the
// handle's position settled).
import { MetaosError, fromSystemError, isErrorCode } from '../../soap-runtime/errors.js'
import { NOT_RUN } from '../../soap-runtime/batch.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageHandler } from '../handlers/storage-handler.js'

export interface PipelineLimits {
  /** Unacknowledged bytes a stream may hold before a write waits (default 8 MiB). */
  readonly maxPendingBytes: number
  /** Largest coalesced Write operation (default 1 MiB). */
  readonly maxOpBytes: number
  /** Most operations in one Batch (default 64). */
  readonly maxOps: number
}

export const DEFAULT_PIPELINE_LIMITS: PipelineLimits = { maxPendingBytes: 8 * 1024 * 1024, maxOpBytes: 1024 * 1024, maxOps: 64 }

export class WritePipeline {
  readonly #handler: StorageHandler
  readonly #handle: string
  readonly #limits: PipelineLimits
  readonly #account: (inv: Invocation<unknown>) => void
  readonly #queue: Buffer[] = []
  #pendingBytes = 0
  #inFlight: Promise<void> | undefined
  #error: MetaosError | undefined
  #waiters: Array<() => void> = []
  /** Told when an error is kept, so the stream takes its slow path (which throws it) on its next call. */
  readonly #onError: () => void
  /** Bytes the domain acknowledged. */
  acknowledged = 0

  constructor (handler: StorageHandler, handle: string, account: (inv: Invocation<unknown>) => void, limits: Partial<PipelineLimits> = {}, onError: () => void = () => {}) {
    this.#handler = handler
    this.#handle = handle
    this.#account = account
    this.#limits = { ...DEFAULT_PIPELINE_LIMITS, ...limits }
    this.#onError = onError
  }

  get pendingBytes (): number { return this.#pendingBytes }
  /** Nothing queued, nothing in flight, no error kept: the handle's position is settled. */
  get idle (): boolean { return this.#pendingBytes === 0 && this.#inFlight === undefined && this.#error === undefined }
  /** An error is kept for the next drain or write. */
  get failed (): boolean { return this.#error !== undefined }

  /**
   * Queues `data` at once (copied) when no error is kept and the bound leaves room: true. False
   * when it did nothing: then `write` must be awaited (it throws the error, or waits for room).
   */
  offer (data: Buffer): boolean {
    if (this.#error !== undefined || this.#pendingBytes + data.length > this.#limits.maxPendingBytes) return false
    this.#enqueue(data)
    return true
  }

  #enqueue (data: Buffer): void {
    const copy = Buffer.allocUnsafe(data.length)
    data.copy(copy)
    this.#queue.push(copy)
    this.#pendingBytes += copy.length
    this.#pump()
  }

  /** Queues `data` (copied: the caller may reuse its buffer). Waits only while the bound is reached. */
  async write (data: Buffer): Promise<void> {
    this.#throwPending()
    this.#enqueue(data)
    while (this.#pendingBytes > this.#limits.maxPendingBytes && this.#error === undefined) {
      await new Promise<void>((resolve) => { this.#waiters.push(resolve) })
    }
    this.#throwPending()
  }

  /** Resolves when every queued byte is acknowledged; throws the first error since the last drain. */
  async drain (): Promise<void> {
    while (this.#inFlight !== undefined || this.#queue.length > 0) {
      this.#pump()
      await this.#inFlight
    }
    this.#throwPending()
  }

  #throwPending (): void {
    const e = this.#error
    if (e !== undefined) { this.#error = undefined; throw e }
  }

  #pump (): void {
    if (this.#inFlight !== undefined || this.#queue.length === 0) return
    // Coalesce adjacent writes into operations of up to maxOpBytes, up to maxOps per Batch.
    const ops: Array<{ Write: { handle: string, data: Buffer } }> = []
    let sent = 0
    while (this.#queue.length > 0 && ops.length < this.#limits.maxOps) {
      const parts: Buffer[] = []
      let size = 0
      while (this.#queue.length > 0 && (size === 0 || size + this.#queue[0]!.length <= this.#limits.maxOpBytes)) {
        const b = this.#queue.shift()!
        parts.push(b)
        size += b.length
      }
      ops.push({ Write: { handle: this.#handle, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, size) } })
      sent += size
    }
    this.#inFlight = this.#send(ops, sent).finally(() => {
      this.#inFlight = undefined
      this.#pump()
    })
  }

  async #send (ops: Array<{ Write: { handle: string, data: Buffer } }>, bytes: number): Promise<void> {
    // The domain runs nothing on the handle after a failed write: those operations come back
    // NOT_RUN_AFTER_FAILURE. The application is told the failure itself, never that code.
    let notRun = 0
    try {
      const inv = await this.#handler.invoke('Batch', { op: ops })
      this.#account(inv)
      inv.output.result.forEach((r, i) => {
        if ('StorageFault' in r) {
          const f = r.StorageFault
          if (f.code === NOT_RUN) notRun += ops[i]?.Write.data.length ?? 0
          else this.#error ??= new MetaosError(isErrorCode(f.code) ? f.code : 'IO_ERROR', f.message)
        } else if ('WriteResponse' in r) {
          this.acknowledged += r.WriteResponse.written
        }
      })
      if (notRun > 0) this.#error ??= new MetaosError('PROTOCOL_ERROR', 'the domain did not run writes of a Batch without reporting the failure they followed')
    } catch (e) {
      this.#error ??= e instanceof MetaosError ? e : fromSystemError(e, 'Batch')
    } finally {
      this.#pendingBytes -= bytes
      if (this.#error !== undefined && (this.#queue.length > 0 || notRun > 0)) {
        // Nothing is written after a failed write (no holes): what waits is dropped, never resent, and said so.
        let dropped = notRun
        for (const b of this.#queue.splice(0)) { dropped += b.length; this.#pendingBytes -= b.length }
        this.#error = new MetaosError(this.#error.code, `${this.#error.message} (${dropped} later bytes were not written)`, { cause: this.#error })
      }
      if (this.#error !== undefined) this.#onError()
      const ws = this.#waiters
      this.#waiters = []
      for (const w of ws) w()
    }
  }
}
