// OSV records (https://ossf.github.io/osv-schema/) as the feed's vulnerabilities: the Linux kernel
// (ecosystem "Linux"), Node.js (Bitnami's "node" package, SEMVER ranges) and Debian's kernel package
// (ecosystem "Debian:12", package "linux", Debian versions). Ranges of type SEMVER or ECOSYSTEM are
// walked as the schema's evaluation does (events sorted; introduced opens, fixed closes exclusive,
// last_affected closes inclusive, limit caps every interval); GIT ranges name commits and are not
// evaluated. A record that breaks the schema is refused with the reason (the caller reports it).
import { checkVersion, compareIn, type Scheme } from './version-schemes.js'
import { DEBIAN_RELEASES, type Affected, type AffectedRange, type Vulnerability } from './model.js'
import { actionOf, osvSeverity, type FeedPolicy } from './severity.js'

/** A record the feed cannot use as it is: why (the caller names the file and the record). */
export class MalformedRecord extends Error {}

const EVENT_KEYS = ['introduced', 'fixed', 'last_affected', 'limit'] as const
type Event = { readonly kind: typeof EVENT_KEYS[number], readonly version: string }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const bad = (why: string): never => { throw new MalformedRecord(why) }
const text = (v: unknown, what: string, max = 200): string => (typeof v === 'string' && v !== '' && v.length <= max ? v : bad(`${what} must be a non-empty string of at most ${max} characters`))
const list = (v: unknown, what: string): unknown[] => (v === undefined ? [] : Array.isArray(v) ? v : bad(`${what} must be a list`))

/** Is this document shaped like an OSV record (an id, and affected packages or a schema version)? */
export function looksLikeOsv (doc: unknown): boolean {
  return isObject(doc) && typeof doc.id === 'string' && (Array.isArray(doc.affected) || typeof doc.schema_version === 'string' || typeof doc.modified === 'string')
}

/** Which target an affected package is, and how its versions compare; undefined for the packages the feed does not match. */
function targetOf (ecosystem: string, name: string): { scheme: Scheme, make: (ranges: AffectedRange[], versions: string[]) => Affected } | undefined {
  if (ecosystem === 'Linux') return { scheme: 'kernel', make: (ranges, versions) => ({ kernel: { sysname: 'Linux', ranges, versions } }) }
  if (ecosystem === 'Bitnami' && (name === 'node' || name === 'nodejs')) return { scheme: 'semver', make: (ranges, versions) => ({ runtime: { name: 'node', ranges, versions } }) }
  const deb = /^Debian:(\d+)$/.exec(ecosystem)
  const release = deb === null ? undefined : DEBIAN_RELEASES[deb[1]!]
  if (release !== undefined && name === 'linux') return { scheme: 'dpkg', make: (ranges, versions) => ({ debian: { package: 'linux', release, ranges, versions } }) }
  return undefined
}

/** One range's events as intervals, in the scheme's order. */
export function intervals (events: readonly Event[], scheme: Scheme): AffectedRange[] {
  const order = (e: Event): number => (e.version === '0' ? -1 : 0)
  const sorted = [...events].sort((a, b) => (order(a) - order(b)) || (a.version === '0' || b.version === '0' ? 0 : compareIn(scheme, a.version, b.version)))
  const out: AffectedRange[] = []
  let open: string | undefined
  for (const e of sorted) {
    if (e.kind === 'introduced') { open ??= e.version; continue }
    if (open === undefined || e.kind === 'limit') continue
    out.push(e.kind === 'fixed' ? { introduced: open, fixed: e.version } : { introduced: open, lastAffected: e.version })
    open = undefined
  }
  if (open !== undefined) out.push({ introduced: open })
  const limits = sorted.filter((e) => e.kind === 'limit' && e.version !== '*').map((e) => e.version)
  if (limits.length === 0) return out
  const cap = limits.reduce((m, v) => (compareIn(scheme, v, m) < 0 ? v : m))
  return out.filter((r) => r.introduced === '0' || r.introduced === undefined || compareIn(scheme, r.introduced, cap) < 0)
    .map((r) => (r.fixed !== undefined && compareIn(scheme, r.fixed, cap) <= 0) || (r.lastAffected !== undefined && compareIn(scheme, r.lastAffected, cap) < 0) ? r : { introduced: r.introduced!, fixed: cap })
}

/** An OSV record as a vulnerability; undefined when it concerns nothing the feed matches (or is withdrawn); MalformedRecord when it breaks the schema. */
export function fromOsv (doc: unknown, policy: FeedPolicy, source: string): Vulnerability | undefined {
  if (!isObject(doc)) return bad('an OSV record must be an object')
  const id = text(doc.id, '"id"')
  text(doc.modified, '"modified" (required by the schema)', 64)
  const aliases = list(doc.aliases, '"aliases"').map((a) => text(a, 'each alias'))
  if (doc.summary !== undefined && typeof doc.summary !== 'string') bad('"summary" must be a string')
  if (doc.withdrawn !== undefined) return undefined
  const affected: Affected[] = []
  const severities: Array<{ type?: unknown, score?: unknown }> = []
  const addSeverity = (v: unknown, where: string): void => {
    for (const s of list(v, where)) {
      if (!isObject(s) || typeof s.type !== 'string' || typeof s.score !== 'string') bad(`each of ${where} must be { "type", "score" }`)
      severities.push(s as { type: string, score: string })
    }
  }
  addSeverity(doc.severity, '"severity"')
  let rating: unknown = isObject(doc.database_specific) ? doc.database_specific.severity : undefined
  for (const [i, a] of list(doc.affected, '"affected"').entries()) {
    const at = `affected[${i}]`
    if (!isObject(a)) return bad(`${at} must be an object`)
    const pkg = a.package
    if (pkg === undefined) continue
    if (!isObject(pkg)) return bad(`${at}.package must be an object`)
    const target = targetOf(text(pkg.ecosystem, `${at}.package.ecosystem`), text(pkg.name, `${at}.package.name`))
    const ranges: AffectedRange[] = []
    for (const [j, r] of list(a.ranges, `${at}.ranges`).entries()) {
      if (!isObject(r)) return bad(`${at}.ranges[${j}] must be an object`)
      if (!['SEMVER', 'ECOSYSTEM', 'GIT'].includes(r.type as string)) bad(`${at}.ranges[${j}].type must be SEMVER, ECOSYSTEM or GIT`)
      const events = list(r.events, `${at}.ranges[${j}].events`).map((e, k): Event => {
        const keys = isObject(e) ? Object.keys(e) : []
        const kind = keys[0] as Event['kind']
        if (keys.length !== 1 || !EVENT_KEYS.includes(kind)) bad(`${at}.ranges[${j}].events[${k}] must have exactly one of ${EVENT_KEYS.join(', ')}`)
        return { kind, version: text((e as Record<string, unknown>)[kind], `${at}.ranges[${j}].events[${k}].${kind}`) }
      })
      if (events.length === 0) bad(`${at}.ranges[${j}].events must not be empty`)
      if (target === undefined || r.type === 'GIT') continue
      for (const e of events) {
        try { checkVersion(target.scheme, e.version) } catch (err) { bad(`${at}.ranges[${j}]: ${(err as Error).message}`) }
      }
      ranges.push(...intervals(events, target.scheme))
    }
    const versions = list(a.versions, `${at}.versions`).map((v) => text(v, `each of ${at}.versions`))
    if (target === undefined) continue
    addSeverity(a.severity, `${at}.severity`)
    if (isObject(a.ecosystem_specific) && rating === undefined) rating = a.ecosystem_specific.urgency ?? a.ecosystem_specific.severity
    const usable = versions.filter((v) => { try { checkVersion(target.scheme, v); return true } catch { return false } })
    if (ranges.length > 0 || usable.length > 0) affected.push(target.make(ranges, usable))
  }
  if (affected.length === 0) return undefined
  let severity
  try { severity = osvSeverity(severities, rating) } catch (err) { return bad((err as Error).message) }
  return {
    id, aliases, affected, source, severity: severity.score, severityFrom: severity.from,
    action: actionOf(policy, id, aliases, severity.score),
    ...(typeof doc.summary === 'string' ? { summary: doc.summary.slice(0, 300) } : {}),
  }
}
