// A domain's security settings from the operator's files: the certificate and key of its https
// listeners, the client CA and CRL for mutual TLS, the access policy, and whether listening beyond
// loopback without protection is intended. `metaos storage|network` and `metaos up` build it here.
import { readFileSync } from 'node:fs'
import { MetaosError } from '../soap-runtime/errors.js'
import type { Authenticator, HostTls } from '../soap-runtime/service-host.js'
import { certificateIdentity } from './certificate-identity.js'
import { loadAccessPolicy, type AccessPolicy } from './access-policy.js'
import { PolicyAuthenticator } from './authenticator.js'

export interface SecurityFiles {
  readonly tlsCert?: string
  readonly tlsKey?: string
  readonly clientCa?: string
  readonly crl?: string
  readonly auth?: string
  readonly allowInsecure?: boolean
}

export interface DomainSecurity {
  readonly tls?: HostTls
  readonly authenticator?: PolicyAuthenticator
  readonly allowInsecure?: boolean
  /** The EPR the domain certificate names (a `urn:uuid:` URI in its subjectAltName): the domain announces it. */
  readonly certifiedEpr?: string
  /** Re-reads the certificate, key, client CA and CRL (SIGHUP). */
  readonly reload: () => HostTls | undefined
}

function read (file: string, what: string): Buffer {
  try { return readFileSync(file) } catch (e) { throw new MetaosError('FILE_NOT_FOUND', `${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
}

export function loadDomainSecurity (f: SecurityFiles): DomainSecurity {
  if ((f.tlsCert === undefined) !== (f.tlsKey === undefined)) throw new MetaosError('INVALID_ARGUMENT', '--tls-cert and --tls-key go together')
  if (f.crl !== undefined && f.clientCa === undefined) throw new MetaosError('INVALID_ARGUMENT', '--crl lists revoked client certificates: it needs --client-ca')
  if (f.clientCa !== undefined && f.tlsCert === undefined) throw new MetaosError('INVALID_ARGUMENT', '--client-ca asks https clients for certificates: it needs --tls-cert and --tls-key')
  const loadTls = (): HostTls | undefined => f.tlsCert === undefined
    ? undefined
    : {
        cert: read(f.tlsCert, 'certificate'),
        key: read(f.tlsKey!, 'key'),
        ...(f.clientCa === undefined ? {} : { clientCa: read(f.clientCa, 'client CA') }),
        ...(f.crl === undefined ? {} : { crl: read(f.crl, 'CRL') }),
      }
  const tls = loadTls()
  const policy: AccessPolicy | undefined = f.auth === undefined ? undefined : loadAccessPolicy(f.auth)
  const authenticator = policy !== undefined || f.clientCa !== undefined
    ? new PolicyAuthenticator({ policy, clientCertificates: f.clientCa !== undefined })
    : undefined
  const certifiedEpr = tls === undefined ? undefined : certificateIdentity(tls.cert).uris.find((u) => /^urn:uuid:[0-9a-f-]{36}$/i.test(u))?.toLowerCase()
  return {
    ...(tls === undefined ? {} : { tls }),
    ...(authenticator === undefined ? {} : { authenticator }),
    ...(f.allowInsecure === true ? { allowInsecure: true } : {}),
    ...(certifiedEpr === undefined ? {} : { certifiedEpr }),
    reload: loadTls,
  }
}

/** The service host's share of it. */
export function hostSecurity (s: DomainSecurity | undefined): { tls?: HostTls, authenticator?: Authenticator, allowInsecure?: boolean } {
  if (s === undefined) return {}
  return {
    ...(s.tls === undefined ? {} : { tls: s.tls }),
    ...(s.authenticator === undefined ? {} : { authenticator: s.authenticator }),
    ...(s.allowInsecure === true ? { allowInsecure: true } : {}),
  }
}

/** The --help lines of the security options every domain command takes (cli/domain-lifecycle.ts defines them). */
export const SECURITY_HELP = `
security (docs/security.md):
  --tls-cert FILE     certificate (PEM, leaf then chain) of https:// listeners; a urn:uuid: URI in
                      its subjectAltName becomes the domain's EPR (metaos pki issue-domain makes one)
  --tls-key FILE      its private key
  --client-ca FILE    ask https clients for a certificate of this CA (mutual TLS); its CN names
                      the caller's identity
  --crl FILE          revoked client certificates (PEM CRL; SIGHUP re-reads it)
  --auth FILE         access policy (JSON, mode 0600): identities, passwords for WS-Security
                      UsernameToken, volumes/paths or destinations, limits; every call must then
                      authenticate
  --allow-insecure    listen beyond loopback without TLS, or without authentication, on purpose
`

export function securityFiles (v: Record<string, unknown>): SecurityFiles {
  const s = (k: string): string | undefined => typeof v[k] === 'string' ? v[k] as string : undefined
  return {
    ...(s('tls-cert') === undefined ? {} : { tlsCert: s('tls-cert') }),
    ...(s('tls-key') === undefined ? {} : { tlsKey: s('tls-key') }),
    ...(s('client-ca') === undefined ? {} : { clientCa: s('client-ca') }),
    ...(s('crl') === undefined ? {} : { crl: s('crl') }),
    ...(s('auth') === undefined ? {} : { auth: s('auth') }),
    ...(v['allow-insecure'] === true ? { allowInsecure: true } : {}),
  }
}
