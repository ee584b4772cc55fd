// Fencing with coordination (issue 20), on a real 3-member etcd: domains hold leases (TTL 1 s) and
// the dispatcher's checkpoints live in the stream directory. 20 runs of the hung writer
// (test/helpers/hung-writer.ts: SIGSTOP for 3× TTL with a Write in flight, failover, the last MiB
// overwritten and 4 KiB cut, SIGCONT): every file equals the application's view, and after each
// failover the directory names the new owner at the new epoch. Then a domain this frontend cannot
// kill (fencing off, coordination on): the stream waits for the hung domain's lease to expire and
// fails with DOMAIN_FENCED instead of moving (the domain does not answer the Close of the stream's
// handle either); woken, that domain refuses the stream's handle and nothing it held lands over
// later data.
import t, { type Test } from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectCoordination, type Coordination } from '../../coordination/connect.js'
import { FileStream } from '../../index.js'
import type { LocalClusterOptions } from '../../frontend/assembly/local-cluster.js'
import { etcdMissing, startEtcdCluster, type EtcdCluster } from '../helpers/etcd-cluster.js'
import { cluster, randomRuns, TTL_MS } from '../helpers/hung-writer.js'

const missing = etcdMissing()

async function coordinated (t: Test, etcd: EtcdCluster): Promise<{ client: Coordination, options: NonNullable<LocalClusterOptions['coordination']> }> {
  const client = await connectCoordination({ url: etcd.url, leaseTtlSeconds: TTL_MS / 1000 })
  t.teardown(async () => { await client.close() })
  return { client, options: { client, domainArgs: ['--coordination', etcd.url, '--coordination-ttl', String(TTL_MS / 1000)] } }
}

t.test('20 runs with coordination: not one file differs, and the directory follows every move', { skip: missing }, async (t) => {
  const etcd = await startEtcdCluster(t)
  const { client, options } = await coordinated(t, etcd)
  const c = await cluster(t, { isolation: 'restart', coordination: options })
  const wrong: string[] = []
  const runs = await randomRuns(t, c, 20, async (s) => {
    const r = await client.streams.get(s.stream)
    if (r?.owner !== s.epr || r.epoch !== s.epoch || s.epoch < 2) wrong.push(`${s.path}: directory ${r?.owner ?? 'none'} at ${r?.epoch ?? '-'}, dispatcher ${s.epr} at ${s.epoch}`)
  })
  t.equal(runs.filter((r) => !r.equal).length, 0, 'every file equals the application\'s view (SHA-256)')
  t.same(wrong, [], 'after each failover the stream directory names the new owner at the new epoch')
  for (let i = 0; i < 40 && (await client.streams.list()).length > 0; i++) await sleep(50)
  t.same(await client.streams.list(), [], 'closed streams leave the directory')
})

t.test('a hung domain that cannot be killed: the stream waits for its lease, then fails with DOMAIN_FENCED', { skip: missing }, async (t) => {
  const etcd = await startEtcdCluster(t)
  const { client, options } = await coordinated(t, etcd)
  const c = await cluster(t, { isolation: 'none', fencing: false, coordination: options })
  const f = await FileStream.open('u.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  await f.write(Buffer.alloc(4096, 1))
  const s = c.dispatcher.affinity.entries()[0]!
  t.match(await client.streams.get(s.stream), { owner: s.epr, epoch: 1, path: 'u.bin' }, 'the directory names the owner')
  const pid = await c.pid(s.epr)
  process.kill(pid, 'SIGSTOP')
  t.teardown(() => { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } })
  await t.rejects(f.write(Buffer.alloc(4096, 2)), { code: 'DOMAIN_FENCED', message: /cannot be killed from this frontend, its lease has expired and it did not close the stream's handle: the stream is not reopened elsewhere/ })
  t.notOk((await client.holders()).some((h) => h.id === s.epr && h.kind === 'domain'), 'the hung domain holds no lease')
  t.match(await client.streams.get(s.stream), { owner: s.epr, epoch: 1 }, 'the stream did not move')
  process.kill(pid, 'SIGCONT')
  await sleep(300)
  // Through the dispatcher's own proxy of that domain: handles belong to the caller that opened them.
  const old = c.handlers.get(s.epr)!
  // Refused as opened under the lease it lost — or already closed by the Close the takeover sent it (a Close is always run).
  await t.rejects(old.invoke('Write', { handle: s.real, data: Buffer.alloc(4096, 3), epoch: 1 }), { code: /^(DOMAIN_FENCED|INVALID_HANDLE)$/ }, 'woken, the domain refuses the stream\'s old handle')
  t.same(c.dispatcher.moves, [], 'nor did the supervisor move it (a stream that could not be fenced stays)')
  t.equal(s.epoch, 1)
  await f.close()
  const onDisk = readFileSync(join(c.root, 'u.bin'))
  t.ok(onDisk.subarray(0, 4096).every((b) => b === 1), 'the acknowledged bytes are on the volume')
  t.ok(onDisk.subarray(4096).every((b) => b === 2), 'and past them only what the stopped domain held (no other writer)')
})
