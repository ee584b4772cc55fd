// The Debian Security Tracker's JSON export (https://security-tracker.debian.org/tracker/data/json):
// { source package: { CVE id: { description, scope, releases: { codename: { status, fixed_version,
// urgency, repositories } } } } }. The feed keeps the kernel's package, `linux`: for each release, a
// `resolved` issue affects the versions before `fixed_version` ("0": never affected), an `open` one
// every version; `undetermined` ones and those of urgency "unimportant" are not counted. The
// severity is the urgency mapped to a CVSS band. Entries that break the shape are refused with the reason.
import { MalformedRecord } from './osv.js'
import { type Affected, type Vulnerability } from './model.js'
import { actionOf, ratingScore, type FeedPolicy } from './severity.js'
import { DEFAULT_SEVERITY } from './model.js'
import { parseDebianVersion } from './dpkg-version.js'

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Is this document shaped like the tracker's export (packages → issues → releases)? */
export function looksLikeDebianTracker (doc: unknown): boolean {
  if (!isObject(doc)) return false
  const first = Object.values(doc)[0]
  if (!isObject(first)) return false
  const issue = Object.values(first)[0]
  return isObject(issue) && isObject(issue.releases)
}

export interface TrackerEntry { readonly pkg: string, readonly id: string, readonly body: unknown }

/** Every package × issue of the export, for the caller to count (the record cap) and convert one by one. */
export function * trackerEntries (doc: Record<string, unknown>): Generator<TrackerEntry> {
  for (const [pkg, issues] of Object.entries(doc)) {
    if (!isObject(issues)) { yield { pkg, id: '(package)', body: issues }; continue }
    for (const [id, body] of Object.entries(issues)) yield { pkg, id, body }
  }
}

/** One issue of one package as a vulnerability; undefined when it is not the kernel's or affects no release; MalformedRecord when it breaks the shape. */
export function fromTracker (e: TrackerEntry, policy: FeedPolicy, source: string): Vulnerability | undefined {
  const bad = (why: string): never => { throw new MalformedRecord(why) }
  if (!isObject(e.body)) return bad(`package "${e.pkg}": each issue must be an object`)
  if (!/^(CVE-\d{4}-\d{4,}|TEMP-[0-9A-Fa-f-]{1,64})$/.test(e.id)) bad(`"${e.id.slice(0, 60)}" is not a CVE or TEMP id`)
  const releases = e.body.releases
  if (!isObject(releases)) return bad('"releases" must be an object')
  if (e.pkg !== 'linux') return undefined
  const affected: Affected[] = []
  let severity: number | undefined
  let from = ''
  for (const [release, r] of Object.entries(releases)) {
    if (!isObject(r)) return bad(`releases.${release} must be an object`)
    if (!/^[a-z]{2,20}$/.test(release)) bad(`"${release.slice(0, 30)}" is not a release codename`)
    if (!['resolved', 'open', 'undetermined'].includes(r.status as string)) bad(`releases.${release}.status must be resolved, open or undetermined`)
    if (r.urgency !== undefined && typeof r.urgency !== 'string') bad(`releases.${release}.urgency must be a string`)
    const fixed = r.fixed_version as string | undefined
    if (fixed !== undefined && typeof (fixed as unknown) !== 'string') bad(`releases.${release}.fixed_version must be a string`)
    if (r.status === 'resolved' && fixed === undefined) bad(`releases.${release}: a resolved issue needs its fixed_version`)
    if (fixed !== undefined && fixed !== '0') {
      try { parseDebianVersion(fixed) } catch (err) { bad(`releases.${release}.fixed_version: ${(err as Error).message}`) }
    }
    const score = ratingScore(r.urgency)
    if (r.status === 'undetermined' || score === 0 || fixed === '0') continue
    affected.push({ debian: { package: 'linux', release, ranges: [r.status === 'open' ? { introduced: '0' } : { introduced: '0', fixed: fixed! }] } })
    const s = score ?? DEFAULT_SEVERITY
    if (severity === undefined || s > severity) { severity = s; from = `Debian urgency ${String(r.urgency ?? 'not given')} (${release})` }
  }
  if (affected.length === 0 || severity === undefined) return undefined
  const description = e.body.description
  return {
    id: e.id, affected, source, severity, severityFrom: from, action: actionOf(policy, e.id, [], severity),
    ...(typeof description === 'string' ? { summary: description.slice(0, 300) } : {}),
  }
}
