// WS-Security 1.0 UsernameToken Profile 1.0/1.1, the parts WCF, zeep and gSOAP speak: a
// `wsse:Security` header with a `wsse:UsernameToken` (Username; Password of type PasswordDigest =
// Base64(SHA-1(nonce ‖ created ‖ password)) or PasswordText; Nonce; wsu:Created) and an optional
// `wsu:Timestamp` (Created, Expires). The verifier checks freshness (Created within a clock skew,
// Expires not past), the digest in constant time, and rejects a nonce it has seen within the
// freshness window (replay). Owns the header's syntax and checks; knows no identities or policy.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { MetaosError } from './errors.js'
import { escapeXml, type XmlElement } from './xml.js'

export const WSSE_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'
export const WSU_NS = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd'
const TOKEN_PROFILE = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
export const PASSWORD_DIGEST = `${TOKEN_PROFILE}#PasswordDigest`
export const PASSWORD_TEXT = `${TOKEN_PROFILE}#PasswordText`
const BASE64_BINARY = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary'
/** The header's Clark name, for a host's set of understood headers. */
export const SECURITY_HEADER = `{${WSSE_NS}}Security`

export interface UsernameToken {
  readonly username: string
  readonly password: string
  readonly passwordType: 'digest' | 'text'
  /** Raw nonce bytes (base64-decoded), if sent. */
  readonly nonce: Buffer | undefined
  /** wsu:Created exactly as sent (the digest covers its text). */
  readonly created: string | undefined
  /** The wsu:Timestamp's Expires, if a Timestamp was sent. */
  readonly expires: string | undefined
  readonly timestampCreated: string | undefined
}

function unauthorized (why: string): MetaosError {
  return new MetaosError('UNAUTHORIZED', why)
}

function child (el: XmlElement, ns: string, local: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.local === local)
}

/** The UsernameToken of a message's headers, undefined when it has no Security header. Malformed → UNAUTHORIZED. */
export function readUsernameToken (headers: readonly XmlElement[]): UsernameToken | undefined {
  const sec = headers.filter((h) => h.ns === WSSE_NS && h.local === 'Security')
  if (sec.length === 0) return undefined
  if (sec.length > 1) throw unauthorized('more than one wsse:Security header')
  const s = sec[0]!
  const tokens = s.children.filter((c) => c.ns === WSSE_NS && c.local === 'UsernameToken')
  if (tokens.length !== 1) throw unauthorized('the wsse:Security header must carry exactly one wsse:UsernameToken')
  const tok = tokens[0]!
  const username = child(tok, WSSE_NS, 'Username')?.text.trim()
  const pw = child(tok, WSSE_NS, 'Password')
  if (username === undefined || username === '' || pw === undefined) throw unauthorized('the UsernameToken needs a Username and a Password')
  const type = pw.attrs.Type ?? PASSWORD_TEXT
  if (type !== PASSWORD_DIGEST && type !== PASSWORD_TEXT) throw unauthorized(`unsupported password type ${type.slice(0, 200)}`)
  const nonceEl = child(tok, WSSE_NS, 'Nonce')
  let nonce: Buffer | undefined
  if (nonceEl !== undefined) {
    const enc = nonceEl.attrs.EncodingType ?? BASE64_BINARY
    if (enc !== BASE64_BINARY) throw unauthorized('the Nonce must be Base64Binary')
    const text = nonceEl.text.trim()
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw unauthorized('the Nonce is not base64')
    nonce = Buffer.from(text, 'base64')
  }
  // wsu:Created; some stacks (the 1.1 profile's examples, older gSOAP) put it in the wsse namespace.
  const created = (child(tok, WSU_NS, 'Created') ?? child(tok, WSSE_NS, 'Created'))?.text.trim()
  const ts = child(s, WSU_NS, 'Timestamp')
  return {
    username: username.slice(0, 256),
    password: pw.text,
    passwordType: type === PASSWORD_DIGEST ? 'digest' : 'text',
    nonce,
    created,
    expires: ts === undefined ? undefined : child(ts, WSU_NS, 'Expires')?.text.trim(),
    timestampCreated: ts === undefined ? undefined : child(ts, WSU_NS, 'Created')?.text.trim(),
  }
}

export function passwordDigest (nonce: Buffer, created: string, password: string): string {
  return createHash('sha1').update(nonce).update(created, 'utf8').update(password, 'utf8').digest('base64')
}

export interface VerifierOptions {
  /** How far a Created may lie in the future or the past (default 5 minutes, WCF's MaxClockSkew). */
  readonly maxClockSkewMs?: number
  /** How old a Created may be (default 5 minutes); nonces are remembered this long plus the skew. */
  readonly maxAgeMs?: number
  /** Most nonces remembered at once (default 100 000); beyond it new tokens are refused, never old nonces forgotten early. */
  readonly maxNonces?: number
  readonly now?: () => number
}

/**
 * Checks UsernameTokens against known passwords. A digest needs a Nonce and a Created (the
 * profile's replay protection); a plain-text password is accepted only where the caller says the
 * channel is confidential (TLS, the local bus).
 */
export class UsernameTokenVerifier {
  readonly #skew: number
  readonly #maxAge: number
  readonly #maxNonces: number
  readonly #now: () => number
  /** nonce (base64) → when it may be forgotten. Insertion order = expiry order (a constant lifetime). */
  readonly #nonces = new Map<string, number>()

  constructor (o: VerifierOptions = {}) {
    this.#skew = o.maxClockSkewMs ?? 5 * 60_000
    this.#maxAge = o.maxAgeMs ?? 5 * 60_000
    this.#maxNonces = o.maxNonces ?? 100_000
    this.#now = o.now ?? Date.now
  }

  get remembered (): number { return this.#nonces.size }

  /** Throws UNAUTHORIZED unless the token proves `password` (undefined = unknown user: same answer, same work). */
  verify (tok: UsernameToken, password: string | undefined, confidential: boolean): void {
    const now = this.#now()
    if (tok.expires !== undefined) {
      const exp = parseTime(tok.expires, 'Timestamp Expires')
      if (exp + this.#skew < now) throw unauthorized('the message\'s Timestamp has expired')
    }
    if (tok.timestampCreated !== undefined && parseTime(tok.timestampCreated, 'Timestamp Created') - this.#skew > now) throw unauthorized('the message\'s Timestamp is in the future')
    let created: number | undefined
    if (tok.created !== undefined) {
      created = parseTime(tok.created, 'Created')
      if (created - this.#skew > now) throw unauthorized('the UsernameToken\'s Created is in the future')
      if (created + this.#maxAge + this.#skew < now) throw unauthorized('the UsernameToken has expired (Created is too old)')
    }
    const expected = password ?? '\u0000unknown-user'
    let ok: boolean
    if (tok.passwordType === 'digest') {
      if (tok.nonce === undefined || tok.created === undefined) throw unauthorized('a PasswordDigest needs a Nonce and a Created')
      if (tok.nonce.length < 8 || tok.nonce.length > 256) throw unauthorized('the Nonce must be 8 to 256 bytes')
      ok = safeEqual(passwordDigest(tok.nonce, tok.created, expected), tok.password.trim())
    } else {
      if (!confidential) throw unauthorized('a plain-text password is accepted only over TLS or the local bus; use PasswordDigest')
      ok = safeEqual(expected, tok.password)
    }
    if (!ok || password === undefined) throw unauthorized(`unknown user or wrong password for "${tok.username.slice(0, 64)}"`)
    if (tok.nonce !== undefined) this.#remember(tok.nonce.toString('base64'), now)
  }

  #remember (nonce: string, now: number): void {
    for (const [n, until] of this.#nonces) {
      if (until > now) break
      this.#nonces.delete(n)
    }
    if (this.#nonces.has(nonce)) throw unauthorized('this UsernameToken was already used (replayed nonce)')
    if (this.#nonces.size >= this.#maxNonces) throw unauthorized('too many recent tokens to check for replay; retry later')
    this.#nonces.set(nonce, now + this.#maxAge + 2 * this.#skew)
  }
}

function parseTime (s: string, what: string): number {
  // xsd:dateTime with a zone (UTC "Z" or an offset); a time without a zone is ambiguous: refuse.
  if (!/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/.test(s)) throw unauthorized(`${what} is not a UTC xsd:dateTime`)
  const t = Date.parse(s)
  if (Number.isNaN(t)) throw unauthorized(`${what} is not a valid time`)
  return t
}

function safeEqual (a: string, b: string): boolean {
  const x = createHash('sha256').update(a, 'utf8').digest()
  const y = createHash('sha256').update(b, 'utf8').digest()
  return timingSafeEqual(x, y)
}

export interface UsernameCredentials {
  readonly username: string
  readonly password: string
  /** PasswordDigest (default) or PasswordText (what WCF's UserName over transport sends). */
  readonly passwordType?: 'digest' | 'text'
  /** Lifetime of the Timestamp (default 5 minutes). */
  readonly ttlMs?: number
}

/** A fresh `wsse:Security` header for one message (new nonce, Created = now). */
export function buildSecurityHeader (c: UsernameCredentials, soapNs: string, now = Date.now()): string {
  const created = new Date(now).toISOString()
  const expires = new Date(now + (c.ttlMs ?? 5 * 60_000)).toISOString()
  const nonce = randomBytes(16)
  const digest = (c.passwordType ?? 'digest') === 'digest'
  const password = digest ? passwordDigest(nonce, created, c.password) : escapeXml(c.password)
  return `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="${WSU_NS}" xmlns:e="${soapNs}" e:mustUnderstand="1">` +
    `<wsu:Timestamp><wsu:Created>${created}</wsu:Created><wsu:Expires>${expires}</wsu:Expires></wsu:Timestamp>` +
    `<wsse:UsernameToken><wsse:Username>${escapeXml(c.username)}</wsse:Username>` +
    `<wsse:Password Type="${digest ? PASSWORD_DIGEST : PASSWORD_TEXT}">${password}</wsse:Password>` +
    `<wsse:Nonce EncodingType="${BASE64_BINARY}">${nonce.toString('base64')}</wsse:Nonce>` +
    `<wsu:Created>${created}</wsu:Created></wsse:UsernameToken></wsse:Security>`
}
