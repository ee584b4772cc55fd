import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

// WS-Discovery, client side and end to end (DESIGN.md §4, issue #3): a live DiscoveryClient
// registry following real `metaos storage --announce` processes (added, changed, removed; stale
// AppSequence and unknown Byes ignored; stable EPR across restarts), probe() and resolve() among
// several domains, a FileStream reaching a domain known only through discovery (with the start →
// first write and SIGTERM → removal times measured), and `metaos discover --json`.
// Runs in a network namespace of its own (test/helpers/netns.ts): nothing leaves the machine.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { createSocket, type Socket } from 'node:dgram'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import { CLI_PATH, spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { DiscoveryClient, type DiscoveredTarget } from '../../discovery/client.js'
import { body, buildEnvelope, newMessageId, parseDiscovery, type AppSequence, type DiscoveryMessage, type TargetInfo } from '../../discovery/messages.js'
import { DISCOVERY_PORT, MULTICAST_V4, VERSIONS, type WsdVersion } from '../../discovery/protocol.js'
import { TargetService } from '../../discovery/target-service.js'
import { NETWORK_DOMAIN_TYPE, STORAGE_DOMAIN_TYPE } from '../../discovery/storage-announcement.js'
import { FileStream, closeSharedProxies } from '../../index.js'
import { closeStorageRegistry, storageRegistry } from '../../frontend/index.js'

const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const volumeScope = (v: string): string => `metaos://volume/${v}`

const base = mkdtempSync(join(tmpdir(), 'metaos-discovery-'))
t.teardown(() => { rmSync(base, { recursive: true, force: true }) })

function newRoot (name: string): string {
  const root = join(base, name)
  mkdirSync(root, { recursive: true })
  return root
}

/** `metaos storage --announce` as a child process (stopped, if still running, when `t` ends). */
async function announced (t: Test, root: string, extra: string[] = []): Promise<DomainProcess> {
  const d = await spawnDomain(['storage', '--root', root, '--listen', 'http://127.0.0.1:0', '--announce', ...extra], { env: ENV })
  t.teardown(async () => { await d.stop(2000) })
  return d
}

type EventName = 'added' | 'changed' | 'removed'
interface Seen { readonly type: EventName, readonly target: DiscoveredTarget, readonly at: number }

function record (c: DiscoveryClient): Seen[] {
  const seen: Seen[] = []
  for (const type of ['added', 'changed', 'removed'] as const) c.on(type, (target) => { seen.push({ type, target, at: performance.now() }) })
  return seen
}

/** Polls `cond` every 5 ms; false after `ms`. */
async function until (cond: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) return false
    await sleep(5)
  }
  return true
}

const eventsOf = (seen: Seen[], epr: string): string[] => seen.filter((e) => e.target.epr === epr).map((e) => e.type)

/** A socket that can multicast on loopback, and hear the group on 3702 if `listen`. */
async function rawSocket (t: Test, listen = false): Promise<{ sock: Socket, got: DiscoveryMessage[], send: (b: Buffer) => Promise<void> }> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(listen ? DISCOVERY_PORT : 0, () => { sock.off('error', reject); resolve() }) })
  sock.setMulticastInterface('127.0.0.1')
  sock.setMulticastTTL(1)
  if (listen) sock.addMembership(MULTICAST_V4, '127.0.0.1')
  const got: DiscoveryMessage[] = []
  sock.on('message', (d) => { try { got.push(parseDiscovery(d)) } catch { /* not ours */ } })
  t.teardown(async () => { await new Promise<void>((resolve) => { sock.close(() => { resolve() }) }) })
  return { sock, got, send: async (b) => { await new Promise<void>((resolve, reject) => { sock.send(b, DISCOVERY_PORT, MULTICAST_V4, (e) => { if (e === null) resolve(); else reject(e) }) }) } }
}

function forged (v: WsdVersion, action: 'Hello' | 'Bye', target: TargetInfo, appSequence: AppSequence): Buffer {
  return buildEnvelope({ version: v, action, messageId: newMessageId(), to: VERSIONS[v].multicastTo, appSequence, body: action === 'Hello' ? body.hello(v, target) : body.bye(v, target) })
}

t.test('a live registry follows real announced domains', async (t) => {
  const client = new DiscoveryClient({ listen: true, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await client.start()
  t.teardown(async () => { await client.close() })
  const seen = record(client)
  const others = new DiscoveryClient({ listen: true, filter: { types: [NETWORK_DOMAIN_TYPE] } })
  await others.start()
  t.teardown(async () => { await others.close() })
  const seenByOthers = record(others)
  const cap = await rawSocket(t, true)
  const root = newRoot('reg-a')
  const args = ['--name', 'a', '--volume', 'reg-a']

  // Start: added, once (the Hello comes in two versions, each twice).
  const a1 = await announced(t, root, args)
  const epr = a1.ready.epr
  t.ok(await until(() => client.targets.has(epr)), 'added on Hello')
  await sleep(400)
  t.same(eventsOf(seen, epr), ['added'], 'one added event, nothing else')
  const e1 = client.targets.get(epr)!
  t.same(e1.xaddrs, a1.ready.endpoints, 'XAddrs = the endpoints of its ready line')
  t.ok(e1.types.includes(STORAGE_DOMAIN_TYPE))
  t.ok(e1.scopes.includes(volumeScope('reg-a')) && e1.scopes.includes('metaos://hosting/process'))
  t.ok(Number.isSafeInteger(e1.metadataVersion) && e1.metadataVersion >= 1, 'a MetadataVersion')
  t.equal(e1.from, '127.0.0.1')

  // Stale AppSequence: a forged older Hello (InstanceId 1) and older Bye (same instance, MessageNumber 1).
  const helloSeq = cap.got.find((m) => m.action === 'Hello' && m.targets[0]?.epr === epr)?.appSequence
  t.ok(helloSeq !== undefined, 'heard its Hello on the wire')
  const stale0 = client.staleDropped
  const raw = await rawSocket(t)
  await raw.send(forged('1.1', 'Hello', { ...e1, xaddrs: ['http://forged.invalid/storage'], metadataVersion: e1.metadataVersion + 100 }, { instanceId: 1, messageNumber: 1000 }))
  await raw.send(forged('2005', 'Bye', e1, { instanceId: 1, messageNumber: 1000 }))
  await raw.send(forged('1.1', 'Bye', e1, { instanceId: helloSeq!.instanceId, messageNumber: 1 }))
  t.ok(await until(() => client.staleDropped - stale0 >= 3, 2000), `staleDropped grows by the 3 forged messages (${client.staleDropped - stale0})`)
  await sleep(100)
  t.equal(client.staleDropped - stale0, 3, 'exactly those')
  t.same(client.targets.get(epr)?.xaddrs, a1.ready.endpoints, 'the entry stays as it was')
  t.same(eventsOf(seen, epr), ['added'], 'no event from stale messages')

  // A Bye for an EPR nobody announced changes nothing.
  const before = [...client.targets.keys()]
  await raw.send(forged('1.1', 'Bye', { epr: `urn:uuid:${randomUUID()}`, types: [STORAGE_DOMAIN_TYPE], scopes: [], xaddrs: [], metadataVersion: 1 }, { instanceId: helloSeq!.instanceId + 1, messageNumber: 1 }))
  await sleep(200)
  t.same([...client.targets.keys()], before, 'unknown Bye: registry unchanged')
  t.equal(seen.filter((e) => e.type === 'removed').length, 0, 'no removed event')

  // Crash (SIGKILL: no Bye), then restart with the same root and name: same EPR, new InstanceId,
  // new endpoints → accepted as a change.
  a1.child.kill('SIGKILL')
  await a1.stop(1000)
  await sleep(200)
  t.ok(client.targets.has(epr), 'a crashed domain (no Bye) stays until aged out')
  const a2 = await announced(t, root, [...args, '--scope', 'metaos://test/restarted'])
  t.equal(a2.ready.epr, epr, 'EPR stable across a restart (same root and --name)')
  t.ok(await until(() => eventsOf(seen, epr).includes('changed')), 'changed on the new Hello')
  const e2 = client.targets.get(epr)!
  t.same(e2.xaddrs, a2.ready.endpoints, 'the new endpoints')
  t.ok(e2.scopes.includes('metaos://test/restarted'), 'the new scopes')
  const seq2 = cap.got.filter((m) => m.action === 'Hello' && m.targets[0]?.epr === epr).map((m) => m.appSequence!.instanceId)
  t.ok(seq2[seq2.length - 1]! > helloSeq!.instanceId, `the restart has a greater InstanceId (${helloSeq!.instanceId} → ${seq2[seq2.length - 1]!})`)

  // SIGTERM: Bye → removed.
  let t0 = performance.now()
  t.equal(await a2.stop(), 0, 'SIGTERM: exit 0')
  t.ok(await until(() => eventsOf(seen, epr).includes('removed')), 'removed on Bye')
  const removedMs = seen.find((e) => e.type === 'removed' && e.target.epr === epr)!.at - t0
  t.notOk(client.targets.has(epr))

  // Started again after its Bye: accepted again (new instance), same EPR.
  t0 = performance.now()
  const a3 = await announced(t, root, args)
  t.equal(a3.ready.epr, epr, 'same EPR after a clean restart')
  t.ok(await until(() => client.targets.has(epr)), 'added again after restart')
  const addedMs = seen.filter((e) => e.type === 'added' && e.target.epr === epr)[1]!.at - t0
  t.same(client.targets.get(epr)?.xaddrs, a3.ready.endpoints)
  t0 = performance.now()
  await a3.stop()
  t.ok(await until(() => !client.targets.has(epr)), 'removed again')
  const removedMs2 = seen.filter((e) => e.type === 'removed' && e.target.epr === epr)[1]!.at - t0
  t.same(eventsOf(seen, epr), ['added', 'changed', 'removed', 'added', 'removed'], 'the whole story, in order')
  t.same(seenByOthers, [], 'a registry filtered on NetworkDomain saw none of it')
  t.ok(removedMs < 5000 && removedMs2 < 5000 && addedMs < 5000)
  t.comment(`registry: SIGTERM → removed ${removedMs.toFixed(1)} ms and ${removedMs2.toFixed(1)} ms; spawn → added ${addedMs.toFixed(1)} ms`)
})

t.test('a restarted target whose MetadataVersion starts over is still followed', async (t) => {
  // The EPR is stable across restarts, but a TargetService starts at MetadataVersion 1: after
  // update() (version 2) and a crash, the restarted instance announces version 1 with new XAddrs.
  const client = new DiscoveryClient({ listen: true, filter: { types: [STORAGE_DOMAIN_TYPE] } })
  await client.start()
  t.teardown(async () => { await client.close() })
  const epr = `urn:uuid:${randomUUID()}`
  const s1 = new TargetService({ epr, types: [STORAGE_DOMAIN_TYPE], scopes: ['metaos://volume/mv'], xaddrs: ['http://127.0.0.1:1/storage'], interfaces: ['lo'] })
  await s1.start()
  t.ok(await until(() => client.targets.has(epr), 2000))
  const mv1 = s1.info.metadataVersion
  s1.update(['http://127.0.0.1:2/storage'])
  t.ok(await until(() => client.targets.get(epr)?.metadataVersion === mv1 + 1, 2000), 'update() seen as a greater MetadataVersion')
  await s1.udp.close() // a crash: no Bye
  await sleep(150) // a new InstanceId (tenths of a second)
  const s2 = new TargetService({ epr, types: [STORAGE_DOMAIN_TYPE], scopes: ['metaos://volume/mv'], xaddrs: ['http://127.0.0.1:3/storage'], interfaces: ['lo'] })
  await s2.start()
  t.teardown(async () => { await s2.stop() })
  await until(() => client.targets.get(epr)?.xaddrs[0] === 'http://127.0.0.1:3/storage', 1500)
  t.same(client.targets.get(epr)?.xaddrs, ['http://127.0.0.1:3/storage'], `the new instance's XAddrs replace the old ones (MetadataVersion ${mv1} → ${mv1 + 1} → restarted at ${s2.info.metadataVersion})`)
})

t.test('probe() and resolve() among several domains', async (t) => {
  const specs = [
    { key: 'd1', args: ['--volume', 'pv-1', '--zone', 'z1'] },
    { key: 'd2', args: ['--volume', 'pv-2', '--zone', 'z1'] },
    { key: 'd3', args: ['--volume', 'pv-10', '--zone', 'z2'] },
  ]
  const procs = await Promise.all(specs.map(async (s) => await announced(t, newRoot(`probe-${s.key}`), s.args)))
  const eprs = Object.fromEntries(specs.map((s, i) => [s.key, procs[i]!.ready.epr]))
  const name = (e: string): string => Object.entries(eprs).find(([, v]) => v === e)?.[0] ?? e
  const client = new DiscoveryClient()
  await client.start()
  t.teardown(async () => { await client.close() })
  const timeoutMs = 1000
  const cases: Array<{ what: string, o: Parameters<DiscoveryClient['probe']>[0], want: string[] }> = [
    { what: 'StorageDomain', o: { types: [STORAGE_DOMAIN_TYPE] }, want: ['d1', 'd2', 'd3'] },
    { what: 'no constraint', o: {}, want: ['d1', 'd2', 'd3'] },
    { what: 'zone z1', o: { types: [STORAGE_DOMAIN_TYPE], scopes: ['metaos://zone/z1'] }, want: ['d1', 'd2'] },
    { what: 'zone z2', o: { scopes: ['metaos://zone/z2'] }, want: ['d3'] },
    { what: 'volume pv-1 (not pv-10)', o: { types: [STORAGE_DOMAIN_TYPE], scopes: [volumeScope('pv-1')] }, want: ['d1'] },
    { what: 'volume pv-10', o: { scopes: [volumeScope('pv-10')] }, want: ['d3'] },
    { what: 'volume pv-1 in zone z2', o: { scopes: [volumeScope('pv-1'), 'metaos://zone/z2'] }, want: [] },
    { what: 'hosting/process', o: { scopes: ['metaos://hosting'] }, want: ['d1', 'd2', 'd3'] },
    { what: 'NetworkDomain', o: { types: [NETWORK_DOMAIN_TYPE] }, want: [] },
    { what: 'zone z1, 2005/04 only', o: { scopes: ['metaos://zone/z1'], versions: ['2005'] }, want: ['d1', 'd2'] },
    { what: 'zone z1, 1.1 only, strcmp0', o: { scopes: ['metaos://zone/z1'], matchBy: `${VERSIONS['1.1'].wsd}/strcmp0`, versions: ['1.1'] }, want: ['d1', 'd2'] },
    { what: 'strcmp0 on a prefix', o: { scopes: ['metaos://zone'], matchBy: `${VERSIONS['1.1'].wsd}/strcmp0` }, want: [] },
  ]
  const results = await Promise.all(cases.map(async (c) => await client.probe({ ...c.o, timeoutMs })))
  for (const [i, c] of cases.entries()) {
    t.same(results[i]!.map((x) => name(x.epr)).sort(), c.want, `probe ${c.what} → ${c.want.join(', ') || 'nothing'}`)
    if (c.o?.versions !== undefined) t.ok(results[i]!.every((x) => x.version === c.o!.versions![0]), `${c.what}: answered in ${c.o.versions[0]}`)
  }
  const d1 = results[0]!.find((x) => x.epr === eprs.d1)!
  t.same(d1.xaddrs, procs[0]!.ready.endpoints, 'ProbeMatch XAddrs')
  const [r2, none] = await Promise.all([client.resolve(eprs.d2!), client.resolve(`urn:uuid:${randomUUID()}`, { timeoutMs: 600 })])
  t.equal(r2?.epr, eprs.d2)
  t.same(r2?.xaddrs, procs[1]!.ready.endpoints, 'resolve(epr) → its XAddrs')
  t.ok(r2?.scopes.includes(volumeScope('pv-2')))
  t.equal(none, undefined, 'resolve of an unknown EPR → undefined after the timeout')
  await Promise.all(procs.map(async (p) => { t.equal(await p.stop(), 0) }))
})

t.test('the frontend: FileStream to a domain found only through discovery', async (t) => {
  t.teardown(async () => { await closeStorageRegistry(); await closeSharedProxies() })
  const reg = await storageRegistry() // a running frontend: its registry is already listening
  const root = newRoot('fs')
  const data = randomBytes(256 * 1024)
  const t0 = performance.now()
  const spawning = announced(t, root, ['--volume', 'fs-vol'])
  spawning.catch(() => undefined)
  const fs = await FileStream.open('x.bin', { mode: 'Create', destination: 'discover', volume: 'fs-vol' })
  await fs.write(data)
  await fs.flush()
  const firstWriteMs = performance.now() - t0
  await fs.close()
  const d = await spawning
  const readyMs = performance.now() - t0
  t.equal(sha(readFileSync(join(root, 'x.bin'))), sha(data), 'SHA-256 of the bytes on disk in the discovered domain\'s root')
  t.ok(reg.targets.has(d.ready.epr), 'the process-wide registry knows the domain')
  t.ok(firstWriteMs < 5000, 'start → first write well within 5 s')

  // Back through discovery: read it again.
  const r = await FileStream.open('x.bin', { mode: 'Open', access: 'Read', destination: 'discover', volume: 'fs-vol' })
  const back = Buffer.alloc(data.length)
  let n = 0
  for (let k = await r.read(back, 0, back.length); k > 0; k = await r.read(back, n, back.length - n)) n += k
  await r.close()
  t.equal(sha(back.subarray(0, n)), sha(data), 'read back through discovery')

  const t1 = performance.now()
  const removed = new Promise<number>((resolve) => { reg.on('removed', (x) => { if (x.epr === d.ready.epr) resolve(performance.now()) }) })
  const code = await d.stop()
  const byeMs = await Promise.race([removed, sleep(5000).then(() => Number.NaN)]) - t1
  t.equal(code, 0)
  t.ok(byeMs < 5000, 'SIGTERM → removed from the registry within 5 s')
  t.notOk(reg.targets.has(d.ready.epr), 'gone from the registry')
  t.comment(`(a) spawn → first FileStream write through discovery: ${firstWriteMs.toFixed(1)} ms (ready line after ${readyMs.toFixed(1)} ms; target < 1000 ms on loopback)`)
  t.comment(`(b) SIGTERM → 'removed' in the frontend's registry: ${byeMs.toFixed(1)} ms`)
})

t.test('metaos discover --json --type StorageDomain', async (t) => {
  const d = await announced(t, newRoot('cli'), ['--volume', 'cli-vol', '--zone', 'cz'])
  const run = async (...args: string[]): Promise<unknown> => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI_PATH, 'discover', ...args], { env: ENV, timeout: 10_000 })
    return JSON.parse(stdout)
  }
  const [all, byScope, none] = await Promise.all([
    run('--json', '--type', 'StorageDomain'),
    run('--json', '--type', 'metaos:StorageDomain', '--scope', 'metaos://volume/cli-vol', '--timeout', '1000'),
    run('--json', '--type', 'NetworkDomain', '--timeout', '1000'),
  ]) as Array<Array<{ epr: string, types: string[], xaddrs: string[], scopes: string[], version: string, metadataVersion: number }>>
  const mine = all!.find((x) => x.epr === d.ready.epr)
  t.ok(mine !== undefined, 'lists the running announced domain')
  t.equal(all!.length, 1, 'and only it')
  t.same(mine?.xaddrs, d.ready.endpoints, 'its XAddrs')
  t.same(mine?.types, [STORAGE_DOMAIN_TYPE])
  for (const s of ['metaos://volume/cli-vol', 'metaos://zone/cz', 'metaos://hosting/process', `metaos://kernel/linux/${encodeURIComponent(release())}`]) {
    t.ok(mine?.scopes.includes(s), `scope ${s}`)
  }
  t.ok(mine?.scopes.some((s) => s.startsWith('metaos://runtime/node/')) && mine.scopes.some((s) => s.startsWith('metaos://host/')), 'host and runtime scopes')
  t.same(byScope!.map((x) => x.epr), [d.ready.epr], '--scope narrows to it')
  t.same(none, [], '--type NetworkDomain → []')
  t.equal(await d.stop(), 0)
})
