// Fencing inside a storage domain (issue 20): the guard every handle operation passes right before
// its system call (inside the handle's queue, after the operations before it).
// - DOMAIN_FENCED: with coordination the domain holds a lease; while it is not valid, and for good
//   on every handle opened under a lease that was since lost, handle operations are refused (a lost
//   lease means its streams may have been taken over by another domain).
// - STALE_EPOCH: a dispatcher bumps a stream's epoch at each move (failover, migration) and sends
//   it with the stream's operations; the domain refuses an operation, or an Open, whose epoch is
//   older than the newest it knows for that stream.
// Where epochs come from — a stream id and an epoch are the caller's word, so a caller must not be
// able to raise another's stream's epoch (that would refuse the real stream's next reopen):
// - with coordination, from the stream directory in etcd (its list and watch, `learn`, and a read of
//   the stream's record when an Open names an epoch newer than known: an Open at an epoch the
//   directory does not name is refused, and nothing is learned from it);
// - from a caller's own Opens, operations and Closes, for that caller only (the handle's owner:
//   the authenticated principal's owner, else the Caller header at the peer): a stream is known per
//   caller, and the epoch one caller names never fences another's handles. With coordination this
//   covers a stream the directory does not hold (a frontend without coordination).
// Close is always admitted: it only releases the descriptor, it writes nothing; a newer epoch it
// carries is learned (a dispatcher closes a stream's old handle with the epoch it moved to).
// This check narrows the window, it cannot close it: a domain stopped between this check and its
// write(2) writes when it runs again. What closes it is the frontend's fence (the old owner killed
// before the takeover: docs/supervision.md).
import { MetaosError } from '../soap-runtime/errors.js'
import type { StreamRecord, StreamRegistry } from '../coordination/api.js'

/** The domain's lease, as the guard needs it (coordination's domain lease). */
export interface FenceLease {
  /** Whether the lease is held now (granted and not past its TTL by this domain's clock). */
  valid: () => boolean
  /** Bumped by every new grant after a loss (coordination's Lease): a handle opened under another generation stays fenced. */
  readonly generation?: number
}

/** The stream directory as the fence reads it: a stream's record now (coordination's StreamRegistry.get). */
export type DirectoryRead = (stream: string) => Promise<StreamRecord | undefined>

interface Fenced { readonly stream: string | undefined, readonly epoch: number | undefined, readonly owner: string, readonly leaseRun: string }

/** Streams whose newest epoch is remembered, in each map (the oldest forgotten first). */
const MAX_STREAMS = 100_000

/** Remembers `epoch` for `key` when it is newer than the one known. */
function raise (m: Map<string, number>, key: string, epoch: number): void {
  const known = m.get(key)
  if (known !== undefined && known >= epoch) return
  m.delete(key)
  m.set(key, epoch)
  if (m.size > MAX_STREAMS) m.delete(m.keys().next().value!)
}

const scoped = (caller: string, stream: string): string => `${caller}\0${stream}`

export class StreamFence {
  readonly #lease: FenceLease | undefined
  /** Epochs from the stream directory (the authority, with coordination): they fence every caller's handles of the stream. */
  readonly #directory = new Map<string, number>()
  /** Epochs a caller named for its own streams (keyed by caller and stream): they fence only that caller's handles. */
  readonly #callers = new Map<string, number>()
  #read: { readonly get: DirectoryRead, readonly volume: string } | undefined
  /** Keyed by the engine's open-file record: forgotten with it, however the handle goes. */
  readonly #handles = new WeakMap<object, Fenced>()
  /** Bumped each time the lease is lost (`leaseLost`): handles opened under an earlier lease stay fenced. */
  #lost = 0
  /** Operations refused, by fault code (metrics, tests). */
  readonly refused = { DOMAIN_FENCED: 0, STALE_EPOCH: 0 }

  constructor (lease?: FenceLease) {
    this.#lease = lease
  }

  /** The lease was lost (expired, revoked): every handle open now stays fenced, even once a new lease is granted. */
  leaseLost (): void { this.#lost++ }

  /** With coordination: the stream directory is the authority on epochs; an Open at an epoch newer than known reads the stream's record. */
  useDirectory (get: DirectoryRead, volume: string): void { this.#read = { get, volume } }

  /** Which lease a handle is opened under: the lease's generation and the losses seen. */
  get #leaseRun (): string { return `${this.#lease?.generation ?? 0}/${this.#lost}` }

  /** A newer epoch of a stream, learned from the stream directory: older operations of every caller are refused from now on. */
  learn (stream: string, epoch: number): void { raise(this.#directory, stream, epoch) }

  /**
   * The newest epoch this domain knows for a stream: the directory's, or for `caller`'s handles the
   * newer of it and the caller's own; without `caller`, the newest any caller named (diagnostics, tests).
   */
  epochOf (stream: string, caller?: string): number | undefined {
    let known = this.#directory.get(stream)
    const more = (e: number | undefined): void => { if (e !== undefined && (known === undefined || e > known)) known = e }
    if (caller !== undefined) more(this.#callers.get(scoped(caller, stream)))
    else for (const [k, e] of this.#callers) if (k.endsWith(`\0${stream}`)) more(e)
    return known
  }

  /** The lease check alone (an Open's, right before its open(2)). */
  checkLease (): void {
    if (this.#lease !== undefined && !this.#lease.valid()) this.#refuse('DOMAIN_FENCED', 'this domain does not hold its coordination lease (expired or not yet renewed): it refuses handle operations')
  }

  /**
   * Before an Open (the lease is checked apart, right before its open(2): `checkLease`): refused
   * when it names a stream at an older epoch than known for it; with coordination, an epoch newer
   * than known must be the one the stream directory holds (read now), else the Open is refused and
   * nothing is learned from it.
   */
  async admitOpen (stream: string | undefined, epoch: number | undefined, caller: string): Promise<void> {
    if (stream === undefined || epoch === undefined) return
    this.#checkEpoch(stream, epoch, caller, 'Open')
    const known = this.#directory.get(stream) ?? 1
    // Epoch 1 fences nothing (every epoch is at least 1); one the directory holds already is known.
    if (this.#read === undefined || epoch <= known) return
    const r = await this.#read.get(stream)
    if (r === undefined) return // not a stream of the directory (a frontend without coordination): the caller's own word
    if (r.volume !== this.#read.volume) this.#refuse('STALE_EPOCH', `Open at epoch ${epoch} refused: the stream directory holds this stream on volume ${r.volume}, not this domain's`)
    this.learn(stream, r.epoch)
    if (r.epoch !== epoch) this.#refuse('STALE_EPOCH', `Open at epoch ${epoch} refused: the stream directory does not name that epoch (it holds epoch ${r.epoch} for this stream)`)
  }

  /** A handle was opened by `caller` (for a stream at an epoch, when the caller said). */
  opened (handle: object, stream: string | undefined, epoch: number | undefined, caller: string): void {
    this.#handles.set(handle, { stream, epoch, owner: caller, leaseRun: this.#leaseRun })
    if (stream !== undefined && epoch !== undefined) raise(this.#callers, scoped(caller, stream), epoch)
  }

  /**
   * Right before a handle operation's system call: DOMAIN_FENCED when the lease is not held or the
   * handle was opened under a lease since lost; STALE_EPOCH when the operation's epoch (the
   * handle's when it carries none) is older than the newest known for its stream.
   */
  admit (handle: object, op: string, epoch: number | undefined): void {
    const h = this.#handles.get(handle)
    if (op === 'Close') {
      // A dispatcher closes the old handle with the stream's new epoch: how a domain learns its stream moved away.
      if (h?.stream !== undefined && epoch !== undefined) raise(this.#callers, scoped(h.owner, h.stream), epoch)
      return
    }
    this.checkLease()
    if (h !== undefined && h.leaseRun !== this.#leaseRun) this.#refuse('DOMAIN_FENCED', `${op} refused: the handle was opened under a lease this domain has since lost; its stream may have moved to another domain`)
    const e = epoch ?? h?.epoch
    if (h?.stream !== undefined && e !== undefined) this.#checkEpoch(h.stream, e, h.owner, op)
  }

  /** STALE_EPOCH when `epoch` is older than the newest known for `caller`'s stream; else a newer one is the caller's own from now on. */
  #checkEpoch (stream: string, epoch: number, caller: string, op: string): void {
    const known = this.epochOf(stream, caller)
    if (known !== undefined && epoch < known) this.#refuse('STALE_EPOCH', `${op} at epoch ${epoch} refused: the stream is at epoch ${known} (it moved since)`)
    if (op !== 'Open') raise(this.#callers, scoped(caller, stream), epoch)
  }

  #refuse (code: 'DOMAIN_FENCED' | 'STALE_EPOCH', message: string): never {
    this.refused[code]++
    throw new MetaosError(code, message)
  }
}

/**
 * With coordination: the fence takes the epoch of every stream of `volume` from the stream
 * directory — its records now (best effort), then its watch, and a read of a stream's record when
 * an Open names an epoch newer than known. Returns the function that stops.
 */
export async function followStreamDirectory (streams: StreamRegistry, volume: string, fence: StreamFence): Promise<() => Promise<void>> {
  fence.useDirectory(async (stream) => await streams.get(stream), volume)
  const stop = await streams.watch((e) => { if (e.type === 'put' && e.record.volume === volume) fence.learn(e.record.stream, e.record.epoch) })
  void streams.list().then((rs) => { for (const r of rs) if (r.volume === volume) fence.learn(r.stream, r.epoch) }, () => {})
  return stop
}
