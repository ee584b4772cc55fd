// Placement: which domain of the Performance Mapping Table a new stream, connection or path
// operation goes to, and why. Shared by the storage dispatcher and the network dispatcher. Healthy
// domains first, suspect ones when nothing healthy is left (isolated ones too, as a last resort
// for a stream that must go on somewhere), never draining ones; the vulnerability feed excludes or
// lowers; the rules engine narrows and reorders into tiers; the score decides within the first
// tier — the best ('best') or at random in proportion to score^k ('weighted').
import { MetaosError } from '../../soap-runtime/errors.js'
import type { DomainState, PerformanceMappingTable, PmtRow } from './pmt.js'
import type { RulesEngine, SyscallContext, VulnerabilityCheck } from './rules-engine.js'
import type { VulnerabilityFeed } from './vulnerability-feed.js'

export interface Placement {
  readonly chosen: string
  /** Candidates best first, with their scores and tiers (rules' prefer/avoid, the feed's lowering; higher first): why the choice was made. */
  readonly ranking: ReadonlyArray<{ readonly epr: string, readonly score: number, readonly state: string, readonly tier: number }>
  /** Rules that fired for this syscall, in order. */
  readonly fired: readonly string[]
  /** The other domains of the table, and why each was out. */
  readonly out: readonly LeftOut[]
}

export interface PlacementOptions {
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

export interface PlaceQuery {
  readonly ctx: SyscallContext
  /** Domains that may be chosen (those with a handler). */
  readonly eligible: (epr: string) => boolean
  readonly exclude?: ReadonlySet<string>
  /** Only domains of this volume. */
  readonly volume?: string | undefined
  /** Admit isolated domains when nothing better is left. */
  readonly lastResort?: boolean
  /** What is placed, for the error message ("storage domain", "network domain"). */
  readonly what: string
}

/** Why a domain of the table was not a candidate. */
export interface LeftOut { readonly epr: string, readonly why: string }

export interface Ranked {
  /** Candidates best first, with their tier (rules and feed) and row. */
  readonly ranked: ReadonlyArray<{ readonly r: PmtRow, readonly tier: number }>
  readonly fired: readonly string[]
  /** Every other domain of the table, and why it is out. */
  readonly out: readonly LeftOut[]
}

const STATE_WHY: Record<DomainState, string> = {
  healthy: 'healthy, but suspect domains were asked for',
  suspect: 'suspect (healthy domains come first)',
  isolated: 'isolated by the supervisor',
  draining: 'draining (shutting down)',
}

/** The candidates of a placement, ranked, and why each other domain is out; chooses nothing, never throws. */
export function rank (pmt: PerformanceMappingTable, q: PlaceQuery, o: PlacementOptions = {}): Ranked {
  const { ctx, exclude, volume } = q
  const out: LeftOut[] = []
  const rows = pmt.rows((ctx.bytes ?? 0) / 1048576).filter((r) => {
    const epr = r.identity.epr
    const why = !q.eligible(epr) ? 'not reachable from here (no handler)' : exclude?.has(epr) === true ? 'already tried for this call' : volume !== undefined && r.identity.volume !== volume ? `of volume ${r.identity.volume}, not ${volume}` : undefined
    if (why !== undefined) out.push({ epr, why })
    return why === undefined
  })
  const tiersOfState: readonly DomainState[][] = q.lastResort === true ? [['healthy'], ['suspect'], ['isolated']] : [['healthy'], ['suspect']]
  let candidates: readonly PmtRow[] = []
  for (const states of tiersOfState) if (candidates.length === 0) candidates = rows.filter((r) => states.includes(r.state))
  for (const r of rows) if (!candidates.includes(r)) out.push({ epr: r.identity.epr, why: STATE_WHY[r.state] })
  let fired: readonly string[] = []
  let tiers: readonly number[] | undefined
  const feed = o.feed
  const vulnerable = o.vulnerable ?? (feed === undefined ? undefined : (r: PmtRow) => feed.assess(r) !== undefined)
  if (feed !== undefined) {
    candidates = candidates.filter((r) => {
      if (feed.assess(r) !== 'exclude') return true
      out.push({ epr: r.identity.epr, why: `excluded by the vulnerability feed (${feed.affecting(r).filter((v) => v.action === 'exclude').map((v) => v.id).join(', ')})` })
      return false
    })
  }
  if (o.rules !== undefined) {
    let removed: ReadonlyArray<{ epr: string, rule: string }>
    ({ ordered: candidates, fired, tiers, removed } = o.rules.decide(ctx, candidates, vulnerable))
    for (const x of removed) out.push({ epr: x.epr, why: `excluded by the rule "${x.rule}"` })
  }
  // A domain the feed lowers comes after every unaffected one (the sort is stable), in a tier of its own.
  const tierOf = (r: PmtRow, i: number): number => (tiers?.[i] ?? 0) * 2 - Number(feed?.assess(r) === 'lower')
  const ranked = candidates.map((r, i) => ({ r, tier: tierOf(r, i) })).sort((a, b) => b.tier - a.tier)
  return { ranked, fired, out }
}

/** Where a syscall goes: the best candidate ('best') or one drawn by score ('weighted'); NO_ELIGIBLE_DOMAIN when none is left, saying why for each. */
export function place (pmt: PerformanceMappingTable, q: PlaceQuery, o: PlacementOptions = {}): Placement {
  const { ranked, fired, out } = rank(pmt, q, o)
  const { ctx } = q
  if (ranked.length === 0) {
    const why = out.length === 0 ? 'none known' : out.map((x) => `${x.epr} ${x.why}`).join('; ')
    throw new MetaosError('NO_ELIGIBLE_DOMAIN', `no ${q.what} can take ${ctx.op}${ctx.path === undefined ? '' : ` ${ctx.path}`}: ${why}`)
  }
  let chosen = ranked[0]!.r
  if (o.policy === 'weighted') {
    const first = ranked.filter((x) => x.tier === ranked[0]!.tier).map((x) => x.r)
    const k = o.sharpness ?? 2
    const weights = first.map((r) => Math.pow(Math.max(r.score.score, 1e-9), k))
    let pick = (o.random ?? Math.random)() * weights.reduce((a, b) => a + b, 0)
    chosen = first.find((_, i) => (pick -= weights[i]!) < 0) ?? first[first.length - 1]!
  }
  return { chosen: chosen.identity.epr, ranking: ranked.map(({ r, tier }) => ({ epr: r.identity.epr, score: r.score.score, state: r.state, tier })), fired, out }
}
