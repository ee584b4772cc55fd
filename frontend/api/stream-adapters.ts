// A FileStream as Node streams, for `stream.pipeline`: a Readable of the rest of the file, a
// Writable into it. Each adapter calls the stream one operation at a time and closes it at the end
// unless told not to.
import { Readable, Writable } from 'node:stream'

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
