// Many hosts (issue 19, DESIGN.md §9, docs/swarm.md): losing a host, and a link, mid-write. On the
// local swarm (3 nodes, docker/swarm/stack.yaml deployed), an application in the client namespace
// (benchmarks/swarm-app.ts: a frontend of its own — PMT, performance module, dispatcher with
// failover, supervisor — over the storage domains of the three nodes on the shared volume, mutual
// TLS) writes 100 MiB through a FileStream that a rule places on node2's domain; 25 MiB in, node2
// is killed (local-swarm.sh kill-node: its cable pulled, every process SIGKILLed). Checked: the
// application sees no error; the file's SHA-256 is right in the shared directory and read back
// through node1's domain; the longest gap between two acknowledged writes (the stall) is under the
// issue's 5 s; the frontend isolates node2's domain; node1 reports node2 Down. Then 100 MiB placed
// on node3, whose link is cut mid-write (local-swarm.sh cut-link) and restored after the stream
// moved: nothing lost, nothing duplicated — the file on the volume is what the application wrote,
// to the byte, after the late packets to node3 could land.
// Needs root, iproute2, util-linux and docker.io: skips saying why without them, fails under CI.
import t from 'tap'
import { createHash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { partMissing } from '../helpers/require-part.js'
import { SWARM_INSTALL, Timings, deployedSwarm, sleep, swarmUnavailable, until, type AppEvent } from '../helpers/swarm.js'
import type { PhaseResult, WriteConfig } from '../../benchmarks/swarm-app.js'

const missing = swarmUnavailable()
const skip = missing === undefined ? false : partMissing('the local swarm', missing, SWARM_INSTALL)

const MiB = 1048576
const SIZE = 100 * MiB
// Paced (the writes take ~6 s each, not ~1 s) so that the fault surely lands mid-write.
const PACE = 16
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const ms = (n: number): string => `${n.toFixed(0)} ms`

t.test('a host lost, then a link cut, in the middle of a 100 MiB write', { skip }, async (t) => {
  const timings = new Timings()
  const { swarm, pki, ready } = await deployedSwarm(t, 'mhlt', timings)
  const config: WriteConfig = {
    mode: 'write',
    pki,
    reader: 'node1',
    // What is under test is the failover on a failure; a latency blip of this shared machine must
    // not move the stream off its node first (the supervisor's latency alarm, tested elsewhere).
    supervisor: { latencyFactor: 20, latencyMarginMs: 1000 },
    domains: ready.nodes.map((n) => ({ name: n.name, url: `https://${n.address}:8443/storage`, zone: n.zone })),
    phases: [
      { file: 'host-loss.bin', on: 'node2', bytes: SIZE, triggerAt: 25 * MiB, paceMBps: PACE },
      { file: 'link-cut.bin', on: 'node3', bytes: SIZE, triggerAt: 25 * MiB, paceMBps: PACE, wait: true },
    ],
  }
  const app = swarm.clientApp(config)
  t.teardown(() => { app.kill() })
  const event = async <E extends AppEvent = AppEvent>(what: string, kind: string, file?: string, timeoutMs = 60_000): Promise<E> =>
    await app.next<E>(what, (e) => e.event === kind && (file === undefined || e.file === file || e.path === file), timeoutMs)
  const onShared = (file: string): { sha256: string, size: number } => ({ sha256: sha(readFileSync(join(ready.shared, file))), size: statSync(join(ready.shared, file)).size })

  try {
    // 1. node2 dies while the stream is on it.
    t.equal((await event('the first stream placed', 'placed', 'host-loss.bin')).on, 'node2', 'a rule placed the stream on node2\'s domain')
    const trigger = await event('25 MiB written', 'trigger', 'host-loss.bin')
    t.equal(trigger.on, 'node2', 'the stream is on node2 when node2 dies')
    const killed = await timings.time('kill-node', async () => await swarm.killNode('node2'))
    t.same([killed.event, killed.node], ['killed', 'node2'])
    const lost = await event<PhaseResult & AppEvent>('the first write done', 'phase', 'host-loss.bin', 120_000)
    t.equal(lost.moves[0]?.from, 'node2', `the stream left node2 (${lost.moves[0]?.reason ?? 'no move'})`)
    t.not(lost.moves[0]?.to, 'node2')
    t.same(onShared('host-loss.bin'), { sha256: lost.sha256, size: SIZE }, 'the file in the shared directory: what the application wrote')
    t.same([lost.readBack.bytes, lost.readBack.sha256], [SIZE, lost.sha256], 'read back through node1\'s domain: the same SHA-256')
    t.comment(`host loss: longest gap between acknowledged writes ${ms(lost.maxGapMs)} at ${(lost.maxGapAt / MiB).toFixed(2)} MiB; ` +
      `failover ${lost.moves.map((m) => `${m.from}→${m.to} (${m.reason}, ${ms(m.stallMs)} at ${(m.position / MiB).toFixed(2)} MiB)`).join(', ')}`)
    // The issue's requirement, 5x what it takes here: the hang deadline (1 s) and a reopen elsewhere.
    t.ok(lost.maxGapMs < 5000, `the application stalled under 5 s (${ms(lost.maxGapMs)})`)
    const isolated = app.events.find((e) => e.event === 'decision' && e.domain === 'node2' && e.to === 'isolated')
    t.ok(isolated !== undefined, `the frontend isolated node2's domain (${String(isolated?.reason)})`)
    const status = await timings.time('down-detected', async () => await until('node2 Down', 90_000, () => {
      const s = swarm.nodeStatus(1)
      return s?.includes('node2 Down') === true ? s : undefined
    }))
    t.same(status, ['node1 Ready', 'node2 Down', 'node3 Ready'], 'docker node ls on node1: node2 Down')

    // 2. node3's cable pulled while the stream is on it, and put back once the stream moved.
    app.send('go')
    t.equal((await event('the second stream placed', 'placed', 'link-cut.bin')).on, 'node3', 'a rule placed the stream on node3\'s domain')
    t.equal((await event('25 MiB written', 'trigger', 'link-cut.bin')).on, 'node3', 'the stream is on node3 when its link is cut')
    await swarm.cutLink('node3')
    let restoredAt: number
    try {
      const moved = await event('the stream to leave node3', 'moved', 'link-cut.bin', 30_000)
      t.same([moved.from, moved.kind], ['node3', 'failover'], `the stream left node3 (${String(moved.reason)})`)
      await sleep(1000) // the stream goes on elsewhere while node3 is cut off
    } finally {
      await swarm.restoreLink('node3')
      restoredAt = Date.now()
    }
    const cut = await event<PhaseResult & AppEvent>('the second write done', 'phase', 'link-cut.bin', 120_000)
    const pmt = await event<AppEvent & { rows: Array<{ name: string, state: string }> }>('the PMT', 'pmt')
    await event('the end', 'done')
    t.equal(await app.exited, 0, 'the application saw no error')
    t.same(pmt.rows.find((r) => r.name === 'node2')?.state ?? 'gone', 'isolated', 'the frontend keeps node2\'s domain isolated')
    t.comment(`link cut: longest gap between acknowledged writes ${ms(cut.maxGapMs)}; failover ${cut.moves.map((m) => `${m.from}→${m.to} (${m.reason}, ${ms(m.stallMs)})`).join(', ')}`)
    // A Write node3 got before the cut, or gets late (TCP retransmits once the link is back), lands
    // at its own position with its own bytes: give it time, then nothing may differ.
    await sleep(Math.max(0, restoredAt + 5000 - Date.now()))
    t.same(onShared('link-cut.bin'), { sha256: cut.sha256, size: SIZE }, 'nothing lost, nothing duplicated: the file is what the application wrote, its length exact')
    t.same([cut.readBack.bytes, cut.readBack.sha256], [SIZE, cut.sha256], 'read back through node1\'s domain: the same SHA-256')
    t.same(onShared('host-loss.bin'), { sha256: lost.sha256, size: SIZE }, 'the first file unchanged')
  } finally {
    app.kill()
    const d = await timings.time('down', () => swarm.down())
    t.equal(d.status, 0, `local-swarm.sh down: ${d.stderr.trim()}`)
    t.comment(timings.line())
  }
})
