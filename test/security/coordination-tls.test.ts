// etcds:// (docs/coordination.md): etcd served over TLS with client certificates required, every
// certificate from `metaos pki` — etcd's a domain certificate (it names 127.0.0.1), the domain's and
// the test's too. With the CA and a client certificate a client holds a lease and registers opens,
// and `metaos storage --coordination etcds://…` serves; without a client certificate, or trusting
// another CA, it gets COORDINATION_UNAVAILABLE.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { connectCoordination } from '../../coordination/connect.js'
import { CLI_PATH, spawnDomain } from '../../domains/domain-process.js'
import { FileStream, closeAll } from '../../index.js'
import { initCa, issueDomainCertificate } from '../../security/pki.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const codeOf = async (p: Promise<unknown>): Promise<string> => { try { await p; return 'resolved' } catch (e) { return e instanceof MetaosError ? e.code : String(e) } }

t.test('etcd over TLS with client certificates', async (t) => {
  const dir = tempDir(t, 'metaos-etcds-')
  const pki = join(dir, 'pki')
  const { caCertPath } = await initCa(pki)
  const server = await issueDomainCertificate(pki, { name: 'etcd' })
  const client = await issueDomainCertificate(pki, { name: 'storage-a' })
  const other = join(dir, 'other')
  const { caCertPath: otherCa } = await initCa(other)
  const cluster = await startEtcdCluster(t, { members: 1, tls: { cert: server.certPath, key: server.keyPath, ca: caCertPath } })
  t.match(cluster.url, /^etcds:\/\/127\.0\.0\.1:\d+$/)
  const tls = { ca: readFileSync(caCertPath), cert: readFileSync(client.certPath), key: readFileSync(client.keyPath) }

  const c = await connectCoordination({ url: cluster.url, ...tls })
  t.teardown(async () => { await c.close() })
  const lease = c.domainLease('urn:uuid:tls')
  await lease.whenValid(5000)
  t.ok(lease.valid(), 'a lease over TLS with a client certificate')
  t.equal(await codeOf(c.shares(lease).register({ volume: 'v', path: 'f', access: 'Write', share: 'None' })), 'resolved', 'and an open registered')

  t.equal(await codeOf(connectCoordination({ url: cluster.url, ca: tls.ca, deadlineMs: 500 })), 'COORDINATION_UNAVAILABLE', 'no client certificate: refused by etcd')
  t.equal(await codeOf(connectCoordination({ url: cluster.url, ca: readFileSync(otherCa), cert: tls.cert, key: tls.key, deadlineMs: 500 })), 'COORDINATION_UNAVAILABLE', 'trusting another CA: etcd\'s certificate refused')

  const root = join(dir, 'root')
  mkdirSync(root)
  const args = ['storage', '--root', root, '--volume', 'v', '--coordination', cluster.url, '--coordination-ca', caCertPath, '--coordination-cert', client.certPath, '--coordination-key', client.keyPath]
  const d = await spawnDomain(args)
  t.teardown(async () => { await closeAll(); await d.stop() })
  const f = await FileStream.open('g.bin', { mode: 'Create', share: 'None', destination: d.ready.endpoints[0]! })
  t.ok((await c.shares(lease).list('v', 'g.bin')).some((r) => r.owner === d.ready.epr), 'metaos storage over etcds:// registered its open')
  await f.close()

  const noCa = spawnSync(process.execPath, [CLI_PATH, 'storage', '--root', root, '--coordination', cluster.url], { encoding: 'utf8', timeout: 20_000 })
  t.equal(noCa.status, 2, 'etcds:// without --coordination-ca: a usage error')
  t.match(noCa.stderr, /etcds:\/\/ needs the CA/)
})
