// Trusted discovery against a rogue on the same segment: a real storage domain (a child process,
// https with a certificate of the cluster's CA naming its EPR, UsernameToken authentication)
// and a rogue process that announces a fake domain with the same types and scopes, announces the
// real domain's EPR with its own XAddrs (its own CA's certificate, a self-signed one, plain
// http), answers Probes, and sends forged Byes for the real domain. The application's writes go
// on through all of it, reach only the real domain, and never stop.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { spawnDomain } from '../../domains/domain-process.js'
import { DiscoveryClient } from '../../discovery/client.js'
import { STORAGE_DOMAIN_TYPE } from '../../discovery/storage-announcement.js'
import { IntelligentFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { initCa, issueDomainCertificate } from '../../security/pki.js'

const delay = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('a rogue announcing fakes and forging Byes gets nothing', async (t) => {
  const dir = t.testdir({ root: {}, rogue: {} })
  const pki = join(dir, 'pki')
  await initCa(pki)
  const cert = await issueDomainCertificate(pki, { name: 'storage-a' })
  const policy = join(dir, 'policy.json')
  writeFileSync(policy, JSON.stringify({ identities: [{ name: 'app', password: 'app-password-1', paths: ['*'] }] }), { mode: 0o600 })
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const sockDir = mkdtempSync(join(tmpdir(), 'ms-')) // a socket path must be short
  t.teardown(() => { rmSync(sockDir, { recursive: true, force: true }) })
  const real = await spawnDomain(['storage', '--root', join(dir, 'root'), '--volume', 'vol', '--listen', 'https://127.0.0.1:0', '--listen', `unix:${join(sockDir, 'a.sock')}`,
    '--tls-cert', cert.certPath, '--tls-key', cert.keyPath, '--auth', policy, '--announce'], { env })
  t.teardown(async () => { await real.stop() })
  t.equal(real.ready.epr, cert.epr, 'the domain announces the EPR its certificate names')

  // The rogue: its own CA (a certificate naming the real EPR), a self-signed certificate naming it too.
  const rogueCa = join(dir, 'rogue', 'pki')
  await initCa(rogueCa)
  const rc = await issueDomainCertificate(rogueCa, { name: 'storage-a', epr: cert.epr })
  const selfKey = join(dir, 'rogue', 'self.key')
  const selfCert = join(dir, 'rogue', 'self.crt')
  const ssl = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=storage-a', '-days', '1',
    '-addext', `subjectAltName=URI:${cert.epr},IP:127.0.0.1,DNS:localhost`, '-keyout', selfKey, '-out', selfCert], { encoding: 'utf8' })
  t.equal(ssl.status, 0, `a self-signed certificate naming the real EPR ${ssl.stderr.slice(0, 200)}`)

  // The application's frontend, trusting the cluster's CA only.
  const registry = new DiscoveryClient({ listen: true, unref: true, ordering: false, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await registry.start()
  const front = new IntelligentFrontend(registry, { trust: { ca: readFileSync(join(pki, 'ca.crt')), credentials: { username: 'app', password: 'app-password-1' }, recheckMs: 60_000 }, probeIntervalMs: 200 })
  t.teardown(async () => { await front.close(); await registry.close() })
  await front.waitForDomain('vol', 5000)
  t.same([...front.handlers.keys()], [cert.epr], 'the real domain, proven')

  const rogueScript = join(fileURLToPath(new URL('..', import.meta.url)), 'helpers', 'rogue-domain.ts')
  const realTarget = registry.targets.get(cert.epr)!
  const rogue = spawn(process.execPath, [...process.execArgv, rogueScript, JSON.stringify({
    realEpr: cert.epr, types: [...realTarget.types], scopes: [...realTarget.scopes], cert: rc.certPath, key: rc.keyPath, selfCert, selfKey,
  })], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { rogue.kill('SIGKILL') })
  const lines = createInterface({ input: rogue.stdout! })[Symbol.asyncIterator]()
  const next = async (): Promise<Record<string, unknown>> => JSON.parse((await lines.next()).value as string) as Record<string, unknown>
  const rogueReady = await next()
  t.equal(rogueReady.event, 'ready', 'the rogue announced its fake domain and the real EPR with its own XAddrs')

  // The application writes 8 MiB in 64 KiB blocks while the rogue does its worst.
  const data = randomBytes(8 * 1024 * 1024)
  const stream = await FileStream.open('victim.bin', { mode: 'Create', access: 'Write', destination: front.dispatcherFor('vol'), bufferSize: 65536 })
  let byes = 0
  for (let off = 0, i = 0; off < data.length; off += 65536, i++) {
    await stream.write(data.subarray(off, off + 65536))
    if (i % 16 === 8) {
      rogue.stdin!.write(i % 32 === 8 ? 'bye\n' : 'hello\n')
      if (i % 32 === 8) { t.equal((await next()).event, 'bye-sent'); byes++ }
      await delay(150) // time for the frontend to hear it and react
    }
  }
  await stream.close()
  // A Probe now: the rogue answers it for the fake and for the real EPR.
  const found = await registry.probe({ types: [STORAGE_DOMAIN_TYPE] }, 1500)
  t.ok(found.some((f) => f.epr === rogueReady.fakeEpr), 'the rogue answered the Probe with its fake domain (ProbeMatches)')
  await delay(1000)

  t.equal(createHash('sha256').update(readFileSync(join(dir, 'root', 'victim.bin'))).digest('hex'), createHash('sha256').update(data).digest('hex'), 'every byte reached the real domain (SHA-256)')
  rogue.stdin!.write('count\n')
  const counts = await next()
  t.same({ https: counts.httpsRequests, self: counts.selfRequests, http: counts.httpRequests }, { https: 0, self: 0, http: 0 }, 'no request ever reached the rogue')
  t.equal(counts.tlsConnections, 0, 'no TLS handshake with the rogue completed (its certificate is of another CA)')
  t.same([...front.handlers.keys()], [cert.epr], 'the frontend still uses only the real domain')
  t.notOk(front.handlers.has(rogueReady.fakeEpr as string), 'the fake domain was never used')
  const c = front.trust!.counters
  t.ok(c.rejected >= 3, `announcements refused: ${c.rejected} (fake Hello, hijacking Hellos, ProbeMatches)`)
  t.ok(c.forgedByes >= byes, `every forged Bye was heard and ignored: ${c.forgedByes} Bye messages for ${byes} forgeries (each goes out in both WS-Discovery versions)`)
  t.ok(c.reasons.some((r) => /not trusted|SELF_SIGNED|UNABLE_TO|certificate/i.test(r)), `reasons name the certificate: ${c.reasons.at(-1) ?? ''}`)
  t.comment(`trust counters: verified ${c.verified}, rejected ${c.rejected}, forged Byes ignored ${c.forgedByes}`)

  // The operator's view: `metaos discover --trust-ca` says which answers are proven.
  const cli = spawnSync(process.execPath, [join(fileURLToPath(new URL('../..', import.meta.url)), 'dist', 'cli', 'metaos.js'), 'discover', '--type', 'StorageDomain', '--trust-ca', join(pki, 'ca.crt'), '--json', '--timeout', '1200'], { encoding: 'utf8', env })
  const listed = JSON.parse(cli.stdout) as Array<{ epr: string, xaddrs: string[], proven: boolean, proof: string }>
  const fakeRow = listed.find((r) => r.epr === rogueReady.fakeEpr)
  t.equal(fakeRow?.proven, false, `metaos discover --trust-ca: the fake domain is not proven (${fakeRow?.proof.slice(0, 120) ?? 'missing'})`)
  const realRows = listed.filter((r) => r.epr === cert.epr)
  t.ok(realRows.length >= 1 && realRows.every((r) => r.proven === r.xaddrs.some((x) => x.startsWith('https://127.0.0.1:') && real.ready.endpoints.includes(x))), 'and the real EPR is proven exactly when the answer carries the real domain\'s XAddrs')

  // A real Bye is believed: the domain stops, the frontend lets it go.
  rogue.stdin!.write('exit\n')
  await real.stop()
  for (let i = 0; i < 100 && front.handlers.has(cert.epr); i++) await delay(50)
  t.notOk(front.handlers.has(cert.epr), 'the real domain\'s own Bye (it no longer answers) removes it')
})

t.test('without a CA match nothing is used: plain http and bus-only announcements', async (t) => {
  const dir = t.testdir({ root: {} })
  mkdirSync(join(dir, 'pki'))
  await initCa(join(dir, 'pki'))
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const plain = await spawnDomain(['storage', '--root', join(dir, 'root'), '--volume', 'plain', '--listen', 'http://127.0.0.1:0', '--announce'], { env })
  t.teardown(async () => { await plain.stop() })
  const registry = new DiscoveryClient({ listen: true, unref: true, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await registry.start()
  const front = new IntelligentFrontend(registry, { trust: { ca: readFileSync(join(dir, 'pki', 'ca.crt')) } })
  t.teardown(async () => { await front.close(); await registry.close() })
  await registry.probe({ types: [STORAGE_DOMAIN_TYPE] }, 1000)
  await t.rejects(front.waitForDomain('plain', 1500), { code: 'FILE_NOT_FOUND', message: /announcements refused.*no https endpoint/ }, 'a domain that cannot prove itself is not used, and the error says why')
  t.equal(front.handlers.size, 0)
})

t.test('a proven domain that dies without a Bye is retired by the liveness watch', async (t) => {
  const dir = t.testdir({ root: {} })
  const pki = join(dir, 'pki')
  await initCa(pki)
  const cert = await issueDomainCertificate(pki, { name: 'storage-k' })
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const d = await spawnDomain(['storage', '--root', join(dir, 'root'), '--volume', 'k', '--listen', 'https://127.0.0.1:0', '--tls-cert', cert.certPath, '--tls-key', cert.keyPath, '--announce'], { env })
  t.teardown(async () => { await d.stop() })
  const registry = new DiscoveryClient({ listen: true, unref: true, ordering: false, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await registry.start()
  const front = new IntelligentFrontend(registry, { trust: { ca: readFileSync(join(pki, 'ca.crt')), recheckMs: 300 } })
  t.teardown(async () => { await front.close(); await registry.close() })
  await front.waitForDomain('k', 5000)
  t.ok(front.handlers.has(cert.epr), 'proven (no authentication asked by this domain: TLS proves the domain, not the caller)')
  d.child.kill('SIGKILL')
  for (let i = 0; i < 100 && front.handlers.has(cert.epr); i++) await delay(50)
  t.notOk(front.handlers.has(cert.epr), 'retired after two missed rechecks')
  t.ok(registry.targets.has(cert.epr), 'while the registry, which heard no Bye, still lists it')
})
