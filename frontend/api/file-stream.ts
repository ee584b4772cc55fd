// FileStream: what applications use, shaped like .NET's System.IO.FileStream and made natural for
// TypeScript (async methods, Symbol.asyncDispose, Node stream adapters). Its buffer is the paper's
// "cache": WriteByte fills it and a full buffer becomes one Write syscall; ReadByte drains one Read.
// WriteByte and ReadByte complete synchronously (no promise) while the buffer has room or data, as
// .NET's ValueTask does; a promise only when a call must be waited for. Each syscall goes to a
// StorageHandler (local kernel or a domain's proxy); the stream keeps the channel/service time
// split of every call. One operation at a time, as in .NET.
import type { Readable, Writable } from 'node:stream'
import { MetaosError } from '../../soap-runtime/errors.js'
import type * as S from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp } from '../handlers/storage-handler.js'
import type { WritePipeline } from './write-pipeline.js'
import type { BlockReader, ReadAheadOf } from './block-reader.js'
import { MAX_BLOCK, MAX_SYNC, NO_BYTES, account, checkRange, openParameters, refusal, unsupported, streamAdapters, type FileAccess, type FileStreamOptions, type SeekOrigin, type StreamStats } from './file-stream-shapes.js'

export { FileMode, FileAccess, FileShare, SeekOrigin, type FileStreamOptions, type StreamStats } from './file-stream-shapes.js'


export class FileStream {
  readonly path: string
  readonly handler: StorageHandler
  readonly access: FileAccess
  readonly bufferSize: number
  readonly stats: StreamStats = { calls: 0, serviceMicros: 0, channelMicros: 0, bytesWritten: 0, bytesRead: 0 }
  readonly #handle: string
  /** The write buffer (the cache); a full one is one Write. */
  readonly #buf: Buffer
  /** The block being read: a Read's own data, not copied. */
  #rbuf: Buffer = NO_BYTES
  /** Position of the handle on the handler's side; while reading ahead, the end of #rbuf. */
  #filePos: number
  #readPos = 0
  #readLen = 0
  #writePos = 0
  #closed = false
  #busy = false
  readonly #writable: boolean
  #pipeline: WritePipeline | undefined
  /** The handler's synchronous Read/Write (the local kernel's), if it has them. */
  readonly #sync: StorageHandler['invokeSync']
  readonly #reader: BlockReader
  /** writeByte stores at once while #writePos is below this; 0 sends every call to the slow path. */
  #writeFast = 0
  /** readByte answers at once while #readPos is below this. */
  #readFast = 0

  private constructor (path: string, handler: StorageHandler, handle: string, access: FileAccess, bufferSize: number, position: number, Reader: typeof BlockReader, readAheadOf: ReadAheadOf | undefined) {
    this.path = path
    this.handler = handler
    this.#handle = handle
    this.access = access
    this.bufferSize = bufferSize
    this.#buf = Buffer.allocUnsafe(Math.max(bufferSize, 1))
    this.#filePos = position
    this.#writable = access !== 'Read'
    this.#sync = bufferSize <= MAX_SYNC ? handler.invokeSync?.bind(handler) : undefined
    this.#reader = new Reader(handler, handle, (i) => { this.#account(i) }, this.#sync, readAheadOf)
    this.#refresh()
  }

  /** Opens a file on the destination (`new FileStream(path, mode, access, share, bufferSize)` in .NET). */
  static async open (path: string, options: FileStreamOptions = {}): Promise<FileStream> {
    // What a destination needs, and the read path, are loaded by the first open.
    const [o, d] = await Promise.all([openParameters(options), import('./storage-destination.js')])
    const handler = options.destination === 'discover' ? await d.discoveredDestination(options) : await d.resolveDestination(options.destination)
    const input = { ...o.input, path }
    const dispatcher = await d.asDispatcher(handler)
    const inv = dispatcher !== undefined ? await dispatcher.open(input, o.bytes) : await handler.invoke('Open', input)
    const fs = new FileStream(path, handler, inv.output.handle, input.access ?? 'ReadWrite', o.bufferSize, inv.output.position, o.Reader, o.readAhead)
    fs.#account(inv)
    if (o.Pipeline !== undefined) fs.#pipeline = new o.Pipeline(handler, inv.output.handle, (i) => { fs.#account(i) }, o.limits, () => { fs.#writeFast = 0 })
    return fs
  }

  get canRead (): boolean { return !this.#closed && this.access !== 'Write' }
  get canWrite (): boolean { return !this.#closed && this.access !== 'Read' }
  get canSeek (): boolean { return !this.#closed }
  get closed (): boolean { return this.#closed }
  /** Where the application is in the file, buffered bytes included. */
  get position (): number { return this.#filePos - (this.#readLen - this.#readPos) + this.#writePos }

  /** Writes one byte: at once (no promise) while the buffer has room; a full buffer becomes one Write syscall. */
  writeByte (value: number): void | Promise<void> {
    if (this.#writePos < this.#writeFast) { this.#buf[this.#writePos++] = value; return }
    return this.#writeByteSlow(value)
  }

  /** Reads one byte, or -1 at the end of the file: at once (no promise) while the buffer has data; an empty buffer is refilled by one Read. */
  readByte (): number | Promise<number> {
    if (this.#readPos < this.#readFast) return this.#rbuf[this.#readPos++]!
    return this.#readByteSlow()
  }

  /** Writes `count` bytes of `buffer` from `offset`. */
  async write (buffer: Uint8Array, offset = 0, count = buffer.length - offset): Promise<void> {
    await this.#guard(async () => {
      this.#needWrite()
      checkRange(buffer, offset, count)
      await this.#dropReadAhead()
      const data = Buffer.from(buffer.buffer, buffer.byteOffset + offset, count)
      if (this.#writePos + count <= this.bufferSize && this.bufferSize > 0) {
        data.copy(this.#buf, this.#writePos)
        this.#writePos += count
        if (this.#writePos === this.bufferSize) await this.#flushWrite()
        return
      }
      await this.#flushWrite()
      if (count >= this.bufferSize) { await this.#writeThrough(data); return }
      data.copy(this.#buf, 0)
      this.#writePos = count
    })
  }

  /** Reads up to `count` bytes into `buffer` at `offset`; returns how many (0 at the end of the file). */
  async read (buffer: Uint8Array, offset = 0, count = buffer.length - offset): Promise<number> {
    return await this.#guard(async () => {
      this.#needRead()
      checkRange(buffer, offset, count)
      if (this.#writePos !== 0) await this.#flushWrite()
      if (count === 0) return 0
      // A buffer's worth, or all that is asked for when that is more (large reads skip the cache, as .NET's).
      if (this.#readPos === this.#readLen) {
        const want = Math.min(Math.max(count, this.bufferSize), MAX_BLOCK)
        let block: Buffer | undefined
        try { block = this.#blockNow(want) } catch (e) { return await this.#readAheadFailed(e) }
        if (this.#install(block ?? await this.#nextBlock(want)) === 0) return 0
      }
      const n = Math.min(this.#readLen - this.#readPos, count)
      buffer.set(this.#rbuf.subarray(this.#readPos, this.#readPos + n), offset)
      this.#readPos += n
      return n
    })
  }

  /** Moves the position; returns the new one. Seeks inside the read buffer cost no syscall. */
  async seek (offset: number, origin: SeekOrigin = 'Begin'): Promise<number> {
    return await this.#guard(async () => {
      if (!Number.isSafeInteger(offset)) throw new MetaosError('INVALID_ARGUMENT', `offset ${offset} is not a safe integer`)
      await this.#flushWrite()
      if (origin !== 'End' && this.#readLen > 0) {
        const target = origin === 'Begin' ? offset : this.position + offset
        const bufStart = this.#filePos - this.#readLen
        if (target >= bufStart && target <= this.#filePos) { this.#readPos = target - bufStart; return target }
      }
      const abs = origin === 'Current' ? this.position + offset : offset
      // Read-ahead stops (what it fetched is dropped); the Seek says where the handle is.
      await this.#reader.stop()
      this.#forgetReads()
      this.#filePos = (await this.#call('Seek', { handle: this.#handle, offset: abs, origin: origin === 'Current' ? 'Begin' : origin })).position
      return this.#filePos
    })
  }

  /** Sends buffered bytes and resolves when the domain has them all; with `flushToDisk` they also reach stable storage. */
  async flush (flushToDisk = false): Promise<void> {
    await this.#guard(async () => {
      await this.#flushWrite()
      await this.#drained()
      if (flushToDisk) await this.#call('Flush', { handle: this.#handle, flushToDisk: true })
    })
  }

  /** Sets the file's length; through a dispatcher, also the stream's size for placement (docs/rules.md). */
  async setLength (length: number): Promise<void> {
    await this.#guard(async () => {
      this.#needWrite()
      await this.#flushWrite()
      await this.#dropReadAhead()
      await this.#call('SetLength', { handle: this.#handle, length })
      if (this.#filePos > length) this.#filePos = length
    })
  }

  /** The file's length, buffered bytes included. */
  async length (): Promise<number> {
    return await this.#guard(async () => {
      await this.#flushWrite()
      return (await this.#call('GetLength', { handle: this.#handle })).length
    })
  }

  /** Flushes and closes the handle. Closing twice is harmless. */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#enter()
    try {
      await this.#flushWrite()
      await this.#drained()
    } finally {
      this.#closed = true
      this.#busy = false
      this.#refresh()
      await this.#reader.stop()
      await this.#call('Close', { handle: this.#handle }).catch((e: unknown) => {
        // A handle the domain already reaped is closed all the same.
        if (!(e instanceof MetaosError && e.code === 'INVALID_HANDLE')) throw e
      })
    }
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.close() }

  /** A Node Readable of the rest of the file (for `stream.pipeline`); closes the FileStream at the end unless `autoClose` is false. */
  readable (options: { highWaterMark?: number, autoClose?: boolean } = {}): Readable {
    return streamAdapters.readable(this, () => this.#busy, Math.max(this.bufferSize, 64 * 1024), MAX_BLOCK, options)
  }

  /** A Node Writable into the file (for `stream.pipeline`); flushes and closes the FileStream when it finishes unless `autoClose` is false. */
  writable (options: { autoClose?: boolean } = {}): Writable {
    return streamAdapters.writable(this, options)
  }

  // ---- the char paths: synchronous while the buffer allows, a promise only when a call must be waited for

  /** Recomputes what writeByte and readByte may do at once: nothing while busy, closed, or a kept error waits. */
  #refresh (): void {
    const ok = !this.#busy && !this.#closed && this.#pipeline?.failed !== true
    this.#writeFast = ok && this.#writable && this.#readLen === 0 && !this.#reader.readingAhead ? this.bufferSize - 1 : 0
    this.#readFast = ok ? this.#readLen : 0
  }

  #writeByteSlow (value: number): void | Promise<void> {
    // The buffer's last byte (the fast path stops one short) goes straight to the flush: nothing to check.
    if (this.#writePos !== this.#writeFast || this.#writeFast <= 0) {
      const refused = refusal(this.path, this.#closed, this.#busy) ?? (this.#writable ? undefined : unsupported(this.path, 'write'))
      if (refused !== undefined) return Promise.reject(refused)
      // A read buffer read to its end, with nothing read ahead, is let go at once.
      if (this.#readLen !== 0 && this.#readPos === this.#readLen && !this.#reader.readingAhead) this.#forgetReads()
      if (this.#readLen !== 0 || this.#reader.readingAhead || this.#pipeline?.failed === true) {
        return this.#guard(async () => {
          await this.#dropReadAhead()
          await this.#drained()
          this.#buf[this.#writePos++] = value
          if (this.#writePos === this.#buf.length) await this.#flushWrite()
        })
      }
    }
    this.#buf[this.#writePos++] = value
    try {
      if (this.#writePos < this.#buf.length || this.#flushNow()) { this.#refresh(); return }
    } catch (e) { this.#refresh(); return Promise.reject(e) }
    return this.#guard(async () => { await this.#flushWrite() })
  }

  /** A full buffer sent at once (#sendNow). False when it cannot be. */
  #flushNow (): boolean {
    const n = this.#writePos
    // As the awaited path: the buffer is let go before the call, so a failed Write loses it.
    this.#writePos = 0
    if (this.#sendNow(n === this.#buf.length ? this.#buf : this.#buf.subarray(0, n))) return true
    this.#writePos = n
    return false
  }

  /** `data` sent at once: queued in the pipeline (copied), or a synchronous Write of the local kernel. False when neither can (nothing was done). */
  #sendNow (data: Buffer): boolean {
    const p = this.#pipeline
    if (p !== undefined) {
      if (!p.offer(data)) return false
      this.#filePos += data.length
      this.stats.bytesWritten += data.length
      return true
    }
    if (this.#sync === undefined || data.length > MAX_SYNC) return false
    const inv = this.#sync('Write', { handle: this.#handle, data })
    if (inv === undefined) return false
    this.#account(inv)
    this.#filePos = inv.output.position
    this.stats.bytesWritten += inv.output.written
    return true
  }

  /** The next block at once (a synchronous Read of the local kernel, or one read ahead) when nothing is left to send first; else undefined. */
  #blockNow (count: number): Buffer | undefined {
    if (this.#writePos !== 0 || count > MAX_SYNC || (this.#pipeline !== undefined && !this.#pipeline.idle)) return undefined
    return this.#reader.now(count)
  }

  #readByteSlow (): number | Promise<number> {
    const refused = refusal(this.path, this.#closed, this.#busy) ?? (this.access === 'Write' ? unsupported(this.path, 'read') : undefined)
    if (refused !== undefined) return Promise.reject(refused)
    if (this.#readPos < this.#readLen) { const b = this.#rbuf[this.#readPos++]!; this.#refresh(); return b }
    let block: Buffer | undefined
    try { block = this.#blockNow(Math.max(this.bufferSize, 1)) } catch (e) { return this.#guard(async () => await this.#readAheadFailed(e)) }
    if (block !== undefined) {
      const n = this.#install(block)
      this.#refresh()
      return n === 0 ? -1 : this.#rbuf[this.#readPos++]!
    }
    return this.#guard(async () => {
      await this.#flushWrite()
      return this.#install(await this.#nextBlock(Math.max(this.bufferSize, 1))) === 0 ? -1 : this.#rbuf[this.#readPos++]!
    })
  }

  // ---- blocks read (block-reader.ts: one Read, read-ahead, or a synchronous Read of the local kernel)

  /** The next block (empty at the end of the file). */
  async #nextBlock (count: number): Promise<Buffer> {
    if (this.#pipeline !== undefined) await this.#drained()
    try {
      return await this.#reader.next(count, async (n) => (await this.#call('Read', { handle: this.#handle, count: n })).data)
    } catch (e) { return await this.#readAheadFailed(e) }
  }

  /** Makes `block` the read buffer; its length. */
  #install (block: Buffer): number {
    this.#rbuf = block
    this.#readPos = 0
    this.#readLen = block.length
    this.#filePos += block.length
    this.stats.bytesRead += block.length
    return block.length
  }

  /** An error of a Read (or of read-ahead, when the application reached it): the handle is put back where the stream is, then it is thrown. */
  async #readAheadFailed (e: unknown): Promise<never> {
    this.#forgetReads()
    this.#filePos = await this.#reader.recover(this.#filePos)
    throw e
  }

  #forgetReads (): void {
    this.#rbuf = NO_BYTES
    this.#readPos = this.#readLen = 0
    this.#reader.moved()
  }

  /** Drops what was read (and read ahead) but not consumed, moving the handle back to where the application is. */
  async #dropReadAhead (): Promise<void> {
    if (this.#readLen === 0 && !this.#reader.readingAhead) return
    const pos = this.position
    const ahead = await this.#reader.stop()
    const unread = this.#readLen - this.#readPos
    this.#forgetReads()
    if (ahead === 0 && unread === 0) return
    this.#filePos = (await this.#call('Seek', { handle: this.#handle, offset: pos, origin: 'Begin' })).position
  }

  // ---- calls, one at a time

  async #call<K extends StorageOp> (op: K, input: S.StorageOperations[K]['input']): Promise<S.StorageOperations[K]['output']> {
    // Pipelined writes land (and their errors surface) before anything else uses the handle.
    if (this.#pipeline !== undefined) await this.#drained()
    const inv = await this.handler.invoke(op, input)
    this.#account(inv)
    return inv.output
  }

  /** Drains the pipelined writes (or queues `data`); after a failed one the position is the handle's own again (nothing later ran, buffered bytes are dropped). */
  async #drained (data?: Buffer): Promise<void> {
    try { await (data === undefined ? this.#pipeline?.drain() : this.#pipeline?.write(data)) } catch (e) {
      this.#writePos = 0
      const at = await this.handler.invoke('Seek', { handle: this.#handle, offset: 0, origin: 'Current' }).catch(() => undefined)
      if (at !== undefined) { this.#account(at); this.#filePos = at.output.position }
      throw e
    }
  }

  #account (inv: { serviceMicros: number | undefined, totalMicros: number }): void { account(this.stats, inv) }

  #enter (): void {
    const refused = refusal(this.path, this.#closed, this.#busy)
    if (refused !== undefined) throw refused
    this.#busy = true
    this.#writeFast = this.#readFast = 0
  }

  async #guard<T> (fn: () => Promise<T>): Promise<T> {
    this.#enter()
    try { return await fn() } finally { this.#busy = false; this.#refresh() }
  }

  async #flushWrite (): Promise<void> {
    if (this.#writePos === 0) return
    const n = this.#writePos
    this.#writePos = 0
    await this.#writeThrough(this.#buf.subarray(0, n))
  }

  async #writeThrough (data: Buffer): Promise<void> {
    if (this.#sendNow(data)) return
    if (this.#pipeline !== undefined) {
      await this.#drained(data)
      this.#filePos += data.length
      this.stats.bytesWritten += data.length
      return
    }
    for (let off = 0; off < data.length; off += MAX_BLOCK) {
      const chunk = data.subarray(off, Math.min(off + MAX_BLOCK, data.length))
      const r = await this.#call('Write', { handle: this.#handle, data: chunk })
      this.#filePos = r.position
      this.stats.bytesWritten += r.written
    }
  }

  #needWrite (): void { if (!this.#writable) throw unsupported(this.path, 'write') }
  #needRead (): void { if (this.access === 'Write') throw unsupported(this.path, 'read') }
}
