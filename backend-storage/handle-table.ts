// Open handles of one storage engine: unguessable ids bound to the caller that opened them,
// .NET FileShare checks between handles of the same file, per-caller and total limits, one
// operation at a time per handle (positions stay consistent), and reaping of idle handles.
import { close as fsClose } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { MetaosError } from '../soap-runtime/errors.js'
import type { FileAccess, FileShare } from '../wsdl/generated/storage-service.js'
import { compatible } from '../coordination/file-share.js'

export interface OpenFile {
  readonly id: string
  readonly owner: string
  /** The descriptor; -1 while the volume is released (volume-gate.ts: a VM domain's live migration). */
  fd: number
  readonly realPath: string
  readonly access: FileAccess
  readonly share: FileShare
  /** Append mode: position may not go below the length the file had when opened. */
  readonly appendFloor: number | undefined
  /** Awaited once when the handle goes, after its descriptor closed (its registration across the volume, with coordination). */
  readonly release?: (() => Promise<void>) | undefined
  position: number
  lastUsed: number
  tail: Promise<unknown>
  busy: number
}

export interface HandleLimits {
  maxHandles: number
  maxHandlesPerCaller: number
  idleMs: number
  /** A caller's own limit (an authenticated identity's), below maxHandlesPerCaller; undefined = that. */
  limitFor?: (owner: string) => number | undefined
}

export const DEFAULT_HANDLE_LIMITS: HandleLimits = { maxHandles: 8192, maxHandlesPerCaller: 1024, idleMs: 10 * 60_000 }

export class HandleTable {
  readonly #byId = new Map<string, OpenFile>()
  readonly #byPath = new Map<string, Set<OpenFile>>()
  readonly #perCaller = new Map<string, number>()
  readonly #limits: HandleLimits
  readonly #timer: NodeJS.Timeout

  constructor (limits: Partial<HandleLimits> = {}) {
    this.#limits = { ...DEFAULT_HANDLE_LIMITS, ...limits }
    this.#timer = setInterval(() => { this.reapIdle() }, Math.max(1000, Math.min(this.#limits.idleMs / 4, 60_000)))
    this.#timer.unref()
  }

  get size (): number { return this.#byId.size }

  /** Every open handle. */
  values (): IterableIterator<OpenFile> { return this.#byId.values() }

  /** Throws SHARING_VIOLATION or QUOTA_EXCEEDED if a handle with this access could not be added. */
  checkOpen (realPath: string, access: FileAccess, share: FileShare, owner: string): void {
    if (this.#byId.size >= this.#limits.maxHandles) throw new MetaosError('QUOTA_EXCEEDED', `the domain has ${this.#byId.size} open handles, its limit`)
    const limit = Math.min(this.#limits.maxHandlesPerCaller, this.#limits.limitFor?.(owner) ?? Infinity)
    if ((this.#perCaller.get(owner) ?? 0) >= limit) throw new MetaosError('QUOTA_EXCEEDED', `this caller has ${limit} open handles, its limit`)
    for (const other of this.#byPath.get(realPath) ?? []) {
      if (!compatible(access, share, other)) throw new MetaosError('SHARING_VIOLATION', `the file is open elsewhere with access ${other.access} and share ${other.share}`)
    }
  }

  /** Throws SHARING_VIOLATION when an open handle does not admit deleting the file. */
  checkDelete (realPath: string): void {
    for (const other of this.#byPath.get(realPath) ?? []) {
      if (other.share !== 'Delete') throw new MetaosError('SHARING_VIOLATION', 'the file is open without FileShare.Delete')
    }
  }

  add (f: Omit<OpenFile, 'id' | 'lastUsed' | 'tail' | 'busy'>): OpenFile {
    const entry: OpenFile = { ...f, id: randomBytes(24).toString('base64url'), lastUsed: Date.now(), tail: Promise.resolve(), busy: 0 }
    this.#byId.set(entry.id, entry)
    let set = this.#byPath.get(entry.realPath)
    if (set === undefined) this.#byPath.set(entry.realPath, set = new Set())
    set.add(entry)
    this.#perCaller.set(entry.owner, (this.#perCaller.get(entry.owner) ?? 0) + 1)
    return entry
  }

  /** The caller's handle, or INVALID_HANDLE (also for someone else's handle: existence is not revealed). */
  get (id: string, owner: string): OpenFile {
    const f = this.#byId.get(id)
    if (f === undefined || f.owner !== owner) throw new MetaosError('INVALID_HANDLE', 'unknown, closed or foreign handle')
    return f
  }

  /** Runs `fn` after every earlier operation on the same handle. */
  async run<T> (f: OpenFile, fn: () => Promise<T>): Promise<T> {
    f.busy++
    const p = f.tail.then(fn, fn)
    f.tail = p.catch(() => undefined)
    try {
      return await p
    } finally {
      f.busy--
      f.lastUsed = Date.now()
    }
  }

  /** Removes the handle and closes its descriptor. */
  async remove (f: OpenFile): Promise<void> {
    if (!this.#byId.delete(f.id)) return
    const set = this.#byPath.get(f.realPath)
    set?.delete(f)
    if (set?.size === 0) this.#byPath.delete(f.realPath)
    const n = (this.#perCaller.get(f.owner) ?? 1) - 1
    if (n === 0) this.#perCaller.delete(f.owner)
    else this.#perCaller.set(f.owner, n)
    await new Promise<void>((resolve) => { fsClose(f.fd, () => { resolve() }) })
    await f.release?.()
  }

  reapIdle (now = Date.now()): number {
    let n = 0
    for (const f of this.#byId.values()) {
      if (f.busy === 0 && now - f.lastUsed > this.#limits.idleMs) { void this.remove(f); n++ }
    }
    return n
  }

  async closeAll (): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all([...this.#byId.values()].map(async (f) => { await f.tail; await this.remove(f) }))
  }
}
