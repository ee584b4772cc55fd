// The private CA (security/pki.ts) against real peers: node:tls servers and clients that trust it
// (or another CA), OpenSSL's verifier, a CRL that makes a server refuse a revoked client, and the
// `metaos pki` command as a process (dist/, built by `npm test`'s pretest).
import t, { type Test } from 'tap'
import { execFile as execFileCb } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { createServer, connect, type TLSSocket } from 'node:tls'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import { partMissing } from '../helpers/require-part.js'
import { promisify } from 'node:util'
import {
  certificateIdentity, identityFromPeerCertificate, initCa, issueClientCertificate, issueDomainCertificate,
  listCertificates, revokeCertificate, type CertificateIdentity,
} from '../../security/pki.js'

const execFile = promisify(execFileCb)
const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
const OPENSSL = '/usr/bin/openssl'
const UUID_URN = /^urn:uuid:[0-9a-f-]{36}$/

interface Seen { authorized: boolean, authorizationError: string | undefined, peer: CertificateIdentity | undefined }

/** A TLS server with the domain's certificate asking for (not requiring) a client certificate; reports what it saw of each client. */
async function startServer (t: Test, o: { cert: string, key: string, ca: string, crl: string }): Promise<{ port: number, seen: Promise<Seen> }> {
  let report!: (s: Seen) => void
  const seen = new Promise<Seen>(resolve => { report = resolve })
  const server = createServer({ cert: readFileSync(o.cert), key: readFileSync(o.key), ca: readFileSync(o.ca), crl: readFileSync(o.crl), requestCert: true, rejectUnauthorized: false }, (s: TLSSocket) => {
    const err = s.authorizationError as unknown as (Error & { code?: string }) | string | null
    report({ authorized: s.authorized, authorizationError: err === null ? undefined : typeof err === 'string' ? err : err.code ?? err.message, peer: identityFromPeerCertificate(s.getPeerCertificate()) })
    s.end('ok')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  return { port: (server.address() as AddressInfo).port, seen }
}

/** Connects as a client; resolves with what the client saw of the server, or the TLS error. */
async function dial (port: number, o: { ca: string, cert?: string, key?: string }): Promise<{ authorized: boolean, peer: CertificateIdentity | undefined } | { error: string }> {
  return await new Promise(resolve => {
    const s = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(o.ca), ...(o.cert === undefined ? {} : { cert: readFileSync(o.cert), key: readFileSync(o.key!) }) })
    s.on('secureConnect', () => {
      const r = { authorized: s.authorized, peer: identityFromPeerCertificate(s.getPeerCertificate()) }
      s.on('data', () => {})
      s.on('end', () => { resolve(r) })
      s.on('error', () => { resolve(r) })
    })
    s.on('error', (e: Error & { code?: string }) => { resolve({ error: e.code ?? e.message }) })
  })
}

t.test('a CA, a domain and a client: real TLS, verification, revocation', async t => {
  const root = t.testdir()
  const dir = join(root, 'ca')
  const other = join(root, 'other-ca')
  const { caCertPath, crlPath } = await initCa(dir)
  await initCa(other, { name: 'someone else' })
  t.ok(existsSync(caCertPath) && existsSync(crlPath) && existsSync(join(dir, 'index.json')))
  await t.rejects(initCa(dir), { code: 'ALREADY_EXISTS' })

  const domain = await issueDomainCertificate(dir, { name: 'store1', dns: ['store.example'], ip: ['10.1.2.3', 'fd00:0:0:1:0:0:0:5', '2001:db8::1'] })
  const client = await issueClientCertificate(dir, { identity: 'alice' })
  t.match(domain.epr, UUID_URN)
  t.match(domain.serial, /^[0-7][0-9a-f]{31}$/)
  for (const p of [join(dir, 'ca.key'), domain.keyPath, client.keyPath]) t.equal(statSync(p).mode & 0o777, 0o600, `${p} is 0600`)

  const id = certificateIdentity(readFileSync(domain.certPath))
  t.equal(id.commonName, 'store1')
  t.ok(id.uris.includes(domain.epr), 'the EPR is a SubjectAltName URI')
  t.ok(id.dns.includes('localhost') && id.dns.includes('store.example'))
  t.ok(id.ips.includes('127.0.0.1') && id.ips.includes('10.1.2.3'))
  t.same(id.ips, ['127.0.0.1', '::1', '10.1.2.3', 'fd00:0:0:1::5', '2001:db8::1'], 'IPv6 in RFC 5952 form')
  t.equal(id.serial, domain.serial)
  t.equal(id.notAfter.getTime(), domain.notAfter.getTime())
  t.same(certificateIdentity(readFileSync(client.certPath)).uris, ['metaos:identity:alice'])

  await t.test('openssl verify accepts both leaves', { skip: existsSync(OPENSSL) ? false : partMissing('openssl', `${OPENSSL} does not exist`, 'apt-get install openssl') }, async t => {
    for (const p of [domain.certPath, client.certPath]) {
      const { stdout } = await execFile(OPENSSL, ['verify', '-CAfile', caCertPath, p])
      t.match(stdout, /: OK/)
    }
    t.ok(client.p12Path !== undefined && existsSync(client.p12Path))
    const { stdout } = await execFile(OPENSSL, ['pkcs12', '-in', client.p12Path!, '-passin', 'pass:metaos', '-nokeys', '-clcerts'])
    t.match(stdout, /subject=CN\s?=\s?alice/)
  })

  await t.test('a client of the CA: both sides authorized, the server sees the identity', async t => {
    const srv = await startServer(t, { cert: domain.certPath, key: domain.keyPath, ca: caCertPath, crl: crlPath })
    const r = await dial(srv.port, { ca: caCertPath, cert: client.certPath, key: client.keyPath })
    if ('error' in r) { t.fail(r.error); return }
    t.equal(r.authorized, true)
    t.ok(r.peer?.uris.includes(domain.epr), 'the client reads the domain\'s EPR')
    const seen = await srv.seen
    t.equal(seen.authorized, true, String(seen.authorizationError))
    t.equal(seen.peer?.commonName, 'alice')
    t.same(seen.peer?.uris, ['metaos:identity:alice'])
    t.equal(seen.peer?.serial, client.serial)
    t.equal(seen.peer?.fingerprint256, certificateIdentity(readFileSync(client.certPath)).fingerprint256)
  })

  await t.test('a client trusting another CA refuses the domain', async t => {
    const srv = await startServer(t, { cert: domain.certPath, key: domain.keyPath, ca: caCertPath, crl: crlPath })
    const r = await dial(srv.port, { ca: join(other, 'ca.crt') })
    t.ok('error' in r, 'the handshake fails')
    if ('error' in r) t.match(r.error, /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/)
  })

  await t.test('after revocation a server with the new CRL sees CERT_REVOKED', async t => {
    const r = await revokeCertificate(dir, { name: 'alice' })
    t.equal(r.serial, client.serial)
    t.same(listCertificates(dir).find(c => c.serial === client.serial)?.revoked, true)
    const srv = await startServer(t, { cert: domain.certPath, key: domain.keyPath, ca: caCertPath, crl: r.crlPath })
    await dial(srv.port, { ca: caCertPath, cert: client.certPath, key: client.keyPath })
    const seen = await srv.seen
    t.equal(seen.authorized, false)
    t.equal(seen.authorizationError, 'CERT_REVOKED')
    t.equal(seen.peer?.commonName, 'alice', 'the server still sees who it refuses')
    await t.rejects(revokeCertificate(dir, { name: 'alice' }), { code: 'FILE_NOT_FOUND' })
    await t.rejects(revokeCertificate(dir, { name: 'nobody' }), { code: 'FILE_NOT_FOUND' })
  })

  await t.test('re-issuing a domain keeps its EPR; an RSA certificate works with TLS', async t => {
    const again = await issueDomainCertificate(dir, { name: 'store1', keyType: 'rsa' })
    t.equal(again.epr, domain.epr)
    t.not(again.serial, domain.serial)
    t.ok(certificateIdentity(readFileSync(again.certPath)).uris.includes(domain.epr))
    const chosen = await issueDomainCertificate(dir, { name: 'store2', epr: 'urn:uuid:00000000-0000-4000-8000-000000000001' })
    t.equal(chosen.epr, 'urn:uuid:00000000-0000-4000-8000-000000000001')
    const bob = await issueClientCertificate(dir, { identity: 'bob', keyType: 'rsa' })
    const srv = await startServer(t, { cert: again.certPath, key: again.keyPath, ca: caCertPath, crl: crlPath })
    const r = await dial(srv.port, { ca: caCertPath, cert: bob.certPath, key: bob.keyPath })
    t.ok(!('error' in r) && r.authorized)
    const seen = await srv.seen
    t.equal(seen.authorized, true)
    t.equal(seen.peer?.commonName, 'bob')
    t.same(listCertificates(dir).filter(c => c.name === 'store1').map(c => c.epr), [domain.epr, domain.epr])
  })

  t.equal(identityFromPeerCertificate({} as never), undefined)
})

t.test('bad names and values are INVALID_ARGUMENT', async t => {
  const dir = join(t.testdir(), 'ca')
  await initCa(dir)
  for (const name of ['', 'a/b', '../x', 'x'.repeat(65), 'sp ace', 'é']) {
    await t.rejects(issueDomainCertificate(dir, { name }), { code: 'INVALID_ARGUMENT' }, `domain ${JSON.stringify(name)}`)
    await t.rejects(issueClientCertificate(dir, { identity: name }), { code: 'INVALID_ARGUMENT' }, `client ${JSON.stringify(name)}`)
  }
  await t.rejects(issueDomainCertificate(dir, { name: 'd', ip: ['300.1.1.1'] }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(issueDomainCertificate(dir, { name: 'd', dns: ['a b'] }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(issueDomainCertificate(dir, { name: 'd', epr: 'not a uri' }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(issueClientCertificate(dir, { identity: 'c', days: 0 }), { code: 'INVALID_ARGUMENT' })
  await t.rejects(revokeCertificate(dir, {}), { code: 'INVALID_ARGUMENT' })
  await t.rejects(issueClientCertificate(join(dir, '..', 'no-ca'), { identity: 'c' }), { code: 'FILE_NOT_FOUND' })
  t.throws(() => certificateIdentity('nope'), { code: 'INVALID_ARGUMENT' })
  t.same(listCertificates(dir), [])
})

t.test('metaos pki as a process: init, issue-client, list --json, errors', async t => {
  const dir = join(t.testdir(), 'pki')
  const run = async (...args: string[]): Promise<{ code: number, stdout: string, stderr: string }> => {
    try {
      const { stdout, stderr } = await execFile(process.execPath, [CLI, 'pki', ...args], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
      return { code: 0, stdout, stderr }
    } catch (e) {
      const x = e as { code: number, stdout: string, stderr: string }
      return { code: x.code, stdout: x.stdout, stderr: x.stderr }
    }
  }
  const init = await run('init', '--dir', dir, '--key-type', 'rsa')
  t.equal(init.code, 0, init.stderr)
  t.same(JSON.parse(init.stdout), { event: 'ca', caCertPath: join(dir, 'ca.crt'), crlPath: join(dir, 'crl.pem') })
  const issued = await run('issue-client', '--dir', dir, '--identity', 'carol')
  t.equal(issued.code, 0, issued.stderr)
  const c = JSON.parse(issued.stdout) as { serial: string, certPath: string, keyPath: string }
  t.equal(c.certPath, join(dir, 'clients', 'carol.crt'))
  t.equal(certificateIdentity(readFileSync(c.certPath)).commonName, 'carol')
  const list = await run('list', '--dir', dir, '--json')
  t.equal(list.code, 0)
  t.match(JSON.parse(list.stdout), [{ kind: 'client', name: 'carol', serial: c.serial, revoked: false }])
  t.equal(list.stdout.trim().split('\n').length, 1, 'one JSON line')

  const again = await run('init', '--dir', dir)
  t.equal(again.code, 1)
  t.match(again.stderr, /ALREADY_EXISTS/)
  const bad = await run('issue-client', '--dir', dir, '--identity', 'no/slash')
  t.equal(bad.code, 2, 'a bad identity is a usage error')
  t.equal(bad.stderr, 'metaos pki issue-client: --identity takes a name of 1-64 of A-Z a-z 0-9 . _ -; got "no/slash"\n')
  t.equal((await run('issue-domain', '--dir', dir)).code, 2, '--name is required')
  for (const sub of [[], ['init'], ['issue-domain'], ['issue-client'], ['revoke'], ['list']]) {
    const h = await run(...sub, '--help')
    t.equal(h.code, 0)
    t.match(h.stdout, /^usage: metaos pki/)
  }
})
