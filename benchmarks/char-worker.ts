// A child process of the char suite (char-suite.ts): it imports `FileStream` from the build it is
// given (this one, or another build's dist for a before/after comparison) and measures the cases
// its parent sends, one at a time, over IPC. The loops are the ones an application of either build
// writes: a promise is awaited only when writeByte/readByte return one (a build where they always
// do awaits every byte). Reads check their bytes (SHA-256) outside the timed part.
import { closeSync, openSync, readSync, writeSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { pathToFileURL } from 'node:url'
import { join } from 'node:path'

export interface CharCase {
  /** 'bare': node:fs with a JS buffer of the same size and no FileStream (the floor of the loop). */
  readonly hosting: 'local' | 'net.uds' | 'bus' | 'http' | 'bare'
  readonly destination: string
  readonly path: string
  readonly op: 'write' | 'read'
  readonly mode: 'char' | 'block'
  readonly exceptionLess: boolean
  readonly cacheBytes: number
  /** The block of read()/write() calls in block mode. */
  readonly blockBytes: number
  /** Writes: the data's file (read once); reads: the SHA-256 expected. */
  readonly source: string
  readonly sha256: string
}

export interface CharSample { readonly ms: number, readonly calls: number, readonly bytes: number }

interface Stream {
  writeByte: (b: number) => void | Promise<void>
  readByte: () => number | Promise<number>
  write: (b: Uint8Array, o?: number, c?: number) => Promise<void>
  read: (b: Uint8Array, o?: number, c?: number) => Promise<number>
  close: () => Promise<void>
  readonly stats: { calls: number }
}
interface Api { FileStream: { open: (p: string, o: object) => Promise<Stream> }, closeAll: () => Promise<void> }

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
let api: Api
const sources = new Map<string, Buffer>()

function source (file: string): Buffer {
  let b = sources.get(file)
  if (b === undefined) {
    const fd = openSync(file, 'r')
    const chunks: Buffer[] = []
    for (let n = 1; n > 0;) { const c = Buffer.allocUnsafe(1 << 20); n = readSync(fd, c, 0, c.length, null); if (n > 0) chunks.push(c.subarray(0, n)) }
    closeSync(fd)
    sources.set(file, b = Buffer.concat(chunks))
  }
  return b
}

/**
 * The application's loops, as it writes them. Each case runs its own copy, compiled from this
 * source once per case: V8 keeps what it learned (types, deoptimizations) per function, and in one
 * loop shared by every case a local case ran at a seventh of its speed after a remote one had
 * deoptimized the loop (a promise every 512 B, then none).
 */
const LOOPS = {
  writeChar: 'return async function writeChar (fs, data) { for (let j = 0; j < data.length; j++) { const p = fs.writeByte(data[j]); if (p !== undefined) await p } }',
  writeBlock: 'return async function writeBlock (fs, data, block) { for (let j = 0; j < data.length; j += block) await fs.write(data, j, Math.min(block, data.length - j)) }',
  readChar: 'return async function readChar (fs, back) { let n = 0; for (;;) { let b = fs.readByte(); if (typeof b !== "number") b = await b; if (b < 0) return n; back[n++] = b } }',
  readBlock: 'return async function readBlock (fs, back, block) { let n = 0; for (let k = await fs.read(back, n, block); k > 0; k = await fs.read(back, n, Math.min(block, back.length - n))) n += k; return n }',
} as const
type Loop = (fs: Stream, data: Buffer, block: number) => Promise<number | undefined>
const loops = new Map<string, Loop>()

/** The case's own copy of its loop. */
function loopOf (c: CharCase, kind: keyof typeof LOOPS): Loop {
  const key = `${c.hosting} ${c.destination} ${c.op} ${c.mode} ${c.exceptionLess} ${c.cacheBytes}`
  let f = loops.get(key)
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- a fresh function per case, on purpose (above)
  if (f === undefined) loops.set(key, f = (new Function(LOOPS[kind]) as () => Loop)())
  return f
}

async function writeCase (c: CharCase): Promise<CharSample> {
  const data = source(c.source)
  const loop = loopOf(c, c.mode === 'char' ? 'writeChar' : 'writeBlock')
  const t0 = performance.now()
  const fs = await api.FileStream.open(c.path, { mode: 'Create', access: 'Write', bufferSize: c.cacheBytes, destination: c.destination, exceptionLess: c.exceptionLess })
  await loop(fs, data, c.blockBytes)
  await fs.close()
  return { ms: performance.now() - t0, calls: fs.stats.calls, bytes: data.length }
}

async function readCase (c: CharCase): Promise<CharSample> {
  const back = Buffer.allocUnsafe(source(c.source).length + 1)
  const loop = loopOf(c, c.mode === 'char' ? 'readChar' : 'readBlock')
  const t0 = performance.now()
  const fs = await api.FileStream.open(c.path, { mode: 'Open', access: 'Read', bufferSize: c.cacheBytes, destination: c.destination, exceptionLess: c.exceptionLess })
  const n = (await loop(fs, back, c.blockBytes))!
  await fs.close()
  const ms = performance.now() - t0
  if (sha(back.subarray(0, n)) !== c.sha256) throw new Error(`${c.hosting} ${c.mode} read: ${n} bytes, not the file's`)
  return { ms, calls: fs.stats.calls, bytes: n }
}

/** node:fs alone: the same loops over a JS buffer of the cache size, one read(2)/write(2) per buffer. */
function bareCase (c: CharCase): CharSample {
  const data = source(c.source)
  const buf = Buffer.allocUnsafe(c.cacheBytes)
  let calls = 0
  const t0 = performance.now()
  if (c.op === 'write') {
    const fd = openSync(c.path, 'w')
    let pos = 0
    for (let j = 0; j < data.length; j++) { buf[pos++] = data[j]!; if (pos === buf.length) { writeSync(fd, buf, 0, pos); calls++; pos = 0 } }
    if (pos > 0) { writeSync(fd, buf, 0, pos); calls++ }
    closeSync(fd)
    return { ms: performance.now() - t0, calls, bytes: data.length }
  }
  const back = Buffer.allocUnsafe(data.length)
  const fd = openSync(c.path, 'r')
  let n = 0
  for (let len = readSync(fd, buf, 0, buf.length, null); len > 0; len = readSync(fd, buf, 0, buf.length, null)) {
    calls++
    for (let i = 0; i < len; i++) back[n++] = buf[i]!
  }
  closeSync(fd)
  const ms = performance.now() - t0
  if (sha(back.subarray(0, n)) !== c.sha256) throw new Error('bare read: not the file\'s bytes')
  return { ms, calls: calls + 1, bytes: n }
}

async function run (c: CharCase): Promise<CharSample> {
  if (c.hosting === 'bare') return bareCase(c)
  return c.op === 'write' ? await writeCase(c) : await readCase(c)
}

if (process.send !== undefined) {
  const dist = process.argv[2] ?? join(import.meta.dirname, '..')
  api = await import(pathToFileURL(join(dist, 'index.js')).href) as Api
  process.on('message', (m: { case?: CharCase, end?: boolean }) => {
    if (m.end === true) { void api.closeAll().finally(() => { process.disconnect() }); return }
    run(m.case!).then((sample) => { process.send!({ sample }) }, (e: unknown) => { process.send!({ error: String((e as Error).stack ?? e) }) })
  })
  process.send({ ready: true })
}
