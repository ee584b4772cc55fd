// Test helper: a storage domain on https://127.0.0.1 (ephemeral port) with a fresh private CA,
// mutual TLS (client CA + CRL) and an access policy of one identity that may sign in with its
// password or its client certificate; closed and removed when the test ends.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Test } from 'tap'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { loadDomainSecurity, type DomainSecurity } from '../../security/domain-security.js'
import { initCa, issueClientCertificate, issueDomainCertificate, type IssuedCertificate, type KeyType } from '../../security/pki.js'
import { tempDir } from './temp-dir.js'

export interface SecureTestDomain {
  readonly domain: StorageDomain
  readonly url: string
  readonly dir: string
  readonly root: string
  readonly caCertPath: string
  readonly client: IssuedCertificate & { p12Path?: string }
  readonly security: DomainSecurity
}

export async function startSecureDomain (t: Test, o: { prefix: string, identity: string, password: string, keyType?: KeyType }): Promise<SecureTestDomain> {
  const dir = tempDir(t, o.prefix)
  const root = join(dir, 'root')
  mkdirSync(root)
  const ca = join(dir, 'ca')
  const keyType = o.keyType === undefined ? {} : { keyType: o.keyType }
  const { caCertPath, crlPath } = await initCa(ca, keyType)
  const server = await issueDomainCertificate(ca, { name: 'store1', ...keyType })
  const client = await issueClientCertificate(ca, { identity: o.identity, ...keyType })
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify({ identities: [{ name: o.identity, password: o.password, certificate: true, paths: ['*'] }] }), { mode: 0o600 })
  const security = loadDomainSecurity({ tlsCert: server.certPath, tlsKey: server.keyPath, clientCa: caCertPath, crl: crlPath, auth: policy })
  const domain = await startStorageDomain({ root, listen: ['https://127.0.0.1:0'], security })
  t.teardown(async () => {
    await domain.close(1000)
    rmSync(dir, { recursive: true, force: true })
  })
  return { domain, url: domain.endpoints[0]!, dir, root, caCertPath, client, security }
}
