// The dispatcher (the paper's load balancer): a StorageHandler that places each stream on the
// best domain of the Performance Mapping Table when it is opened, then keeps every syscall of the
// stream on that domain through the affinity table. Domains that are isolated or draining are never
// chosen; suspect ones only when nothing healthy is left. The rules engine narrows and reorders the
// candidates; then the score decides — the best one ('best', the default), or at random in
// proportion to score^k among the first tier ('weighted': load spreads, the fastest gets most).
//
// Failover and migration (the paper's §2.D): the application holds a virtual handle. When the
// domain serving a stream dies (a reset, a refused connection), hangs (no answer within the hang
// deadline), drains, or lost the handle (it restarted), the dispatcher marks it suspect, reopens
// the file on another domain of the same volume, moves to the position the failed domain last
// acknowledged, and replays the call there. Replays are safe because every call is
// position-addressed: a Write that may have landed on the failed domain writes the same bytes at
// the same place again; a Read reads them again. The application sees a stall, not an error.
// `migrate()` moves a stream the same way on purpose (the supervisor's proactive move).
import { EventEmitter } from 'node:events'
import { randomBytes } from 'node:crypto'
import { withDeadline } from './deadline.js'
import { MetaosError, type ErrorCode } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp } from '../handlers/storage-handler.js'
import type { DomainState, PerformanceMappingTable } from './pmt.js'
import { AffinityTable, type StreamEntry } from './affinity-table.js'
import type { SyscallContext } from './rules-engine.js'
import { place, type Placement, type PlacementOptions } from './placement.js'

export type { Placement } from './placement.js'

export interface DispatcherOptions extends PlacementOptions {
  /** Only domains of this volume are candidates (streams move only between domains of one volume). */
  readonly volume?: string
  /** Move streams off a failed domain and replay the call (default true). */
  readonly failover?: boolean
  /**
   * A call unanswered this long (ms, default 1000) is a hang: the domain is suspect and the call is
   * replayed elsewhere. Calls moving data get 1 ms more per 8 KiB.
   */
  readonly hangMs?: number
  /** Domains tried for one call before the stream gives up with VOLUME_UNAVAILABLE (default 4). */
  readonly maxAttempts?: number
}

/** A placement the dispatcher made (a new stream, a path operation, a failover or migration target), and the rules that fired. */
export interface PlacementRecord {
  readonly at: number
  readonly op: string
  readonly path?: string
  /** Why the placement was made: a new stream or path operation ('place'), or where a stream moved ('failover', 'migration'). */
  readonly kind: 'place' | 'failover' | 'migration'
  readonly chosen: string
  readonly fired: readonly string[]
  readonly ranking: Placement['ranking']
}

/** A stream that moved: what the application did not see, except as a stall. */
export interface MoveEvent {
  readonly stream: string
  readonly path: string
  readonly from: string
  readonly to: string
  /** 'failover' after a failure, 'migration' when asked (the supervisor). */
  readonly kind: 'failover' | 'migration'
  /** The failure (error code) or the reason given for a migration. */
  readonly reason: string
  readonly op: string
  /** From the start of the failed call (or of the migration) to the moment the stream went on. */
  readonly stallMs: number
  readonly position: number
}

export interface DispatcherEvents {
  moved: [MoveEvent]
  /** A domain the dispatcher saw fail: marked suspect in the PMT. */
  suspect: [{ readonly epr: string, readonly reason: string, readonly op: string }]
}

/** Failures that say the domain, not the request, is at fault: the call can be replayed elsewhere. */
const DOMAIN_FAILURES = new Set<ErrorCode>(['TRANSPORT_ERROR', 'TIMED_OUT', 'DOMAIN_DRAINING', 'PROTOCOL_ERROR'])

type BatchOp = StorageOperations['Batch']['input']['op'][number]

export class Dispatcher extends EventEmitter<DispatcherEvents> implements StorageHandler {
  readonly destination = 'dispatcher'
  readonly affinity = new AffinityTable()
  readonly #pmt: PerformanceMappingTable
  readonly #handlers: ReadonlyMap<string, StorageHandler>
  /** Placements made, by domain (for measurements and `metaos status`). */
  readonly placements = new Map<string, number>()
  /** Every move made, most recent last (bounded). */
  readonly moves: MoveEvent[] = []
  /** The latest placements made, with the rules that fired, most recent last (bounded: `metaos status`, the dashboard). */
  readonly placed: PlacementRecord[] = []
  readonly #o: DispatcherOptions

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, StorageHandler>, options: DispatcherOptions = {}) {
    super()
    this.#pmt = pmt
    this.#handlers = handlers
    this.#o = options
  }

  /** Which domain a syscall (a new stream, or a path operation) would go to, and why. */
  place (ctx: SyscallContext = { op: 'Open' }, exclude: ReadonlySet<string> = new Set(), volume = this.#o.volume, lastResort = false): Placement {
    return place(this.#pmt, { ctx, eligible: (epr) => this.#handlers.has(epr), exclude, volume, lastResort, what: 'storage domain' }, this.#o)
  }

  async invoke<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    if (op === 'Open') return await this.open(input as StorageOperations['Open']['input']) as Invocation<StorageOperations[K]['output']>
    const id = (input as { handle?: string }).handle ?? (op === 'Batch' ? batchHandle(input as StorageOperations['Batch']['input']) : undefined)
    if (id !== undefined) {
      const s = this.affinity.get(id)
      if (s === undefined) throw new MetaosError('INVALID_HANDLE', 'this stream was not opened through the dispatcher, or is closed')
      return await this.#serialized(s, async () => {
        if (op === 'SetLength') await this.#resize(s, (input as StorageOperations['SetLength']['input']).length)
        return await this.#streamCall(s, op, input)
      })
    }
    return await this.#pathCall(op, input)
  }

  /** Opens a stream placed as a stream of `bytes` (its expected size: the rules' minBytes/maxBytes, the score's cost per MB). */
  async open (input: StorageOperations['Open']['input'], bytes?: number): Promise<Invocation<StorageOperations['Open']['output']>> {
    return await this.#open(input, bytes)
  }

  /** Moves an open stream to another domain of its volume (the best usable one unless `to` is given); resolves when it is there. */
  async migrate (id: string, reason: string, to?: string, onlyFrom?: string): Promise<MoveEvent | undefined> {
    const s = this.affinity.get(id)
    if (s === undefined) return undefined
    return await this.#serialized(s, async () => {
      // Closed meanwhile, already there, or already moved off the domain by a failover: nothing to do.
      if (this.affinity.get(id) === undefined || s.epr === to || (onlyFrom !== undefined && s.epr !== onlyFrom)) return undefined
      if (to !== undefined && this.#pmt.row(to)?.identity.volume !== s.volume) throw new MetaosError('INVALID_ARGUMENT', `${to} does not serve volume ${s.volume}: a stream moves only between domains of its volume`)
      const t0 = performance.now()
      const from = s.epr
      const target = to ?? this.#choose('migration', reopening(s), new Set([from]), s.volume)
      await this.#reopen(s, target)
      return this.#moved(s, from, 'migration', reason, 'Migrate', t0)
    })
  }

  /** Moves every stream off a domain; returns how many moved (a stream that cannot move stays, and the reason is logged in `moves`). */
  async migrateAll (epr: string, reason: string): Promise<number> {
    let n = 0
    for (const s of this.affinity.streamsOn(epr)) {
      try { if (await this.migrate(s.id, reason, undefined, epr) !== undefined) n++ } catch { /* stays; its next call fails over */ }
    }
    return n
  }

  async close (): Promise<void> { /* the handlers belong to whoever made them */ }

  // ---- internals ----

  /** `place`, kept in `placed` (what `place` alone, an explanation, does not do). */
  #choose (kind: PlacementRecord['kind'], ctx: SyscallContext, exclude: ReadonlySet<string>, volume = this.#o.volume, lastResort = false): string {
    return this.#record(kind, ctx, this.place(ctx, exclude, volume, lastResort))
  }

  #record (kind: PlacementRecord['kind'], ctx: SyscallContext, p: Placement): string {
    this.placed.push({ at: Date.now(), op: ctx.op, ...(ctx.path === undefined ? {} : { path: ctx.path }), kind, chosen: p.chosen, fired: p.fired, ranking: p.ranking })
    if (this.placed.length > 200) this.placed.splice(0, this.placed.length - 200)
    return p.chosen
  }

  /**
   * A SetLength gives the stream its size, for its later moves. Before its first Write, the stream is
   * placed again at that size and moves first if its domain is no longer a first choice (out of the
   * first tier, or excluded): a migration, as advice — if it fails, the stream stays.
   */
  async #resize (s: StreamEntry, length: number): Promise<void> {
    if (!Number.isSafeInteger(length) || length < 0 || this.affinity.get(s.id) === undefined) return
    s.bytes = length
    if (s.written) return
    const ctx = reopening(s)
    let p: Placement
    try { p = this.place(ctx, new Set(), s.volume) } catch { return }
    if (p.ranking.find((r) => r.epr === s.epr)?.tier === p.ranking[0]!.tier) return
    const [t0, from] = [performance.now(), s.epr]
    try { await this.#reopen(s, p.chosen) } catch (e) { if (this.#failed(e)) this.#suspect(p.chosen, e.code, 'Open'); return }
    this.#record('migration', ctx, p)
    this.#moved(s, from, 'migration', `size ${length} B (SetLength before the first write)`, 'SetLength', t0)
  }

  async #serialized<T> (s: StreamEntry, fn: () => Promise<T>): Promise<T> {
    const run = s.chain.then(fn, fn)
    s.chain = run.catch(() => {})
    return await run
  }

  #deadline (op: string, input: unknown): number {
    let bytes = 0
    if (op === 'Write') bytes = (input as StorageOperations['Write']['input']).data.length
    else if (op === 'Read') bytes = (input as StorageOperations['Read']['input']).count
    else if (op === 'Batch') for (const o of (input as StorageOperations['Batch']['input']).op) bytes += 'Write' in o ? o.Write.data.length : 'Read' in o ? o.Read.count : 0
    return (this.#o.hangMs ?? 1000) + bytes / 8192
  }

  /** One call on one domain, with the hang deadline (when failover is on). */
  async #on<K extends StorageOp> (epr: string, op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    const h = this.#handlers.get(epr)
    if (h === undefined) throw new MetaosError('TRANSPORT_ERROR', `domain ${epr} is gone`)
    const call = h.invoke(op, input)
    if (this.#o.failover === false) return await call
    const ms = this.#deadline(op, input)
    return await withDeadline(call, ms, () => new MetaosError('TIMED_OUT', `domain ${epr} did not answer ${op} within ${Math.round(ms)} ms (hang)`))
  }

  #failed (e: unknown): e is MetaosError {
    return this.#o.failover !== false && e instanceof MetaosError && DOMAIN_FAILURES.has(e.code)
  }

  #suspect (epr: string, reason: string, op: string): void {
    const state: DomainState = reason === 'DOMAIN_DRAINING' ? 'draining' : 'suspect'
    const row = this.#pmt.row(epr)
    if (row !== undefined && row.state !== 'isolated' && row.state !== 'draining') this.#pmt.setState(epr, state)
    this.emit('suspect', { epr, reason, op })
  }

  #unavailable (path: string, last: unknown, volume = this.#o.volume ?? 'of the stream'): MetaosError {
    const why = last instanceof Error ? last.message : String(last)
    return new MetaosError('VOLUME_UNAVAILABLE', `${path}: no domain of volume ${volume} could serve the stream (last failure: ${why}); everything acknowledged before is on the volume`, { cause: last })
  }

  async #open (input: StorageOperations['Open']['input'], bytes: number | undefined): Promise<Invocation<StorageOperations['Open']['output']>> {
    const tried = new Set<string>()
    let last: unknown
    for (let attempt = 0; attempt < (this.#o.maxAttempts ?? 4); attempt++) {
      let chosen: string
      try { chosen = this.#choose('place', { op: 'Open', path: input.path, ...(bytes === undefined ? {} : { bytes }) }, tried) } catch (e) { if (tried.size === 0) throw e; break }
      try {
        const inv = await this.#on(chosen, 'Open', input)
        const id = `vh:${randomBytes(18).toString('base64url')}`
        const volume = this.#pmt.row(chosen)?.identity.volume ?? this.#o.volume ?? ''
        this.affinity.add({ id, path: input.path, access: input.access ?? 'ReadWrite', share: input.share ?? 'Read', volume, epr: chosen, real: inv.output.handle, position: inv.output.position, ...(bytes === undefined ? {} : { bytes }) })
        this.placements.set(chosen, (this.placements.get(chosen) ?? 0) + 1)
        return { ...inv, output: { ...inv.output, handle: id } }
      } catch (e) {
        if (!this.#failed(e)) throw e
        last = e
        tried.add(chosen)
        this.#suspect(chosen, e.code, 'Open')
      }
    }
    throw this.#unavailable(input.path, last)
  }

  async #pathCall<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    if (op === 'Batch' && (input as StorageOperations['Batch']['input']).op.some((o) => 'Open' in o)) {
      throw new MetaosError('NOT_SUPPORTED', 'Open inside a Batch cannot be placed by the dispatcher: open streams with Open')
    }
    const path = (input as { path?: string }).path
    const tried = new Set<string>()
    let last: unknown
    for (let attempt = 0; attempt < (this.#o.maxAttempts ?? 4); attempt++) {
      let chosen: string
      try { chosen = this.#choose('place', { op, ...(path === undefined ? {} : { path }) }, tried) } catch (e) { if (tried.size === 0) throw e; break }
      try {
        return await this.#on(chosen, op, input)
      } catch (e) {
        // A Delete replayed after a failure may find its work done: the file is gone, as asked.
        if (op === 'Delete' && tried.size > 0 && e instanceof MetaosError && e.code === 'FILE_NOT_FOUND') return { output: {} as StorageOperations[K]['output'], serviceMicros: undefined, totalMicros: 0 }
        if (!this.#failed(e)) throw e
        last = e
        tried.add(chosen)
        this.#suspect(chosen, e.code, op)
      }
    }
    throw this.#unavailable(path ?? op, last)
  }

  async #streamCall<K extends StorageOp> (s: StreamEntry, op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    if (this.affinity.get(s.id) === undefined) throw new MetaosError('INVALID_HANDLE', 'the stream is closed')
    const t0 = performance.now()
    const tried = new Set<string>()
    let last: unknown
    let failedOn: string | undefined
    let reason = ''
    for (let attempt = 0; attempt < (this.#o.maxAttempts ?? 4); attempt++) {
      try {
        const inv = await this.#on(s.epr, op, withHandle(op, input, s.real))
        this.#advance(s, op, input, inv.output)
        if (op === 'Close') this.affinity.release(s.id)
        if (failedOn !== undefined) this.#moved(s, failedOn, 'failover', reason, op, t0)
        return inv
      } catch (e) {
        // A restarted domain lost its handles: reopen (on it or another) and replay.
        const lostHandle = e instanceof MetaosError && e.code === 'INVALID_HANDLE' && this.#o.failover !== false
        if (!this.#failed(e) && !lostHandle) throw e
        last = e
        failedOn ??= s.epr
        reason = (e as MetaosError).code
        if (op === 'Close') {
          // Closing on a failed domain: the handle died with it, and everything acknowledged is on the volume.
          this.affinity.release(s.id)
          return { output: {} as StorageOperations[K]['output'], serviceMicros: undefined, totalMicros: Math.round((performance.now() - t0) * 1000) }
        }
        if (!lostHandle) { tried.add(s.epr); this.#suspect(s.epr, reason, op) }
        if (!(await this.#failover(s, tried))) break
      }
    }
    throw this.#unavailable(s.path, last, s.volume)
  }

  /** Reopens a stream on the best domain not tried yet; false when none is left. */
  async #failover (s: StreamEntry, tried: Set<string>): Promise<boolean> {
    for (;;) {
      let target: string
      try { target = this.#choose('failover', reopening(s), tried, s.volume, true) } catch { return false }
      try {
        await this.#reopen(s, target)
        return true
      } catch (e) {
        if (!this.#failed(e)) throw e
        tried.add(target)
        this.#suspect(target, e.code, 'Open')
      }
    }
  }

  /** Opens the stream's file on `target` at the acknowledged position and makes it the stream's domain; the old handle is closed in the background. */
  async #reopen (s: StreamEntry, target: string): Promise<void> {
    const opened = await this.#on(target, 'Open', { path: s.path, mode: 'Open', access: s.access, share: s.share })
    try {
      if (opened.output.position !== s.position) await this.#on(target, 'Seek', { handle: opened.output.handle, offset: s.position, origin: 'Begin' })
    } catch (e) {
      void this.#on(target, 'Close', { handle: opened.output.handle }).catch(() => {})
      throw e
    }
    const [oldEpr, oldReal] = [s.epr, s.real]
    s.epr = target
    s.real = opened.output.handle
    s.moves++
    this.placements.set(target, (this.placements.get(target) ?? 0) + 1)
    // The old domain may be dead or hung: its handle is released when (if) it answers.
    if (oldEpr !== target || oldReal !== s.real) void this.#handlers.get(oldEpr)?.invoke('Close', { handle: oldReal }).catch(() => {})
  }

  #moved (s: StreamEntry, from: string, kind: MoveEvent['kind'], reason: string, op: string, t0: number): MoveEvent {
    const ev: MoveEvent = { stream: s.id, path: s.path, from, to: s.epr, kind, reason, op, stallMs: performance.now() - t0, position: s.position }
    this.moves.push(ev)
    if (this.moves.length > 1000) this.moves.splice(0, this.moves.length - 1000)
    this.emit('moved', ev)
    return ev
  }

  /** Follows the position the domain acknowledged (the checkpoint a replay starts from). */
  #advance (s: StreamEntry, op: string, input: unknown, output: unknown): void {
    if (op !== 'Batch') { this.#advanceOne(s, op, input, output); return }
    // A Batch: each operation's result (a fault moved nothing), in order.
    const ops = (input as StorageOperations['Batch']['input']).op
    ;(output as StorageOperations['Batch']['output']).result.forEach((r, i) => {
      if ('StorageFault' in r) return
      const [name, inner] = Object.entries(ops[i]!)[0]!
      this.#advanceOne(s, name, inner, Object.values(r)[0])
    })
  }

  #advanceOne (s: StreamEntry, op: string, input: unknown, output: unknown): void {
    switch (op) {
      case 'Write': s.written = true; s.position = (output as { position: number }).position; break
      case 'Seek': s.position = (output as { position: number }).position; break
      case 'Read': s.position += (output as { data: Buffer }).data.length; break
      case 'SetLength': s.position = Math.min(s.position, (input as { length: number }).length); break
      default: break
    }
  }
}

/** What a stream is (re)placed as: an Open of its path, of its size when it has one. */
function reopening (s: StreamEntry): SyscallContext {
  return { op: 'Open', path: s.path, ...(s.bytes === undefined ? {} : { bytes: s.bytes }) }
}

/** The stream a Batch works on (all its handle operations must name the same one). */
function batchHandle (input: StorageOperations['Batch']['input']): string | undefined {
  let handle: string | undefined
  for (const o of input.op) {
    const inner = Object.values(o)[0] as { handle?: string }
    if (inner.handle === undefined) continue
    if (handle !== undefined && inner.handle !== handle) throw new MetaosError('NOT_SUPPORTED', 'a Batch through the dispatcher works on one stream at a time')
    handle = inner.handle
  }
  return handle
}

function withHandle<K extends StorageOp> (op: K, input: StorageOperations[K]['input'], real: string): StorageOperations[K]['input'] {
  if (op !== 'Batch') return { ...(input as object), handle: real } as StorageOperations[K]['input']
  const ops = (input as StorageOperations['Batch']['input']).op.map((o): BatchOp => {
    const [name, inner] = Object.entries(o)[0] as [string, { handle?: string }]
    return (inner.handle === undefined ? o : { [name]: { ...inner, handle: real } }) as BatchOp
  })
  return { op: ops } as StorageOperations[K]['input']
}
