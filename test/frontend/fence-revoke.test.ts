// After a fence kills a domain (issue 20), the takeover revokes the killed run's lease in etcd: its
// share registrations go at once instead of blocking other applications' opens for a TTL. A real
// etcd, a LocalCluster of two domain processes with a long lease TTL (10 s); an application writes
// a file through the dispatcher, another holds a file with FileShare.None through the same domain;
// that domain is SIGSTOPped, the Write hangs, the fence kills it and the stream moves. Right then
// the killed domain holds no registration any more, and a third open of the held file with
// FileShare.None through the other domain succeeds — long before the TTL would have removed them.
import t from 'tap'
import { connectCoordination } from '../../coordination/connect.js'
import { FileStream } from '../../index.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { cluster } from '../helpers/hung-writer.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const TTL_S = 10

t.test('a fenced domain\'s lease is revoked: its registrations do not outlive it', async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const client = await connectCoordination({ url: etcd.url, leaseTtlSeconds: TTL_S })
  t.teardown(async () => { await client.close() })
  const c = await cluster(t, { domains: ['http', 'http'], coordination: { client, domainArgs: ['--coordination', etcd.url, '--coordination-ttl', String(TTL_S)] } })
  const observer = client.shares(client.domainLease('urn:test:observer'))
  const w = await FileStream.open('w.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  await w.write(Buffer.alloc(4096, 1))
  const x = c.dispatcher.affinity.entries().find((s) => s.path === 'w.bin')!.epr
  const endpoint = async (epr: string): Promise<string> => (await c.get(c.index(epr))).endpoints[0]!
  // Another application holds a file through that domain directly (not a dispatcher's stream: it stays there).
  const held = await FileStream.open('held.bin', { mode: 'Create', access: 'ReadWrite', share: 'None', destination: await endpoint(x) })
  t.ok((await observer.list(c.volume, 'held.bin')).some((r) => r.owner === x && r.share === 'None'), 'the held file is registered by that domain')
  const pid = await c.pid(x)
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch { /* killed */ } })
  await w.write(Buffer.alloc(4096, 2))
  const move = c.dispatcher.moves.find((m) => m.kind === 'failover' && m.from === x)
  t.ok(move !== undefined && (move.fenceMs ?? 0) > 0, 'the hung domain was fenced and the stream moved')
  t.same((await observer.list(c.volume)).filter((r) => r.owner === x && r.path === 'held.bin'), [], 'right after the takeover the killed domain holds no registration (its lease was revoked)')
  const other = (await c.get(1 - c.index(x))).endpoints[0]!
  let code = 'ok'
  try {
    const f = await FileStream.open('held.bin', { mode: 'Open', access: 'ReadWrite', share: 'None', destination: other })
    await f.close()
  } catch (e) { code = e instanceof MetaosError ? e.code : String(e) }
  t.equal(code, 'ok', `another application's FileShare.None open through the other domain succeeds at once, not a TTL (${TTL_S} s) later`)
  await w.close()
  await held.close().catch(() => {})
})
