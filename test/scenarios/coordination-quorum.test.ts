// Quorum loss is safe and clear (issue 20 point 6), with real processes: a 3-member etcd cluster, a
// storage domain (`metaos storage --coordination`) and an application writing a file through it.
// One etcd member killed: nothing visible. Two killed: a new open fails with
// COORDINATION_UNAVAILABLE within the 2 s deadline; the open stream keeps writing until the
// domain's lease runs out, then gets DOMAIN_FENCED — and the file holds exactly the acknowledged
// bytes (SHA-256), then and a while later. Quorum back: new opens work, and the application reopens
// its file and goes on to the end (SHA-256 of the whole).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream, closeAll } from '../../index.js'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const BLOCK = 16 * 1024
const data = randomBytes(32 * 1024 * 1024)
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const codeOf = (e: unknown): string => e instanceof MetaosError ? e.code : String(e)

async function tryOpen (endpoint: string, path: string): Promise<{ code: string, ms: number }> {
  const t0 = performance.now()
  try {
    const f = await FileStream.open(path, { mode: 'Create', access: 'Write', share: 'None', destination: endpoint })
    await f.close()
    return { code: 'ok', ms: performance.now() - t0 }
  } catch (e) {
    return { code: codeOf(e), ms: performance.now() - t0 }
  }
}

t.test('one member lost, then two, then quorum back, during writes', async (t) => {
  const cluster = await startEtcdCluster(t)
  const root = join(tempDir(t, 'metaos-quorum-'), 'volume')
  mkdirSync(root)
  let domain: DomainProcess | undefined
  t.teardown(async () => { await closeAll(); await domain?.stop(2000) })
  domain = await spawnDomain(['storage', '--root', root, '--volume', 'q', '--coordination', cluster.url, '--log-level', 'error'])
  const endpoint = domain.ready.endpoints[0]!
  const file = join(root, 'q.bin')

  let f = await FileStream.open('q.bin', { mode: 'Create', access: 'Write', share: 'None', destination: endpoint, bufferSize: 0 })
  let acked = 0
  /** Writes block after block for `ms` (or until a failure, returned); paced so the domain's lease has its share of the event loop. */
  const writeFor = async (ms: number, paceMs = 5): Promise<string | undefined> => {
    const end = performance.now() + ms
    while (performance.now() < end && acked < data.length) {
      try { await f.write(data, acked, BLOCK) } catch (e) { return codeOf(e) }
      acked += BLOCK
      if (paceMs > 0) await sleep(paceMs)
    }
    return undefined
  }

  t.equal(await writeFor(500), undefined, 'writing with the whole cluster')
  await cluster.kill(0)
  t.equal(await writeFor(3000), undefined, 'one member killed: the writes go on, no error')
  t.equal((await tryOpen(endpoint, 'one-down.bin')).code, 'ok', 'one member killed: a new open works')

  await cluster.kill(1)
  const ackedAtLoss = acked
  const opening = tryOpen(endpoint, 'two-down.bin')
  const failure = await writeFor(15_000)
  const open = await opening
  t.equal(open.code, 'COORDINATION_UNAVAILABLE', `two members killed: a new open fails with COORDINATION_UNAVAILABLE (after ${Math.round(open.ms)} ms; the deadline is 2000 ms)`)
  t.equal(failure, 'DOMAIN_FENCED', 'the open stream is refused once the domain\'s lease runs out')
  t.ok(acked > ackedAtLoss, `the stream kept writing after quorum was lost (${(acked - ackedAtLoss) / BLOCK} blocks)`)
  t.equal(sha(readFileSync(file)), sha(data.subarray(0, acked)), `the file holds exactly the ${acked} acknowledged bytes`)
  await sleep(1000)
  t.equal(sha(readFileSync(file)), sha(data.subarray(0, acked)), 'and still does a second later: nothing unacknowledged landed')
  await f.close().catch(() => {}) // Close is always admitted; the fenced handle goes

  await cluster.start(0)
  await cluster.start(1)
  await cluster.healthy()
  let reopened = ''
  for (let i = 0; i < 100 && reopened !== 'ok'; i++) {
    reopened = (await tryOpen(endpoint, 'back.bin')).code
    if (reopened !== 'ok') await sleep(100)
  }
  t.equal(reopened, 'ok', 'quorum back: new opens work')
  // The application reopens its file at what was acknowledged and goes on. On a loaded machine the
  // lease may be lost again on the way (a renewal stalled past TTL − margin): it reopens again.
  const refused: string[] = []
  for (let i = 0; i < 10 && acked < data.length; i++) {
    try {
      f = await FileStream.open('q.bin', { mode: 'Open', access: 'Write', share: 'None', destination: endpoint, bufferSize: 0 })
      await f.seek(acked)
    } catch (e) { refused.push(`open: ${codeOf(e)}`); await sleep(200); continue }
    const failed = await writeFor(60_000, 0)
    if (failed !== undefined) refused.push(`write: ${failed}`)
    await f.close().catch(() => {})
  }
  if (refused.length > 0) t.comment(`refused on the way, then reopened: ${refused.join(', ')}`)
  t.same(refused.filter((r) => !/DOMAIN_FENCED|COORDINATION_UNAVAILABLE/.test(r)), [], 'nothing but a lost lease interrupted the rest')
  t.equal(acked, data.length)
  t.equal(sha(readFileSync(file)), sha(data), 'the whole file is right (SHA-256)')
})
