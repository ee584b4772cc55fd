// What a FileStream looks like from outside: .NET's shapes — the enums and the options of its
// constructor, checked (what `FileStream.open` is given, and the exception-less parts it loads when
// asked) — and Node's: a Readable of the rest of the file and a Writable into it, for
// `stream.pipeline`, each calling the stream one operation at a time and closing it at the end
// unless told not to.
import { Readable, Writable } from 'node:stream'
import { MetaosError } from '../../soap-runtime/errors.js'
import type * as S from '../../wsdl/generated/storage-service.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
// Types only: the frontend (discovery, PMT, dispatcher, supervisor) is loaded by the first 'discover'.
import type { SharedFrontendOptions } from '../assembly/intelligent-frontend.js'
import type { PipelineLimits, WritePipeline } from './write-pipeline.js'
import type { ReadAheadLimits } from './read-ahead.js'
import type { BlockReader, ReadAheadOf } from './block-reader.js'

export type FileMode = S.FileMode
export type FileAccess = S.FileAccess
export type FileShare = S.FileShare
export type SeekOrigin = S.SeekOrigin

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
   * Exception-less mode (FlexSC): Write calls are not awaited one by one but queued, coalesced
   * and sent in Batch calls; errors surface on the stream's next call. Sequential reads are read
   * ahead (Batch calls of Reads while the application consumes). `true`, or limits.
   */
  readonly exceptionLess?: boolean | Partial<PipelineLimits & ReadAheadLimits>
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
export const MAX_BLOCK = 8 * 1024 * 1024
/** Largest block a synchronous Read or Write of the local kernel moves (larger ones are awaited on the thread pool). */
export const MAX_SYNC = 1024 * 1024
export const NO_BYTES = Buffer.alloc(0)

/** Adds a call's times to a stream's stats. */
export function account (s: StreamStats, inv: { serviceMicros: number | undefined, totalMicros: number }): void {
  const service = Math.min(inv.serviceMicros ?? 0, inv.totalMicros)
  s.calls++
  s.serviceMicros += service
  s.channelMicros += inv.totalMicros - service
}

/** Why a stream cannot take an operation now, if it cannot. */
export function refusal (path: string, closed: boolean, busy: boolean): MetaosError | undefined {
  if (closed) return new MetaosError('STREAM_CLOSED', `${path}: the stream is closed`)
  if (busy) return new MetaosError('STREAM_BUSY', `${path}: another operation on this stream has not finished; await it first`)
  return undefined
}

export function unsupported (path: string, what: 'read' | 'write'): MetaosError {
  return new MetaosError('NOT_SUPPORTED', `${path}: the stream was opened without ${what} access`)
}

/** What `open` does, from the options: checked, defaults filled; the read path loaded by the first stream, exception-less parts by the first that asks. */
export async function openParameters (options: FileStreamOptions): Promise<{ input: S.Open, bufferSize: number, bytes: number | undefined, Reader: typeof BlockReader, Pipeline: typeof WritePipeline | undefined, readAhead: ReadAheadOf | undefined, limits: Partial<PipelineLimits & ReadAheadLimits> }> {
  const mode = options.mode ?? 'Open'
  const access = options.access ?? (mode === 'Append' ? 'Write' : 'ReadWrite')
  const bufferSize = options.bufferSize ?? 4096
  if (!Number.isInteger(bufferSize) || bufferSize < 0 || bufferSize > MAX_BLOCK) throw new MetaosError('INVALID_ARGUMENT', `bufferSize must be an integer from 0 to ${MAX_BLOCK}`)
  const bytes = options.expectedBytes
  if (bytes !== undefined && !(Number.isSafeInteger(bytes) && bytes >= 0)) throw new MetaosError('INVALID_ARGUMENT', `expectedBytes must be a whole number of bytes, not ${String(bytes)}`)
  const el = options.exceptionLess
  const limits = typeof el === 'object' ? el : {}
  const on = el !== undefined && el !== false
  const Pipeline = on && access !== 'Read' ? (await import('./write-pipeline.js')).WritePipeline : undefined
  const Ahead = on && access !== 'Write' && limits.readAheadBytes !== 0 ? (await import('./read-ahead.js')).ReadAhead : undefined
  const Reader = (await import('./block-reader.js')).BlockReader
  return { input: { path: '', mode, access, share: options.share ?? 'Read' }, bufferSize: bufferSize <= 1 ? 0 : bufferSize, bytes, Reader, Pipeline, readAhead: Ahead === undefined ? undefined : { Ahead, limits }, limits }
}

export function checkRange (buffer: Uint8Array, offset: number, count: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > buffer.length) {
    throw new MetaosError('INVALID_ARGUMENT', `offset ${offset} and count ${count} do not fit a buffer of ${buffer.length}`)
  }
}

/** What the adapters use of a FileStream. */
interface Stream {
  readonly closed: boolean
  read: (buffer: Uint8Array) => Promise<number>
  write: (buffer: Uint8Array) => Promise<void>
  flush: () => Promise<void>
  close: () => Promise<void>
}

export const streamAdapters = {
  readable (fs: Stream, busy: () => boolean, chunkSize: number, maxChunk: number, options: { highWaterMark?: number, autoClose?: boolean }): Readable {
    const chunk = options.highWaterMark ?? chunkSize
    const autoClose = options.autoClose ?? true
    const readable: Readable = new Readable({
      highWaterMark: chunk,
      read: (size) => {
        const buf = Buffer.allocUnsafe(Math.min(Math.max(size, 1), maxChunk))
        fs.read(buf).then((n) => {
          if (n > 0) { readable.push(buf.subarray(0, n)); return }
          const end = (): void => { readable.push(null) }
          if (autoClose) fs.close().then(end, (e: unknown) => { readable.destroy(e as Error) })
          else end()
        }, (e: unknown) => { readable.destroy(e as Error) })
      },
      destroy: (err, cb) => { if (autoClose && !fs.closed && !busy()) fs.close().then(() => { cb(err) }, () => { cb(err) }); else cb(err) },
    })
    return readable
  },

  writable (fs: Stream, options: { autoClose?: boolean }): Writable {
    const autoClose = options.autoClose ?? true
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => { fs.write(chunk).then(() => { cb() }, cb) },
      final: (cb) => { (autoClose ? fs.close() : fs.flush()).then(() => { cb() }, cb) },
    })
  },
}
