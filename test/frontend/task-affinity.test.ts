// Thread affinity (frontend/placement/task-affinity.ts) with real domain processes: the streams a
// task opens (one async context, withTask) go to the domain its first stream went to, even under
// the 'weighted' policy that spreads streams at random, while that domain stays healthy; once it
// is isolated, the task's next stream goes elsewhere and stays there. Two tasks keep their own
// domains. The bytes of every file are right. The status snapshot lists the table.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { TaskAffinity, withTask, currentTask } from '../../frontend/placement/task-affinity.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('a task\'s streams share its domain while it stays healthy', async (t) => {
  // minShare 0: the task keeps its domain whatever the scores do (on a loaded machine they swing),
  // so what is asserted is the affinity itself and the isolation that ends it.
  const tasks = new TaskAffinity({ minShare: 0 })
  const c = await LocalCluster.start({ probeIntervalMs: 200, isolation: 'none', dispatcher: { policy: 'weighted', tasks } })
  t.teardown(async () => { await c.close() })
  const written = new Map<string, Buffer>()
  const oneStream = async (path: string): Promise<string> => {
    const data = randomBytes(8192)
    const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
    const epr = c.dispatcher.affinity.entries().find((e) => e.path === path)!.epr
    await f.write(data)
    await f.close()
    written.set(path, data)
    return epr
  }
  const run = async (name: string, n: number): Promise<string[]> => await withTask(async () => {
    t.equal(currentTask(), name, 'the task context is carried through awaits')
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push(await oneStream(`${name}-${i}.bin`))
    return out
  }, name)

  const [a, b] = await Promise.all([run('A', 12), run('B', 12)])
  t.equal(new Set(a).size, 1, 'task A: every stream on one domain')
  t.equal(new Set(b).size, 1, 'task B: every stream on one domain')
  t.match(tasks.entries().find((e) => e.task === 'A'), { epr: a[0], placed: 12, kept: 11, switches: 0 })
  t.equal(tasks.current(), undefined, 'outside a task (mode context): no task')

  // A's domain is isolated: A's next stream goes elsewhere, and A stays there.
  await c.supervisor.isolate(a[0]!, 'test')
  const after = await run('A', 6)
  t.notOk(after.includes(a[0]!), 'not on the isolated domain any more')
  t.equal(new Set(after).size, 1, 'the rest of the task on its new domain')
  t.match(tasks.entries().find((e) => e.task === 'A'), { epr: after[0], switches: 1 })
  t.ok(c.dispatcher.placed.some((p) => p.fired.includes('task affinity (A)')), 'the placement record says why')

  const status = await c.status()
  t.same(status.tasks?.map((x) => x.task).sort(), ['A', 'B'], 'the status lists the table')
  for (const [path, data] of written) t.equal(sha(readFileSync(join(c.root, path))), sha(data), `${path}: bytes right`)
})

t.test('thread mode: calls outside a task are the worker thread\'s; steer false only records', async (t) => {
  const th = new TaskAffinity({ mode: 'thread' })
  t.equal(th.current(), 'thread-0', 'the main thread')
  t.equal(withTask(() => th.current(), 'x'), 'x', 'a task context wins over the thread')
  const rec = new TaskAffinity({ steer: false })
  rec.placed('x', 'd0', false)
  rec.placed('x', 'd1', false)
  rec.placed('x', 'd1', false)
  t.match(rec.entries()[0], { epr: 'd1', placed: 3, kept: 0, switches: 1 })
})
