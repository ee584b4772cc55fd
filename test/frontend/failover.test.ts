// Fault injection with real processes and real signals: during a 100 MB sequential write and a
// 100 MB sequential read through a FileStream placed by the dispatcher on three storage domains of
// one volume, the domain serving the stream is killed (SIGKILL), hung (SIGSTOP, later SIGCONT),
// slowed (a real delay inside the service, switched on at run time), has its listening socket
// closed, or is restarted with the same EPR. Each time the application sees no error, the file's
// SHA-256 is the expected one, and the data read equals the data written; the stall is reported.
// When every domain of the volume is gone, the error names the volume and nothing acknowledged is lost.
import t, { type Test } from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { FileStream } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'

const SIZE = 100 * 1024 * 1024
const BLOCK = 64 * 1024
const FAULT_AT = 30 * 1024 * 1024
const data = randomBytes(SIZE)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const expected = sha(data)

async function cluster (t: Test): Promise<LocalCluster> {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { recoverMs: 1000 }, isolation: 'none' })
  t.teardown(async () => { await c.close() })
  return c
}

/** Writes the 100 MB, calling `fault` once the stream is 30 MB in; returns the longest single call (ms). */
async function writeAll (c: LocalCluster, path: string, fault: (epr: string) => Promise<void> | void, exceptionLess = false): Promise<number> {
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0, exceptionLess })
  let longest = 0
  for (let off = 0; off < SIZE; off += BLOCK) {
    if (off === FAULT_AT) await fault(c.dispatcher.affinity.entries()[0]!.epr)
    const t0 = performance.now()
    await f.write(data, off, BLOCK)
    longest = Math.max(longest, performance.now() - t0)
  }
  await f.close()
  return longest
}

async function readAll (c: LocalCluster, path: string, fault: (epr: string) => Promise<void> | void): Promise<{ back: Buffer, longest: number }> {
  const f = await FileStream.open(path, { mode: 'Open', access: 'Read', destination: c.dispatcher, bufferSize: 0 })
  const back = Buffer.alloc(SIZE)
  let n = 0
  let longest = 0
  let faulted = false
  while (n < SIZE) {
    if (!faulted && n >= FAULT_AT) { faulted = true; await fault(c.dispatcher.affinity.entries()[0]!.epr) }
    const t0 = performance.now()
    const k = await f.read(back, n, Math.min(BLOCK, SIZE - n))
    longest = Math.max(longest, performance.now() - t0)
    if (k === 0) break
    n += k
  }
  await f.close()
  return { back: back.subarray(0, n), longest }
}

const kinds: Array<[string, (c: LocalCluster, epr: string) => Promise<void> | void]> = [
  ['kill -9', async (c, epr) => { process.kill(await c.pid(epr), 'SIGKILL') }],
  ['SIGSTOP (a hang), SIGCONT 3 s later', async (c, epr) => {
    const pid = await c.pid(epr)
    process.kill(pid, 'SIGSTOP')
    setTimeout(() => { try { process.kill(pid, 'SIGCONT') } catch { /* gone */ } }, 3000).unref()
  }],
  ['slowed down (100 ms inside the service)', (c, epr) => { c.inject(c.index(epr), { delayMs: 100 }) }],
  ['listening socket closed, connections open', (c, epr) => { c.inject(c.index(epr), { closeListeners: true }) }],
  ['restarted with the same EPR', async (c, epr) => {
    if ((await c.restart(c.index(epr))).epr !== epr) throw new Error('the restarted domain has another EPR')
  }],
]

for (const [kind, fault] of kinds) {
  t.test(kind, async (t) => {
    const c = await cluster(t)
    const writeLongest = await writeAll(c, 'big.bin', async (epr) => { await fault(c, epr) })
    t.equal(sha(readFileSync(join(c.root, 'big.bin'))), expected, 'write: the file on the volume has the expected SHA-256')
    const movesAfterWrite = c.dispatcher.moves.length
    // Undo what can be undone, so the read starts on a healthy cluster of two or three domains.
    for (let i = 0; i < 3; i++) c.inject(i, {})
    const { back, longest: readLongest } = await readAll(c, 'big.bin', async (epr) => { await fault(c, epr) }).catch((e: unknown) => {
      t.comment(`supervisor: ${c.supervisor.decisions.map((d) => `${d.epr.slice(-4)} ${d.to}: ${d.reason}`).join(' | ')}; moves: ${c.dispatcher.moves.map((m) => `${m.from.slice(-4)}→${m.to.slice(-4)} ${m.op} ${m.reason}`).join('; ')}`)
      throw e
    })
    t.equal(back.length, SIZE, 'read: every byte came back')
    t.equal(sha(back), expected, 'read: the data read equals the data written')
    const moves = c.dispatcher.moves
    t.comment(`${kind}: longest write call ${writeLongest.toFixed(0)} ms, longest read call ${readLongest.toFixed(0)} ms; moves: ${moves.map((m) => `${m.kind} on ${m.op} (${m.reason}) stall ${m.stallMs.toFixed(0)} ms`).join('; ') || 'none'}`)
    t.comment(`supervisor: ${c.supervisor.decisions.map((d) => `${d.to}: ${d.reason}`).join(' | ') || 'no decision'}`)
    if (kind.startsWith('kill') || kind.startsWith('SIGSTOP') || kind.startsWith('restarted')) {
      t.ok(movesAfterWrite >= 1 && moves.length > movesAfterWrite, 'the stream moved to another domain, in the write and in the read')
      t.ok(Math.max(...moves.map((m) => m.stallMs)) < 2000, `stall under 2 s (${Math.max(...moves.map((m) => m.stallMs)).toFixed(0)} ms)`)
    }
    if (kind.startsWith('restarted')) {
      const epr = c.dispatcher.moves[0]!.from
      for (let i = 0; i < 300 && c.pmt.row(epr)!.state !== 'healthy'; i++) await new Promise((resolve) => setTimeout(resolve, 100))
      t.equal(c.pmt.row(epr)!.state, 'healthy', 'the restarted domain (same EPR) is readmitted once its probes are good')
    }
    if (kind.startsWith('slowed')) t.ok(c.supervisor.decisions.some((d) => d.to === 'isolated' && /latency|throughput/.test(d.reason)), 'the supervisor saw the domain slow down and isolated it')
  })
}

t.test('exception-less mode: kill -9 with Batches in flight', async (t) => {
  const c = await cluster(t)
  await writeAll(c, 'batched.bin', async (epr) => { process.kill(await c.pid(epr), 'SIGKILL') }, true)
  t.equal(sha(readFileSync(join(c.root, 'batched.bin'))), expected, 'the pending Batch was replayed on another domain: the expected SHA-256')
  t.ok(c.dispatcher.moves.some((m) => m.kind === 'failover' && m.op === 'Batch'), `a Batch failed over (${c.dispatcher.moves.map((m) => `${m.op} ${m.reason} ${m.stallMs.toFixed(0)} ms`).join('; ')})`)
})

t.test('every domain of the volume gone: a clear error, nothing acknowledged lost', async (t) => {
  const c = await cluster(t)
  const f = await FileStream.open('lost.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let acknowledged = 0
  let error: unknown
  try {
    for (let off = 0; off < SIZE; off += BLOCK) {
      if (off === 8 * BLOCK) for (let i = 0; i < 3; i++) process.kill((await c.get(i)).pid, 'SIGKILL')
      await f.write(data, off, BLOCK)
      acknowledged = off + BLOCK
    }
  } catch (e) { error = e }
  t.match(error, { code: 'VOLUME_UNAVAILABLE', message: /volume shared/ }, 'VOLUME_UNAVAILABLE naming the volume')
  const onDisk = readFileSync(join(c.root, 'lost.bin'))
  t.ok(onDisk.length >= acknowledged, `the ${acknowledged} acknowledged bytes are on the volume`)
  t.equal(sha(onDisk.subarray(0, acknowledged)), sha(data.subarray(0, acknowledged)), 'and they are the bytes written')
  await f.close().catch(() => {})
})

t.test('policy: a domain that dies is isolated at once and restarted by the manager, then readmitted', async (t) => {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { recoverMs: 500 } })
  t.teardown(async () => { await c.close() })
  const before = await c.get(1)
  process.kill(before.pid, 'SIGKILL')
  const until = async (cond: () => Promise<boolean> | boolean, ms: number): Promise<boolean> => {
    for (const end = Date.now() + ms; Date.now() < end;) { if (await cond()) return true; await new Promise((resolve) => setTimeout(resolve, 50)) }
    return await cond()
  }
  t.ok(await until(() => c.supervisor.decisions.some((d) => d.epr === before.epr && d.to === 'isolated' && /process exited \(SIGKILL\)/.test(d.reason)), 3000), 'isolated with the reason: its process exited')
  t.ok(await until(async () => { const d = await c.get(1); return d.state === 'running' && d.pid !== before.pid }, 10_000), 'restarted by the manager')
  const after = await c.get(1)
  t.equal(after.epr, before.epr, 'with the same EPR')
  t.same(after.endpoints, before.endpoints, 'at the same address')
  t.ok(await until(() => c.pmt.row(before.epr)!.state === 'healthy', 30_000), 'and readmitted once its probes are good')
  const f = await FileStream.open('after.bin', { mode: 'Create', destination: c.dispatcher })
  await f.write(Buffer.from('still serving'))
  await f.close()
  t.equal(readFileSync(join(c.root, 'after.bin'), 'utf8'), 'still serving')
})

t.test('policy clone: a clone of a healthy domain stands in for one that died', async (t) => {
  const c = await LocalCluster.start({ probeIntervalMs: 200, isolation: 'clone', domains: ['http', 'bus'] })
  t.teardown(async () => { await c.close() })
  const dead = await c.get(0)
  process.kill(dead.pid, 'SIGKILL')
  for (let i = 0; i < 100 && c.names.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(c.names.length, 3, 'a third domain was started')
  const clone = await c.get(2)
  t.equal(clone.name, 'd0-clone-2')
  t.equal(clone.spec.root, dead.spec.root, 'on the same volume')
  t.not(clone.epr, dead.epr, 'with an EPR of its own')
  t.equal(c.pmt.row(clone.epr)?.state, 'healthy', 'and placed on')
  t.equal((await c.get(0)).state, 'exited', 'the dead one stays dead (no restart under this policy)')
  const f = await FileStream.open('x.bin', { mode: 'Create', destination: c.dispatcher })
  await f.write(Buffer.from('served'))
  await f.close()
  t.equal(readFileSync(join(c.root, 'x.bin'), 'utf8'), 'served')
})

t.test('policy restart: a hung domain is restarted once its stream moved', async (t) => {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { recoverMs: 500 } })
  t.teardown(async () => { await c.close() })
  const f = await FileStream.open('h.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  await f.write(data, 0, BLOCK)
  const epr = c.dispatcher.affinity.entries()[0]!.epr
  const before = await c.get(c.index(epr))
  process.kill(before.pid, 'SIGSTOP')
  await f.write(data, BLOCK, BLOCK) // hangs for the deadline, then goes on elsewhere
  await f.close()
  t.equal(sha(readFileSync(join(c.root, 'h.bin'))), sha(data.subarray(0, 2 * BLOCK)), 'nothing lost')
  let now = before
  for (let i = 0; i < 600 && !(now.pid !== before.pid && now.state === 'running' && c.pmt.row(epr)?.state === 'healthy'); i++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    now = await c.get(c.index(epr))
  }
  t.not(now.pid, before.pid, 'the hung process was replaced')
  t.equal(now.epr, epr, 'same EPR')
  t.equal(c.pmt.row(epr)?.state, 'healthy', 'readmitted')
  t.ok(c.supervisor.decisions.some((d) => d.epr === epr && d.to === 'isolated' && /TIMED_OUT/.test(d.reason)), 'isolated for the hang')
})
