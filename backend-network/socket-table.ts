// The open handles of one network engine: unguessable ids bound to the caller that made them,
// limits on how many a caller and the whole domain hold (slots are reserved before a connect
// starts, so concurrent Connects cannot overshoot), and reaping of handles unused for too long.
// Also the two small concurrency tools every socket kind uses: a Lane (operations of one kind run
// one at a time, in order) and a Signal (wait for news with a timeout). Knows no socket type.
import { randomBytes } from 'node:crypto'
import { MetaosError } from '../soap-runtime/errors.js'
import { handleClosed } from './net-errors.js'

/** What a handle holds: a TCP connection, a UDP socket or a TCP listener. */
export interface Resource {
  readonly kind: 'tcp' | 'udp' | 'listener'
  /** Bytes received and not yet taken by the caller. */
  readonly bufferedBytes: number
  /** Releases every OS resource and wakes every waiter with INVALID_HANDLE; idempotent. */
  close: () => Promise<void>
  /** Calls waiting for news answer now, as at their timeout, and later ones do not wait (drain). */
  expireWaits: () => void
}

export interface Handle<R extends Resource = Resource> {
  readonly id: string
  readonly owner: string
  readonly resource: R
  lastUsed: number
  busy: number
}

export interface TableLimits {
  maxSockets: number
  maxSocketsPerCaller: number
  idleMs: number
  /** A caller's own limit (an authenticated identity's), below maxSocketsPerCaller; undefined = that. */
  limitFor?: (owner: string) => number | undefined
}

/** A slot counted against the limits while a socket is being made; commit it or release it. */
export interface Reservation {
  commit: <R extends Resource>(resource: R) => Handle<R>
  release: () => void
}

export class SocketTable {
  readonly #byId = new Map<string, Handle>()
  readonly #perCaller = new Map<string, number>()
  readonly #limits: TableLimits
  readonly #timer: NodeJS.Timeout
  #reserved = 0
  /** Sockets held outside the table (connections waiting for Accept): they count against maxSockets. */
  outside = 0

  constructor (limits: TableLimits) {
    this.#limits = limits
    this.#timer = setInterval(() => { this.reapIdle() }, Math.max(50, Math.min(limits.idleMs / 4, 60_000)))
    this.#timer.unref()
  }

  get size (): number { return this.#byId.size }
  handles (): IterableIterator<Handle> { return this.#byId.values() }

  /** True when the domain can hold one more socket of any kind. */
  hasRoom (): boolean { return this.#byId.size + this.#reserved + this.outside < this.#limits.maxSockets }

  /** Throws QUOTA_EXCEEDED when `owner` holds as many sockets as a caller may. */
  checkCaller (owner: string): void {
    const limit = Math.min(this.#limits.maxSocketsPerCaller, this.#limits.limitFor?.(owner) ?? Infinity)
    if ((this.#perCaller.get(owner) ?? 0) >= limit) throw new MetaosError('QUOTA_EXCEEDED', `this caller holds ${limit} sockets, its limit`)
  }

  /** Counts one more socket for `owner`, or throws QUOTA_EXCEEDED. */
  reserve (owner: string): Reservation {
    if (!this.hasRoom()) throw new MetaosError('QUOTA_EXCEEDED', `the domain holds ${this.#limits.maxSockets} sockets, its limit`)
    this.checkCaller(owner)
    this.#perCaller.set(owner, (this.#perCaller.get(owner) ?? 0) + 1)
    this.#reserved++
    let open = true
    const release = (): void => {
      if (!open) return
      open = false
      this.#reserved--
      this.#uncount(owner)
    }
    return {
      release,
      commit: (resource) => {
        if (!open) throw new Error('reservation used twice')
        open = false
        this.#reserved--
        const h = { id: randomBytes(24).toString('base64url'), owner, resource, lastUsed: Date.now(), busy: 0 }
        this.#byId.set(h.id, h)
        return h
      },
    }
  }

  #uncount (owner: string): void {
    const n = (this.#perCaller.get(owner) ?? 1) - 1
    if (n <= 0) this.#perCaller.delete(owner)
    else this.#perCaller.set(owner, n)
  }

  /** The caller's handle, or INVALID_HANDLE (also for another caller's: existence is not revealed). */
  get (id: string, owner: string): Handle {
    const h = this.#byId.get(id)
    if (h === undefined || h.owner !== owner) throw handleClosed()
    return h
  }

  /** Runs `fn` as a use of the handle: it is not idle while `fn` runs. */
  async use<T> (h: Handle, fn: () => Promise<T>): Promise<T> {
    h.busy++
    h.lastUsed = Date.now()
    try {
      return await fn()
    } finally {
      h.busy--
      h.lastUsed = Date.now()
    }
  }

  /** Forgets the handle and closes what it holds. */
  async remove (h: Handle): Promise<void> {
    if (this.#byId.get(h.id) !== h) return
    this.#byId.delete(h.id)
    this.#uncount(h.owner)
    await h.resource.close()
  }

  expireWaits (): void { for (const h of this.#byId.values()) h.resource.expireWaits() }

  reapIdle (now = Date.now()): number {
    let n = 0
    for (const h of this.#byId.values()) {
      if (h.busy === 0 && now - h.lastUsed > this.#limits.idleMs) { void this.remove(h); n++ }
    }
    return n
  }

  async closeAll (): Promise<void> {
    clearInterval(this.#timer)
    await Promise.all([...this.#byId.values()].map(async (h) => { await this.remove(h) }))
  }
}

/** Operations queued on a lane run one at a time, in arrival order, whatever each one's outcome. */
export class Lane {
  #tail: Promise<unknown> = Promise.resolve()
  async run<T> (fn: () => Promise<T>): Promise<T> {
    const p = this.#tail.then(fn, fn)
    this.#tail = p.catch(() => undefined)
    return await p
  }
}

interface Waiter { readonly done: (woken: boolean) => void, readonly fail: (e: Error) => void }

/** News for whoever waits: data arrived, the peer ended, a connection came in, the handle closed. */
export class Signal {
  readonly #waiters = new Set<Waiter>()
  /** Set by expire(): waits end at once, as if their deadline had passed. */
  expired = false

  /** Resolves true when woken, false when `ms` passed first; rejects when failed. */
  async wait (ms: number): Promise<boolean> {
    return await new Promise<boolean>((resolve, reject) => {
      const timer = setTimeout(() => { w.done(false) }, ms)
      const w: Waiter = {
        done: (woken) => { clearTimeout(timer); this.#waiters.delete(w); resolve(woken) },
        fail: (e) => { clearTimeout(timer); this.#waiters.delete(w); reject(e) },
      }
      this.#waiters.add(w)
    })
  }

  wake (): void { for (const w of [...this.#waiters]) w.done(true) }
  expire (): void { this.expired = true; this.wake() }
  fail (e: Error): void { for (const w of [...this.#waiters]) w.fail(e) }
}

/** Waits on `signal` until `ready()` returns a value or the deadline passes (then `undefined`). */
export async function waitFor<T> (signal: Signal, deadline: number, ready: () => T | undefined): Promise<T | undefined> {
  for (;;) {
    const v = ready()
    if (v !== undefined) return v
    const left = deadline - Date.now()
    if (left <= 0 || signal.expired) return undefined
    await signal.wait(left)
  }
}
