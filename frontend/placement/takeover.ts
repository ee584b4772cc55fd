// Taking a stream over from a domain that stopped answering, without two writers (issue 20).
// A hung domain still holds the call it was running: checking a lease before each write(2) only
// narrows the window, since a domain stopped between its check and its write(2) writes when it runs
// again. So before the stream is reopened elsewhere, the old owner is **fenced**: killed through
// whatever manages it (the `fence` hook: the DomainManager for processes, the container engine,
// QEMU) and the takeover waits until it has exited — a dead process writes nothing; with
// coordination its lease is then revoked, so its share registrations do not outlive it by a TTL. Where it cannot
// be killed (not managed here, its manager unreachable), the stream waits for the old owner's lease
// to expire (with coordination); then, if the old owner answers a Close of the stream's handle (or
// no longer knows it), nothing of it can land any more and the stream moves; if not, it fails with
// DOMAIN_FENCED, or waits and tries again (`unfenced: 'wait'`), rather than risk two writers.
// Every move (failover, migration) also bumps the stream's **epoch**: compare-and-set in the
// coordination stream directory when there is one, here in memory otherwise; the stream's
// operations carry it, and a domain refuses older ones (backend-storage/fencing.ts).
import { setTimeout as sleep } from 'node:timers/promises'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { FileAccess, FileShare } from '../../wsdl/generated/storage-service.js'
import type { StreamEntry } from './affinity-table.js'

/** What a fence did: the old owner has exited ('killed'), or it could not be killed ('unreachable'). */
export type FenceOutcome = 'killed' | 'unreachable'

/**
 * Kills the domain `epr` — the run of it that served a stream since `since` (ms since the epoch; a
 * run started later was not the one that hung, and is left alone) — and resolves once it has exited
 * and been reaped; 'unreachable' when this frontend cannot kill it.
 */
export type FenceHook = (epr: string, since: number) => Promise<FenceOutcome>

/** A stream's checkpoint in the stream directory: who owns it now, at which epoch, from which position. */
export interface Checkpoint {
  readonly owner: string
  readonly epoch: number
  readonly position: number
  readonly path: string
  readonly volume: string
  readonly access: FileAccess
  readonly share: FileShare
}

/** The coordination stream directory as the dispatcher needs it (the assembly adapts coordination's). */
export interface StreamDirectory {
  /** A new stream, at its first epoch. */
  opened: (stream: string, c: Checkpoint) => Promise<void>
  /** Compare-and-set: the stream goes from `epoch` to `next`; false when the directory holds another epoch (someone else moved it). */
  moved: (stream: string, epoch: number, next: Checkpoint) => Promise<boolean>
  closed: (stream: string) => Promise<void>
  /** Resolves once `epr`'s lease has expired (at once when it holds none). */
  leaseExpired: (epr: string) => Promise<void>
  /** A fence killed `epr`'s run that served a stream since `since`: its lease (granted before) is revoked, so its share registrations go now, not at its TTL. */
  revoke?: (epr: string, since: number) => Promise<void>
}

export interface TakeoverOptions {
  readonly fence?: FenceHook
  readonly directory?: StreamDirectory
  /** When the old owner cannot be killed: fail the stream with DOMAIN_FENCED (default), or wait until it can. */
  readonly unfenced?: 'fail' | 'wait'
  /** How often a waiting takeover tries the fence again (ms, default 1000). */
  readonly fenceRetryMs?: number
}

/** Connections that never reached a domain: the call was not delivered. */
const NOT_DELIVERED = new Set(['ECONNREFUSED', 'ENOENT'])

/**
 * Failures after which the old owner may still apply the call it was given: it must be fenced
 * before the stream moves. A refused connection delivered nothing, and every earlier call of the
 * stream was answered (they run one after the other): nothing of the stream is pending there.
 */
export function mayStillWrite (e: MetaosError): boolean {
  if (e.code === 'TRANSPORT_ERROR') return !NOT_DELIVERED.has(String((e.cause as NodeJS.ErrnoException | undefined)?.code))
  return e.code === 'TIMED_OUT' || e.code === 'PROTOCOL_ERROR'
}

export class StreamTakeover {
  readonly #o: TakeoverOptions

  constructor (o: TakeoverOptions) { this.#o = o }

  /** Whether moves are fenced at all (a fence hook or a stream directory): without either, the old behaviour (docs/supervision.md). */
  get fencing (): boolean { return this.#o.fence !== undefined || this.#o.directory !== undefined }

  /**
   * Makes sure the stream's current owner can no longer write before the stream moves: resolves
   * (with the ms it took) once the owner was killed, or once it closed the stream's handle —
   * `closeOld` resolves true when the owner acknowledged the Close of the handle or no longer knows
   * it: a domain runs a handle's operations in order, so every operation it received on the handle
   * is done, and any that arrives later finds no handle. Otherwise throws DOMAIN_FENCED
   * (`unfenced: 'fail'`) or tries both again every `fenceRetryMs` (`'wait'`).
   */
  async fence (s: StreamEntry, failure: MetaosError, closeOld: () => Promise<boolean>): Promise<number> {
    if (!this.fencing) return 0
    const t0 = performance.now()
    const epr = s.epr
    // It may be paused, partitioned or just slow: its lease runs out first, so it refuses what comes next.
    let leaseWaited = this.#o.directory === undefined
    for (;;) {
      if (await this.#tryFence(epr, s.since) === 'killed') {
        // Dead: what it held in etcd (share registrations) goes now; a failure leaves it to the TTL.
        await this.#o.directory?.revoke?.(epr, s.since).catch(() => {})
        return performance.now() - t0
      }
      if (!leaseWaited) { await this.#o.directory!.leaseExpired(epr); leaseWaited = true }
      if (await closeOld()) return performance.now() - t0
      if (this.#o.unfenced !== 'wait') {
        throw new MetaosError('DOMAIN_FENCED', `${s.path}: domain ${epr} stopped answering (${failure.code}), cannot be killed from this frontend${this.#o.directory === undefined ? '' : ', its lease has expired'} and it did not close the stream's handle: the stream is not reopened elsewhere, so that no late write of it can land after another domain's. Everything acknowledged is on the volume; the call in flight may still be applied by that domain if it runs again`, { cause: failure })
      }
      await sleep(this.#o.fenceRetryMs ?? 1000)
    }
  }

  /** A new stream opened: its checkpoint in the directory (epoch 1). */
  async opened (s: StreamEntry): Promise<void> {
    await this.#o.directory?.opened(s.stream, checkpoint(s, s.epr, s.epoch))
  }

  /**
   * The stream moves to `target` at `epoch`: compare-and-set in the directory (from the stream's
   * epoch now), before the target is asked to open it. Resolves true when the directory holds the
   * new epoch, false without a directory; STALE_EPOCH when another frontend moved the stream.
   */
  async moveTo (s: StreamEntry, target: string, epoch: number): Promise<boolean> {
    if (this.#o.directory === undefined) return false
    if (!(await this.#o.directory.moved(s.stream, s.epoch, checkpoint(s, target, epoch)))) {
      throw new MetaosError('STALE_EPOCH', `${s.path}: the stream directory holds another epoch than ${s.epoch} for this stream: another frontend moved it`)
    }
    return true
  }

  /**
   * A move the directory recorded did not happen (the target's Open failed): the stream stays on
   * its domain, written back as its owner at the next epoch (best effort: a failure leaves the
   * directory naming the target until the stream's next move).
   */
  async stayed (s: StreamEntry): Promise<void> {
    try { if (await this.moveTo(s, s.epr, s.epoch + 1)) s.epoch++ } catch { /* the directory stays as it is */ }
  }

  /** The stream closed: its checkpoint goes (a failure of the directory is not the application's). */
  closed (s: StreamEntry): void {
    void this.#o.directory?.closed(s.stream).catch(() => {})
  }

  async #tryFence (epr: string, since: number): Promise<FenceOutcome> {
    if (this.#o.fence === undefined) return 'unreachable'
    try { return await this.#o.fence(epr, since) } catch { return 'unreachable' }
  }
}

function checkpoint (s: StreamEntry, owner: string, epoch: number): Checkpoint {
  return { owner, epoch, position: s.position, path: s.path, volume: s.volume, access: s.access, share: s.share }
}
