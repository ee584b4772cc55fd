// The business rules engine (the paper's §2.C): declarative rules, read from a file the operator
// edits and validated with clear errors, evaluated for each placement. A rule matches a syscall
// (operation, path prefix, size) and acts on the domains that match its selector (hosting, kernel
// sysname and release range, volume, zone, transport, score, state, vulnerability): `choose`
// keeps only them, `exclude` removes them, `prefer` and `avoid` move them up or down a tier. The
// score decides within a tier. Every decision can say which rules fired.
import { readFileSync } from 'node:fs'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { PmtRow } from './pmt.js'
import { compareVersions } from './versions.js'

export interface SyscallContext {
  readonly op: string
  readonly path?: string
  readonly bytes?: number
}

export interface DomainSelector {
  readonly epr?: string
  readonly hosting?: string
  readonly sysname?: string
  /** A release range such as ">=6.1 <6.2" (numeric, dot-separated; all bounds must hold). */
  readonly release?: string
  readonly volume?: string
  readonly zone?: string
  /** `bus` (a Unix-socket endpoint: net.uds or HTTP), `http`, or `local`. */
  readonly transport?: 'bus' | 'http' | 'local'
  readonly minScore?: number
  readonly state?: string
  /** Listed by the vulnerability feed. */
  readonly vulnerable?: boolean
}

export interface Rule {
  readonly name: string
  readonly when?: { readonly op?: readonly string[], readonly pathPrefix?: string, readonly minBytes?: number, readonly maxBytes?: number }
  readonly choose?: DomainSelector
  readonly exclude?: DomainSelector
  readonly prefer?: DomainSelector
  readonly avoid?: DomainSelector
}

export interface Decision {
  readonly ordered: readonly PmtRow[]
  /** The tier of each row of `ordered` (prefer +1, avoid −1 per rule); rows of the first tier are equally eligible. */
  readonly tiers: readonly number[]
  readonly fired: readonly string[]
  /** The rows a rule's `choose` or `exclude` took out, with that rule's name. */
  readonly removed: ReadonlyArray<{ readonly epr: string, readonly rule: string }>
}

const ACTIONS = ['choose', 'exclude', 'prefer', 'avoid'] as const
const SELECTOR_KEYS = new Set(['epr', 'hosting', 'sysname', 'release', 'volume', 'zone', 'transport', 'minScore', 'state', 'vulnerable'])

/** Does `release` (e.g. "6.1.0-28-cloud-amd64") satisfy `range` (e.g. ">=6.1 <6.2")? */
export function releaseInRange (release: string, range: string): boolean {
  return range.trim().split(/\s+/).every((bound) => {
    const m = /^(>=|<=|>|<|=)?(\d+(?:\.\d+)*)$/.exec(bound)
    if (m === null) return false
    const c = compareVersions(release, m[2]!)
    switch (m[1] ?? '=') {
      case '>=': return c >= 0
      case '<=': return c <= 0
      case '>': return c > 0
      case '<': return c < 0
      default: return c === 0 || release.startsWith(`${m[2]!}.`) || release.startsWith(`${m[2]!}-`)
    }
  })
}

export type VulnerabilityCheck = (row: PmtRow) => boolean

export function selects (s: DomainSelector, r: PmtRow, vulnerable: VulnerabilityCheck): boolean {
  const id = r.identity
  const transport = id.endpoints.some((e) => e === 'local') ? 'local' : id.endpoints.some((e) => e.startsWith('http+unix://') || e.startsWith('unix:') || e.startsWith('net.uds:')) ? 'bus' : 'http'
  return (s.epr === undefined || s.epr === id.epr) &&
    (s.hosting === undefined || s.hosting === id.hosting) &&
    (s.sysname === undefined || s.sysname.toLowerCase() === id.kernel.sysname.toLowerCase()) &&
    (s.release === undefined || releaseInRange(id.kernel.release, s.release)) &&
    (s.volume === undefined || s.volume === id.volume) &&
    (s.zone === undefined || s.zone === id.zone) &&
    (s.transport === undefined || s.transport === transport) &&
    (s.minScore === undefined || r.score.score >= s.minScore) &&
    (s.state === undefined || s.state === r.state) &&
    (s.vulnerable === undefined || s.vulnerable === vulnerable(r))
}

export class RulesEngine {
  readonly rules: readonly Rule[]

  constructor (rules: readonly Rule[]) { this.rules = rules }

  /** Reads and validates a rules file: `{ "rules": [ … ] }`. */
  static fromFile (path: string): RulesEngine {
    let doc: unknown
    try {
      doc = JSON.parse(readFileSync(path, 'utf8'))
    } catch (e) {
      throw new MetaosError('INVALID_ARGUMENT', `${path}: not readable JSON (${(e as Error).message})`)
    }
    return new RulesEngine(validateRules(doc, path))
  }

  /** Orders the candidate rows for a syscall: filtered by choose/exclude, tiers by prefer/avoid, score within a tier. */
  decide (ctx: SyscallContext, rows: readonly PmtRow[], vulnerable: VulnerabilityCheck = () => false): Decision {
    let candidates = [...rows]
    const tier = new Map<string, number>(rows.map((r) => [r.identity.epr, 0]))
    const fired: string[] = []
    const removed: Array<{ epr: string, rule: string }> = []
    const keep = (rule: string, ok: (r: PmtRow) => boolean): PmtRow[] => candidates.filter((r) => {
      if (ok(r)) return true
      removed.push({ epr: r.identity.epr, rule })
      return false
    })
    for (const rule of this.rules) {
      const w = rule.when ?? {}
      if (w.op !== undefined && !w.op.includes(ctx.op)) continue
      if (w.pathPrefix !== undefined && !(ctx.path ?? '').startsWith(w.pathPrefix)) continue
      if (w.minBytes !== undefined && (ctx.bytes ?? 0) < w.minBytes) continue
      if (w.maxBytes !== undefined && (ctx.bytes ?? 0) > w.maxBytes) continue
      fired.push(rule.name)
      if (rule.choose !== undefined) candidates = keep(rule.name, (r) => selects(rule.choose!, r, vulnerable))
      if (rule.exclude !== undefined) candidates = keep(rule.name, (r) => !selects(rule.exclude!, r, vulnerable))
      for (const r of candidates) {
        if (rule.prefer !== undefined && selects(rule.prefer, r, vulnerable)) tier.set(r.identity.epr, tier.get(r.identity.epr)! + 1)
        if (rule.avoid !== undefined && selects(rule.avoid, r, vulnerable)) tier.set(r.identity.epr, tier.get(r.identity.epr)! - 1)
      }
    }
    candidates.sort((a, b) => (tier.get(b.identity.epr)! - tier.get(a.identity.epr)!) || (b.score.score - a.score.score))
    return { ordered: candidates, tiers: candidates.map((r) => tier.get(r.identity.epr)!), fired, removed }
  }
}

/** Validates a parsed rules document; errors name the rule and the field. */
export function validateRules (doc: unknown, source = 'rules'): Rule[] {
  const fail = (where: string, why: string): never => { throw new MetaosError('INVALID_ARGUMENT', `${source}: ${where}: ${why}`) }
  if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { rules?: unknown }).rules)) fail('top level', 'expected { "rules": [ … ] }')
  const rules = (doc as { rules: unknown[] }).rules
  return rules.map((raw, i) => {
    const where = `rule ${i + 1}`
    if (typeof raw !== 'object' || raw === null) fail(where, 'must be an object')
    const r = raw as Record<string, unknown>
    if (typeof r.name !== 'string' || r.name === '') fail(where, '"name" (a non-empty string) is required')
    const at = `${where} ("${r.name as string}")`
    for (const k of Object.keys(r)) if (!['name', 'when', ...ACTIONS].includes(k)) fail(at, `unknown field "${k}"`)
    if (!ACTIONS.some((a) => r[a] !== undefined)) fail(at, `needs one of ${ACTIONS.join(', ')}`)
    if (r.when !== undefined) {
      const w = r.when as Record<string, unknown>
      for (const k of Object.keys(w)) if (!['op', 'pathPrefix', 'minBytes', 'maxBytes'].includes(k)) fail(at, `unknown condition "when.${k}"`)
      if (w.op !== undefined && (!Array.isArray(w.op) || w.op.some((o) => typeof o !== 'string'))) fail(at, '"when.op" must be a list of operation names')
      for (const k of ['minBytes', 'maxBytes']) if (w[k] !== undefined && (typeof w[k] !== 'number' || (w[k] as number) < 0)) fail(at, `"when.${k}" must be a non-negative number`)
    }
    for (const a of ACTIONS) {
      const s = r[a]
      if (s === undefined) continue
      if (typeof s !== 'object' || s === null) fail(at, `"${a}" must be a domain selector object`)
      for (const k of Object.keys(s as object)) if (!SELECTOR_KEYS.has(k)) fail(at, `unknown selector "${a}.${k}" (known: ${[...SELECTOR_KEYS].join(', ')})`)
      const rel = (s as DomainSelector).release
      if (rel !== undefined && !rel.trim().split(/\s+/).every((b) => /^(>=|<=|>|<|=)?\d+(\.\d+)*$/.test(b))) fail(at, `"${a}.release" must look like ">=6.1 <6.2"`)
      const tr = (s as DomainSelector).transport
      if (tr !== undefined && !['bus', 'http', 'local'].includes(tr)) fail(at, `"${a}.transport" must be bus, http or local`)
    }
    return r as unknown as Rule
  })
}
