// The dispatcher core, written once for storage and network: place a call on the best domain of the
// Performance Mapping Table (placement.ts: rules, feed, score), call it there with a hang deadline,
// and when the domain — not the request — failed (a reset or refused connection, a hang, a drain),
// mark it in the PMT, report it, and try the next candidate. It also keeps the placements made, by
// domain. What each dispatcher keeps for itself: storage its virtual handles, checkpoints and replay
// (dispatcher.ts); network its sockets, which die with their domain (network-dispatcher.ts).
import { DeadlineWatch } from './deadline.js'
import { MetaosError, type ErrorCode } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { DomainState, PerformanceMappingTable } from './pmt.js'
import type { SyscallContext } from './rules-engine.js'
import { place, type Placement, type PlacementOptions } from './placement.js'

/** A map of operations (a generated service's `…Operations`). */
export type Operations<Ops> = { [K in keyof Ops]: { input: unknown, output: unknown } }

/** A handler of a domain (a proxy, the local kernel): what the core calls. */
export interface DomainHandler<Ops extends Operations<Ops>> {
  invoke: <K extends keyof Ops & string>(operation: K, input: Ops[K]['input']) => Promise<Invocation<Ops[K]['output']>>
}

/** A domain the dispatcher saw fail: marked in the PMT (suspect, or draining when it said so). */
export interface SuspectEvent { readonly epr: string, readonly reason: string, readonly op: string }

export interface CoreConfig {
  readonly placement: PlacementOptions
  /** What is placed, for the placement's error ("storage domain", "network domain"). */
  readonly what: string
  /** How a domain is named in the core's own errors ("domain", "network domain"). */
  readonly callee: string
  /** Domains tried for one placed call before it gives up. */
  readonly maxAttempts: number
  /** Whether a domain's failure is told from the request's at all (off: every failure is the caller's). */
  readonly failover: boolean
  /** Faults the domain sent (SOAP faults) are about the request's destination, not the domain (network). */
  readonly faultsAreTheDestinations: boolean
  /** The states a failure may change (to suspect or draining); isolated and draining ones stay as they are. */
  readonly markFrom: readonly DomainState[]
  readonly onSuspect: (ev: SuspectEvent) => void
}

/** One placed call, tried on the candidates in turn. */
export interface Turns<T> {
  /** The operation a failure is reported under. */
  readonly op: string
  /** The best domain not in `tried`; throws when none is left (the placement's error). */
  readonly choose: (tried: ReadonlySet<string>) => string
  /** The call on one domain; `replay` when a domain failed it before. */
  readonly run: (epr: string, replay: boolean) => Promise<T>
  /** Domains that failed already (the caller's set: the failed ones are added to it). */
  readonly tried?: Set<string>
  /** Domains tried at the most (default the core's maxAttempts). */
  readonly attempts?: number
  /** When no domain can be chosen before any failed, throw the placement's error (default) or end as exhausted. */
  readonly throwIfNone?: boolean
}

export type Outcome<T> = { readonly ok: true, readonly value: T } | { readonly ok: false, readonly last: unknown }

/** Failures that say the domain, not the request, is at fault: the call can go elsewhere. */
const DOMAIN_FAILURES = new Set<ErrorCode>(['TRANSPORT_ERROR', 'TIMED_OUT', 'DOMAIN_DRAINING', 'PROTOCOL_ERROR'])

export class DispatchCore<Ops extends Operations<Ops>> {
  /** Placements made (new streams, connections, listeners, moves), by domain. */
  readonly placements = new Map<string, number>()
  readonly #pmt: PerformanceMappingTable
  readonly #handlers: ReadonlyMap<string, DomainHandler<Ops>>
  readonly #c: CoreConfig
  /** The hang deadlines of this core's calls: one timer for all of them. */
  readonly #deadlines = new DeadlineWatch()

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, DomainHandler<Ops>>, config: CoreConfig) {
    this.#pmt = pmt
    this.#handlers = handlers
    this.#c = config
    // The feed's matches cut the scores of the domains they affect (by severity), for every reader of the table.
    const feed = config.placement.feed
    if (feed !== undefined) pmt.setExposure((identity) => feed.exposure({ identity })?.severity)
  }

  get failover (): boolean { return this.#c.failover }

  /** Which domain a syscall would go to, and why. */
  place (ctx: SyscallContext, exclude: ReadonlySet<string> = new Set(), volume?: string, lastResort = false): Placement {
    return place(this.#pmt, { ctx, eligible: (epr) => this.#handlers.has(epr), exclude, volume, lastResort, what: this.#c.what }, this.#c.placement)
  }

  /** Counts a placement on a domain. */
  placed (epr: string): void { this.placements.set(epr, (this.placements.get(epr) ?? 0) + 1) }

  /**
   * One call on one domain; with a deadline (ms) past which it is a hang (TIMED_OUT). Not an async
   * function: the handler's promise (or the deadline's) is returned as it is, no layer of its own.
   */
  call<K extends keyof Ops & string> (epr: string, op: K, input: Ops[K]['input'], ms?: number): Promise<Invocation<Ops[K]['output']>> {
    const h = this.#handlers.get(epr)
    if (h === undefined) return Promise.reject(new MetaosError('TRANSPORT_ERROR', `${this.#c.callee} ${epr} is gone`))
    const call = h.invoke(op, input)
    if (ms === undefined) return call
    const callee = this.#c.callee
    return this.#deadlines.watch(call, ms, () => new MetaosError('TIMED_OUT', `${callee} ${epr} did not answer ${op} within ${Math.round(ms)} ms (hang)`))
  }

  /** Sends a call whose outcome nobody waits for (a handle released on a domain that may be dead or hung). */
  release<K extends keyof Ops & string> (epr: string, op: K, input: Ops[K]['input']): void {
    void this.#handlers.get(epr)?.invoke(op, input).catch(() => {})
  }

  /** The domain failed (a transport failure, a hang, a drain), not the request. */
  domainFailed (e: unknown): e is MetaosError {
    if (!this.#c.failover || !(e instanceof MetaosError) || !DOMAIN_FAILURES.has(e.code)) return false
    return e.code === 'DOMAIN_DRAINING' || !this.#c.faultsAreTheDestinations || e.faultCode === undefined
  }

  /** Marks a domain that failed (draining if it said so, else suspect) and reports it. */
  suspect (epr: string, reason: string, op: string): void {
    const row = this.#pmt.row(epr)
    if (row !== undefined && this.#c.markFrom.includes(row.state)) this.#pmt.setState(epr, reason === 'DOMAIN_DRAINING' ? 'draining' : 'suspect')
    this.#c.onSuspect({ epr, reason, op })
  }

  /** The retry loop: the best candidate not tried yet, then the next when the domain failed, until one serves or none is left. */
  async inTurn<T> (t: Turns<T>): Promise<Outcome<T>> {
    const tried = t.tried ?? new Set<string>()
    let last: unknown
    for (let attempt = 0; attempt < (t.attempts ?? this.#c.maxAttempts); attempt++) {
      let epr: string
      try { epr = t.choose(tried) } catch (e) { if (tried.size === 0 && t.throwIfNone !== false) throw e; break }
      try {
        return { ok: true, value: await t.run(epr, tried.size > 0) }
      } catch (e) {
        if (!this.domainFailed(e)) throw e
        last = e
        tried.add(epr)
        this.suspect(epr, e.code, t.op)
      }
    }
    return { ok: false, last }
  }
}

/** The message of the last failure, for an error that gives up. */
export function lastFailure (last: unknown): string {
  return last instanceof Error ? last.message : String(last)
}

/** Keeps a list to its latest `max` entries. */
export function remember<T> (list: T[], item: T, max: number): void {
  list.push(item)
  if (list.length > max) list.splice(0, list.length - max)
}
