// A discovered domain hangs under a stream (issue 20): no fence hook can kill it (this frontend does
// not manage it), so with coordination the takeover waits until its lease has expired in etcd, then
// asks it to Close the stream's handle; with `unfenced: 'wait'` it asks again until the domain
// answers. Two `metaos storage` processes announced by WS-Discovery (in a network namespace of
// this file's own), a real etcd, a lease TTL of 1 s: the stream's domain is SIGSTOPped with a
// Write in flight and woken 3× TTL later. The stream moves only after the stopped domain's lease is
// gone from etcd; woken, the domain refuses the Write it held with DOMAIN_FENCED (its metrics);
// after the move the application overwrites the last block and cuts the file, and the file equals
// its view (SHA-256).
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { connectCoordination } from '../../coordination/connect.js'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { closeSharedFrontend, sharedFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { closeStorageRegistry } from '../../frontend/index.js'
import { FileStream, closeSharedProxies } from '../../index.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const BLOCK = 64 * 1024
const TTL_S = 1

/** The domain's fence refusals by code, from its /metrics. */
async function refusals (d: DomainProcess): Promise<Record<string, number>> {
  const url = new URL(d.ready.endpoints.find((e) => e.startsWith('http://'))!)
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: url.hostname, port: url.port, path: '/metrics' }, (res) => {
      let s = ''
      res.on('data', (c: Buffer) => { s += c.toString() })
      res.on('end', () => { resolve(s) })
    }).on('error', reject).end()
  })
  const out: Record<string, number> = {}
  for (const m of body.matchAll(/^metaos_storage_fence_refusals_total\{code="([A-Z_]+)"\} (\d+)/gm)) out[m[1]!] = Number(m[2])
  return out
}

t.test('a discovered domain SIGSTOPped under a stream: the stream waits for its lease, moves once it answers, and nothing it held lands', async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const watcher = await connectCoordination({ url: etcd.url })
  t.teardown(async () => { await watcher.close() })
  const root = join(tempDir(t, 'metaos-fence-disc-'), 'v')
  mkdirSync(root)
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const domains: DomainProcess[] = []
  for (const name of ['a', 'b']) {
    const d = await spawnDomain(['storage', '--root', root, '--volume', 'gv', '--name', name, '--listen', 'http://127.0.0.1:0', '--announce', '--coordination', etcd.url, '--coordination-ttl', String(TTL_S)], { env })
    domains.push(d)
    t.teardown(async () => { try { d.child.kill('SIGCONT') } catch { /* gone */ } await d.stop() })
  }
  t.teardown(async () => { await closeSharedFrontend(); await closeSharedProxies(); await closeStorageRegistry() })
  // No fence hook (discovered domains are not this frontend's to kill); the stream waits rather than fail.
  const front = await sharedFrontend({ coordination: { url: etcd.url, leaseTtlSeconds: TTL_S }, unfenced: 'wait', fenceRetryMs: 200, hangMs: 500 })
  await front.waitForDomain('gv', 10_000)
  for (let i = 0; i < 250 && front.handlers.size < 2; i++) await sleep(20)
  t.equal(front.handlers.size, 2, 'both domains discovered')
  const dispatcher = front.dispatcherFor('gv')

  const data = randomBytes(32 * BLOCK)
  const view = Buffer.from(data)
  const f = await FileStream.open('d.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  for (let k = 0; k < 16; k++) await f.write(data.subarray(k * BLOCK, (k + 1) * BLOCK))
  const s = dispatcher.affinity.entries()[0]!
  const stopped = domains.find((d) => d.ready.epr === s.epr)!
  t.ok(stopped, 'the stream is on one of the discovered domains')
  t.same(await refusals(stopped), { DOMAIN_FENCED: 0, STALE_EPOCH: 0 }, 'nothing refused before')

  // A Write in flight, then SIGSTOP: the domain holds it, unanswered.
  const inFlight = f.write(data.subarray(16 * BLOCK, 17 * BLOCK))
  stopped.child.kill('SIGSTOP')
  const stoppedAt = Date.now()
  let leaseGoneAt: number | undefined
  void watcher.leaseGone(s.epr, { timeoutMs: 20_000 }).then(() => { leaseGoneAt = Date.now() }, () => {})
  setTimeout(() => { stopped.child.kill('SIGCONT') }, 3 * TTL_S * 1000).unref()
  await inFlight
  const moved = dispatcher.moves.at(-1)
  t.match(moved, { kind: 'failover', from: stopped.ready.epr, reason: 'TIMED_OUT', epoch: 2 }, 'the stream failed over at epoch 2')
  t.not(s.epr, stopped.ready.epr, 'to the other domain')
  t.ok(leaseGoneAt !== undefined, 'the stopped domain\'s lease had expired in etcd before the stream moved')
  t.ok(Date.now() - stoppedAt >= 3 * TTL_S * 1000 - 100, 'and the stream moved only once the domain answered (woken at 3× TTL)')
  t.match(await watcher.streams.get(s.stream), { owner: s.epr, epoch: 2 }, 'the directory names the new owner')

  for (let k = 17; k < 32; k++) await f.write(data.subarray(k * BLOCK, (k + 1) * BLOCK))
  // Seek back: the last block overwritten with other bytes, then the file cut by 4 KiB.
  const other = randomBytes(BLOCK)
  await f.seek(31 * BLOCK)
  await f.write(other)
  other.copy(view, 31 * BLOCK)
  await f.setLength(32 * BLOCK - 4096)
  await f.close()
  await sleep(300)
  const r = await refusals(stopped)
  t.ok((r.DOMAIN_FENCED ?? 0) >= 1, `woken, the domain refused the Write it held with DOMAIN_FENCED (${JSON.stringify(r)})`)
  t.equal(sha(readFileSync(join(root, 'd.bin'))), sha(view.subarray(0, 32 * BLOCK - 4096)), 'the file equals the application\'s view (SHA-256)')
})
