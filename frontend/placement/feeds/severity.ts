// A vulnerability's severity as one number, 0–10: the CVSS v3 base score computed from its vector
// where a record gives one; else a qualitative rating (OSV database_specific.severity, a Debian
// urgency) mapped to the middle of its CVSS band; else a medium one. And the action it takes.
import { cvss3BaseScore } from './cvss.js'
import { DEFAULT_SEVERITY } from './model.js'

/** The middle of each CVSS v3 qualitative band (low 0.1–3.9, medium 4.0–6.9, high 7.0–8.9, critical 9.0–10.0). */
const RATINGS: Readonly<Record<string, number>> = { critical: 9.5, high: 8, important: 8, moderate: 5.5, medium: 5.5, low: 2.5, negligible: 0.5 }

/** A rating or Debian urgency ("high", "low**", "not yet assigned") as a score; undefined when it says nothing; 0 for "unimportant". */
export function ratingScore (rating: unknown): number | undefined {
  if (typeof rating !== 'string') return undefined
  const r = rating.toLowerCase().replace(/[^a-z ]/g, '').trim()
  if (r === 'unimportant') return 0
  return RATINGS[r]
}

export interface Severity { readonly score: number, readonly from: string }

/** The highest severity of OSV `severity[]` entries; a CVSS v4 vector (not computed here) counts by the fallback. INVALID_ARGUMENT for a broken v3 vector. */
export function osvSeverity (entries: ReadonlyArray<{ type?: unknown, score?: unknown }>, fallback: unknown): Severity {
  let best: Severity | undefined
  for (const e of entries) {
    if (e.type === 'CVSS_V3' && typeof e.score === 'string') {
      const s = cvss3BaseScore(e.score)
      if (best === undefined || s > best.score) best = { score: s, from: e.score }
    }
  }
  if (best !== undefined) return best
  const r = ratingScore(fallback)
  return r === undefined ? { score: DEFAULT_SEVERITY, from: 'none given (medium)' } : { score: r, from: `rated ${String(fallback)}` }
}

/** How the feed acts on what it reads: exclude at or above a severity, or by id. */
export interface FeedPolicy {
  /** Vulnerabilities at least this severe exclude (default 9.0, critical); the others lower. */
  readonly excludeAtSeverity: number
  /** Ids or aliases ("CVE-2024-1086") that exclude whatever their severity. */
  readonly exclude: ReadonlySet<string>
}

export const DEFAULT_POLICY: FeedPolicy = { excludeAtSeverity: 9, exclude: new Set() }

export function actionOf (p: FeedPolicy, id: string, aliases: readonly string[], severity: number): 'exclude' | 'lower' {
  return severity >= p.excludeAtSeverity || p.exclude.has(id) || aliases.some((a) => p.exclude.has(a)) ? 'exclude' : 'lower'
}
