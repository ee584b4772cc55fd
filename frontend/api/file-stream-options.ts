// A FileStream's public types and options (shaped like .NET's enums and FileStream constructor),
// checked: what `FileStream.open` is given, and the exception-less parts it loads when asked.
import { MetaosError } from '../../soap-runtime/errors.js'
import type * as S from '../../wsdl/generated/storage-service.js'
import type { StorageHandler } from '../handlers/storage-handler.js'
// Types only: the frontend (discovery, PMT, dispatcher, supervisor) is loaded by the first 'discover'.
import type { SharedFrontendOptions } from '../assembly/intelligent-frontend.js'
import type { PipelineLimits, WritePipeline } from './write-pipeline.js'
import type { ReadAheadLimits } from './read-ahead.js'
import type { ReadAheadOf } from './block-reader.js'

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
   * `unix:/path.sock`, `http+unix://…`), or any StorageHandler.
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

/** What `open` does, from the options: checked, defaults filled, exception-less parts loaded (by the first stream that asks). */
export async function openParameters (options: FileStreamOptions): Promise<{ input: S.Open, bufferSize: number, bytes: number | undefined, Pipeline: typeof WritePipeline | undefined, readAhead: ReadAheadOf | undefined, limits: Partial<PipelineLimits & ReadAheadLimits> }> {
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
  return { input: { path: '', mode, access, share: options.share ?? 'Read' }, bufferSize: bufferSize <= 1 ? 0 : bufferSize, bytes, Pipeline, readAhead: Ahead === undefined ? undefined : { Ahead, limits }, limits }
}

export function checkRange (buffer: Uint8Array, offset: number, count: number): void {
  if (!Number.isInteger(offset) || !Number.isInteger(count) || offset < 0 || count < 0 || offset + count > buffer.length) {
    throw new MetaosError('INVALID_ARGUMENT', `offset ${offset} and count ${count} do not fit a buffer of ${buffer.length}`)
  }
}
