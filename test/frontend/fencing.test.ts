// Fencing (issue 20): a domain abandoned as hung must not write after its stream moved on. The
// stream's domain is SIGSTOPped for 3× the lease TTL in the middle of a 64 MiB write, with a Write
// in flight; the dispatcher fails over (the domain manager kills the hung domain first, and the
// takeover waits for its exit); the application then seeks back, overwrites the last 1 MiB it
// wrote with other bytes and truncates the file by 4 KiB; then SIGCONT. The file must equal the
// application's view exactly (SHA-256). First the hazard itself, made certain by a delay inside the
// service (the Write received and not yet applied when the domain stops): without fencing the
// woken domain lands its stale Write; with fencing it cannot. Then 8 runs with the SIGSTOP at
// random moments (a seeded PRNG: the seed is printed); not one may differ. The 20 runs are
// fencing-etcd.test.ts's, with coordination as well; these 8 keep the manager-only fence covered
// within the suite's time.
import t from 'tap'
import { MiB, cluster, delayed, randomRuns, run } from '../helpers/hung-writer.js'

t.test('the hazard: without fencing, the woken domain lands its stale Write over newer data', async (t) => {
  const c = await cluster(t, { fencing: false, isolation: 'none' })
  const r = await run(c, 'unfenced.bin', 16 * MiB, 150, { beforeStop: delayed(c) })
  t.comment(r.detail)
  t.ok(r.inFlight, 'a Write was in flight when the domain stopped')
  t.notOk(r.equal, 'the file differs from the application\'s view (the hole fencing closes)')
})

t.test('with fencing, the same wake-up lands nothing', async (t) => {
  const c = await cluster(t, { isolation: 'none' })
  const r = await run(c, 'fenced.bin', 16 * MiB, 150, { beforeStop: delayed(c) })
  t.comment(r.detail)
  t.ok(r.inFlight, 'a Write was in flight when the domain stopped')
  t.ok(r.equal, 'the file equals the application\'s view (SHA-256)')
  t.ok(r.fenceMs !== undefined, 'the failover fenced the old owner')
  const victim = c.dispatcher.moves[0]!.from
  t.equal((await c.get(c.index(victim))).state, 'stopped', 'the hung domain was killed through the domain manager')
})

t.test('8 runs, the SIGSTOP at random moments: not one file differs', async (t) => {
  const c = await cluster(t, { isolation: 'restart' })
  const runs = await randomRuns(t, c, 8)
  t.equal(runs.filter((r) => !r.equal).length, 0, 'every file equals the application\'s view (SHA-256)')
  t.equal(runs.length, 8)
})
