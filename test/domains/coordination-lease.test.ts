// A lease is never handed out invalid (coordination/lease.ts): when etcd answers slowly — just back
// after an outage, or far away — a grant that comes back too late to be valid (validity counts from
// when the grant was sent) is revoked and asked again, 'granted' is never emitted for it, and
// `whenValid()` resolves only while `valid()` is true. A real etcd behind a TCP relay of this file
// that holds every request back by a settable delay: 450 ms each way makes every grant late (TTL
// 1 s, margin 400 ms: 600 ms of validity from the send); then no delay, and a lease holds again.
import t, { type Test } from 'tap'
import { createServer, connect, type Socket } from 'node:net'
import { connectCoordination } from '../../coordination/connect.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

/** A relay to `port` that delays what the client sends by `delay.ms` (keeping the bytes in order). */
async function slowRelay (t: Test, port: number, delay: { ms: number }): Promise<number> {
  const sockets = new Set<Socket>()
  const server = createServer((down) => {
    const up = connect(port, '127.0.0.1')
    sockets.add(down); sockets.add(up)
    let last = 0
    down.on('data', (chunk) => {
      const at = Math.max(performance.now() + delay.ms, last)
      last = at
      setTimeout(() => { if (!up.destroyed) up.write(chunk) }, at - performance.now())
    })
    up.pipe(down)
    const end = (): void => { down.destroy(); up.destroy() }
    down.on('error', end); up.on('error', end); down.on('close', end); up.on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise((resolve) => server.close(resolve)) })
  return (server.address() as { port: number }).port
}

t.test('whenValid resolves only on a valid lease, and a late grant is never used', async (t) => {
  const etcd = await startEtcdCluster(t, { members: 1 })
  const delay = { ms: 0 }
  const port = await slowRelay(t, Number(new URL(etcd.members[0]!.clientUrl).port), delay)
  const c = await connectCoordination({ url: `etcd://127.0.0.1:${port}`, leaseTtlSeconds: 1, safetyMarginMs: 400, deadlineMs: 4000 })
  t.teardown(async () => { await c.close() })
  const lease = c.domainLease('urn:test:slow')
  const grantedInvalid: number[] = []
  lease.on('granted', () => { if (!lease.valid()) grantedInvalid.push(lease.generation) })
  await lease.whenValid(5000)
  t.ok(lease.valid(), 'held while etcd answers at once')
  const lost = new Promise((resolve) => lease.once('lost', resolve))
  delay.ms = 450
  await lost
  t.pass('etcd slower than the validity: the lease is lost')
  // While every grant comes back late: whenValid never resolves on an invalid lease.
  const seen: string[] = []
  const until = performance.now() + 4000
  while (performance.now() < until) {
    try {
      await lease.whenValid(1000)
      seen.push(lease.valid() ? 'valid' : `invalid at generation ${lease.generation}`)
      if (!lease.valid()) await new Promise((resolve) => setTimeout(resolve, 100))
    } catch (e) {
      seen.push(e instanceof MetaosError ? e.code : String(e))
    }
  }
  t.same(seen.filter((s) => s.startsWith('invalid')), [], 'whenValid never resolved while valid() was false')
  t.ok(seen.includes('COORDINATION_UNAVAILABLE'), 'it fails with COORDINATION_UNAVAILABLE instead')
  t.same(grantedInvalid, [], '\'granted\' is never emitted for a lease that is not valid')
  const generation = lease.generation
  delay.ms = 0
  await lease.whenValid(5000)
  t.ok(lease.valid(), 'etcd quick again: a lease is held')
  t.ok(lease.generation > generation, `a new one (generation ${lease.generation})`)
  t.same(grantedInvalid, [])
})
