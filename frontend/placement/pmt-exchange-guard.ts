// What a performance module believes of its peers (the PMT exchange across hosts): who a peer is
// (over https with mutual TLS, a client certificate of the cluster's CA whose subjectAltName names
// the module's id), how often it may exchange (a token bucket per peer identity), and which of its
// rows are sane enough to weigh: a finite, non-negative latency under 10 minutes, an error rate in
// [0, 1], a throughput under 1 TB/s, a whole number of calls, a measure not stamped in the future
// beyond a small clock skew, bounded identity strings. Holds no table: pmt-exchange.ts applies it.
import type { PeerCertificate } from 'node:tls'
import { MetaosError } from '../../soap-runtime/errors.js'
import { certificateUris } from '../../soap-runtime/http-transport.js'
import type { Authenticator, CallCredentials, Principal } from '../../soap-runtime/service-host.js'
import type { Logger } from 'pino'
import { DomainStateValues, type PmtEntry } from '../../wsdl/generated/performance-service.js'
import type { PerformanceMappingTable } from './pmt.js'

/** TLS of the exchange (PEM): this module's certificate and key (served, and presented as client), the CA peers must chain to. */
export interface ExchangeTls {
  readonly cert: string | Buffer
  readonly key: string | Buffer
  readonly ca: string | Buffer
  /** Revoked peer certificates. */
  readonly crl?: string | Buffer
}

export interface RowRules {
  /** A row stamped later than now + this is refused (default 5000 ms): hosts keep time (NTP). */
  readonly maxSkewMs: number
  /** A peer's row never replaces this module's own measure of a domain younger than this (default 60 s). */
  readonly ownFreshMs: number
  readonly maxLatencyMs: number
  readonly maxMbPerSec: number
}

export const DEFAULT_ROW_RULES: RowRules = { maxSkewMs: 5000, ownFreshMs: 60_000, maxLatencyMs: 600_000, maxMbPerSec: 1_000_000 }

/** Why a peer's rows (or calls) were refused, counted. */
export interface RefusalCounters {
  /** Out of sane bounds: NaN or negative latency, error rate outside [0, 1], absurd throughput, oversize strings. */
  insane: number
  /** Stamped in the future beyond the skew. */
  future: number
  /** For an EPR this frontend never heard announced (not in its PMT or registry). */
  unknown: number
  /** For a domain this module measured itself lately: its own measure stands. */
  ownFresh: number
  /** Exchanges over the peer's rate. */
  rate: number
  /** A peer whose certificate does not name the module id it claims (or no certificate at all). */
  identity: number
}

export function newRefusalCounters (): RefusalCounters {
  return { insane: 0, future: 0, unknown: 0, ownFresh: 0, rate: 0, identity: 0 }
}

const short = (s: string, n = 512): boolean => typeof s === 'string' && s.length <= n
const finiteIn = (v: number, min: number, max: number): boolean => Number.isFinite(v) && v >= min && v <= max

/** The reason a peer's row is out of bounds or from the future ('insane' | 'future'), or undefined when it may be weighed. */
export function rowRefusal (r: PmtEntry, now: number, rules: RowRules): { kind: 'insane' | 'future', why: string } | undefined {
  if (!short(r.epr) || r.epr === '' || r.endpoint.length > 16 || !r.endpoint.every((x) => short(x, 2048)) ||
    ![r.hosting, r.sysname, r.release, r.volume, r.zone ?? '', r.runtime ?? ''].every((x) => short(x, 256))) return { kind: 'insane', why: 'oversize identity fields' }
  if (r.latencyMs !== undefined && !finiteIn(r.latencyMs, 0, rules.maxLatencyMs)) return { kind: 'insane', why: `latencyMs ${r.latencyMs}` }
  if (!finiteIn(r.errorRate, 0, 1)) return { kind: 'insane', why: `errorRate ${r.errorRate}` }
  if (r.mbPerSec !== undefined && !finiteIn(r.mbPerSec, 0, rules.maxMbPerSec)) return { kind: 'insane', why: `mbPerSec ${r.mbPerSec}` }
  if (!Number.isSafeInteger(r.calls) || r.calls < 0) return { kind: 'insane', why: `calls ${r.calls}` }
  if (!Number.isSafeInteger(r.measuredAt) || r.measuredAt <= 0) return { kind: 'insane', why: `measuredAt ${r.measuredAt}` }
  if (r.measuredAt > now + rules.maxSkewMs) return { kind: 'future', why: `measured ${r.measuredAt - now} ms in the future` }
  return undefined
}

/** Where a peer's rows go and by which rules: the direct exchange (pmt-exchange.ts) and the board in etcd (pmt-board.ts) alike. */
export interface RowWeighing {
  readonly pmt: PerformanceMappingTable
  readonly rules: RowRules
  readonly refused: RefusalCounters
  /** Whether this frontend heard `epr` announced; rows for others are refused. Default: every EPR. */
  readonly knows?: ((epr: string) => boolean) | undefined
  readonly maxRows: number
  readonly log: Logger
}

/**
 * Weighs rows a peer module (`origin`) measured: the sane ones, for domains this frontend knows,
 * not over its own fresh measure, go to the PMT. Refusals are counted, and logged unless they are
 * only this module's own fresh measures standing. Returns how many rows were taken.
 */
export function weighRows (rows: readonly PmtEntry[], origin: string, peer: string, now: number, w: RowWeighing): number {
  const before = { ...w.refused }
  const reasons: string[] = []
  let taken = 0
  for (const r of rows.slice(0, w.maxRows)) {
    // Rows decoded from SOAP have the schema's shape; rows read from etcd's JSON may not.
    const bad = typeof r !== 'object' || r === null || !Array.isArray(r.endpoint) || !DomainStateValues.includes(r.state) ? { kind: 'insane' as const, why: 'not a PMT row' } : rowRefusal(r, now, w.rules)
    if (bad !== undefined) { w.refused[bad.kind]++; if (reasons.length < 3) reasons.push(`${String(r?.epr).slice(0, 80)}: ${bad.why}`); continue }
    if (w.knows !== undefined && !w.knows(r.epr)) { w.refused.unknown++; if (reasons.length < 3) reasons.push(`${r.epr.slice(0, 80)}: never announced here`); continue }
    if (w.pmt.ownMeasureFresh(r.epr, w.rules.ownFreshMs)) { w.refused.ownFresh++; continue }
    if (w.pmt.merge(r, origin, w.maxRows)) taken++
  }
  const refused = Object.fromEntries(Object.entries(w.refused).map(([k, v]) => [k, v - before[k as keyof RefusalCounters]]).filter(([, n]) => n !== 0))
  // A peer's row over this module's own fresh measure is the exchange working as meant (info); the others are a peer to look at.
  if (Object.keys(refused).some((k) => k !== 'ownFresh')) w.log.warn({ peer, module: origin.slice(0, 128), refused, examples: reasons }, 'PMT exchange: rows of a peer refused')
  return taken
}

/** Exchanges per second and burst allowed to one peer (default 2/s, burst 10). */
export interface PeerRate { readonly perSecond: number, readonly burst: number }
export const DEFAULT_PEER_RATE: PeerRate = { perSecond: 2, burst: 10 }
const MAX_PEERS = 4096

/** A token bucket per peer identity. */
export class PeerBuckets {
  readonly #rate: PeerRate
  readonly #now: () => number
  readonly #buckets = new Map<string, { tokens: number, at: number }>()
  constructor (rate: PeerRate, now: () => number = Date.now) { this.#rate = rate; this.#now = now }

  /** Takes one exchange of `peer`; QUOTA_EXCEEDED when its rate is spent. */
  take (peer: string): void {
    const now = this.#now()
    let b = this.#buckets.get(peer)
    if (b === undefined) {
      if (this.#buckets.size >= MAX_PEERS) this.#buckets.delete(this.#buckets.keys().next().value!)
      this.#buckets.set(peer, b = { tokens: this.#rate.burst, at: now })
    }
    b.tokens = Math.min(this.#rate.burst, b.tokens + Math.max(0, now - b.at) * this.#rate.perSecond / 1000)
    b.at = now
    if (b.tokens < 1) throw new MetaosError('QUOTA_EXCEEDED', `${peer.slice(0, 128)} exchanges more often than ${this.#rate.perSecond} times a second`)
    b.tokens -= 1
  }
}

/** A peer proven by its client certificate: its name (first URI, else CN) and every URI the certificate names. */
export interface PeerPrincipal extends Principal {
  readonly uris: readonly string[]
}

/**
 * The exchange's authenticator over mutual TLS: a verified client certificate of the CA, or
 * UNAUTHORIZED before the body is read; then the peer's token bucket (QUOTA_EXCEEDED).
 */
export class PeerAuthenticator implements Authenticator {
  readonly understood: readonly string[] = []
  readonly #buckets: PeerBuckets
  readonly #counters: RefusalCounters
  constructor (buckets: PeerBuckets, counters: RefusalCounters) { this.#buckets = buckets; this.#counters = counters }

  authenticate (c: CallCredentials): PeerPrincipal {
    const cert: PeerCertificate | undefined = c.tls?.certificate
    if (cert === undefined || Object.keys(cert).length === 0) { this.#counters.identity++; throw new MetaosError('UNAUTHORIZED', 'the PMT exchange takes peers with a client certificate of the cluster CA only') }
    if (c.tls?.authorized !== true) { this.#counters.identity++; throw new MetaosError('UNAUTHORIZED', `client certificate refused: ${c.tls?.error ?? 'not verified'}`) }
    const uris = certificateUris(cert)
    const cn = cert.subject?.CN as string | string[] | undefined
    const name = uris[0] ?? (Array.isArray(cn) ? cn[0] : cn) ?? cert.fingerprint256
    return { name, via: 'certificate', uris }
  }

  admit (p: Principal): () => void {
    try { this.#buckets.take(p.name) } catch (e) { this.#counters.rate++; throw e }
    return () => {}
  }

  ownerOf (p: Principal): string { return `id:${p.name}` }
}
