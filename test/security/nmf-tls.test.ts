// TLS over net.tcp: the [MC-NMF] upgrade `application/ssl-tls`. A domain with a certificate of a
// private CA and an access policy listens on net.tcp beyond loopback (0.0.0.0): its sessions must
// upgrade. A proxy with `tls: { ca }` upgrades, is verified (and can pin the domain's EPR), and its
// UsernameToken — PasswordText too, as over https — is accepted; a proxy that does not upgrade is
// refused (EndpointAccessDenied → UNAUTHORIZED); one that does not trust the CA gets UNAUTHORIZED;
// on a loopback listener the upgrade is optional. net.tcp beyond loopback without a certificate or
// without authentication is refused at start.
import t from 'tap'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { createStorageProxy, type StorageProxyOptions } from '../../frontend/handlers/storage-proxy.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { initCa, issueDomainCertificate } from '../../security/pki.js'
import { loadDomainSecurity } from '../../security/domain-security.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('net.tcp sessions upgraded to TLS', async (t) => {
  const dir = tempDir(t, 'metaos-nmf-tls-')
  await initCa(join(dir, 'pki'))
  const cert = await issueDomainCertificate(join(dir, 'pki'), { name: 'framed' })
  await initCa(join(dir, 'other'))
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: [{ name: 'alice', password: 'correct horse battery', paths: ['*'] }] }), { mode: 0o600 })
  mkdirSync(join(dir, 'root'))
  const security = loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath, auth: join(dir, 'policy.json') })
  const d = await startStorageDomain({ root: join(dir, 'root'), listen: ['net.tcp://0.0.0.0:0', 'net.tcp://127.0.0.1:0'], security })
  t.teardown(async () => { await d.close(500) })
  const wide = d.endpoints[0]!.replace('0.0.0.0', '127.0.0.1')
  const loop = d.endpoints[1]!
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'))
  const alice = { username: 'alice', password: 'correct horse battery' }

  const call = async (ep: string, o: StorageProxyOptions): Promise<string> => {
    const p = createStorageProxy(ep, { timeoutMs: 10_000, ...o })
    try { return (await p.invoke('GetDomainInfo', {})).output.domainId } catch (e) { return (e as MetaosError).code ?? String(e) } finally { await p.close() }
  }
  t.equal(await call(wide, { tls: { ca }, credentials: alice }), d.epr, 'upgraded, verified, authenticated')
  t.equal(await call(wide, { tls: { ca, expectUri: d.epr }, credentials: { ...alice, passwordType: 'text' } }), d.epr, 'the EPR pinned; PasswordText is accepted inside TLS')
  t.equal(await call(wide, { credentials: alice }), 'UNAUTHORIZED', 'a session that does not upgrade is refused (EndpointAccessDenied)')
  t.equal(await call(wide, { tls: { ca: readFileSync(join(dir, 'other', 'ca.crt')) }, credentials: alice }), 'UNAUTHORIZED', 'a domain of another CA is not trusted')
  t.equal(await call(wide, { tls: { ca, expectUri: 'urn:uuid:00000000-0000-4000-8000-000000000000' }, credentials: alice }), 'UNAUTHORIZED', 'another EPR pinned')
  t.equal(await call(loop, { credentials: alice }), d.epr, 'on loopback the upgrade is optional (PasswordDigest)')
  t.equal(await call(loop, { credentials: { ...alice, passwordType: 'text' } }), 'UNAUTHORIZED', 'but PasswordText needs TLS')
  t.equal(await call(loop, { tls: { ca }, credentials: { ...alice, passwordType: 'text' } }), d.epr, 'with the upgrade, PasswordText is accepted on loopback too')
})

t.test('net.tcp beyond loopback needs a certificate and authentication', async (t) => {
  const dir = tempDir(t, 'metaos-nmf-tls-refused-')
  mkdirSync(join(dir, 'root'))
  await t.rejects(startStorageDomain({ root: join(dir, 'root'), listen: ['net.tcp://0.0.0.0:0'] }), { code: 'INVALID_ARGUMENT', message: /plain net\.tcp beyond this machine/ })
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: [{ name: 'a', password: 'a password of some length', paths: ['*'] }] }), { mode: 0o600 })
  await t.rejects(startStorageDomain({ root: join(dir, 'root'), listen: ['net.tcp://0.0.0.0:0'], security: loadDomainSecurity({ auth: join(dir, 'policy.json') }) }), { code: 'INVALID_ARGUMENT', message: /--tls-cert/ })
})
