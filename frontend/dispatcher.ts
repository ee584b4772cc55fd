// The dispatcher (the paper's load balancer): a StorageHandler that places each stream on the
// best domain of the Performance Mapping Table when it is opened, then keeps every syscall of the
// stream on that domain through the affinity table. Domains that are isolated or draining are never
// chosen; suspect ones only when nothing healthy is left. The rules engine narrows and reorders the
// candidates; then the score decides — the best one ('best', the default), or at random in
// proportion to score^k among the first tier ('weighted': load spreads, the fastest gets most).
import { MetaosError } from '../soap-runtime/errors.js'
import type { Invocation } from '../soap-runtime/client.js'
import type { StorageOperations } from './generated/storage-service.js'
import type { StorageHandler, StorageOp } from './storage-handler.js'
import type { PerformanceMappingTable, PmtRow } from './pmt.js'
import { AffinityTable } from './affinity-table.js'
import type { RulesEngine, SyscallContext, VulnerabilityCheck } from './rules-engine.js'
import type { VulnerabilityFeed } from './vulnerability-feed.js'

export interface Placement {
  readonly chosen: string
  /** Candidates best first, with their scores: why the choice was made. */
  readonly ranking: ReadonlyArray<{ readonly epr: string, readonly score: number, readonly state: string }>
  /** Rules that fired for this syscall, in order. */
  readonly fired: readonly string[]
}

export interface DispatcherOptions {
  /** Only domains of this volume are candidates (streams move only between domains of one volume). */
  readonly volume?: string
  readonly rules?: RulesEngine
  /** Excludes or lowers the domains a vulnerability affects; also answers the rules' `vulnerable` selector. */
  readonly feed?: VulnerabilityFeed
  readonly vulnerable?: VulnerabilityCheck
  /** 'best' (default): the top-scored candidate; 'weighted': random, in proportion to score^sharpness among the first tier. */
  readonly policy?: 'best' | 'weighted'
  /** Exponent of the score for 'weighted' (default 2: a domain twice as good gets four times the streams). */
  readonly sharpness?: number
  /** Random source for 'weighted' (tests). */
  readonly random?: () => number
}

export class Dispatcher implements StorageHandler {
  readonly destination = 'dispatcher'
  readonly affinity = new AffinityTable()
  readonly #pmt: PerformanceMappingTable
  readonly #handlers: ReadonlyMap<string, StorageHandler>
  /** Placements made, by domain (for measurements and `metaos status`). */
  readonly placements = new Map<string, number>()

  readonly #o: DispatcherOptions

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, StorageHandler>, options: DispatcherOptions = {}) {
    this.#pmt = pmt
    this.#handlers = handlers
    this.#o = options
  }

  /** Which domain a syscall (a new stream, or a path operation) would go to, and why. */
  place (ctx: SyscallContext = { op: 'Open' }): Placement {
    const rows = this.#pmt.rows((ctx.bytes ?? 0) / 1048576).filter((r) => this.#handlers.has(r.identity.epr) && (this.#o.volume === undefined || r.identity.volume === this.#o.volume))
    const usable = (r: PmtRow): boolean => r.state === 'healthy'
    let candidates: readonly PmtRow[] = rows.some(usable) ? rows.filter(usable) : rows.filter((r) => r.state === 'suspect')
    let fired: readonly string[] = []
    let tiers: readonly number[] | undefined
    const feed = this.#o.feed
    const vulnerable = this.#o.vulnerable ?? (feed === undefined ? undefined : (r: PmtRow) => feed.assess(r) !== undefined)
    if (feed !== undefined) candidates = candidates.filter((r) => feed.assess(r) !== 'exclude')
    if (this.#o.rules !== undefined) ({ ordered: candidates, fired, tiers } = this.#o.rules.decide(ctx, candidates, vulnerable))
    // A domain the feed lowers comes after every unaffected one (the sort is stable), in a tier of its own.
    const rank = (r: PmtRow, i: number): number => (tiers?.[i] ?? 0) * 2 - Number(feed?.assess(r) === 'lower')
    const ranked = candidates.map((r, i) => ({ r, tier: rank(r, i) })).sort((a, b) => b.tier - a.tier)
    if (ranked.length === 0) throw new MetaosError('TRANSPORT_ERROR', `no usable storage domain for ${ctx.op}${ctx.path === undefined ? '' : ` ${ctx.path}`} (all isolated, draining, excluded by a rule, or none known)`)
    let chosen = ranked[0]!.r
    if (this.#o.policy === 'weighted') {
      const first = ranked.filter((x) => x.tier === ranked[0]!.tier).map((x) => x.r)
      const k = this.#o.sharpness ?? 2
      const weights = first.map((r) => Math.pow(Math.max(r.score.score, 1e-9), k))
      let pick = (this.#o.random ?? Math.random)() * weights.reduce((a, b) => a + b, 0)
      chosen = first.find((_, i) => (pick -= weights[i]!) < 0) ?? first[first.length - 1]!
    }
    return { chosen: chosen.identity.epr, ranking: ranked.map(({ r }) => ({ epr: r.identity.epr, score: r.score.score, state: r.state })), fired }
  }

  async invoke<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    const handle = (input as { handle?: string }).handle ?? firstHandle(op, input)
    if (handle !== undefined) {
      const epr = this.affinity.lookup(handle)
      if (epr === undefined) throw new MetaosError('INVALID_HANDLE', 'this stream was not opened through the dispatcher, or is closed')
      const inv = await this.#handlers.get(epr)!.invoke(op, input)
      if (op === 'Close') this.affinity.release(handle)
      return inv
    }
    const { chosen } = this.place({ op, ...((input as { path?: string }).path === undefined ? {} : { path: (input as { path: string }).path }) })
    const inv = await this.#handlers.get(chosen)!.invoke(op, input)
    if (op === 'Open') {
      this.affinity.bind((inv.output as StorageOperations['Open']['output']).handle, chosen)
      this.placements.set(chosen, (this.placements.get(chosen) ?? 0) + 1)
    }
    return inv
  }

  async close (): Promise<void> { /* the handlers belong to whoever made them */ }
}

function firstHandle (op: string, input: unknown): string | undefined {
  if (op !== 'Batch') return undefined
  for (const o of (input as StorageOperations['Batch']['input']).op) {
    const inner = Object.values(o)[0] as { handle?: string }
    if (inner.handle !== undefined) return inner.handle
  }
  return undefined
}
