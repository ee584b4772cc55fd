// A vulnerability that excludes, arriving while a stream writes: real domain processes under a
// LocalCluster, a feed read from a manifest and a directory of OSV records (watched). The domain
// serving the stream declares an affected Node.js (the cluster declares each domain's runtime; one
// machine has one node binary); a real OSV record (docs/examples/feeds/osv/BIT-node-2024-27983.json)
// copied into the directory, excluded by its CVE alias, isolates that domain at once and moves the
// stream off; every byte lands (SHA-256 of the file written).
import t from 'tap'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { VulnerabilityFeed } from '../../frontend/placement/vulnerability-feed.js'
import { tempDir } from '../helpers/temp-dir.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const SAMPLE = fileURLToPath(new URL('../../docs/examples/feeds/osv/BIT-node-2024-27983.json', import.meta.url))

t.test('an excluding OSV record moves the streams off the domain it affects', async (t) => {
  const dir = tempDir(t, 'metaos-feed-exclusion-')
  mkdirSync(join(dir, 'osv'))
  writeFileSync(join(dir, 'feed.json'), JSON.stringify({ sources: ['osv'], exclude: ['CVE-2024-27983'] }))
  const feed = VulnerabilityFeed.fromFile(join(dir, 'feed.json'))
  t.teardown(() => { feed.close() })
  t.equal(feed.vulnerabilities.length, 0, 'an empty directory: nothing known yet')
  const cluster = await LocalCluster.start({ domains: ['http', 'http'], isolation: 'none', dispatcher: { feed }, supervisor: { feed } })
  t.teardown(async () => { await cluster.close() })

  const data = randomBytes(2 * 1024 * 1024)
  const f = await FileStream.open('excluded.bin', { mode: 'Create', access: 'Write', destination: cluster.dispatcher, bufferSize: 0 })
  await f.write(data, 0, 1024 * 1024)
  const serving = cluster.dispatcher.affinity.entries()[0]!.epr
  const other = [...cluster.handlers.keys()].find((e) => e !== serving)!
  // The serving domain runs an older Node.js, in the range the record lists (before 18.20.1).
  cluster.pmt.upsert({ ...cluster.pmt.row(serving)!.identity, runtime: 'node/18.19.0' })
  t.equal(cluster.pmt.row(serving)!.state, 'healthy')

  copyFileSync(SAMPLE, join(dir, 'osv', 'BIT-node-2024-27983.json'))
  for (let i = 0; i < 100 && cluster.dispatcher.affinity.entries()[0]!.epr === serving; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(feed.vulnerabilities.map((v) => `${v.id} ${v.action} ${v.severity}`), ['BIT-node-2024-27983 exclude 8.2'], 'the record was read when it appeared: excluded by its alias, CVSS 8.2')
  t.equal(cluster.dispatcher.affinity.entries()[0]!.epr, other, 'the stream moved to the unaffected domain')
  t.equal(cluster.pmt.row(serving)!.state, 'isolated', 'the affected domain is isolated')
  t.ok(cluster.supervisor.decisions.some((d) => d.epr === serving && d.to === 'isolated' && /vulnerability feed/.test(d.reason)), 'the supervisor says why')
  const status = await cluster.status()
  t.same(status.pmt.find((r) => r.epr === serving)?.vulnerabilities, { ids: ['BIT-node-2024-27983'], action: 'exclude', severity: 8.2 }, 'the status shows what excluded it')
  t.equal(status.pmt.find((r) => r.epr === other)?.vulnerabilities, undefined, 'the other domain runs a fixed Node.js')

  for (let off = 1024 * 1024; off < data.length; off += 64 * 1024) await f.write(data, off, 64 * 1024)
  await f.close()
  t.equal(sha(readFileSync(join(cluster.root, 'excluded.bin'))), sha(data), 'every byte written, across the move (SHA-256)')
  const g = await FileStream.open('new.bin', { mode: 'Create', access: 'Write', destination: cluster.dispatcher })
  t.equal(cluster.dispatcher.affinity.entries().find((e) => e.path.endsWith('new.bin'))?.epr, other, 'a new stream goes to the unaffected domain')
  await g.close()
})
