// Authentication and authorization of real domains over real TLS: the refusals the issue names
// (unauthenticated, wrong password, replayed, expired timestamp, wrong CA, revoked and unknown
// client certificates) each give UNAUTHORIZED and touch nothing on disk; identities cannot use
// each other's handles, paths, volumes or network destinations; per-identity limits (handles,
// rate); the local bus; a domain refusing to listen beyond loopback unprotected; a policy file
// others can read; SIGHUP re-reading a CRL in a running `metaos storage`.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { request as httpRequest } from 'node:http'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { startNetworkDomain } from '../../backend-network/network-domain.js'
import { createStorageProxy, type StorageProxyOptions } from '../../frontend/handlers/storage-proxy.js'
import { createNetworkProxy } from '../../frontend/handlers/network-handler.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { initCa, issueClientCertificate, issueDomainCertificate, revokeCertificate } from '../../security/pki.js'
import { loadDomainSecurity } from '../../security/domain-security.js'
import { buildSecurityHeader } from '../../soap-runtime/ws-security.js'
import { MetaosError } from '../../soap-runtime/errors.js'

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const S11 = 'http://schemas.xmlsoap.org/soap/envelope/'

interface Cluster {
  readonly dir: string
  readonly pki: string
  readonly ca: Buffer
  readonly root: string
  readonly domain: StorageDomain
  readonly https: string
  readonly bus: string
  readonly client: (identity: string) => { cert: Buffer, key: Buffer }
  readonly refused: Map<string, number>
}

const PASSWORDS = { alice: 'alice-password', bob: 'bob-password', eve: 'eve-password', rl: 'rate-limited-1' }

async function cluster (t: Test): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-auth-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const pki = join(dir, 'pki')
  await initCa(pki)
  const cert = await issueDomainCertificate(pki, { name: 'storage-1' })
  const certs = new Map<string, { cert: Buffer, key: Buffer }>()
  for (const id of ['alice', 'carol', 'dave']) {
    const c = await issueClientCertificate(pki, { identity: id })
    certs.set(id, { cert: readFileSync(c.certPath), key: readFileSync(c.keyPath) })
  }
  // Mallory's certificate says "alice", signed by a CA of her own.
  await initCa(join(dir, 'mallory-pki'))
  const m = await issueClientCertificate(join(dir, 'mallory-pki'), { identity: 'alice' })
  certs.set('mallory', { cert: readFileSync(m.certPath), key: readFileSync(m.keyPath) })
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify({
    identities: [
      { name: 'alice', password: PASSWORDS.alice, certificate: true, paths: ['alice', 'shared'], limits: { maxHandles: 3 } },
      { name: 'bob', password: PASSWORDS.bob, paths: ['bob', 'shared'] },
      { name: 'carol', certificate: true, paths: ['*'] },
      { name: 'eve', password: PASSWORDS.eve, volumes: ['another-volume'], paths: ['*'] },
      { name: 'rl', password: PASSWORDS.rl, paths: ['*'], limits: { requestsPerSecond: 1, burst: 3 } },
    ],
    local: { paths: ['*'] },
  }), { mode: 0o600 })
  const root = join(dir, 'root')
  for (const d of ['alice', 'bob', 'shared']) mkdirSync(join(root, d), { recursive: true })
  writeFileSync(join(root, 'alice', 'keep.txt'), 'alice keeps this')
  const security = loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath, clientCa: join(pki, 'ca.crt'), crl: join(pki, 'crl.pem'), auth: policy })
  const domain = await startStorageDomain({ root, volume: 'vol-1', listen: ['https://127.0.0.1:0', `unix:${join(dir, 'bus.sock')}`], security })
  t.teardown(async () => { await domain.close(500) })
  return { dir, pki, ca: readFileSync(join(pki, 'ca.crt')), root, domain, https: domain.endpoints[0]!, bus: domain.endpoints[1]!, client: (id) => certs.get(id)!, refused: security.authenticator!.refused }
}

/** One call with fresh connections; the error's code, or 'ok'. */
async function attempt (url: string, o: StorageProxyOptions, fn: (p: ReturnType<typeof createStorageProxy>) => Promise<unknown>): Promise<string> {
  const p = createStorageProxy(url, o)
  try { await fn(p); return 'ok' } catch (e) { return (e as MetaosError).code ?? String(e) } finally { await p.close() }
}

const openNew = (path: string) => async (p: ReturnType<typeof createStorageProxy>): Promise<unknown> => await p.invoke('Open', { path, mode: 'CreateNew', access: 'Write', share: 'None' })

/** A raw SOAP 1.1 POST over https (trusting `ca`) or plain http; returns the StorageFault code, or 'ok'. */
async function rawPost (url: string, ca: Buffer | undefined, xml: string, action: string): Promise<string> {
  const u = new URL(url)
  const body = Buffer.from(xml)
  const request = u.protocol === 'https:' ? httpsRequest : httpRequest
  const text = await new Promise<string>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, agent: false, headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"urn:metaos:storage:v1/${action}"`, 'Content-Length': body.length } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { resolve(Buffer.concat(chunks).toString()) })
    })
    req.on('error', reject)
    req.end(body)
  })
  return /<code>([A-Z_]+)<\/code>/.exec(text)?.[1] ?? (text.includes('Response') ? 'ok' : `?${text.slice(0, 200)}`)
}

function openEnvelope (path: string, securityHeader: string): string {
  return `<s:Envelope xmlns:s="${S11}"><s:Header>${securityHeader}</s:Header><s:Body>` +
    `<Open xmlns="urn:metaos:storage:v1"><path>${path}</path><mode>CreateNew</mode><access>Write</access><share>None</share></Open></s:Body></s:Envelope>`
}

t.test('refusals: UNAUTHORIZED, and nothing touched', async (t) => {
  const c = await cluster(t)
  const tls = { ca: c.ca }
  const keepSha = sha256(readFileSync(join(c.root, 'alice', 'keep.txt')))
  const cases: Array<[string, StorageProxyOptions | (() => Promise<string>), string]> = [
    ['no credentials at all', { tls }, 'unauth'],
    ['wrong password', { tls, credentials: { username: 'alice', password: 'not-her-password' } }, 'wrongpw'],
    ['unknown user', { tls, credentials: { username: 'zed', password: 'whatever-password' } }, 'unknown'],
    ['PasswordText with a wrong password', { tls, credentials: { username: 'alice', password: 'nope-nope-nope', passwordType: 'text' } }, 'wrongtext'],
    ['client certificate of another CA (says CN=alice)', { tls: { ...tls, ...c.client('mallory') } }, 'mallory'],
    ['client certificate of the CA, unknown to the policy', { tls: { ...tls, ...c.client('dave') } }, 'dave'],
    ['a certificate of another CA even with the right password', { tls: { ...tls, ...c.client('mallory') }, credentials: { username: 'alice', password: PASSWORDS.alice } }, 'mallorypw'],
    ['expired timestamp (Created 20 minutes ago)', async () => await rawPost(c.https, c.ca, openEnvelope('alice/expired.txt', buildSecurityHeader({ username: 'alice', password: PASSWORDS.alice }, S11, Date.now() - 20 * 60_000)), 'Open'), 'expired'],
    ['Created in the future (20 minutes ahead)', async () => await rawPost(c.https, c.ca, openEnvelope('alice/future.txt', buildSecurityHeader({ username: 'alice', password: PASSWORDS.alice }, S11, Date.now() + 20 * 60_000)), 'Open'), 'future'],
  ]
  for (const [what, how, tag] of cases) {
    const path = `alice/${tag}.txt`
    const code = typeof how === 'function' ? await how() : await attempt(c.https, how, openNew(path))
    t.equal(code, 'UNAUTHORIZED', `${what} → UNAUTHORIZED`)
    if (typeof how !== 'function') t.notOk(existsSync(join(c.root, path)), `${what}: no file created`)
    const del = typeof how === 'function' ? 'UNAUTHORIZED' : await attempt(c.https, how, async (p) => await p.invoke('Delete', { path: 'alice/keep.txt' }))
    t.equal(del, 'UNAUTHORIZED', `${what}: Delete refused too`)
  }
  t.notOk(existsSync(join(c.root, 'alice', 'expired.txt')) || existsSync(join(c.root, 'alice', 'future.txt')), 'no file from the timestamp attempts')

  // Replay: the same signed message twice. The first is served, the second refused, the file not reopened.
  const header = buildSecurityHeader({ username: 'alice', password: PASSWORDS.alice }, S11)
  const xml = openEnvelope('alice/replayed.txt', header)
  t.equal(await rawPost(c.https, c.ca, xml, 'Open'), 'ok', 'the original message is served')
  t.equal(await rawPost(c.https, c.ca, xml, 'Open'), 'UNAUTHORIZED', 'its replay → UNAUTHORIZED (seen nonce), not ALREADY_EXISTS: refused before anything is touched')

  // The domain's certificate is checked by the client: a frontend trusting another CA refuses the domain.
  const otherCa = readFileSync(join(c.dir, 'mallory-pki', 'ca.crt'))
  t.equal(await attempt(c.https, { tls: { ca: otherCa }, credentials: { username: 'alice', password: PASSWORDS.alice } }, openNew('alice/wrong-ca.txt')), 'UNAUTHORIZED', 'a frontend trusting another CA refuses the domain (UNAUTHORIZED on the client side)')
  t.notOk(existsSync(join(c.root, 'alice', 'wrong-ca.txt')), 'and sends it nothing')

  // Revoked: carol works, is revoked, the domain re-reads the CRL, carol is refused.
  t.equal(await attempt(c.https, { tls: { ...tls, ...c.client('carol') } }, openNew('shared/carol-1.txt')), 'ok', 'carol\'s certificate works')
  await revokeCertificate(c.pki, { name: 'carol' })
  const reloaded = loadDomainSecurity({ tlsCert: join(c.pki, 'domains', 'storage-1.crt'), tlsKey: join(c.pki, 'domains', 'storage-1.key'), clientCa: join(c.pki, 'ca.crt'), crl: join(c.pki, 'crl.pem') })
  c.domain.host.setTls(reloaded.tls!)
  t.equal(await attempt(c.https, { tls: { ...tls, ...c.client('carol') } }, openNew('shared/carol-2.txt')), 'UNAUTHORIZED', 'after revocation and a CRL reload: UNAUTHORIZED')
  t.notOk(existsSync(join(c.root, 'shared', 'carol-2.txt')), 'nothing created by the revoked certificate')

  t.equal(sha256(readFileSync(join(c.root, 'alice', 'keep.txt'))), keepSha, 'alice/keep.txt untouched by every refused call')
  t.same(c.domain.host.inFlight, 0, 'nothing left in flight')
  const refused = [...c.refused]
  t.ok(refused.length >= 5, 'the authenticator counted its refusals by reason')
  t.comment(refused.map(([why, n]) => `${n} × ${why}`).join('\n'))
})

t.test('identities: handles, paths, volumes, limits, the bus', async (t) => {
  const c = await cluster(t)
  const alice = createStorageProxy(c.https, { tls: { ca: c.ca }, credentials: { username: 'alice', password: PASSWORDS.alice } })
  const bob = createStorageProxy(c.https, { tls: { ca: c.ca }, credentials: { username: 'bob', password: PASSWORDS.bob } })
  const aliceCert = createStorageProxy(c.https, { tls: { ca: c.ca, ...c.client('alice') } })
  t.teardown(async () => { await alice.close(); await bob.close(); await aliceCert.close() })
  const code = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'ok' } catch (e) { return (e as MetaosError).code } }

  const { output: o } = await alice.invoke('Open', { path: 'alice/a.bin', mode: 'Create', access: 'ReadWrite', share: 'ReadWrite' })
  const data = randomBytes(5000)
  await alice.invoke('Write', { handle: o.handle, data })
  for (const [op, input] of [
    ['Read', { handle: o.handle, count: 10 }], ['Write', { handle: o.handle, data: Buffer.from('bob was here') }], ['Seek', { handle: o.handle, offset: 0, origin: 'Begin' }],
    ['SetLength', { handle: o.handle, length: 0 }], ['GetLength', { handle: o.handle }], ['Flush', { handle: o.handle, flushToDisk: true }], ['Close', { handle: o.handle }],
  ] as const) {
    t.equal(await code(bob.invoke(op, input as never)), 'INVALID_HANDLE', `bob cannot ${op} alice's handle`)
  }
  t.equal(await code(aliceCert.invoke('GetLength', { handle: o.handle })), 'ok', 'alice by certificate is alice: the same identity, the same handles')
  await alice.invoke('Close', { handle: o.handle })
  t.equal(sha256(readFileSync(join(c.root, 'alice', 'a.bin'))), sha256(data), 'alice\'s file holds only what alice wrote')

  for (const path of ['alice/a.bin', 'bob/../alice/a.bin', 'alice', '', 'keep.txt']) {
    t.equal(await code(bob.invoke('Open', { path, mode: 'Open', access: 'Read', share: 'ReadWrite' })), 'UNAUTHORIZED', `bob may not open ${JSON.stringify(path)}`)
  }
  t.equal(await code(bob.invoke('Delete', { path: 'alice/a.bin' })), 'UNAUTHORIZED', 'bob may not delete alice\'s file')
  t.equal(await code(bob.invoke('ListDirectory', { path: 'alice' })), 'UNAUTHORIZED', 'nor list her directory')
  t.equal(await code(bob.invoke('GetFileInfo', { path: 'alice/a.bin' })), 'UNAUTHORIZED', 'nor ask whether her files exist')
  t.equal(await code(bob.invoke('ListDirectory', { path: 'shared' })), 'ok', 'both may use shared/')
  t.ok(existsSync(join(c.root, 'alice', 'a.bin')), 'alice\'s file is still there')

  const eve = await attempt(c.https, { tls: { ca: c.ca }, credentials: { username: 'eve', password: PASSWORDS.eve } }, async (p) => await p.invoke('GetFileInfo', { path: 'shared' }))
  t.equal(eve, 'UNAUTHORIZED', 'eve may use another volume only')

  // Limits: alice holds at most 3 handles; rl makes at most 3 calls at once, then 1 a second.
  const handles: string[] = []
  for (let i = 0; i < 3; i++) handles.push((await alice.invoke('Open', { path: `alice/h${i}`, mode: 'Create', access: 'Write', share: 'ReadWrite' })).output.handle)
  t.equal(await code(alice.invoke('Open', { path: 'alice/h3', mode: 'Create', access: 'Write', share: 'ReadWrite' })), 'QUOTA_EXCEEDED', 'alice\'s 4th handle → QUOTA_EXCEEDED')
  t.equal(await code(bob.invoke('Open', { path: 'bob/b0', mode: 'Create', access: 'Write', share: 'ReadWrite' }).then(async (r) => await bob.invoke('Close', { handle: r.output.handle }))), 'ok', 'bob is not limited by alice\'s handles')
  for (const h of handles) await alice.invoke('Close', { handle: h })
  const rl = createStorageProxy(c.https, { tls: { ca: c.ca }, credentials: { username: 'rl', password: PASSWORDS.rl } })
  t.teardown(async () => { await rl.close() })
  t.equal(await code(rl.invoke('GetFileInfo', { path: 'shared' })), 'ok', 'rl calls (its connection made; 2 of its burst of 3 left)')
  const burst = await Promise.all(Array.from({ length: 6 }, async () => await code(rl.invoke('GetFileInfo', { path: 'shared' }))))
  const oks = burst.filter((x) => x === 'ok').length
  t.ok(oks >= 2 && oks <= 3 && burst.filter((x) => x === 'QUOTA_EXCEEDED').length === 6 - oks, `6 calls at once: the rest of the burst served, then QUOTA_EXCEEDED (${burst.join(' ')})`)
  t.equal(await code(bob.invoke('GetFileInfo', { path: 'shared' })), 'ok', 'others are not slowed by rl')
  await sleep(1100)
  t.equal(await code(rl.invoke('GetFileInfo', { path: 'shared' })), 'ok', 'a second later rl may call again (1 a second)')

  // The bus: the socket file is the owner's only; callers without credentials are the policy's "local".
  const sock = decodeURIComponent(c.bus.slice('http+unix://'.length, c.bus.lastIndexOf('/storage')))
  t.equal(statSync(sock).mode & 0o777, 0o600, 'the bus socket is 0600')
  const local = createStorageProxy(c.bus)
  t.teardown(async () => { await local.close() })
  t.equal(await code(local.invoke('GetFileInfo', { path: 'alice/a.bin' })), 'ok', 'a local caller on the bus gets the "local" grants')
  const bobBus = createStorageProxy(c.bus, { credentials: { username: 'bob', password: PASSWORDS.bob } })
  t.teardown(async () => { await bobBus.close() })
  t.equal(await code(bobBus.invoke('GetFileInfo', { path: 'alice/a.bin' })), 'UNAUTHORIZED', 'bob on the bus is still bob')

  // A FileStream through the authenticated proxy, end to end.
  const payload = randomBytes(3 * 1024 * 1024 + 17)
  const fs = await FileStream.open('shared/stream.bin', { mode: 'Create', access: 'Write', destination: bob, bufferSize: 65536 })
  await fs.write(payload)
  await fs.close()
  t.equal(sha256(readFileSync(join(c.root, 'shared', 'stream.bin'))), sha256(payload), 'a FileStream over HTTPS as bob writes every byte (SHA-256)')
})

t.test('network domain: destinations and sockets per identity', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-auth-net-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const servers: Server[] = []
  const listen = async (): Promise<number> => {
    const s = createServer((sock) => { sock.pipe(sock) })
    servers.push(s)
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
    return (s.address() as { port: number }).port
  }
  t.teardown(() => { for (const s of servers) s.close() })
  const [pa, pb] = [await listen(), await listen()]
  await initCa(join(dir, 'pki'))
  const cert = await issueDomainCertificate(join(dir, 'pki'), { name: 'net-1' })
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: [
    { name: 'alice', password: PASSWORDS.alice, destinations: [`127.0.0.1/32:${pa}`] },
    { name: 'bob', password: PASSWORDS.bob },
  ] }), { mode: 0o600 })
  const domain = await startNetworkDomain({ listen: ['https://127.0.0.1:0'], security: loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath, auth: join(dir, 'policy.json') }) })
  t.teardown(async () => { await domain.close(500) })
  const ca = readFileSync(join(dir, 'pki', 'ca.crt'))
  const alice = createNetworkProxy(domain.endpoints[0]!, { tls: { ca }, credentials: { username: 'alice', password: PASSWORDS.alice } })
  const bob = createNetworkProxy(domain.endpoints[0]!, { tls: { ca }, credentials: { username: 'bob', password: PASSWORDS.bob } })
  t.teardown(async () => { await alice.close(); await bob.close() })
  const code = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'ok' } catch (e) { return (e as MetaosError).code } }
  const a = await alice.invoke('Connect', { host: '127.0.0.1', port: pa, protocol: 'tcp', timeoutMs: 2000 })
  t.equal(await code(alice.invoke('Connect', { host: '127.0.0.1', port: pb, protocol: 'tcp', timeoutMs: 2000 })), 'DESTINATION_NOT_ALLOWED', 'alice may reach only her destination')
  t.equal(await code(bob.invoke('Connect', { host: '127.0.0.1', port: pb, protocol: 'tcp', timeoutMs: 2000 }).then(async (r) => await bob.invoke('Close', { socket: r.output.socket }))), 'ok', 'bob has the domain\'s whole allow-list')
  t.equal(await code(bob.invoke('Send', { socket: a.output.socket, data: Buffer.from('hijack') })), 'INVALID_HANDLE', 'bob cannot use alice\'s socket')
  await alice.invoke('Send', { socket: a.output.socket, data: Buffer.from('ping') })
  const r = await alice.invoke('Receive', { socket: a.output.socket, maxBytes: 100, timeoutMs: 2000 })
  t.equal(Buffer.from(r.output.data).toString(), 'ping', 'alice\'s echo carries only her bytes')
  await alice.invoke('Close', { socket: a.output.socket })
  t.equal(await code(createNetworkProxy(domain.endpoints[0]!, { tls: { ca } }).invoke('ResolveHost', { name: 'localhost' })), 'UNAUTHORIZED', 'no credentials → UNAUTHORIZED')
})

t.test('exposure: no listening beyond loopback unprotected, no readable password files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-auth-exp-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  await initCa(join(dir, 'pki'))
  const cert = await issueDomainCertificate(join(dir, 'pki'), { name: 'exp' })
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify({ identities: [{ name: 'alice', password: PASSWORDS.alice, paths: ['*'] }] }), { mode: 0o600 })
  const tlsOnly = loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath })
  const withAuth = loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath, auth: policy })
  await t.rejects(startStorageDomain({ root: dir, listen: ['http://0.0.0.0:0'] }), { code: 'INVALID_ARGUMENT', message: /plain HTTP beyond this machine.*--allow-insecure/ }, 'plain http on 0.0.0.0 is refused')
  await t.rejects(startStorageDomain({ root: dir, listen: ['https://0.0.0.0:0'], security: tlsOnly }), { code: 'INVALID_ARGUMENT', message: /without authentication/ }, 'https without authentication on 0.0.0.0 is refused')
  for (const [what, security] of [['https with --auth', withAuth], ['http with --allow-insecure', { ...tlsOnly, allowInsecure: true }]] as const) {
    const d = await startStorageDomain({ root: dir, listen: [what.startsWith('https') ? 'https://0.0.0.0:0' : 'http://0.0.0.0:0'], security })
    t.pass(`${what} on 0.0.0.0 starts`)
    await d.close(0)
  }
  const d = await startStorageDomain({ root: dir, listen: ['http://127.0.0.1:0', 'http://[::1]:0'] }).catch((e: Error) => e)
  t.notOk(d instanceof Error && !/EADDRNOTAVAIL|EAFNOSUPPORT/.test((d as NodeJS.ErrnoException).code ?? ''), 'loopback (IPv4 and IPv6) needs nothing')
  if (!(d instanceof Error)) await d.close(0)

  chmodSync(policy, 0o644)
  t.throws(() => loadDomainSecurity({ auth: policy }), { code: 'INVALID_ARGUMENT', message: /readable by others.*chmod 600/ }, 'a policy file others may read is refused')
  chmodSync(policy, 0o600)
  const bad = join(dir, 'bad.json')
  writeFileSync(bad, JSON.stringify({ identities: [{ name: 'x', password: 'short' }] }), { mode: 0o600 })
  t.throws(() => loadDomainSecurity({ auth: bad }), { code: 'INVALID_ARGUMENT', message: /at least 8/ }, 'a short password is refused')

  // The command line says the same, and exits non-zero.
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  await t.rejects(spawnDomain(['storage', '--root', dir, '--listen', 'http://0.0.0.0:0'], { env }), { message: /INVALID_ARGUMENT.*--allow-insecure/ }, 'metaos storage --listen http://0.0.0.0:0 refuses to start')
})

t.test('a running metaos storage re-reads its CRL on SIGHUP', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-auth-hup-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const pki = join(dir, 'pki')
  await initCa(pki)
  const cert = await issueDomainCertificate(pki, { name: 'hup' })
  const frank = await issueClientCertificate(pki, { identity: 'frank' })
  mkdirSync(join(dir, 'root'))
  const d = await spawnDomain(['storage', '--root', join(dir, 'root'), '--listen', 'https://127.0.0.1:0', '--tls-cert', cert.certPath, '--tls-key', cert.keyPath,
    '--client-ca', join(pki, 'ca.crt'), '--crl', join(pki, 'crl.pem')], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  t.teardown(async () => { await d.stop() })
  t.equal(d.ready.epr, cert.epr, 'the EPR is the one the certificate names')
  const o = { tls: { ca: readFileSync(join(pki, 'ca.crt')), cert: readFileSync(frank.certPath), key: readFileSync(frank.keyPath) } }
  t.equal(await attempt(d.ready.endpoints[0]!, o, openNew('f1.txt')), 'ok', 'frank\'s certificate is accepted (any certificate of the CA: no policy)')
  t.equal(await attempt(d.ready.endpoints[0]!, { tls: { ca: o.tls.ca } }, openNew('anon.txt')), 'UNAUTHORIZED', 'no certificate → UNAUTHORIZED')
  await revokeCertificate(pki, { name: 'frank' })
  d.child.kill('SIGHUP')
  await sleep(300)
  t.equal(await attempt(d.ready.endpoints[0]!, o, openNew('f2.txt')), 'UNAUTHORIZED', 'after revoke + SIGHUP: UNAUTHORIZED')
  t.ok(existsSync(join(dir, 'root', 'f1.txt')) && !existsSync(join(dir, 'root', 'f2.txt')) && !existsSync(join(dir, 'root', 'anon.txt')), 'only the accepted call created a file')
})

t.test('hostile input without valid credentials, over HTTPS and plain HTTP: refused, nothing touched', async (t) => {
  const c = await cluster(t)
  const plainDomain = await startStorageDomain({ root: c.root, volume: 'vol-1', listen: ['http://127.0.0.1:0'], security: loadDomainSecurity({ auth: join(c.dir, 'policy.json') }) })
  t.teardown(async () => { await plainDomain.close(500) })
  const snapshot = (): string => {
    const out: string[] = []
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const p = join(d, e.name)
        out.push(e.isDirectory() ? `${p}/` : `${p} ${sha256(readFileSync(p))}`)
        if (e.isDirectory()) walk(p)
      }
    }
    walk(c.root)
    return out.join('\n')
  }
  const before = snapshot()
  const W = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd'
  const U = 'http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd'
  const env = (body: string, header = ''): string => `<s:Envelope xmlns:s="${S11}"><s:Header>${header}</s:Header><s:Body>${body}</s:Body></s:Envelope>`
  const open = (path: string): string => `<Open xmlns="urn:metaos:storage:v1"><path>${path}</path><mode>Create</mode><access>Write</access><share>None</share></Open>`
  const good = buildSecurityHeader({ username: 'alice', password: PASSWORDS.alice }, S11)
  const cases: Array<[string, string, string[]]> = [
    ['not XML', 'hello', ['MALFORMED_MESSAGE']],
    ['DOCTYPE with an external entity (XXE)', `<?xml version="1.0"?><!DOCTYPE s [<!ENTITY x SYSTEM "file:///etc/passwd">]>${env(open('alice/xxe&x;'))}`, ['MALFORMED_MESSAGE']],
    ['billion laughs', `<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${env(open('&b;'))}`, ['MALFORMED_MESSAGE']],
    ['10 000 nested elements', env('<a>'.repeat(10_000) + '</a>'.repeat(10_000)), ['MALFORMED_MESSAGE']],
    ['Delete of an existing file', env('<Delete xmlns="urn:metaos:storage:v1"><path>alice/keep.txt</path></Delete>'), ['UNAUTHORIZED']],
    ['Open climbing out of the root', env(open('../../etc/passwd')), ['UNAUTHORIZED']],
    ['Write on a forged handle', env('<Write xmlns="urn:metaos:storage:v1"><handle>AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA</handle><data>eHh4</data></Write>'), ['UNAUTHORIZED']],
    ['a Batch of 2000 Deletes', env(`<Batch xmlns="urn:metaos:storage:v1">${'<op><Delete><path>alice/keep.txt</path></Delete></op>'.repeat(2000)}</Batch>`), ['UNAUTHORIZED']],
    ['an unknown mustUnderstand header', env(open('alice/mu.txt'), `<x:H xmlns:x="urn:evil" s:mustUnderstand="1"/>`), ['MALFORMED_MESSAGE']],
    ['two Security headers (one valid)', env(open('alice/two.txt'), good + good.replace(/Nonce[^>]*>[^<]*</, 'Nonce>AAAAAAAAAAAA<')), ['UNAUTHORIZED']],
    ['a Security header without a token', env(open('alice/empty.txt'), `<wsse:Security xmlns:wsse="${W}"/>`), ['UNAUTHORIZED']],
    ['a Nonce that is not base64', env(open('alice/nonce.txt'), good.replace(/(<wsse:Nonce[^>]*>)[^<]*/, '$1!!not-base64!!')), ['UNAUTHORIZED']],
    ['an unknown password type', env(open('alice/type.txt'), good.replace(/Type="[^"]*"/, 'Type="urn:evil#Plain"')), ['UNAUTHORIZED']],
    ['a digest made for another Created', env(open('alice/created.txt'), good.replace(/(<wsse:UsernameToken>[\s\S]*<wsu:Created>)[^<]*/, `$1${new Date(Date.now() - 1000).toISOString()}`)), ['UNAUTHORIZED']],
    ['a Timestamp without a zone', env(open('alice/zone.txt'), `<wsse:Security xmlns:wsse="${W}" xmlns:wsu="${U}"><wsu:Timestamp><wsu:Created>2026-01-01T00:00:00</wsu:Created></wsu:Timestamp><wsse:UsernameToken><wsse:Username>alice</wsse:Username><wsse:Password>${PASSWORDS.alice}</wsse:Password></wsse:UsernameToken></wsse:Security>`), ['UNAUTHORIZED']],
    ['a 300-character username', env(open('alice/long.txt'), good.replace('<wsse:Username>alice<', `<wsse:Username>${'a'.repeat(300)}<`)), ['UNAUTHORIZED']],
  ]
  for (const [url, transport] of [[c.https, 'https'], [plainDomain.endpoints[0]!, 'http']] as const) {
    for (const [what, xml, codes] of cases) {
      const code = await rawPost(url, c.ca, xml, 'Open')
      t.ok(codes.includes(code), `${transport}: ${what} → ${code}`)
    }
    // PasswordText is for confidential channels only: refused on plain HTTP, accepted over TLS.
    const text = buildSecurityHeader({ username: 'alice', password: PASSWORDS.alice, passwordType: 'text' }, S11)
    t.equal(await rawPost(url, c.ca, env('<GetDomainInfo xmlns="urn:metaos:storage:v1"/>', text), 'GetDomainInfo'),
      transport === 'https' ? 'ok' : 'UNAUTHORIZED', `${transport}: a plain-text password is ${transport === 'https' ? 'accepted over TLS' : 'refused on plain HTTP'}`)
  }
  t.equal(snapshot(), before, 'the root is exactly as before: no file created, changed or deleted')
  t.equal(await attempt(c.https, { tls: { ca: c.ca }, credentials: { username: 'alice', password: PASSWORDS.alice } }, async (p) => await p.invoke('GetFileInfo', { path: 'alice/keep.txt' })), 'ok', 'the domain still serves its legitimate callers')
})
