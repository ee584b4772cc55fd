// Who a certificate names (docs/security-pki.md, "Reading identities"): its common name and
// subject alternative names, serial, expiry and fingerprint, read with node:crypto from a PEM file or
// from a TLS peer's certificate. What an identity may do is the transports' business.
import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import type { PeerCertificate } from 'node:tls'
import { MetaosError } from '../soap-runtime/errors.js'

export interface CertificateIdentity {
  readonly commonName: string | undefined
  readonly uris: string[]
  readonly dns: string[]
  readonly ips: string[]
  readonly serial: string
  readonly notAfter: Date
  readonly fingerprint256: string
}

/** OpenSSL prints IPv6 SANs uncompressed (0:0:0:0:0:0:0:1); identities compare in RFC 5952 form (::1). */
function canonicalIp (a: string): string {
  if (isIP(a) !== 6 || a.includes('::') || a.includes('.')) return a.toLowerCase()
  const groups = a.split(':').map(g => parseInt(g, 16).toString(16))
  let best = { at: -1, len: 1 }
  for (let i = 0; i < 8; i++) {
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > best.len) best = { at: i, len: j - i }
    i = Math.max(i, j)
  }
  return best.at < 0 ? groups.join(':') : `${groups.slice(0, best.at).join(':')}::${groups.slice(best.at + best.len).join(':')}`
}

/**
 * Splits Node's subjectaltname text ("DNS:a, IP Address:127.0.0.1, URI:urn:uuid:…"). Node writes
 * a value holding a comma, quote or other special character as a JSON string, so those are decoded.
 */
function parseSubjectAltName (s: string | undefined): { uris: string[], dns: string[], ips: string[] } {
  const out = { uris: [] as string[], dns: [] as string[], ips: [] as string[] }
  let i = 0
  while (s !== undefined && i < s.length) {
    const colon = s.indexOf(':', i)
    if (colon < 0) break
    const type = s.slice(i, colon).trim()
    let value: string
    let end: number
    if (s[colon + 1] === '"') {
      let j = colon + 2
      while (j < s.length && s[j] !== '"') j += s[j] === '\\' ? 2 : 1
      value = JSON.parse(s.slice(colon + 1, j + 1)) as string
      end = s.indexOf(',', j)
    } else {
      end = s.indexOf(', ', colon)
      value = s.slice(colon + 1, end < 0 ? undefined : end)
    }
    if (type === 'URI') out.uris.push(value)
    else if (type === 'DNS') out.dns.push(value)
    else if (type === 'IP Address') out.ips.push(canonicalIp(value))
    if (end < 0) break
    i = end + 1
  }
  return out
}

function commonNameOf (subject: string | undefined): string | undefined {
  const line = subject?.split('\n').find(l => l.startsWith('CN='))
  if (line === undefined) return undefined
  const v = line.slice(3)
  return v.startsWith('"') ? JSON.parse(v) as string : v
}

/** The identity of the first certificate of a PEM text. Throws INVALID_ARGUMENT when it holds none. */
export function certificateIdentity (pem: string | Buffer): CertificateIdentity {
  const text = pem.toString()
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(text)?.[0]
  let cert: X509Certificate
  try { cert = new X509Certificate(first ?? pem) } catch (e) { throw new MetaosError('INVALID_ARGUMENT', `not a certificate: ${(e as Error).message}`) }
  return {
    commonName: commonNameOf(cert.subject),
    ...parseSubjectAltName(cert.subjectAltName),
    serial: cert.serialNumber.toLowerCase(),
    notAfter: new Date(cert.validTo),
    fingerprint256: cert.fingerprint256,
  }
}

/** The identity of a TLS peer's certificate (tlsSocket.getPeerCertificate()); undefined when the peer sent none. */
export function identityFromPeerCertificate (cert: PeerCertificate): CertificateIdentity | undefined {
  if (cert === null || cert === undefined || Object.keys(cert).length === 0) return undefined
  const cn = cert.subject?.CN as string | string[] | undefined
  return {
    commonName: Array.isArray(cn) ? cn[0] : cn,
    ...parseSubjectAltName(cert.subjectaltname),
    serial: cert.serialNumber.toLowerCase(),
    notAfter: new Date(cert.valid_to),
    fingerprint256: cert.fingerprint256,
  }
}
