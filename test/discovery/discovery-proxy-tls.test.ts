// Discovery across hosts through the proxy, authenticated (issue 19, part 3): overlay networks carry
// no multicast, so domains say Hello to the discovery proxy over https with mutual TLS, and the
// proxy takes a Hello or a Bye only from a client certificate of its CA that names the announced
// EPR. Real processes on 127.0.0.1 with a private CA made in a temporary directory: the proxy
// (`metaos discovery-proxy --listen https://… --client-ca`), a storage domain that announces only
// to the proxy (`--discovery-proxy`, no multicast), and a frontend in this process that asks the
// proxy over https, proves the domain, and writes a file through it.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { DiscoveryClient } from '../../discovery/client.js'
import { body, buildEnvelope, newMessageId, type TargetInfo } from '../../discovery/messages.js'
import { VERSIONS } from '../../discovery/protocol.js'
import { askProxy, type ClientTls } from '../../discovery/proxy-client.js'
import { STORAGE_DOMAIN_TYPE } from '../../discovery/storage-announcement.js'
import { IntelligentFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { initCa, issueClientCertificate, issueDomainCertificate } from '../../security/pki.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }

function announcement (action: 'Hello' | 'Bye', epr: string, xaddrs: string[] = ['https://127.0.0.1:1/storage']): Buffer {
  const target: TargetInfo = { epr, types: [STORAGE_DOMAIN_TYPE], scopes: ['metaos://volume/vol'], xaddrs, metadataVersion: 1 }
  const v = '1.1'
  return buildEnvelope({ version: v, action, messageId: newMessageId(), to: VERSIONS[v].multicastTo, body: action === 'Hello' ? body.hello(v, target) : body.bye(v, target) })
}
const probe = (): Buffer => buildEnvelope({ version: '1.1', action: 'Probe', messageId: newMessageId(), to: 'urn:proxy', body: body.probe([STORAGE_DOMAIN_TYPE], []) })

t.test('the proxy takes registrations only from the certificate naming the EPR', async (t) => {
  const dir = tempDir(t, 'metaos-proxy-tls-')
  const pki = join(dir, 'pki')
  const { caCertPath } = await initCa(pki)
  const ca = readFileSync(caCertPath)
  const a = await issueDomainCertificate(pki, { name: 'storage-a' })
  const b = await issueDomainCertificate(pki, { name: 'storage-b' })
  const server = await issueDomainCertificate(pki, { name: 'proxy' })
  const rogueCa = join(dir, 'rogue')
  await initCa(rogueCa)
  const impostor = await issueDomainCertificate(rogueCa, { name: 'storage-a', epr: a.epr })

  const proxy = await spawnDomain(['discovery-proxy', '--listen', 'https://127.0.0.1:0', '--listen', 'http://127.0.0.1:0',
    '--tls-cert', server.certPath, '--tls-key', server.keyPath, '--client-ca', caCertPath, '--log-level', 'warn'], { env })
  t.teardown(async () => { await proxy.stop() })
  let logs = ''
  proxy.child.stderr!.on('data', (c: Buffer) => { logs += c.toString() })
  const https = proxy.ready.endpoints.find((x) => x.startsWith('https://'))!
  const http = proxy.ready.endpoints.find((x) => x.startsWith('http://'))!
  t.match(https, /^https:\/\/127\.0\.0\.1:\d+\/discovery$/, 'the proxy listens on https')

  const as = (c: { certPath: string, keyPath: string }): ClientTls => ({ ca, cert: readFileSync(c.certPath), key: readFileSync(c.keyPath) })
  const listed = async (): Promise<string[]> => ((await askProxy(https, probe(), 3000, { ca }))?.targets ?? []).map((x) => x.epr)

  t.equal(await askProxy(https, announcement('Hello', a.epr), 3000, as(a)), undefined, 'Hello with the certificate naming the EPR: taken (202)')
  t.same(await listed(), [a.epr], 'and a Probe over https (CA only, no client certificate) lists it')

  await t.rejects(askProxy(https, announcement('Hello', `urn:uuid:${randomUUID()}`), 3000, as(b)), { code: 'UNAUTHORIZED', message: /names .*, not urn:uuid:/ },
    'Hello for an EPR the certificate does not name: fault UNAUTHORIZED')
  await t.rejects(askProxy(https, announcement('Hello', a.epr, ['https://127.0.0.1:2/storage']), 3000, as(b)), { code: 'UNAUTHORIZED' }, 'Hello for A\'s EPR with B\'s certificate: refused')
  await t.rejects(askProxy(https, announcement('Hello', b.epr), 3000, { ca }), { code: 'UNAUTHORIZED', message: /no client certificate/ }, 'Hello without a client certificate: refused')
  await t.rejects(askProxy(https, announcement('Hello', a.epr), 3000, { ca, cert: readFileSync(impostor.certPath), key: readFileSync(impostor.keyPath) }), { code: 'UNAUTHORIZED', message: /client certificate refused/ },
    'Hello with a certificate of another CA naming the EPR: refused')
  await t.rejects(askProxy(http, announcement('Hello', b.epr), 3000), { code: 'UNAUTHORIZED', message: /plain http/ }, 'Hello over plain http: refused')
  await t.rejects(askProxy(https, announcement('Bye', a.epr), 3000, as(b)), { code: 'UNAUTHORIZED' }, 'Bye for A from B\'s identity: refused')
  t.same(await listed(), [a.epr], 'A is still registered, with its own XAddrs')
  t.same((await askProxy(https, probe(), 3000, { ca }))?.targets[0]?.xaddrs, ['https://127.0.0.1:1/storage'], 'nothing a refused Hello said replaced them')
  await t.rejects(askProxy(https, probe(), 3000, { ca: readFileSync(join(rogueCa, 'ca.crt')) }), { code: 'UNAUTHORIZED' }, 'a client that trusts another CA does not take the proxy\'s answer')

  t.equal(await askProxy(https, announcement('Bye', a.epr), 3000, as(a)), undefined, 'Bye from A itself: taken')
  t.same(await listed(), [], 'and A is gone')

  for (let i = 0; i < 50 && (logs.match(/discovery registration refused/g) ?? []).length < 6; i++) await sleep(20)
  const refusals = logs.split('\n').filter((l) => l.includes('discovery registration refused')).map((l) => JSON.parse(l) as { action: string, epr: string, reason: string })
  t.equal(refusals.length, 6, 'each refusal is logged (pino, warn)')
  t.ok(refusals.some((r) => r.action === 'Bye' && r.epr === a.epr && /names/.test(r.reason)), 'with the action, the EPR and the reason')
})

t.test('a frontend finds a domain through the proxy over https and writes through it', async (t) => {
  const dir = tempDir(t, 'metaos-proxy-front-')
  const pki = join(dir, 'pki')
  const { caCertPath } = await initCa(pki)
  const ca = readFileSync(caCertPath)
  const server = await issueDomainCertificate(pki, { name: 'proxy' })
  const domainCert = await issueDomainCertificate(pki, { name: 'storage-a' })
  const app = await issueClientCertificate(pki, { identity: 'app' })
  const root = join(dir, 'root')
  mkdirSync(root)

  const proxy = await spawnDomain(['discovery-proxy', '--listen', 'https://127.0.0.1:0', '--tls-cert', server.certPath, '--tls-key', server.keyPath, '--client-ca', caCertPath], { env })
  t.teardown(async () => { await proxy.stop() })
  const proxyUrl = proxy.ready.endpoints[0]!
  // No --announce: this domain multicasts nothing; the proxy is the only one it tells.
  let domain: DomainProcess | undefined = await spawnDomain(['storage', '--root', root, '--volume', 'vol', '--listen', 'https://127.0.0.1:0',
    '--tls-cert', domainCert.certPath, '--tls-key', domainCert.keyPath, '--client-ca', caCertPath, '--discovery-proxy', proxyUrl], { env })
  t.teardown(async () => { await domain?.stop() })
  t.equal(domain.ready.epr, domainCert.epr, 'the domain is the EPR its certificate names')

  const clientTls = { ca, cert: readFileSync(app.certPath), key: readFileSync(app.keyPath) }
  const registry = new DiscoveryClient({ listen: true, unref: true, ordering: false, reprobeMs: 300, proxy: proxyUrl, proxyTls: clientTls, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await registry.start()
  const front = new IntelligentFrontend(registry, { trust: { ...clientTls, recheckMs: 60_000 }, probeIntervalMs: 200 })
  t.teardown(async () => { await front.close(); await registry.close() })
  await front.waitForDomain('vol', 10_000)
  t.same([...front.handlers.keys()], [domainCert.epr], 'the frontend found the domain through the proxy, and it proved itself')
  t.equal(registry.proxy?.xaddrs[0], proxyUrl, 'managed mode, with the proxy named')

  const data = randomBytes(3 * 1024 * 1024 + 17)
  const w = await FileStream.open('through-proxy.bin', { mode: 'Create', access: 'Write', destination: front.dispatcherFor('vol') })
  await w.write(data)
  await w.close()
  t.equal(sha(readFileSync(join(root, 'through-proxy.bin'))), sha(data), 'the file on the domain\'s disk has the SHA-256 written')
  const r = await FileStream.open('through-proxy.bin', { mode: 'Open', access: 'Read', destination: front.dispatcherFor('vol') })
  const back = Buffer.alloc(data.length + 1)
  let n = 0
  for (let k; (k = await r.read(back, n, back.length - n)) > 0;) n += k
  await r.close()
  t.equal(sha(back.subarray(0, n)), sha(data), 'and reads back the same through the frontend')

  // SIGTERM: the domain says Bye to the proxy as it drains; the frontend's next look at the proxy drops it.
  await domain.stop()
  domain = undefined
  for (let i = 0; i < 100 && front.handlers.size > 0; i++) await sleep(50)
  t.equal(front.handlers.size, 0, 'after its Bye to the proxy the domain leaves the frontend')
  t.same(((await askProxy(proxyUrl, probe(), 3000, { ca }))?.targets ?? []).map((x) => x.epr), [], 'and the proxy')
})

t.test('--forget-after: a registration its Hellos stop renewing is forgotten, a renewed one stays', async (t) => {
  const dir = tempDir(t, 'metaos-proxy-lease-')
  const pki = join(dir, 'pki')
  const { caCertPath } = await initCa(pki)
  const ca = readFileSync(caCertPath)
  const a = await issueDomainCertificate(pki, { name: 'storage-a' })
  const b = await issueDomainCertificate(pki, { name: 'storage-b' })
  const server = await issueDomainCertificate(pki, { name: 'proxy' })
  const proxy = await spawnDomain(['discovery-proxy', '--listen', 'https://127.0.0.1:0', '--tls-cert', server.certPath, '--tls-key', server.keyPath,
    '--client-ca', caCertPath, '--forget-after', '600'], { env })
  t.teardown(async () => { await proxy.stop() })
  const url = proxy.ready.endpoints[0]!
  const as = (c: { certPath: string, keyPath: string }): ClientTls => ({ ca, cert: readFileSync(c.certPath), key: readFileSync(c.keyPath) })
  const listed = async (): Promise<string[]> => ((await askProxy(url, probe(), 3000, { ca }))?.targets ?? []).map((x) => x.epr).sort()
  await askProxy(url, announcement('Hello', a.epr), 3000, as(a))
  await askProxy(url, announcement('Hello', b.epr), 3000, as(b))
  t.same(await listed(), [a.epr, b.epr].sort(), 'both registered')
  // B keeps saying Hello (as a live domain does), A falls silent (a crashed one: no Bye).
  let left: string[] = []
  for (let i = 0; i < 100; i++) {
    await askProxy(url, announcement('Hello', b.epr), 3000, as(b))
    left = await listed()
    if (!left.includes(a.epr)) break
    await sleep(100)
  }
  t.same(left, [b.epr], 'A is forgotten once its lease ran out; B, renewed, stays')
})
