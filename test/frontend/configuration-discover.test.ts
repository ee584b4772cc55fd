// FileStream's `destination: 'discover'` configured by METAOS_CONFIG (in a network namespace of this
// file's own): two announced storage domains; the file's rules place streams by their expected
// size (which domain holds each file is read on their disks), its vulnerability feed answers the
// rules' `vulnerable` selector and is re-read when it changes, its exchange shares the measures.
// Options in code win over the file, key by key; a running frontend refuses other options.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnDomain } from '../../domains/domain-process.js'
import { closeSharedFrontend, sharedFrontend, type IntelligentFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { FileStream, closeSharedProxies } from '../../index.js'
import { closeStorageRegistry } from '../../frontend/index.js'
import { RulesEngine } from '../../frontend/placement/rules-engine.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PmtExchange } from '../../frontend/placement/pmt-exchange.js'
import { tempDir } from '../helpers/temp-dir.js'

const MiB = 1048576
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

t.test('discover: rules, feed and exchange from METAOS_CONFIG; code options over them', async (t) => {
  const dir = tempDir(t, 'metaos-config-discover-')
  const roots = { small: join(dir, 'small'), bulk: join(dir, 'bulk') }
  for (const r of Object.values(roots)) mkdirSync(r)
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const small = await spawnDomain(['storage', '--root', roots.small, '--volume', 'cfg', '--name', 'small', '--zone', 'small', '--listen', 'http://127.0.0.1:0', '--announce'], { env })
  const bulk = await spawnDomain(['storage', '--root', roots.bulk, '--volume', 'cfg', '--name', 'bulk', '--zone', 'bulk', '--listen', `unix:${join(dir, 'bulk.sock')}`, '--announce'], { env })
  const saved = process.env.METAOS_CONFIG
  t.teardown(async () => {
    if (saved === undefined) delete process.env.METAOS_CONFIG; else process.env.METAOS_CONFIG = saved
    await small.stop(); await bulk.stop()
    await closeSharedFrontend(); await closeSharedProxies(); await closeStorageRegistry()
    rmSync(dir, { recursive: true, force: true })
  })

  const rules = [
    { name: 'large streams to bulk', when: { op: ['Open'], minBytes: MiB }, choose: { zone: 'bulk' } },
    { name: 'small streams to small', when: { op: ['Open'], maxBytes: MiB - 1 }, choose: { zone: 'small' } },
    { name: 'secrets never on a vulnerable domain', when: { pathPrefix: 'secret-' }, exclude: { vulnerable: true } },
  ]
  writeFileSync(join(dir, 'rules.json'), JSON.stringify({ rules }))
  // Every domain here runs this Node: the feed lowers them all (they are still used), and the rule above keeps secrets off them.
  const everyNode = { vulnerabilities: [{ id: 'TEST-NODE', action: 'lower', affected: [{ runtime: { name: 'node', ranges: [{ introduced: '0' }] } }] }] }
  writeFileSync(join(dir, 'feed.json'), JSON.stringify(everyNode))
  writeFileSync(join(dir, 'metaos.json'), JSON.stringify({ rules: 'rules.json', feed: 'feed.json', exchange: { intervalMs: 200 } }))
  process.env.METAOS_CONFIG = join(dir, 'metaos.json')

  const both = async (front: IntelligentFrontend): Promise<void> => {
    for (let i = 0; i < 100 && !(front.handlers.has(small.ready.epr) && front.handlers.has(bulk.ready.epr)); i++) await sleep(50)
    t.ok(front.handlers.has(small.ready.epr) && front.handlers.has(bulk.ready.epr), 'both announced domains are tracked')
  }
  const front = await sharedFrontend()
  await both(front)
  t.same(front.status().rules, rules.map((r) => r.name), 'the frontend runs the file\'s rules')

  const big = randomBytes(2 * MiB)
  const w = await FileStream.open('big.bin', { mode: 'Create', access: 'Write', destination: 'discover', volume: 'cfg', expectedBytes: big.length })
  await w.write(big)
  await w.close()
  const s = await FileStream.open('note.txt', { mode: 'Create', destination: 'discover', volume: 'cfg', expectedBytes: 12 })
  await s.write(Buffer.from('a small note'))
  await s.close()
  t.equal(sha(readFileSync(join(roots.bulk, 'big.bin'))), sha(big), 'expectedBytes 2 MiB: on the bulk domain\'s disk (minBytes fired)')
  t.notOk(existsSync(join(roots.small, 'big.bin')), 'not on the small one\'s')
  t.equal(readFileSync(join(roots.small, 'note.txt'), 'utf8'), 'a small note', 'expectedBytes 12: on the small domain\'s disk (maxBytes fired)')
  t.notOk(existsSync(join(roots.bulk, 'note.txt')), 'not on the bulk one\'s')

  await t.rejects(FileStream.open('secret-plan.txt', { mode: 'Create', destination: 'discover', volume: 'cfg' }), { code: 'NO_ELIGIBLE_DOMAIN', message: /no storage domain can take Open secret-plan.txt: .*excluded by the rule "secrets never on a vulnerable domain"/ }, 'the feed lists every domain as vulnerable: the rule keeps the secret off them all')
  writeFileSync(join(dir, 'feed.json'), JSON.stringify({ vulnerabilities: [] }))
  let secret: FileStream | undefined
  for (let i = 0; i < 50 && secret === undefined; i++) {
    secret = await FileStream.open('secret-plan.txt', { mode: 'Create', destination: 'discover', volume: 'cfg' }).catch(async () => { await sleep(100); return undefined })
  }
  t.ok(secret, 'once the feed file no longer lists them (it is re-read when it changes), the secret is placed')
  await secret?.close()
  t.ok(existsSync(join(roots.small, 'secret-plan.txt')), 'on the small domain, by size')

  // The file's exchange runs: another performance module learns this frontend's measures.
  t.ok(front.exchange, 'the exchange the file asks for was started')
  await front.perf.probe(bulk.ready.epr)
  const peerPmt = new PerformanceMappingTable()
  const peer = new PmtExchange({ pmt: peerPmt, moduleId: `urn:uuid:${randomUUID()}` })
  t.teardown(async () => { await peer.close() })
  await peer.serve(['http://127.0.0.1:0'])
  await peer.join({ intervalMs: 200 })
  for (let i = 0; i < 100 && peerPmt.row(bulk.ready.epr) === undefined; i++) await sleep(50)
  t.equal(peerPmt.row(bulk.ready.epr)?.identity.volume, 'cfg', 'another module learnt the frontend\'s measure of the bulk domain')

  // One process-wide frontend: the same with no options, refused with other ones.
  t.equal(await sharedFrontend(), front, 'sharedFrontend() again: the same frontend')
  await t.rejects(sharedFrontend({ policy: 'weighted' }), { code: 'INVALID_ARGUMENT', message: /already runs with other options/ }, 'other options while it runs: refused')
  await t.rejects(FileStream.open('x.txt', { mode: 'Create', destination: 'discover', frontend: { policy: 'weighted' } }), { code: 'INVALID_ARGUMENT' }, 'through FileStream too')

  // Options in code win over the file's keys, one by one: code rules, the file's exchange.
  await closeSharedFrontend()
  const options = { rules: new RulesEngine([{ name: 'everything to small', choose: { zone: 'small' } }]) }
  const big2 = await FileStream.open('big2.bin', { mode: 'Create', destination: 'discover', volume: 'cfg', expectedBytes: 4 * MiB, frontend: options })
  const front2 = await sharedFrontend(options)
  t.not(front2, front, 'a new frontend, made by that open')
  t.same(front2.status().rules, ['everything to small'], 'the rules given in code, not the file\'s')
  await big2.write(Buffer.from('small after all'))
  await big2.close()
  t.equal(readFileSync(join(roots.small, 'big2.bin'), 'utf8'), 'small after all', 'a 4 MiB stream placed by the code\'s rules')
  t.ok(front2.exchange, 'the file\'s exchange still applies (no exchange option in code)')
})
