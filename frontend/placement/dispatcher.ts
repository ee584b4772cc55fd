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
// With a fence hook or a stream directory (takeover.ts), a domain that may still apply a call it
// was given is killed before its stream moves, and every move bumps the stream's epoch.
import { EventEmitter } from 'node:events'
import { randomBytes, randomUUID } from 'node:crypto'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp } from '../handlers/storage-handler.js'
import type { PerformanceMappingTable } from './pmt.js'
import { AffinityTable, endTurn, nextTurn, serialized, type StreamEntry } from './affinity-table.js'
import type { TaskAffinity } from './task-affinity.js'
import type { SyscallContext } from './rules-engine.js'
import type { Placement, PlacementOptions } from './placement.js'
import { DispatchCore, lastFailure, remember, type SuspectEvent } from './dispatch-core.js'
import { advance, bytesMoved, reopening, streamOf, withHandle } from './stream-calls.js'
import { mayStillWrite, StreamTakeover, type TakeoverOptions } from './takeover.js'

export type { Placement } from './placement.js'
export type { Checkpoint, FenceHook, FenceOutcome, StreamDirectory } from './takeover.js'

export interface DispatcherOptions extends PlacementOptions, TakeoverOptions {
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
  /** Thread affinity (task-affinity.ts): a task's new streams go to its domain while it stays healthy and a first choice. */
  readonly tasks?: TaskAffinity
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
  /** The stream's epoch after the move. */
  readonly epoch: number
  /** Of the stall, the time spent fencing the old owner (killing it and waiting for its exit), when it was. */
  readonly fenceMs?: number
}

export interface DispatcherEvents {
  moved: [MoveEvent]
  /** A domain the dispatcher saw fail: marked suspect in the PMT. */
  suspect: [SuspectEvent]
}

type Call<K extends StorageOp> = Promise<Invocation<StorageOperations[K]['output']>>

export class Dispatcher extends EventEmitter<DispatcherEvents> implements StorageHandler {
  readonly destination = 'dispatcher'
  readonly affinity = new AffinityTable()
  /** Placements made, by domain (for measurements and `metaos status`). */
  readonly placements: Map<string, number>
  /** Every move made, most recent last (bounded). */
  readonly moves: MoveEvent[] = []
  /** The latest placements made, with the rules that fired, most recent last (bounded: `metaos status`, the dashboard). */
  readonly placed: PlacementRecord[] = []
  readonly #pmt: PerformanceMappingTable
  readonly #core: DispatchCore<StorageOperations>
  readonly #o: DispatcherOptions
  readonly #takeover: StreamTakeover

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, StorageHandler>, options: DispatcherOptions = {}) {
    super()
    this.#pmt = pmt
    this.#o = options
    this.#takeover = new StreamTakeover(options)
    this.#core = new DispatchCore<StorageOperations>(pmt, handlers, {
      placement: options,
      what: 'storage domain',
      callee: 'domain',
      maxAttempts: options.maxAttempts ?? 4,
      failover: options.failover !== false,
      faultsAreTheDestinations: false,
      markFrom: ['healthy', 'suspect'],
      onSuspect: (ev) => { this.emit('suspect', ev) },
    })
    this.placements = this.#core.placements
  }

  /** The thread-affinity table, when the dispatcher has one. */
  get tasks (): TaskAffinity | undefined { return this.#o.tasks }

  /** Which domain a syscall (a new stream, or a path operation) would go to, and why. */
  place (ctx: SyscallContext = { op: 'Open' }, exclude: ReadonlySet<string> = new Set(), volume = this.#o.volume, lastResort = false): Placement {
    return this.#core.place(ctx, exclude, volume, lastResort)
  }

  async invoke<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Call<K> {
    if (op === 'Open') return await this.open(input as StorageOperations['Open']['input']) as Awaited<Call<K>>
    const id = streamOf(op, input)
    if (id === undefined) return await this.#pathCall(op, input)
    const s = this.affinity.get(id)
    if (s === undefined) throw new MetaosError('INVALID_HANDLE', 'this stream was not opened through the dispatcher, or is closed')
    // The stream's calls one after the other: a call waits only when one is under way (no closure, no promise of its own otherwise).
    if (s.busy) await nextTurn(s)
    else s.busy = true
    try {
      if (s.broken !== undefined) return this.#broken(s, op)
      if (op === 'SetLength') await this.#resize(s, (input as StorageOperations['SetLength']['input']).length)
      return await this.#streamCall(s, op, input)
    } finally {
      endTurn(s)
    }
  }

  /** Opens a stream placed as a stream of `bytes` (its expected size: the rules' minBytes/maxBytes, the score's cost per MB). */
  async open (input: StorageOperations['Open']['input'], bytes?: number): Call<'Open'> {
    const ctx: SyscallContext = { op: 'Open', path: input.path, ...(bytes === undefined ? {} : { bytes }) }
    const tasks = this.#o.tasks
    const task = tasks?.current()
    let kept: string | undefined
    const r = await this.#core.inTurn({
      op: 'Open',
      choose: (tried) => (kept = tried.size === 0 && task !== undefined ? this.#sticky(ctx, task) : undefined) ?? this.#choose('place', ctx, tried),
      run: async (epr) => {
        const stream = randomUUID()
        const inv = await this.#on(epr, 'Open', { ...input, stream, epoch: 1 })
        const id = `vh:${randomBytes(18).toString('base64url')}`
        const volume = this.#pmt.row(epr)?.identity.volume ?? this.#o.volume ?? ''
        const s = this.affinity.add({ id, stream, path: input.path, access: input.access ?? 'ReadWrite', share: input.share ?? 'Read', volume, epr, real: inv.output.handle, position: inv.output.position, since: Date.now(), ...(bytes === undefined ? {} : { bytes }) })
        try {
          await this.#takeover.opened(s)
        } catch (e) {
          this.affinity.release(id)
          this.#core.release(epr, 'Close', { handle: inv.output.handle })
          throw e
        }
        this.#core.placed(epr)
        if (task !== undefined) tasks!.placed(task, epr, kept === epr)
        return { ...inv, output: { ...inv.output, handle: id } }
      },
    })
    if (r.ok) return r.value
    throw this.#unavailable(input.path, r.last)
  }

  /** Moves an open stream to another domain of its volume (the best usable one unless `to` is given); resolves when it is there. */
  async migrate (id: string, reason: string, to?: string, onlyFrom?: string): Promise<MoveEvent | undefined> {
    const s = this.affinity.get(id)
    if (s === undefined) return undefined
    return await serialized(s, async () => {
      // Closed meanwhile, already there, or already moved off the domain by a failover: nothing to do.
      if (this.affinity.get(id) === undefined || s.epr === to || (onlyFrom !== undefined && s.epr !== onlyFrom)) return undefined
      // Its domain hung and could not be fenced: moving it would make two writers.
      if (s.broken !== undefined) throw s.broken
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

  /** The task's domain, when it is healthy, among the first choices of this placement and not far behind the best (else undefined: placed as usual). */
  #sticky (ctx: SyscallContext, task: string): string | undefined {
    const tasks = this.#o.tasks!
    const epr = tasks.domainOf(task)
    if (!tasks.steer || epr === undefined) return undefined
    const p = this.place(ctx)
    const mine = p.ranking.find((x) => x.epr === epr)
    const best = Math.max(...p.ranking.filter((x) => x.tier === p.ranking[0]!.tier).map((x) => x.score))
    if (mine === undefined || mine.state !== 'healthy' || mine.tier !== p.ranking[0]!.tier || mine.score < tasks.minShare * best) return undefined
    return this.#record('place', ctx, { ...p, chosen: epr, fired: [...p.fired, `task affinity (${task})`] })
  }

  #record (kind: PlacementRecord['kind'], ctx: SyscallContext, p: Placement): string {
    remember(this.placed, { at: Date.now(), op: ctx.op, ...(ctx.path === undefined ? {} : { path: ctx.path }), kind, chosen: p.chosen, fired: p.fired, ranking: p.ranking }, 200)
    return p.chosen
  }

  /**
   * A SetLength gives the stream its size, for its later moves. Before its first Write, the stream is
   * placed again at that size and moves first if its domain is no longer a first choice (out of the
   * first tier, or excluded): a migration, as advice — if it fails, the stream stays.
   */
  async #resize (s: StreamEntry, length: number): Promise<void> {
    if (!Number.isSafeInteger(length) || length < 0 || this.affinity.get(s.id) === undefined || s.broken !== undefined) return
    s.bytes = length
    if (s.written) return
    const ctx = reopening(s)
    let p: Placement
    try { p = this.place(ctx, new Set(), s.volume) } catch { return }
    if (p.ranking.find((r) => r.epr === s.epr)?.tier === p.ranking[0]!.tier) return
    const [t0, from] = [performance.now(), s.epr]
    try { await this.#reopen(s, p.chosen) } catch (e) { if (this.#core.domainFailed(e)) this.#core.suspect(p.chosen, e.code, 'Open'); return }
    this.#record('migration', ctx, p)
    this.#moved(s, from, 'migration', `size ${length} B (SetLength before the first write)`, 'SetLength', t0)
  }

  /** A stream whose domain could not be fenced: every call fails as the one that found it, Close releases it. */
  #broken<K extends StorageOp> (s: StreamEntry, op: K): Awaited<Call<K>> {
    if (op !== 'Close') throw s.broken!
    this.affinity.release(s.id)
    return { output: {} as StorageOperations[K]['output'], serviceMicros: undefined, totalMicros: 0 }
  }

  /** One call on one domain, with the hang deadline when failover is on (1 ms more per 8 KiB moved). */
  #on<K extends StorageOp> (epr: string, op: K, input: StorageOperations[K]['input']): Call<K> {
    const ms = this.#core.failover ? (this.#o.hangMs ?? 1000) + bytesMoved(op, input) / 8192 : undefined
    return this.#core.call(epr, op, input, ms)
  }

  #unavailable (path: string, last: unknown, volume = this.#o.volume ?? 'of the stream'): MetaosError {
    return new MetaosError('VOLUME_UNAVAILABLE', `${path}: no domain of volume ${volume} could serve the stream (last failure: ${lastFailure(last)}); everything acknowledged before is on the volume`, { cause: last })
  }

  async #pathCall<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Call<K> {
    if (op === 'Batch' && (input as StorageOperations['Batch']['input']).op.some((o) => 'Open' in o)) {
      throw new MetaosError('NOT_SUPPORTED', 'Open inside a Batch cannot be placed by the dispatcher: open streams with Open')
    }
    const path = (input as { path?: string }).path
    const r = await this.#core.inTurn({
      op,
      choose: (tried) => this.#choose('place', { op, ...(path === undefined ? {} : { path }) }, tried),
      run: async (epr, replay) => {
        try {
          return await this.#on(epr, op, input)
        } catch (e) {
          // A Delete replayed after a failure may find its work done: the file is gone, as asked.
          if (op === 'Delete' && replay && e instanceof MetaosError && e.code === 'FILE_NOT_FOUND') return { output: {} as StorageOperations[K]['output'], serviceMicros: undefined, totalMicros: 0 }
          throw e
        }
      },
    })
    if (r.ok) return r.value
    throw this.#unavailable(path ?? op, r.last)
  }

  /** A call on an open stream: on its domain; when that fails, the stream moves to another (#failover) and the call is replayed there. */
  async #streamCall<K extends StorageOp> (s: StreamEntry, op: K, input: StorageOperations[K]['input']): Call<K> {
    if (this.affinity.get(s.id) === undefined) throw new MetaosError('INVALID_HANDLE', 'the stream is closed')
    const t0 = performance.now()
    let tried: Set<string> | undefined // made on the first failure: most calls never need it
    let last: unknown
    let failedOn: string | undefined
    let fenceMs: number | undefined
    for (let attempt = 0; attempt < (this.#o.maxAttempts ?? 4); attempt++) {
      try {
        const inv = await this.#on(s.epr, op, withHandle(op, input, s.real, s.epoch))
        advance(s, op, input, inv.output)
        if (op === 'Close') this.#closed(s)
        if (failedOn !== undefined) this.#moved(s, failedOn, 'failover', (last as MetaosError).code, op, t0, fenceMs)
        return inv
      } catch (e) {
        // A restarted domain lost its handles: reopen (on it or another) and replay.
        const lostHandle = this.#core.failover && e instanceof MetaosError && e.code === 'INVALID_HANDLE'
        if (!this.#core.domainFailed(e) && !lostHandle) throw e
        last = e
        failedOn ??= s.epr
        if (op === 'Close') {
          // Closing on a failed domain: the handle died with it, and everything acknowledged is on the volume.
          this.#closed(s)
          return { output: {} as StorageOperations[K]['output'], serviceMicros: undefined, totalMicros: Math.round((performance.now() - t0) * 1000) }
        }
        tried ??= new Set<string>()
        if (!lostHandle) { tried.add(s.epr); this.#core.suspect(s.epr, e.code, op) }
        // The old owner may still apply this call: it can write no more once fenced, then the stream moves.
        if (!lostHandle && mayStillWrite(e)) {
          try { fenceMs = (fenceMs ?? 0) + await this.#takeover.fence(s, e, async () => await this.#closeOld(s)) } catch (f) { s.broken = f as Error; throw f }
        }
        if (!(await this.#failover(s, tried))) break
      }
    }
    throw this.#unavailable(s.path, last, s.volume)
  }

  /** Reopens a stream on the best domain not tried yet; false when none is left. */
  async #failover (s: StreamEntry, tried: Set<string>): Promise<boolean> {
    const r = await this.#core.inTurn({
      op: 'Open',
      tried,
      attempts: Infinity,
      throwIfNone: false,
      choose: (t) => this.#choose('failover', reopening(s), t, s.volume, true),
      run: async (target) => { await this.#reopen(s, target) },
    })
    return r.ok
  }

  /**
   * Opens the stream's file on `target` at the acknowledged position, at the stream's next epoch, and
   * makes it the stream's domain; the old handle is closed in the background. With a stream
   * directory the epoch is set there first (compare-and-set, naming `target`): a domain takes a
   * stream's epochs from the directory, so the target's Open at that epoch is one it confirms.
   */
  async #reopen (s: StreamEntry, target: string): Promise<void> {
    const epoch = s.epoch + 1
    const directed = await this.#takeover.moveTo(s, target, epoch)
    let opened: Awaited<Call<'Open'>>
    try {
      opened = await this.#on(target, 'Open', { path: s.path, mode: 'Open', access: s.access, share: s.share, stream: s.stream, epoch })
      try {
        if (opened.output.position !== s.position) await this.#on(target, 'Seek', { handle: opened.output.handle, offset: s.position, origin: 'Begin', epoch })
      } catch (e) {
        void this.#on(target, 'Close', { handle: opened.output.handle }).catch(() => {})
        throw e
      }
    } catch (e) {
      // The directory holds `epoch` now: the stream is at it (its domains learn it from there), and its owner is written back.
      if (directed) { s.epoch = epoch; await this.#takeover.stayed(s) }
      throw e
    }
    const [oldEpr, oldReal] = [s.epr, s.real]
    s.epr = target
    s.real = opened.output.handle
    s.epoch = epoch
    s.since = Date.now()
    s.moves++
    this.#core.placed(target)
    // The old domain may be dead or hung: its handle is released when (if) it answers.
    // With the new epoch: the old domain learns the stream moved on, and refuses its old epoch from now on.
    if (oldEpr !== target || oldReal !== s.real) this.#core.release(oldEpr, 'Close', { handle: oldReal, epoch })
  }

  /** The fence of an owner that answers: Close of the stream's handle there, with the next epoch; true when done or the handle is gone. */
  async #closeOld (s: StreamEntry): Promise<boolean> {
    try {
      await this.#on(s.epr, 'Close', { handle: s.real, epoch: s.epoch + 1 })
      return true
    } catch (e) {
      return e instanceof MetaosError && e.code === 'INVALID_HANDLE'
    }
  }

  #closed (s: StreamEntry): void {
    this.affinity.release(s.id)
    this.#takeover.closed(s)
  }

  #moved (s: StreamEntry, from: string, kind: MoveEvent['kind'], reason: string, op: string, t0: number, fenceMs?: number): MoveEvent {
    const ev: MoveEvent = { stream: s.id, path: s.path, from, to: s.epr, kind, reason, op, stallMs: performance.now() - t0, position: s.position, epoch: s.epoch, ...(fenceMs === undefined || fenceMs === 0 ? {} : { fenceMs }) }
    remember(this.moves, ev, 1000)
    this.emit('moved', ev)
    return ev
  }
}
