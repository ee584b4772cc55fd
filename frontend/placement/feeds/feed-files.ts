// Reading a feed from disk, as untrusted input: a file or a directory of .json files, each the
// operator's format (which may name further sources and the policy), OSV records (one, or a list) or
// a Debian Security Tracker export. Bounded: a size cap per file, a cap on the records read and on
// the files of a directory (past one: INVALID_ARGUMENT saying which cap and how to raise it); a
// nesting depth cap checked before parsing; keys that could reach an object's prototype
// (`__proto__`, `constructor`, `prototype`) dropped while parsing. A record that is malformed is
// reported (file, record id, why) and skipped, the rest used.
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { MetaosError } from '../../../soap-runtime/errors.js'
import type { Vulnerability } from './model.js'
import { fromOsv, looksLikeOsv, MalformedRecord } from './osv.js'
import { fromTracker, looksLikeDebianTracker, trackerEntries } from './debian-tracker.js'
import { DEFAULT_POLICY, type FeedPolicy } from './severity.js'
import { validateFeed } from './operator-format.js'

export interface FeedLimits {
  /** Bytes of one file (default 128 MiB: the tracker's whole export is below it). */
  readonly maxBytes: number
  /** Records read in all (OSV records, tracker package × issue entries, operator entries; default 2,000,000). */
  readonly maxRecords: number
  /** Files of a directory (default 100,000). */
  readonly maxFiles: number
  /** Nesting depth of a JSON document (default 64). */
  readonly maxDepth: number
}
export const DEFAULT_LIMITS: FeedLimits = { maxBytes: 128 * 1024 * 1024, maxRecords: 2_000_000, maxFiles: 100_000, maxDepth: 64 }

/** A record or file the feed did not use, and why. */
export interface FeedProblem { readonly file: string, readonly record?: string, readonly why: string }

export interface LoadedFeed {
  readonly vulnerabilities: Vulnerability[]
  readonly problems: FeedProblem[]
  /** Records read, and of them those about nothing the feed matches (other packages). */
  readonly records: number
  readonly ignored: number
  /** The files read (watched for changes) and directories listed. */
  readonly files: string[]
  readonly policy: FeedPolicy
  readonly limits: FeedLimits
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
const tooLarge = (why: string): never => { throw new MetaosError('INVALID_ARGUMENT', why) }

/** Reads at most `max` bytes of a file; INVALID_ARGUMENT when it holds more. */
export function readBounded (file: string, max: number): string {
  const fd = openSync(file, 'r')
  try {
    const size = fstatSync(fd).size
    if (size > max) tooLarge(`${file}: ${size} bytes, over the feed's cap of ${max} bytes per file ("limits": { "maxBytes" } raises it)`)
    const buf = Buffer.allocUnsafe(Math.min(size, max) + 1)
    let n = 0
    for (let k; n < buf.length && (k = readSync(fd, buf, n, buf.length - n, n)) > 0;) n += k
    if (n > max) tooLarge(`${file}: grew past the feed's cap of ${max} bytes per file while read`)
    return buf.toString('utf8', 0, n)
  } finally { closeSync(fd) }
}

/** JSON.parse for untrusted text: the nesting depth checked first (so parsing cannot run out of stack), prototype keys dropped. */
export function parseUntrusted (text: string, maxDepth: number): unknown {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) { if (c === 92) i++; else if (c === 34) inString = false; continue }
    if (c === 34) inString = true
    else if (c === 123 || c === 91) { if (++depth > maxDepth) throw new SyntaxError(`nested deeper than ${maxDepth} levels`) } else if (c === 125 || c === 93) depth--
  }
  return JSON.parse(text, (k, v: unknown) => (UNSAFE_KEYS.has(k) ? undefined : v))
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const OPERATOR_KEYS = ['vulnerabilities', 'sources', 'excludeAtSeverity', 'exclude', 'limits']

/** Reads a feed from a file or a directory (docs/vulnerability-feed.md). INVALID_ARGUMENT when the path, an operator file or a cap fails; malformed records are in `problems`. */
export function loadFeed (path: string): LoadedFeed {
  const top = resolve(path)
  try { statSync(top) } catch (e) { throw new MetaosError('INVALID_ARGUMENT', `${top}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
  const r = new Reader(top)
  r.readPath(top, true)
  return r.out
}

class Reader {
  readonly out = { vulnerabilities: [] as Vulnerability[], problems: [] as FeedProblem[], records: 0, ignored: 0, files: [] as string[], policy: DEFAULT_POLICY, limits: DEFAULT_LIMITS }
  constructor (readonly top: string) {}

  count (n = 1): void {
    this.out.records += n
    if (this.out.records > this.out.limits.maxRecords) tooLarge(`${this.top}: more than ${this.out.limits.maxRecords} records, the feed's cap ("limits": { "maxRecords" } raises it)`)
  }

  parse (file: string, strict: boolean): unknown {
    this.out.files.push(file)
    try {
      return parseUntrusted(readBounded(file, this.out.limits.maxBytes), this.out.limits.maxDepth)
    } catch (e) {
      if (e instanceof MetaosError) throw e
      const why = `not readable JSON (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`
      if (strict) throw new MetaosError('INVALID_ARGUMENT', `${file}: ${why}`)
      this.out.problems.push({ file, why })
      return undefined
    }
  }

  record (file: string, id: string, convert: () => Vulnerability | undefined): void {
    this.count()
    try {
      const v = convert()
      if (v === undefined) this.out.ignored++
      else this.out.vulnerabilities.push(v)
    } catch (e) {
      if (!(e instanceof MalformedRecord)) throw e
      this.out.problems.push({ file, record: id, why: e.message })
    }
  }

  take (file: string, doc: unknown, strict: boolean): void {
    const { out } = this
    if (Array.isArray(doc)) { for (const r of doc) this.take(file, r, false); if (doc.length === 0) out.problems.push({ file, why: 'an empty list' }); return }
    if (looksLikeOsv(doc)) { this.record(file, String((doc as { id: string }).id).slice(0, 100), () => fromOsv(doc, out.policy, file)); return }
    if (looksLikeDebianTracker(doc)) { for (const e of trackerEntries(doc as Record<string, unknown>)) this.record(file, `${e.pkg.slice(0, 60)}/${e.id.slice(0, 60)}`, () => fromTracker(e, out.policy, file)); return }
    if (isObject(doc) && Object.keys(doc).some((k) => OPERATOR_KEYS.includes(k))) { this.operator(file, doc, strict); return }
    const why = 'neither OSV records, a Debian Security Tracker export nor { "vulnerabilities": [ … ] }'
    if (strict) throw new MetaosError('INVALID_ARGUMENT', `${file}: ${why}`)
    out.problems.push({ file, why })
  }

  /** The operator's format: its policy and limits (in the file given only), its entries, then its sources. */
  operator (file: string, doc: Record<string, unknown>, isTop: boolean): void {
    const fail = (why: string): never => { throw new MetaosError('INVALID_ARGUMENT', `${file}: ${why}`) }
    for (const k of Object.keys(doc)) if (!OPERATOR_KEYS.includes(k)) fail(`unknown key "${k}" (accepted: ${OPERATOR_KEYS.join(', ')})`)
    const policyKeys = ['sources', 'excludeAtSeverity', 'exclude', 'limits'].filter((k) => doc[k] !== undefined)
    if (!isTop && policyKeys.length > 0) fail(`${policyKeys.join(', ')} may only be in the feed file given (not in a source it names)`)
    this.policy(doc, fail)
    if (doc.vulnerabilities !== undefined) {
      const vs = validateFeed({ vulnerabilities: doc.vulnerabilities }, file)
      this.count(vs.length)
      this.out.vulnerabilities.push(...vs.map((v) => ({ ...v, source: file })))
    }
    if (doc.sources === undefined) return
    if (!Array.isArray(doc.sources) || !doc.sources.every((s) => typeof s === 'string' && s !== '')) fail('"sources" must be a list of paths (files or directories, relative to this file)')
    for (const s of doc.sources as string[]) {
      const p = resolve(dirname(file), s)
      try { statSync(p) } catch (e) { fail(`source "${s}": ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
      this.readPath(p, false)
    }
  }

  policy (doc: Record<string, unknown>, fail: (why: string) => never): void {
    if (doc.excludeAtSeverity !== undefined && !(typeof doc.excludeAtSeverity === 'number' && doc.excludeAtSeverity >= 0 && doc.excludeAtSeverity <= 10.1)) fail('"excludeAtSeverity" must be a number from 0 to 10 (above 10: severity never excludes)')
    if (doc.exclude !== undefined && !(Array.isArray(doc.exclude) && doc.exclude.every((x) => typeof x === 'string'))) fail('"exclude" must be a list of vulnerability ids or aliases')
    if (doc.limits !== undefined) {
      const l = doc.limits
      if (!isObject(l)) return fail('"limits" must be an object { "maxBytes"?, "maxRecords"?, "maxFiles"?, "maxDepth"? }')
      for (const [k, v] of Object.entries(l)) if (!(k in DEFAULT_LIMITS) || !(Number.isSafeInteger(v) && (v as number) > 0)) fail(`"limits.${k}" must be one of ${Object.keys(DEFAULT_LIMITS).join(', ')}, a whole number above 0`)
      this.out.limits = { ...DEFAULT_LIMITS, ...(l as Partial<FeedLimits>) }
    }
    this.out.policy = { excludeAtSeverity: (doc.excludeAtSeverity as number | undefined) ?? DEFAULT_POLICY.excludeAtSeverity, exclude: new Set((doc.exclude as string[] | undefined) ?? []) }
  }

  readPath (p: string, isTop: boolean): void {
    if (!statSync(p).isDirectory()) { this.take(p, this.parse(p, isTop), isTop); return }
    this.out.files.push(p)
    const names = readdirSync(p).filter((n) => n.endsWith('.json')).sort()
    if (names.length > this.out.limits.maxFiles) tooLarge(`${p}: ${names.length} .json files, over the feed's cap of ${this.out.limits.maxFiles} ("limits": { "maxFiles" } raises it)`)
    for (const n of names) {
      const f = join(p, n)
      const doc = this.parse(f, false)
      if (doc !== undefined) this.take(f, doc, false)
    }
  }
}
