// METAOS_CONFIG: one JSON file that configures the process-wide intelligent frontend (what
// FileStream's `destination: 'discover'` and sharedFrontend() use) — placement rules, the
// vulnerability feed, trusted discovery, the placement policy and the PMT exchange. The file is
// validated as a whole before anything starts: every error is INVALID_CONFIG naming the file, the
// key and what the key accepts, and unknown keys are refused. Paths in the file are relative to
// the file's folder. Options given in code take precedence over the file, key by key
// (docs/configuration.md). Owns reading and validating; the frontend decides what to start.
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { MetaosError } from '../../soap-runtime/errors.js'
import { RulesEngine, validateRules } from '../placement/rules-engine.js'
import { VulnerabilityFeed, validateFeed } from '../placement/vulnerability-feed.js'
import type { TrustOptions } from '../handlers/domain-trust.js'
import type { JoinOptions } from '../placement/pmt-exchange.js'
import { parseCoordinationUrl, type CoordinationOptions } from '../../coordination/connect.js'

/** How the frontend shares its measures with the other performance modules (IntelligentFrontend.shareMeasures). */
export interface ExchangeSettings extends JoinOptions {
  /** Where the exchange is served (default an ephemeral port on 127.0.0.1). */
  readonly listen?: readonly string[]
}

/** What configures a frontend, from code or from the file: each key given in code wins over the file's. */
export interface FrontendSettings {
  readonly rules?: RulesEngine
  readonly feed?: VulnerabilityFeed
  readonly policy?: 'best' | 'weighted'
  readonly sharpness?: number
  readonly trust?: TrustOptions
  /** Share measures with the other frontends discovered: `true` (defaults) or where and how often. */
  readonly exchange?: boolean | ExchangeSettings
  /**
   * Coordination through etcd (docs/coordination.md): the dispatchers' checkpoints in the stream
   * directory, this frontend's lease, and its measures published there and the others' watched.
   * From the file's "coordination" key or `METAOS_COORDINATION` (never both).
   */
  readonly coordination?: CoordinationOptions
}

/** A configuration file, read and validated: its rules and feed are ready to use. */
export interface MetaosConfig extends FrontendSettings {
  /** `METAOS_CONFIG <path>`: how errors and notes name the file. */
  readonly source: string
  readonly exchange?: ExchangeSettings
}

const KEYS: Record<string, string> = {
  rules: 'a path to a rules file (docs/rules.md) or a list of rules',
  feed: 'a path to a vulnerability feed (a file or a directory: the operator\'s format, OSV records, a Debian Security Tracker export; docs/vulnerability-feed.md) or a list of vulnerabilities',
  placement: 'an object { "policy"?: "best" | "weighted", "sharpness"?: number }',
  trust: 'an object { "ca": path, "cert"?: path, "key"?: path, "username"?, "password"?, "passwordType"?, "verifyTimeoutMs"?, "recheckMs"?, "probePath"? }',
  exchange: 'true, false, or an object { "listen"?: [endpoint…], "interfaces"?: [name…], "intervalMs"?: number }',
  coordination: 'an etcd://HOST:PORT[,…] URL, or an object { "url": "etcd://…" | "etcds://…", "ca"?: path, "cert"?: path, "key"?: path, "leaseTtlSeconds"?: number, "prefix"?: string }',
}

/** Reads METAOS_CONFIG (undefined when unset or empty). A feed from a file is watched: close it when done. */
export function configFromEnvironment (env: NodeJS.ProcessEnv = process.env, o: { watchFeed?: boolean } = {}): MetaosConfig | undefined {
  const path = env.METAOS_CONFIG
  return path === undefined || path === '' ? undefined : loadConfig(path, o)
}

/** Reads and validates a configuration file (docs/configuration.md); INVALID_CONFIG says what is wrong. */
export function loadConfig (path: string, o: { watchFeed?: boolean } = {}): MetaosConfig {
  const source = `METAOS_CONFIG ${path}`
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message
    throw new MetaosError('INVALID_CONFIG', `${source}: not a readable JSON file (${why})`, { cause: e })
  }
  return parseConfig(doc, source, dirname(resolve(path)), o)
}

/** Validates a parsed configuration; relative paths are resolved against `dir`. */
export function parseConfig (doc: unknown, source: string, dir: string, o: { watchFeed?: boolean } = {}): MetaosConfig {
  const fail = (why: string, cause?: unknown): never => { throw new MetaosError('INVALID_CONFIG', `${source}: ${why}`, cause === undefined ? undefined : { cause }) }
  const must = (key: string, what: string, got: unknown): never => fail(`"${key}" must be ${what}, not ${show(got)}`)
  if (!isObject(doc)) fail(`the file must hold one JSON object such as { "rules": "rules.json" }, not ${show(doc)}`)
  const c = doc as Record<string, unknown>
  for (const k of Object.keys(c)) {
    if (!(k in KEYS)) fail(`unknown key "${k}" (accepted: ${Object.keys(KEYS).join(', ')})`)
  }
  const path = (key: string, v: unknown): string => {
    if (typeof v !== 'string' || v === '') must(key, 'a path to a file', v)
    return resolve(dir, v as string)
  }
  const out: { -readonly [K in keyof MetaosConfig]: MetaosConfig[K] } = { source }

  if (c.rules !== undefined) {
    if (typeof c.rules !== 'string' && !Array.isArray(c.rules)) must('rules', KEYS.rules!, c.rules)
    const file = typeof c.rules === 'string' ? path('rules', c.rules) : undefined
    try {
      out.rules = file !== undefined ? RulesEngine.fromFile(file) : new RulesEngine(validateRules({ rules: c.rules }, '"rules"'))
    } catch (e) { fail(`${file === undefined ? '' : '"rules": '}${(e as Error).message}`, e) }
  }

  const placement = c.placement
  if (placement !== undefined) {
    if (!isObject(placement)) must('placement', KEYS.placement!, placement)
    const p = placement as Record<string, unknown>
    known('placement', p, ['policy', 'sharpness'], fail)
    if (p.policy !== undefined && p.policy !== 'best' && p.policy !== 'weighted') must('placement.policy', '"best" or "weighted"', p.policy)
    if (p.sharpness !== undefined && !(typeof p.sharpness === 'number' && Number.isFinite(p.sharpness) && p.sharpness > 0)) must('placement.sharpness', 'a number above 0', p.sharpness)
    if (p.policy !== undefined) out.policy = p.policy as 'best' | 'weighted'
    if (p.sharpness !== undefined) out.sharpness = p.sharpness as number
  }

  if (c.trust !== undefined) out.trust = trustOf(c.trust, path, must, fail)

  const x = c.exchange
  if (x !== undefined && x !== false) {
    if (x !== true && !isObject(x)) must('exchange', KEYS.exchange!, x)
    const e = (x === true ? {} : x) as Record<string, unknown>
    known('exchange', e, ['listen', 'interfaces', 'intervalMs'], fail)
    for (const k of ['listen', 'interfaces']) {
      const v = e[k]
      if (v !== undefined && !(Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === 'string' && s !== ''))) must(`exchange.${k}`, 'a non-empty list of strings', v)
    }
    if (e.listen !== undefined && (e.listen as string[]).some((s) => !/^(http:\/\/|unix:\/)/.test(s))) must('exchange.listen', 'endpoints such as "http://127.0.0.1:0" or "unix:/path.sock"', e.listen)
    if (e.intervalMs !== undefined && !positiveInteger(e.intervalMs)) must('exchange.intervalMs', 'a whole number of milliseconds above 0', e.intervalMs)
    out.exchange = e as ExchangeSettings
  }

  if (c.coordination !== undefined) out.coordination = coordinationOf(c.coordination, path, must, fail)

  // Last: the feed from a file is watched, so nothing may fail after it is made.
  if (c.feed !== undefined) {
    if (typeof c.feed !== 'string' && !Array.isArray(c.feed)) must('feed', KEYS.feed!, c.feed)
    const file = typeof c.feed === 'string' ? path('feed', c.feed) : undefined
    try {
      out.feed = file !== undefined ? VulnerabilityFeed.fromFile(file, o.watchFeed ?? true) : VulnerabilityFeed.of(validateFeed({ vulnerabilities: c.feed }, '"feed"'))
    } catch (e) { fail(`${file === undefined ? '' : '"feed": '}${(e as Error).message}`, e) }
  }
  return out
}

function trustOf (v: unknown, path: (key: string, v: unknown) => string, must: (key: string, what: string, got: unknown) => never, fail: (why: string, cause?: unknown) => never): TrustOptions {
  if (!isObject(v)) must('trust', KEYS.trust!, v)
  const t = v as Record<string, unknown>
  known('trust', t, ['ca', 'cert', 'key', 'username', 'password', 'passwordType', 'verifyTimeoutMs', 'recheckMs', 'probePath'], fail)
  if (t.ca === undefined) fail('"trust.ca" is required: the CA (PEM) every discovered domain\'s certificate must chain to')
  if ((t.cert === undefined) !== (t.key === undefined)) fail('"trust.cert" and "trust.key" go together (a client certificate and its key, PEM)')
  if ((t.username === undefined) !== (t.password === undefined)) fail('"trust.username" and "trust.password" go together')
  for (const k of ['username', 'password', 'probePath']) if (t[k] !== undefined && typeof t[k] !== 'string') must(`trust.${k}`, 'a string', t[k])
  if (t.passwordType !== undefined && t.passwordType !== 'digest' && t.passwordType !== 'text') must('trust.passwordType', '"digest" or "text"', t.passwordType)
  for (const k of ['verifyTimeoutMs', 'recheckMs']) if (t[k] !== undefined && !positiveInteger(t[k])) must(`trust.${k}`, 'a whole number of milliseconds above 0', t[k])
  const pem = (k: string): Buffer => {
    const file = path(`trust.${k}`, t[k])
    let b: Buffer
    try { b = readFileSync(file) } catch (e) { return fail(`"trust.${k}": ${file} is not readable (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e) }
    if (!b.includes('-----BEGIN ')) fail(`"trust.${k}": ${file} is not PEM (no -----BEGIN line)`)
    return b
  }
  return {
    ca: pem('ca'),
    ...(t.cert === undefined ? {} : { cert: pem('cert'), key: pem('key') }),
    ...(t.username === undefined ? {} : { credentials: { username: t.username as string, password: t.password as string, ...(t.passwordType === undefined ? {} : { passwordType: t.passwordType as 'digest' | 'text' }) } }),
    ...(t.verifyTimeoutMs === undefined ? {} : { verifyTimeoutMs: t.verifyTimeoutMs as number }),
    ...(t.recheckMs === undefined ? {} : { recheckMs: t.recheckMs as number }),
    ...(t.probePath === undefined ? {} : { probePath: t.probePath as string }),
  }
}

function coordinationOf (v: unknown, path: (key: string, v: unknown) => string, must: (key: string, what: string, got: unknown) => never, fail: (why: string, cause?: unknown) => never): CoordinationOptions {
  if (typeof v !== 'string' && !isObject(v)) must('coordination', KEYS.coordination!, v)
  const c = (typeof v === 'string' ? { url: v } : v) as Record<string, unknown>
  known('coordination', c, ['url', 'ca', 'cert', 'key', 'leaseTtlSeconds', 'prefix'], fail)
  if (typeof c.url !== 'string') must('coordination.url', 'an etcd://HOST:PORT[,…] or etcds://… URL', c.url)
  if (c.leaseTtlSeconds !== undefined && !(positiveInteger(c.leaseTtlSeconds) && (c.leaseTtlSeconds as number) <= 3600)) must('coordination.leaseTtlSeconds', 'a whole number of seconds from 1 to 3600', c.leaseTtlSeconds)
  if (c.prefix !== undefined && !(typeof c.prefix === 'string' && /^\/[A-Za-z0-9._~/-]{0,200}$/.test(c.prefix))) must('coordination.prefix', 'a key prefix such as "/metaos"', c.prefix)
  const pem = (k: string): Buffer | undefined => {
    if (c[k] === undefined) return undefined
    const file = path(`coordination.${k}`, c[k])
    try { return readFileSync(file) } catch (e) { return fail(`"coordination.${k}": ${file} is not readable (${(e as NodeJS.ErrnoException).code ?? String(e)})`, e) }
  }
  const o: CoordinationOptions = {
    url: c.url as string,
    ...Object.fromEntries(['ca', 'cert', 'key'].map((k) => [k, pem(k)]).filter(([, b]) => b !== undefined)),
    ...(c.leaseTtlSeconds === undefined ? {} : { leaseTtlSeconds: c.leaseTtlSeconds as number }),
    ...(c.prefix === undefined ? {} : { prefix: c.prefix as string }),
  }
  try { parseCoordinationUrl(o.url, o) } catch (e) { fail(`"coordination": ${(e as Error).message}`, e) }
  return o
}

/** `METAOS_COORDINATION=etcd://…` (and METAOS_COORDINATION_CA, _CERT, _KEY: PEM files for etcds://), or undefined. */
export function coordinationFromEnvironment (env: NodeJS.ProcessEnv = process.env): CoordinationOptions | undefined {
  const url = env.METAOS_COORDINATION
  if (url === undefined || url === '') return undefined
  const read = (k: string): Buffer | undefined => {
    const file = env[`METAOS_COORDINATION_${k}`]
    if (file === undefined || file === '') return undefined
    try { return readFileSync(file) } catch (e) { throw new MetaosError('INVALID_CONFIG', `METAOS_COORDINATION_${k} ${file} is not readable (${(e as NodeJS.ErrnoException).code ?? String(e)})`, { cause: e }) }
  }
  const o: CoordinationOptions = { url, ...Object.fromEntries(['ca', 'cert', 'key'].map((k) => [k, read(k.toUpperCase())]).filter(([, b]) => b !== undefined)) }
  try { parseCoordinationUrl(url, o) } catch (e) { throw new MetaosError('INVALID_CONFIG', `METAOS_COORDINATION: ${(e as Error).message}`, { cause: e }) }
  return o
}

function known (key: string, o: Record<string, unknown>, keys: readonly string[], fail: (why: string) => never): void {
  for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`unknown key "${key}.${k}" (accepted: ${keys.join(', ')})`)
}

function isObject (v: unknown): v is Record<string, unknown> { return typeof v === 'object' && v !== null && !Array.isArray(v) }
function positiveInteger (v: unknown): boolean { return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 }
function show (v: unknown): string {
  const s = JSON.stringify(v) ?? String(v)
  return s.length > 60 ? `${s.slice(0, 57)}…` : s
}
