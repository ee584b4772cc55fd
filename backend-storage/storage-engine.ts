// The storage syscalls themselves, over node:fs: Open/Read/Write/Seek/Flush/SetLength/GetLength/
// Close/Delete/GetFileInfo/ListDirectory with .NET FileStream semantics. Used by a domain's
// service (paths confined to its root) and by the frontend's local handler (the app's own kernel),
// so both behave alike. Knows nothing of SOAP or transports.
import { close as fsClose, constants, fdatasync, fstat, ftruncate, lstat, open, read, readSync, write, writeSync } from 'node:fs'
import { lstat as lstatP, readdir, stat as statP, unlink } from 'node:fs/promises'
import { basename } from 'node:path'
import { promisify } from 'node:util'
import { MetaosError, fromSystemError } from '../soap-runtime/errors.js'
import type * as S from '../wsdl/generated/storage-service.js'
import { HandleTable, type HandleLimits, type OpenFile } from './handle-table.js'
import type { PathPolicy } from './path-policy.js'
import type { StreamFence } from './fencing.js'
import type { OpenRegistrar } from './volume-shares.js'

const openP = promisify(open)
const fstatP = promisify(fstat)
const lstatCb = promisify(lstat)
const ftruncateP = promisify(ftruncate)
const fdatasyncP = promisify(fdatasync)

function readP (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => { read(fd, buf, off, len, pos, (e, n) => { e === null ? resolve(n) : reject(e) }) })
}
function closeFd (fd: number): Promise<void> {
  return new Promise((resolve) => { fsClose(fd, () => { resolve() }) })
}
function writeP (fd: number, buf: Buffer, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => { write(fd, buf, off, len, pos, (e, n) => { e === null ? resolve(n) : reject(e) }) })
}

export interface EngineLimits extends HandleLimits {
  /** Largest count a single Read may ask for. */
  maxReadBytes: number
  /** Most entries ListDirectory returns. */
  maxListEntries: number
}

export const DEFAULT_ENGINE_LIMITS: Omit<EngineLimits, keyof HandleLimits> = { maxReadBytes: 16 * 1024 * 1024, maxListEntries: 100_000 }

const ACCESS_FLAGS: Record<S.FileAccess, number> = { Read: constants.O_RDONLY, Write: constants.O_WRONLY, ReadWrite: constants.O_RDWR }
const MODE_FLAGS: Record<S.FileMode, number> = {
  CreateNew: constants.O_CREAT | constants.O_EXCL,
  Create: constants.O_CREAT | constants.O_TRUNC,
  Open: 0,
  OpenOrCreate: constants.O_CREAT,
  Truncate: constants.O_TRUNC,
  Append: constants.O_CREAT,
}

export class StorageEngine {
  readonly #paths: PathPolicy
  readonly #handles: HandleTable
  readonly #limits: EngineLimits
  /** Fencing and stream epochs (fencing.ts): checked right before each handle operation's system call. */
  readonly #fence: StreamFence | undefined
  /** With coordination: every open registered across the volume's domains (volume-shares.ts). */
  readonly #shares: OpenRegistrar | undefined

  constructor (paths: PathPolicy, limits: Partial<EngineLimits> = {}, fence?: StreamFence, shares?: OpenRegistrar) {
    this.#paths = paths
    this.#fence = fence
    this.#shares = shares
    this.#handles = new HandleTable(limits)
    this.#limits = { ...DEFAULT_ENGINE_LIMITS, ...limits } as EngineLimits
  }

  get openHandles (): number { return this.#handles.size }

  async open (i: S.Open, caller: string): Promise<S.OpenResponse> {
    const { mode, access, share } = i
    if (access === 'Read' && mode !== 'Open' && mode !== 'OpenOrCreate') throw new MetaosError('INVALID_ARGUMENT', `FileMode.${mode} needs write access`)
    if (mode === 'Append' && access !== 'Write') throw new MetaosError('INVALID_ARGUMENT', 'FileMode.Append works only with FileAccess.Write')
    const what = this.#paths.describe(i.path)
    const real = await this.#paths.resolve(i.path, mode === 'Open' || mode === 'Truncate')
    this.#handles.checkOpen(real, access, share, caller)
    // Across the volume (coordination), before open(2) — a Create or Truncate writes — but beside
    // the lstat, which has no effect: the stream's epoch is checked meanwhile too (with coordination
    // it may read the stream directory). What the lstat refuses is refused first, and unregistered.
    const admitted = this.#admitOpen(i, real, caller)
    admitted.catch(() => {}) // handled below, once the lstat is done
    try {
      await this.#checkRegular(real, what)
    } catch (e) {
      void admitted.then((r) => r?.release(), () => {})
      throw e
    }
    const registered = await admitted
    let fd: number
    try {
      this.#fence?.checkLease()
      fd = await openP(real, ACCESS_FLAGS[access] | MODE_FLAGS[mode] | constants.O_NOFOLLOW, 0o644)
    } catch (e) {
      void registered?.release()
      throw fromSystemError(e, what)
    }
    let size: number
    try {
      const st = await fstatP(fd)
      if (!st.isFile()) throw new MetaosError('ACCESS_DENIED', `${what} is not a regular file`)
      size = st.size
    } catch (e) {
      void registered?.release()
      await closeFd(fd)
      throw fromSystemError(e, what)
    }
    const append = mode === 'Append'
    // Re-check sharing: another Open of the same file may have completed while this one waited.
    try { this.#handles.checkOpen(real, access, share, caller) } catch (e) { void registered?.release(); await closeFd(fd); throw e }
    const f = this.#handles.add({ owner: caller, fd, realPath: real, access, share, appendFloor: append ? size : undefined, position: append ? size : 0, release: registered?.release })
    this.#fence?.opened(f, i.stream, i.epoch, caller)
    return { handle: f.id, length: size, position: f.position }
  }

  /** Refuses directories, FIFOs and devices before open(2) (opening a FIFO would block a thread); a file not there yet passes. */
  async #checkRegular (real: string, what: string): Promise<void> {
    try {
      const st = await lstatCb(real)
      if (st.isDirectory()) throw new MetaosError('ACCESS_DENIED', `${what} is a directory`)
      if (!st.isFile()) throw new MetaosError('ACCESS_DENIED', `${what} is not a regular file`)
    } catch (e) {
      if (e instanceof MetaosError) throw e
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fromSystemError(e, what)
    }
  }

  /**
   * An Open's checks that may wait for etcd, side by side: the fence's (lease, the stream's epoch)
   * and the open's registration across the volume. Either refused: nothing stays registered, and
   * the epoch's fault is the one reported.
   */
  async #admitOpen (i: S.Open, real: string, caller: string): Promise<{ release: () => Promise<void> } | undefined> {
    const admitted = this.#fence?.admitOpen(i.stream, i.epoch, caller)
    if (this.#shares === undefined) { await admitted; return undefined }
    const [fenced, reg] = await Promise.allSettled([admitted, this.#shares.register(real, i.access, i.share, i.stream, caller)])
    if (fenced.status === 'fulfilled' && reg.status === 'fulfilled') return reg.value
    if (reg.status === 'fulfilled') void reg.value.release()
    throw fenced.status === 'rejected' ? fenced.reason : (reg as PromiseRejectedResult).reason
  }

  #forRead (i: S.Read, caller: string): OpenFile {
    const f = this.#handles.get(i.handle, caller)
    if (i.count < 0) throw new MetaosError('INVALID_ARGUMENT', `count ${i.count} is negative`)
    if (i.count > this.#limits.maxReadBytes) throw new MetaosError('MESSAGE_TOO_LARGE', `count ${i.count} is over the per-call limit of ${this.#limits.maxReadBytes} bytes`)
    if (f.access === 'Write') throw new MetaosError('ACCESS_DENIED', 'the handle was opened without read access')
    return f
  }

  #forWrite (i: S.Write, caller: string): OpenFile {
    const f = this.#handles.get(i.handle, caller)
    if (f.access === 'Read') throw new MetaosError('ACCESS_DENIED', 'the handle was opened without write access')
    return f
  }

  async read (i: S.Read, caller: string): Promise<S.ReadResponse> {
    const f = this.#forRead(i, caller)
    return await this.#run(f, 'Read', i.epoch, async () => {
      const buf = Buffer.allocUnsafe(i.count)
      let n = 0
      try {
        while (n < i.count) {
          const got = await readP(f.fd, buf, n, i.count - n, f.position + n)
          if (got === 0) break
          n += got
        }
      } catch (e) { throw fromSystemError(e, 'Read') }
      f.position += n
      return { data: n === i.count ? buf : buf.subarray(0, n), eof: n < i.count }
    })
  }

  async write (i: S.Write, caller: string): Promise<S.WriteResponse> {
    const f = this.#forWrite(i, caller)
    return await this.#run(f, 'Write', i.epoch, async () => {
      const data = i.data
      let n = 0
      try {
        while (n < data.length) n += await writeP(f.fd, data, n, data.length - n, f.position + n)
      } catch (e) { throw fromSystemError(e, 'Write') }
      f.position += n
      return { written: n, position: f.position }
    })
  }

  /**
   * Read and Write at once, with a synchronous read(2)/write(2), when nothing is queued on the handle
   * (the local kernel under a FileStream's ReadByte/WriteByte, synchronous as .NET's); undefined when
   * something is, and then nothing was done. Same checks (the fence's too), results and faults as read and write.
   */
  readNow (i: S.Read, caller: string): S.ReadResponse | undefined {
    const f = this.#forRead(i, caller)
    if (f.busy !== 0) return undefined
    this.#fence?.admit(f, 'Read', i.epoch)
    const buf = Buffer.allocUnsafe(i.count)
    let n = 0
    try {
      for (let got = -1; n < i.count && got !== 0; n += got) got = readSync(f.fd, buf, n, i.count - n, f.position + n)
    } catch (e) { throw fromSystemError(e, 'Read') }
    f.position += n
    f.lastUsed = Date.now()
    return { data: n === i.count ? buf : buf.subarray(0, n), eof: n < i.count }
  }

  writeNow (i: S.Write, caller: string): S.WriteResponse | undefined {
    const f = this.#forWrite(i, caller)
    if (f.busy !== 0) return undefined
    this.#fence?.admit(f, 'Write', i.epoch)
    const data = i.data
    let n = 0
    try {
      while (n < data.length) n += writeSync(f.fd, data, n, data.length - n, f.position + n)
    } catch (e) { throw fromSystemError(e, 'Write') }
    f.position += n
    f.lastUsed = Date.now()
    return { written: n, position: f.position }
  }

  async seek (i: S.Seek, caller: string): Promise<S.SeekResponse> {
    const f = this.#handles.get(i.handle, caller)
    return await this.#run(f, 'Seek', i.epoch, async () => {
      const base = i.origin === 'Begin' ? 0 : i.origin === 'Current' ? f.position : (await this.#size(f))
      const next = base + i.offset
      if (next < 0) throw new MetaosError('INVALID_ARGUMENT', `seek to ${next}, before the start of the file`)
      if (!Number.isSafeInteger(next)) throw new MetaosError('INVALID_ARGUMENT', `seek to ${next} is beyond ±2^53`)
      if (f.appendFloor !== undefined && next < f.appendFloor) throw new MetaosError('INVALID_ARGUMENT', 'in Append mode a stream cannot seek back over data the file had when opened')
      f.position = next
      return { position: next }
    })
  }

  async flush (i: S.Flush, caller: string): Promise<S.FlushResponse> {
    const f = this.#handles.get(i.handle, caller)
    return await this.#run(f, 'Flush', i.epoch, async () => {
      // Writes reach the kernel at once (no buffer here): only stable storage needs a call.
      if (i.flushToDisk && f.access !== 'Read') { try { await fdatasyncP(f.fd) } catch (e) { throw fromSystemError(e, 'Flush') } }
      return {}
    })
  }

  async setLength (i: S.SetLength, caller: string): Promise<S.SetLengthResponse> {
    const f = this.#handles.get(i.handle, caller)
    if (i.length < 0) throw new MetaosError('INVALID_ARGUMENT', `length ${i.length} is negative`)
    if (f.access === 'Read') throw new MetaosError('ACCESS_DENIED', 'the handle was opened without write access')
    if (f.appendFloor !== undefined && i.length < f.appendFloor) throw new MetaosError('INVALID_ARGUMENT', 'in Append mode a stream cannot cut data the file had when opened')
    return await this.#run(f, 'SetLength', i.epoch, async () => {
      try { await ftruncateP(f.fd, i.length) } catch (e) { throw fromSystemError(e, 'SetLength') }
      if (f.position > i.length) f.position = i.length
      return {}
    })
  }

  async getLength (i: S.GetLength, caller: string): Promise<S.GetLengthResponse> {
    const f = this.#handles.get(i.handle, caller)
    return await this.#run(f, 'GetLength', i.epoch, async () => ({ length: await this.#size(f) }))
  }

  async close (i: S.Close, caller: string): Promise<S.CloseResponse> {
    const f = this.#handles.get(i.handle, caller)
    await this.#run(f, 'Close', i.epoch, async () => { await this.#handles.remove(f) })
    return {}
  }

  async delete (i: S.Delete): Promise<S.DeleteResponse> {
    const what = this.#paths.describe(i.path)
    const real = await this.#paths.resolve(i.path, true)
    const st = await lstatP(real).catch((e: unknown) => { throw fromSystemError(e, what) })
    if (st.isDirectory()) throw new MetaosError('ACCESS_DENIED', `${what} is a directory`)
    this.#handles.checkDelete(real)
    await this.#shares?.checkDelete(real)
    try { await unlink(real) } catch (e) { throw fromSystemError(e, what) }
    return {}
  }

  async getFileInfo (i: S.GetFileInfo): Promise<S.GetFileInfoResponse> {
    let real: string
    try {
      real = await this.#paths.resolve(i.path, true)
    } catch (e) {
      if (e instanceof MetaosError && e.code === 'FILE_NOT_FOUND') return { exists: false, isDirectory: false, length: 0, lastWriteTime: new Date(0) }
      throw e
    }
    const st = await statP(real).catch((e: unknown) => { throw fromSystemError(e, this.#paths.describe(i.path)) })
    return { exists: true, isDirectory: st.isDirectory(), length: st.isDirectory() ? 0 : st.size, lastWriteTime: st.mtime }
  }

  async listDirectory (i: S.ListDirectory): Promise<S.ListDirectoryResponse> {
    const what = this.#paths.describe(i.path)
    const real = await this.#paths.resolve(i.path, true)
    const entries = await readdir(real, { withFileTypes: true }).catch((e: unknown) => { throw fromSystemError(e, what) })
    if (entries.length > this.#limits.maxListEntries) throw new MetaosError('MESSAGE_TOO_LARGE', `${what} holds ${entries.length} entries, over the limit of ${this.#limits.maxListEntries}`)
    const entry = await Promise.all(entries.map(async (d) => {
      // lstat: a symlink is listed as itself, never followed out of the root.
      const st = await lstatP(`${real}/${d.name}`).catch(() => undefined)
      return { name: basename(d.name), isDirectory: d.isDirectory(), length: st !== undefined && st.isFile() ? st.size : 0 }
    }))
    entry.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    return { entry }
  }

  /**
   * A handle operation, after the ones before it on the handle, through the fence right before its
   * system call. One queued behind a Close finds the handle gone (INVALID_HANDLE): its descriptor is
   * closed, and its number may already serve another file.
   */
  async #run<T> (f: OpenFile, op: string, epoch: number | undefined, fn: () => Promise<T>): Promise<T> {
    return await this.#handles.run(f, async () => {
      if (op !== 'Close') this.#handles.get(f.id, f.owner)
      this.#fence?.admit(f, op, epoch)
      return await fn()
    })
  }

  async #size (f: OpenFile): Promise<number> {
    try { return (await fstatP(f.fd)).size } catch (e) { throw fromSystemError(e, 'GetLength') }
  }

  /**
   * Closes every handle's descriptor and keeps the handle (id, position, access): the volume may be
   * unmounted meanwhile (volume-gate.ts). Waits for each handle's operations under way.
   */
  async releaseDescriptors (): Promise<void> {
    await Promise.all([...this.#handles.values()].map(async (f) => {
      await f.tail
      const fd = f.fd
      f.fd = -1
      if (fd >= 0) await closeFd(fd)
    }))
  }

  /** Opens each handle's file again (its access, no create, no truncate); a file gone meanwhile leaves its handle failing with EBADF. */
  async reacquireDescriptors (): Promise<void> {
    await Promise.all([...this.#handles.values()].map(async (f) => {
      if (f.fd >= 0) return
      try { f.fd = await openP(f.realPath, ACCESS_FLAGS[f.access] | constants.O_NOFOLLOW) } catch { /* the handle's calls fail with EBADF */ }
    }))
  }

  /** Closes every handle (domain shutdown). */
  async closeAll (): Promise<void> { await this.#handles.closeAll() }
}
