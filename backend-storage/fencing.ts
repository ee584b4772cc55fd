// Fencing inside a storage domain (issue 20): the guard every handle operation passes right before
// its system call (inside the handle's queue, after the operations before it).
// - DOMAIN_FENCED: with coordination the domain holds a lease; while it is not valid, and for good
//   on every handle opened under a lease that was since lost, handle operations are refused (a lost
//   lease means its streams may have been taken over by another domain).
// - STALE_EPOCH: a dispatcher bumps a stream's epoch at each move (failover, migration) and sends
//   it with the stream's operations; the domain refuses an operation, or an Open, whose epoch is
//   older than the newest it knows for that stream — from the stream's own Opens and operations
//   here, and with coordination from the stream directory's watch (`learn`).
// Close is always admitted: it only releases the descriptor, it writes nothing; a newer epoch it
// carries is learned (a dispatcher closes a stream's old handle with the epoch it moved to).
// This check narrows the window, it cannot close it: a domain stopped between this check and its
// write(2) writes when it runs again. What closes it is the frontend's fence (the old owner killed
// before the takeover: docs/supervision.md).
import { MetaosError } from '../soap-runtime/errors.js'
import type { StreamRegistry } from '../coordination/api.js'

/** The domain's lease, as the guard needs it (coordination's domain lease). */
export interface FenceLease {
  /** Whether the lease is held now (granted and not past its TTL by this domain's clock). */
  valid: () => boolean
  /** Bumped by every new grant after a loss (coordination's Lease): a handle opened under another generation stays fenced. */
  readonly generation?: number
}

interface Fenced { readonly stream: string | undefined, readonly epoch: number | undefined, readonly leaseRun: string }

/** Streams whose newest epoch is remembered (the oldest forgotten first). */
const MAX_STREAMS = 100_000

export class StreamFence {
  readonly #lease: FenceLease | undefined
  readonly #known = new Map<string, number>()
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

  /** Which lease a handle is opened under: the lease's generation and the losses seen. */
  get #leaseRun (): string { return `${this.#lease?.generation ?? 0}/${this.#lost}` }

  /** A newer epoch of a stream, learned from the stream directory: older operations are refused from now on. */
  learn (stream: string, epoch: number): void {
    const known = this.#known.get(stream)
    if (known !== undefined && known >= epoch) return
    this.#known.delete(stream)
    this.#known.set(stream, epoch)
    if (this.#known.size > MAX_STREAMS) this.#known.delete(this.#known.keys().next().value!)
  }

  /** The newest epoch this domain knows for a stream. */
  epochOf (stream: string): number | undefined { return this.#known.get(stream) }

  /** Before an Open: refused when fenced, or when it names a stream at an older epoch than known. */
  admitOpen (stream: string | undefined, epoch: number | undefined): void {
    this.#checkLease()
    if (stream !== undefined && epoch !== undefined) this.#checkEpoch(stream, epoch, 'Open')
  }

  /** A handle was opened (for a stream at an epoch, when the caller said). */
  opened (handle: object, stream: string | undefined, epoch: number | undefined): void {
    this.#handles.set(handle, { stream, epoch, leaseRun: this.#leaseRun })
    if (stream !== undefined && epoch !== undefined) this.learn(stream, epoch)
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
      if (h?.stream !== undefined && epoch !== undefined) this.learn(h.stream, epoch)
      return
    }
    this.#checkLease()
    if (h !== undefined && h.leaseRun !== this.#leaseRun) this.#refuse('DOMAIN_FENCED', `${op} refused: the handle was opened under a lease this domain has since lost; its stream may have moved to another domain`)
    const e = epoch ?? h?.epoch
    if (h?.stream !== undefined && e !== undefined) this.#checkEpoch(h.stream, e, op)
  }

  #checkLease (): void {
    if (this.#lease !== undefined && !this.#lease.valid()) this.#refuse('DOMAIN_FENCED', 'this domain does not hold its coordination lease (expired or not yet renewed): it refuses handle operations')
  }

  #checkEpoch (stream: string, epoch: number, op: string): void {
    const known = this.#known.get(stream)
    if (known !== undefined && epoch < known) this.#refuse('STALE_EPOCH', `${op} at epoch ${epoch} refused: the stream is at epoch ${known} (it moved since)`)
    this.learn(stream, epoch)
  }

  #refuse (code: 'DOMAIN_FENCED' | 'STALE_EPOCH', message: string): never {
    this.refused[code]++
    throw new MetaosError(code, message)
  }
}

/**
 * With coordination: the fence learns the epoch of every stream of `volume` from the stream
 * directory — its records now (best effort), then its watch. Returns the function that stops.
 */
export async function followStreamDirectory (streams: StreamRegistry, volume: string, fence: StreamFence): Promise<() => Promise<void>> {
  const stop = await streams.watch((e) => { if (e.type === 'put' && e.record.volume === volume) fence.learn(e.record.stream, e.record.epoch) })
  void streams.list().then((rs) => { for (const r of rs) if (r.volume === volume) fence.learn(r.stream, r.epoch) }, () => {})
  return stop
}
