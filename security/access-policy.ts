// Who may use a domain, and for what: the identities of an access policy file (`--auth FILE`),
// each with its credentials (a password for WS-Security UsernameToken, and/or a client
// certificate whose CN is its name), the volumes and paths (storage) and destinations (network)
// it may use, and its limits (open handles/sockets, bytes in flight, request rate).
// Owns the file's format and the checks on one identity; knows no transport or SOAP.
import { readFileSync, statSync } from 'node:fs'
import { posix } from 'node:path'
import { MetaosError } from '../soap-runtime/errors.js'
import { parseAllowList, type DestinationPolicy } from './allow-list.js'

export interface IdentityLimits {
  /** Open handles (storage) or sockets and listeners (network) held at once. */
  readonly maxHandles: number
  /** Request bytes being processed at once (bodies received and not yet answered). */
  readonly maxBytesInFlight: number
  /** Sustained requests per second (a token bucket)… */
  readonly requestsPerSecond: number
  /** …and the burst it admits. */
  readonly burst: number
}

export const DEFAULT_IDENTITY_LIMITS: IdentityLimits = {
  maxHandles: 256,
  maxBytesInFlight: 128 * 1024 * 1024,
  requestsPerSecond: 5000,
  burst: 10_000,
}

export interface Identity {
  /** The name callers are known by: a UsernameToken's Username, a client certificate's CN, or "local". */
  readonly name: string
  /** How it was proven. */
  readonly via: 'password' | 'certificate' | 'local-bus' | 'none'
  readonly grants: Grants
}

export interface Grants {
  /** Volumes it may use ("*" = any). */
  readonly volumes: readonly string[]
  /** Path prefixes inside a volume ("*" = the whole volume), normalized, no trailing slash. */
  readonly paths: readonly string[]
  /** Destinations it may connect to, send to and listen on (network domains), intersected with the domain's allow-list. */
  readonly destinations: DestinationPolicy | undefined
  readonly limits: IdentityLimits
}

interface Entry {
  readonly name: string
  readonly password: string | undefined
  readonly certificate: boolean
  readonly grants: Grants
}

export interface AccessPolicy {
  /** The identity of a name proven by a certificate, or undefined when the policy does not know it. */
  byCertificate: (commonName: string) => Identity | undefined
  /** The password of a user (undefined: unknown, or no password login) and its identity. */
  byPassword: (username: string) => { password: string, identity: Identity } | undefined
  /** Callers on the local bus who present no credentials (the socket file's permissions let them in); undefined = they must authenticate too. */
  readonly local: Identity | undefined
  readonly identities: readonly string[]
}

const NAME = /^[A-Za-z0-9._@-]{1,64}$/
const FULL: Grants = { volumes: ['*'], paths: ['*'], destinations: undefined, limits: DEFAULT_IDENTITY_LIMITS }

/** Grants for everyone when a domain has no policy (loopback and bus use, or mTLS with any certificate of the CA). */
export function fullGrants (): Grants { return FULL }

/** Reads a policy file. It holds passwords: refused when others than its owner may read it. */
export function loadAccessPolicy (file: string): AccessPolicy {
  let text: string
  try {
    const st = statSync(file)
    if ((st.mode & 0o077) !== 0) throw new MetaosError('INVALID_ARGUMENT', `${file} holds passwords and is readable by others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`)
    text = readFileSync(file, 'utf8')
  } catch (e) {
    if (e instanceof MetaosError) throw e
    throw new MetaosError('FILE_NOT_FOUND', `access policy ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`)
  }
  let json: unknown
  try { json = JSON.parse(text) } catch (e) { throw new MetaosError('INVALID_ARGUMENT', `access policy ${file} is not JSON: ${(e as Error).message}`) }
  return parseAccessPolicy(json, file)
}

export function parseAccessPolicy (json: unknown, where = 'access policy'): AccessPolicy {
  const bad = (why: string): MetaosError => new MetaosError('INVALID_ARGUMENT', `${where}: ${why}`)
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw bad('must be an object with "identities"')
  const o = json as Record<string, unknown>
  for (const k of Object.keys(o)) if (k !== 'identities' && k !== 'local' && k !== '$comment') throw bad(`unknown key "${k}"`)
  if (!Array.isArray(o.identities)) throw bad('"identities" must be an array')
  const entries = new Map<string, Entry>()
  for (const [i, raw] of o.identities.entries()) {
    const e = parseEntry(raw, `identities[${i}]`, bad)
    if (entries.has(e.name)) throw bad(`identity "${e.name}" is listed twice`)
    if (e.password === undefined && !e.certificate) throw bad(`identity "${e.name}" has neither a password nor "certificate": true, so nobody can be it`)
    entries.set(e.name, e)
  }
  const local = o.local === undefined ? undefined : parseEntry({ name: 'local', ...(o.local as object) }, 'local', bad)
  // One Identity object per entry and proof, made once: the authenticator keys its per-identity
  // state (rate, bytes in flight) on them.
  const made = new Map<string, Identity>()
  const identity = (e: Entry, via: Identity['via']): Identity => {
    const key = `${via}\0${e.name}`
    let id = made.get(key)
    if (id === undefined) made.set(key, id = { name: e.name, via, grants: e.grants })
    return id
  }
  return {
    byCertificate: (cn) => { const e = entries.get(cn); return e?.certificate === true ? identity(e, 'certificate') : undefined },
    byPassword: (u) => { const e = entries.get(u); return e?.password === undefined ? undefined : { password: e.password, identity: identity(e, 'password') } },
    local: local === undefined ? undefined : identity(local, 'local-bus'),
    identities: [...entries.keys()],
  }
}

function parseEntry (raw: unknown, where: string, bad: (why: string) => MetaosError): Entry {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(`${where} must be an object`)
  const r = raw as Record<string, unknown>
  const known = new Set(['name', 'password', 'certificate', 'volumes', 'paths', 'destinations', 'limits', '$comment'])
  for (const k of Object.keys(r)) if (!known.has(k)) throw bad(`${where}: unknown key "${k}"`)
  if (typeof r.name !== 'string' || !NAME.test(r.name)) throw bad(`${where}: "name" must be 1-64 characters of A-Z a-z 0-9 . _ @ -`)
  if (r.password !== undefined && (typeof r.password !== 'string' || r.password.length < 8)) throw bad(`${where}: "password" must be a string of at least 8 characters`)
  if (r.certificate !== undefined && typeof r.certificate !== 'boolean') throw bad(`${where}: "certificate" must be true or false`)
  const strings = (k: string, dflt: string[]): string[] => {
    const v = r[k]
    if (v === undefined) return dflt
    if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(`${where}: "${k}" must be an array of strings`)
    return v as string[]
  }
  const paths = strings('paths', []).map((p) => normalizePrefix(p, `${where}.paths`, bad))
  const destinations = r.destinations === undefined ? undefined : parseAllowList(strings('destinations', []))
  const limits = { ...DEFAULT_IDENTITY_LIMITS }
  if (r.limits !== undefined) {
    if (r.limits === null || typeof r.limits !== 'object') throw bad(`${where}: "limits" must be an object`)
    for (const [k, v] of Object.entries(r.limits)) {
      if (!(k in limits)) throw bad(`${where}.limits: unknown key "${k}"`)
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw bad(`${where}.limits.${k} must be a positive number`)
      ;(limits as Record<string, number>)[k] = v
    }
  }
  return {
    name: r.name,
    password: r.password as string | undefined,
    certificate: r.certificate === true,
    grants: { volumes: strings('volumes', ['*']), paths, destinations, limits },
  }
}

/** A path inside the volume as the checks compare it: "/" separators, ".." resolved, no trailing "/". */
function normalizeRelative (path: string): string {
  return posix.normalize((path === '' ? '.' : path).replace(/\\/g, '/')).replace(/\/+$/, '')
}

function normalizePrefix (p: string, where: string, bad: (why: string) => MetaosError): string {
  if (p === '*') return '*'
  const n = normalizeRelative(p)
  if (n === '' || n === '.' || n.startsWith('/') || n === '..' || n.startsWith('../') || p.includes('\0')) throw bad(`${where}: "${p}" must be a relative directory inside the volume, or "*"`)
  return n
}

/** UNAUTHORIZED unless the identity may use this volume. */
export function checkVolume (id: Identity, volume: string): void {
  if (!id.grants.volumes.includes('*') && !id.grants.volumes.includes(volume)) throw new MetaosError('UNAUTHORIZED', `"${id.name}" may not use volume ${volume}`)
}

/**
 * UNAUTHORIZED unless the path lies under one of the identity's prefixes. The path is normalized
 * as the domain will resolve it ("a/../b" is "b"); symlinks inside the volume are the volume
 * owner's business (a link from a granted directory into another one is a grant).
 */
export function checkPath (id: Identity, path: string): void {
  const paths = id.grants.paths
  if (paths.includes('*')) return
  const n = normalizeRelative(path)
  for (const p of paths) if (n === p || n.startsWith(p + '/')) return
  throw new MetaosError('UNAUTHORIZED', `"${id.name}" may not use ${JSON.stringify(path.slice(0, 200))}`)
}
