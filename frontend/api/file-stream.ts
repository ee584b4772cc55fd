// FileStream: what applications use, shaped like .NET's System.IO.FileStream and made natural for
// TypeScript (async methods, Symbol.asyncDispose, Node stream adapters). Its buffer is the paper's
// "cache": WriteByte fills it and a full buffer becomes one Write syscall; ReadByte drains one Read.
// Each syscall goes to a StorageHandler (local kernel or a domain's proxy); the stream keeps the
// channel/service time split of every call. One operation at a time, as in .NET.
import { Readable, Writable } from 'node:stream'
import { MetaosError } from '../../soap-runtime/errors.js'
import type * as S from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp } from '../handlers/storage-handler.js'
// A type only: the frontend (discovery, PMT, dispatcher, supervisor) is loaded by the first 'discover'.
import type { SharedFrontendOptions } from '../assembly/intelligent-frontend.js'
import { asDispatcher, discoveredDestination, resolveDestination } from './storage-destination.js'
import type { WritePipeline, PipelineLimits } from './write-pipeline.js'

export type FileMode = S.FileMode
export type FileAccess = S.FileAccess
export type FileShare = S.FileShare
export type SeekOrigin = S.SeekOrigin
type StorageOperations = S.StorageOperations

/** Enum-like objects, so code reads as in .NET: `FileMode.Create`. */
export const FileMode = { CreateNew: 'CreateNew', Create: 'Create', Open: 'Open', OpenOrCreate: 'OpenOrCreate', Truncate: 'Truncate', Append: 'Append' } as const satisfies Record<FileMode, FileMode>
export const FileAccess = { Read: 'Read', Write: 'Write', ReadWrite: 'ReadWrite' } as const satisfies Record<FileAccess, FileAccess>
export const FileShare = { None: 'None', Read: 'Read', Write: 'Write', ReadWrite: 'ReadWrite', Delete: 'Delete' } as const satisfies Record<FileShare, FileShare>
export const SeekOrigin = { Begin: 'Begin', Current: 'Current', End: 'End' } as const satisfies Record<SeekOrigin, SeekOrigin>

export interface FileStreamOptions {
  /** Default FileMode.Open. */
  readonly mode?: FileMode
  /** Default ReadWrite (Write for Append), as .NET. */
  readonly access?: FileAccess
  /** Default FileShare.Read, as .NET. */
  readonly share?: FileShare
  /** The paper's "cache": bytes buffered before one Write / fetched by one Read. 0 or 1 = unbuffered. Default 4096. */
  readonly bufferSize?: number
  /**
   * `local` (this machine's kernel, the default), `discover` (a storage domain found with
   * WS-Discovery, of `volume` if given), a domain endpoint URL (`http://…/storage`,
   * `unix:/path.sock`, `http+unix://…`, `net.uds:/path.sock`, `net.tcp://HOST:PORT/storage`), or any StorageHandler.
   */
  readonly destination?: 'local' | 'discover' | string | StorageHandler
  /** With `destination: 'discover'`: the volume the domain must serve. */
  readonly volume?: string
  /** With `destination: 'discover'`: the process-wide frontend's options, over METAOS_CONFIG's (docs/configuration.md). */
  readonly frontend?: SharedFrontendOptions
  /** The size the file will reach: a dispatcher places the stream as one of that size (rules' minBytes/maxBytes). */
  readonly expectedBytes?: number
  /**
   * Exception-less writes (FlexSC): Write calls are not awaited one by one but queued, coalesced
   * and sent in Batch calls; errors surface at the next flush/close (or any call that must wait
   * for them). `true`, or limits for the queue.
   */
  readonly exceptionLess?: boolean | Partial<PipelineLimits>
}

export interface StreamStats {
  calls: number
  /** Σ service-side time reported by the domain (µs). */
  serviceMicros: number
  /** Σ round-trip time minus service time (µs): the channel. */
  channelMicros: number
  bytesWritten: number
  bytesRead: number
}

/** Largest block one Write or Read call carries; bigger requests are split. */
const MAX_BLOCK = 8 * 1024 * 1024

export class FileStream {
  readonly path: string
  readonly handler: StorageHandler
  readonly access: FileAccess
  readonly bufferSize: number
  readonly stats: StreamStats = { calls: 0, serviceMicros: 0, channelMicros: 0, bytesWritten: 0, bytesRead: 0 }
  readonly #handle: string
  readonly #buf: Buffer
  /** Position of the handle on the handler's side. */
  #filePos: number
  #readPos = 0
  #readLen = 0
  #writePos = 0
  #closed = false
  #busy = false
  #pipeline: WritePipeline | undefined

  private constructor (path: string, handler: StorageHandler, handle: string, access: FileAccess, bufferSize: number, position: number) {
    this.path = path
    this.handler = handler
    this.#handle = handle
    this.access = access
    this.bufferSize = bufferSize
    this.#buf = Buffer.allocUnsafe(Math.max(bufferSize, 1))
    this.#filePos = position
  }

  /** Opens a file on the destination (`new FileStream(path, mode, access, share, bufferSize)` in .NET). */
  static async open (path: string, options: FileStreamOptions = {}): Promise<FileStream> {
    const mode = options.mode ?? 'Open'
    const access = options.access ?? (mode === 'Append' ? 'Write' : 'ReadWrite')
    const share = options.share ?? 'Read'
    const bufferSize = options.bufferSize ?? 4096
    if (!Number.isInteger(bufferSize) || bufferSize < 0 || bufferSize > MAX_BLOCK) throw new MetaosError('INVALID_ARGUMENT', `bufferSize must be an integer from 0 to ${MAX_BLOCK}`)
    const bytes = options.expectedBytes
    if (bytes !== undefined && !(Number.isSafeInteger(bytes) && bytes >= 0)) throw new MetaosError('INVALID_ARGUMENT', `expectedBytes must be a whole number of bytes, not ${String(bytes)}`)
    const handler = options.destination === 'discover' ? await discoveredDestination(options) : await resolveDestination(options.destination)
    const input = { path, mode, access, share }
    const pipelined = options.exceptionLess !== undefined && options.exceptionLess !== false && access !== 'Read'
    // Exception-less writes' machinery is loaded by the first stream that asks for them.
    const Pipeline = pipelined ? (await import('./write-pipeline.js')).WritePipeline : undefined
    const dispatcher = await asDispatcher(handler)
    const inv = dispatcher !== undefined ? await dispatcher.open(input, bytes) : await handler.invoke('Open', input)
    const fs = new FileStream(path, handler, inv.output.handle, access, bufferSize <= 1 ? 0 : bufferSize, inv.output.position)
    fs.#account(inv)
    if (Pipeline !== undefined) {
      fs.#pipeline = new Pipeline(handler, inv.output.handle, (i) => { fs.#account(i) }, typeof options.exceptionLess === 'object' ? options.exceptionLess : {})
    }
    return fs
  }

  get canRead (): boolean { return !this.#closed && this.access !== 'Write' }
  get canWrite (): boolean { return !this.#closed && this.access !== 'Read' }
  get canSeek (): boolean { return !this.#closed }
  get closed (): boolean { return this.#closed }
  /** Where the application is in the file, buffered bytes included. */
  get position (): number { return this.#filePos - (this.#readLen - this.#readPos) + this.#writePos }

  async #call<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<StorageOperations[K]['output']> {
    // Pipelined writes land (and their errors surface) before anything else uses the handle.
    await this.#drained()
    const inv = await this.handler.invoke(op, input)
    this.#account(inv)
    return inv.output
  }

  /** Drains the pipelined writes (or queues `data`); after a failed one the position is the handle's own again (nothing later ran). */
  async #drained (data?: Buffer): Promise<void> {
    try { await (data === undefined ? this.#pipeline?.drain() : this.#pipeline?.write(data)) } catch (e) {
      const at = await this.handler.invoke('Seek', { handle: this.#handle, offset: 0, origin: 'Current' }).catch(() => undefined)
      if (at !== undefined) { this.#account(at); this.#filePos = at.output.position }
      throw e
    }
  }

  #account (inv: { serviceMicros: number | undefined, totalMicros: number }): void {
    const s = this.stats
    const service = Math.min(inv.serviceMicros ?? 0, inv.totalMicros)
    s.calls++
    s.serviceMicros += service
    s.channelMicros += inv.totalMicros - service
  }

  #enter (): void {
    if (this.#closed) throw new MetaosError('STREAM_CLOSED', `${this.path}: the stream is closed`)
    if (this.#busy) throw new MetaosError('STREAM_BUSY', `${this.path}: another operation on this stream has not finished; await it first`)
    this.#busy = true
  }

  async #guard<T> (fn: () => Promise<T>): Promise<T> {
    this.#enter()
    try { return await fn() } finally { this.#busy = false }
  }

  async #flushWrite (): Promise<void> {
    if (this.#writePos === 0) return
    const n = this.#writePos
    this.#writePos = 0
    await this.#writeThrough(this.#buf.subarray(0, n))
  }

  async #writeThrough (data: Buffer): Promise<void> {
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

  /** Drops read-ahead, moving the handle back to where the application is. */
  async #dropReadAhead (): Promise<void> {
    if (this.#readPos === this.#readLen) { this.#readPos = this.#readLen = 0; return }
    const pos = this.position
    this.#readPos = this.#readLen = 0
    this.#filePos = (await this.#call('Seek', { handle: this.#handle, offset: pos, origin: 'Begin' })).position
  }

  #needWrite (): void {
    if (this.access === 'Read') throw new MetaosError('NOT_SUPPORTED', `${this.path}: the stream was opened without write access`)
  }

  #needRead (): void {
    if (this.access === 'Write') throw new MetaosError('NOT_SUPPORTED', `${this.path}: the stream was opened without read access`)
  }

  /** Writes one byte; a full buffer becomes one Write syscall. */
  async writeByte (value: number): Promise<void> {
    this.#enter()
    try {
      this.#needWrite()
      if (this.#readLen !== 0) await this.#dropReadAhead()
      if (this.bufferSize === 0) { this.#buf[0] = value; await this.#writeThrough(this.#buf.subarray(0, 1)); return }
      this.#buf[this.#writePos++] = value
      if (this.#writePos === this.bufferSize) await this.#flushWrite()
    } finally { this.#busy = false }
  }

  /** Writes `count` bytes of `buffer` from `offset`. */
  async write (buffer: Uint8Array, offset = 0, count = buffer.length - offset): Promise<void> {
    await this.#guard(async () => {
      this.#needWrite()
      checkRange(buffer, offset, count)
      if (this.#readLen !== 0) await this.#dropReadAhead()
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

  /** Reads one byte, or -1 at the end of the file; an empty buffer is refilled by one Read syscall. */
  async readByte (): Promise<number> {
    this.#enter()
    try {
      if (this.#readPos < this.#readLen) return this.#buf[this.#readPos++]!
      this.#needRead()
      await this.#flushWrite()
      const n = await this.#fill(Math.max(this.bufferSize, 1))
      return n === 0 ? -1 : this.#buf[this.#readPos++]!
    } finally { this.#busy = false }
  }

  async #fill (count: number): Promise<number> {
    const r = await this.#call('Read', { handle: this.#handle, count })
    this.#filePos += r.data.length
    this.stats.bytesRead += r.data.length
    r.data.copy(this.#buf, 0)
    this.#readPos = 0
    this.#readLen = r.data.length
    return r.data.length
  }

  /** Reads up to `count` bytes into `buffer` at `offset`; returns how many (0 at the end of the file). */
  async read (buffer: Uint8Array, offset = 0, count = buffer.length - offset): Promise<number> {
    return await this.#guard(async () => {
      this.#needRead()
      checkRange(buffer, offset, count)
      await this.#flushWrite()
      if (count === 0) return 0
      let avail = this.#readLen - this.#readPos
      if (avail === 0) {
        if (count >= this.bufferSize) {
          // Large reads bypass the buffer, as .NET does.
          const r = await this.#call('Read', { handle: this.#handle, count: Math.min(count, MAX_BLOCK) })
          this.#filePos += r.data.length
          this.stats.bytesRead += r.data.length
          buffer.set(r.data, offset)
          return r.data.length
        }
        avail = await this.#fill(this.bufferSize)
        if (avail === 0) return 0
      }
      const n = Math.min(avail, count)
      buffer.set(this.#buf.subarray(this.#readPos, this.#readPos + n), offset)
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
      this.#readPos = this.#readLen = 0
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
      if (this.#readLen !== 0) await this.#dropReadAhead()
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
      await this.#call('Close', { handle: this.#handle }).catch((e: unknown) => {
        // A handle the domain already reaped is closed all the same.
        if (!(e instanceof MetaosError && e.code === 'INVALID_HANDLE')) throw e
      })
    }
  }

  async [Symbol.asyncDispose] (): Promise<void> { await this.close() }

  /** A Node Readable of the rest of the file (for `stream.pipeline`); closes the FileStream at the end unless `autoClose` is false. */
  readable (options: { highWaterMark?: number, autoClose?: boolean } = {}): Readable {
    const chunk = options.highWaterMark ?? Math.max(this.bufferSize, 64 * 1024)
    const autoClose = options.autoClose ?? true
    const readable: Readable = new Readable({
      highWaterMark: chunk,
      read: (size) => {
        const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), MAX_BLOCK))
        this.read(buf).then((n) => {
          if (n > 0) { readable.push(buf.subarray(0, n)); return }
          const end = (): void => { readable.push(null) }
          if (autoClose) this.close().then(end, (e: unknown) => { readable.destroy(e as Error) })
          else end()
        }, (e: unknown) => { readable.destroy(e as Error) })
      },
      destroy: (err, cb) => { if (autoClose && !this.#closed && !this.#busy) this.close().then(() => { cb(err) }, () => { cb(err) }); else cb(err) },
    })
    return readable
  }

  /** A Node Writable into the file (for `stream.pipeline`); flushes and closes the FileStream when it finishes unless `autoClose` is false. */
  writable (options: { autoClose?: boolean } = {}): Writable {
    const autoClose = options.autoClose ?? true
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => { this.write(chunk).then(() => { cb() }, cb) },
      final: (cb) => { (autoClose ? this.close() : this.flush()).then(() => { cb() }, cb) },
    })
  }
}

function checkRange (buffer: Uint8Array, offset: number, count: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > buffer.length) {
    throw new MetaosError('INVALID_ARGUMENT', `offset ${offset} and count ${count} do not fit a buffer of ${buffer.length}`)
  }
}
