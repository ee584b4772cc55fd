// Authentication of one call, and the per-identity limits a domain enforces before it does any
// work: a UsernameToken (checked against the access policy's passwords, replays refused), else a
// client certificate the TLS layer verified against the client CA and the CRL (its CN names the
// identity), else — on the local bus only — the policy's "local" identity. Then a token bucket
// (requests per second) and a budget of request bytes in flight per identity.
// Implements the service host's Authenticator; knows the policy, not the storage or the network.
import type { PeerCertificate } from 'node:tls'
import { MetaosError } from '../soap-runtime/errors.js'
import type { Authenticator, CallCredentials, Principal } from '../soap-runtime/service-host.js'
import { readUsernameToken, SECURITY_HEADER, UsernameTokenVerifier, type VerifierOptions } from '../soap-runtime/ws-security.js'
import { fullGrants, type AccessPolicy, type Identity, type IdentityLimits } from './access-policy.js'

export interface AuthenticatorOptions {
  /** The access policy; undefined = any client certificate of the CA is an identity with full grants. */
  readonly policy: AccessPolicy | undefined
  /** Client certificates are verified by TLS against this CA (the host's TLS options carry it). */
  readonly clientCertificates: boolean
  readonly verifier?: VerifierOptions
}

/** The caller string handles and sockets are bound to, for an identity. */
export function ownerOf (name: string): string { return `id:${name}` }

class Bucket {
  tokens: number
  last: number
  inFlight = 0
  constructor (readonly identity: Identity, readonly limits: IdentityLimits, now: number) { this.tokens = limits.burst; this.last = now }
}

export class PolicyAuthenticator implements Authenticator {
  readonly understood = [SECURITY_HEADER]
  readonly #o: AuthenticatorOptions
  readonly #verifier: UsernameTokenVerifier
  readonly #buckets = new Map<string, Bucket>()
  /** Counted refusals by reason (for the logs, tests and the closing note's table). */
  readonly refused = new Map<string, number>()

  constructor (o: AuthenticatorOptions) {
    this.#o = o
    this.#verifier = new UsernameTokenVerifier(o.verifier)
  }

  authenticate (c: CallCredentials): Principal {
    try {
      return this.#authenticate(c)
    } catch (e) {
      const reason = e instanceof MetaosError ? e.message.replace(/"[^"]*"/g, '…').slice(0, 80) : 'error'
      this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1)
      throw e
    }
  }

  #authenticate (c: CallCredentials): Identity {
    // A certificate that TLS could not verify (unknown CA, revoked, expired) is refused even when a
    // password comes with it: it is a claim that failed, not an absent one.
    const cert = c.tls?.certificate
    const presented = cert !== undefined && Object.keys(cert).length > 0
    if (presented && c.tls?.authorized !== true) throw new MetaosError('UNAUTHORIZED', `client certificate refused: ${c.tls?.error ?? 'not verified'}`)
    const token = readUsernameToken(c.headers)
    if (token !== undefined) {
      const known = this.#o.policy?.byPassword(token.username)
      this.#verifier.verify(token, known?.password, c.tls !== undefined || (c.transport !== 'http' && c.transport !== 'net.tcp'))
      return known!.identity
    }
    if (presented && this.#o.clientCertificates) {
      const cn = commonName(cert)
      if (cn === undefined) throw new MetaosError('UNAUTHORIZED', 'the client certificate has no CN')
      if (this.#o.policy === undefined) return { name: cn, via: 'certificate', grants: fullGrants() }
      const id = this.#o.policy.byCertificate(cn)
      if (id === undefined) throw new MetaosError('UNAUTHORIZED', `the client certificate "${cn.slice(0, 64)}" names no identity of this domain`)
      return id
    }
    if ((c.transport === 'unix' || c.transport === 'net.uds') && this.#o.policy?.local !== undefined) return this.#o.policy.local
    throw new MetaosError('UNAUTHORIZED', 'this domain needs authentication: a WS-Security UsernameToken or a client certificate')
  }

  /** Counts one call of `bytes` against the identity's rate and in-flight budget; returns its release. */
  admit (p: Principal, bytes: number): () => void {
    const id = p as Identity
    const now = Date.now()
    let b = this.#buckets.get(id.name)
    // Per name: the same identity proven by a password or by a certificate shares one budget.
    if (b === undefined || b.limits !== id.grants.limits) this.#buckets.set(id.name, b = new Bucket(id, id.grants.limits, now))
    b.tokens = Math.min(b.limits.burst, b.tokens + (now - b.last) * b.limits.requestsPerSecond / 1000)
    b.last = now
    if (b.tokens < 1) throw new MetaosError('QUOTA_EXCEEDED', `"${id.name}" is over its rate of ${b.limits.requestsPerSecond} requests per second`)
    if (b.inFlight > 0 && b.inFlight + bytes > b.limits.maxBytesInFlight) throw new MetaosError('QUOTA_EXCEEDED', `"${id.name}" has ${b.inFlight} request bytes in flight; its limit is ${b.limits.maxBytesInFlight}`)
    b.tokens -= 1
    b.inFlight += bytes
    let released = false
    const bucket = b
    return () => { if (!released) { released = true; bucket.inFlight -= bytes } }
  }

  ownerOf (p: Principal): string { return ownerOf(p.name) }

  /** The identity an owner string (ownerOf(name)) stands for, once it has called. */
  identityFor (owner: string): Identity | undefined {
    return owner.startsWith('id:') ? this.#buckets.get(owner.slice(3))?.identity : undefined
  }

  /** The handle/socket limit of an owner, for the engines. */
  limitFor (owner: string): number | undefined {
    return this.identityFor(owner)?.grants.limits.maxHandles
  }

  get noncesRemembered (): number { return this.#verifier.remembered }
}

function commonName (cert: PeerCertificate): string | undefined {
  const cn = cert.subject?.CN as string | string[] | undefined
  return Array.isArray(cn) ? cn[0] : cn
}

/** The identity behind a call's principal (the domains' authorization checks take it). */
export function identityOf (p: Principal | undefined): Identity | undefined {
  return p as Identity | undefined
}
