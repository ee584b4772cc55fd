// Scenario 2 of the paper (Fig. 4), with real containers: docker/compose.yaml brings up three
// storage domains on one shared docker volume and a network domain, on a user-defined bridge
// network; each announces itself with WS-Discovery on its eth0, inside the bridge. Beside the
// bridge — this file runs in the network namespace of the tests' Docker engine, which holds it — a
// DiscoveryClient listening on the bridge interface only (br-<network id[:12]>) finds them with no
// configuration; an IntelligentFrontend places a FileStream on volume
// `shared`; `docker stop` of the domain serving a stream sends Bye and the stream moves on;
// `docker pause` is a hang the dispatcher fails over from. Measured: start → all discovered,
// Bye → stream moved, pause → failover.
// Skips, saying why, when docker or docker-compose is missing or the images cannot be built (under
// CI: fails, naming what is missing). The teardown removes the compose project even when a step fails.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { networkInterfaces } from 'node:os'
import { FileStream, createStorageProxy, type StorageHandler } from '../../index.js'
import { STORAGE_DOMAIN_TYPE, NETWORK_DOMAIN_TYPE } from '../../discovery/index.js'
import { DiscoveryClient } from '../../discovery/client.js'
import { IntelligentFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import type { MoveEvent } from '../../frontend/placement/dispatcher.js'
import { packageFile } from '../../wsdl/package-root.js'
import { dockerInNamespace } from '../helpers/docker.js'
import { partMissing } from '../helpers/require-part.js'

t.setTimeout(240_000)

const MiB = 1024 * 1024
const BLOCK = 64 * 1024
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const run = Math.random().toString(36).slice(2, 7)
const project = `metaos-s2-${run}`
const composeFile = packageFile('docker', 'compose.yaml')

function sh (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): { status: number | null, stdout: string, stderr: string, error?: Error } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, env: { ...process.env, ...env } })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', ...(r.error === undefined ? {} : { error: r.error }) }
}

// Inside the tests' Docker engine's network namespace: the compose network's bridge is there, and
// the discovery clients listen on it.
const skip = await dockerInNamespace({ compose: true, log: (l) => { t.comment(l) } })

/** A /24 of 172.31.0.0/16 that no docker network and no host interface uses: its first three octets. */
function freeSubnet (): string {
  const used = new Set<string>()
  const ids = sh('docker', ['network', 'ls', '-q']).stdout.split('\n').filter((s) => s !== '')
  if (ids.length > 0) {
    for (const s of sh('docker', ['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', ...ids]).stdout.split(/\s+/)) used.add(s)
  }
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) if (a.family === 'IPv4') used.add(a.address.split('.').slice(0, 3).join('.') + '.0/24')
  const usedText = [...used].join(' ')
  for (let i = 0; i < 200; i++) {
    const prefix = `172.31.${200 + Math.floor(Math.random() * 55)}`
    if (!usedText.includes(`${prefix}.`) && !usedText.includes('172.31.0.0/16') && !usedText.includes('172.16.0.0/12')) return prefix
  }
  throw new Error('no free /24 in 172.31.200.0–172.31.254.0 for the scenario\'s network')
}

t.test('scenario 2: domains discovered across a bridge network, Bye and pause handled', { skip }, async (t) => {
  const net = freeSubnet()
  const env = { METAOS_S2_NET: net, METAOS_LOG_LEVEL: 'warn' }
  const compose = (...args: string[]): string => {
    const r = sh('docker-compose', ['-f', composeFile, '-p', project, ...args], env)
    if (r.status !== 0) throw new Error(`docker-compose ${args.join(' ')} failed: ${r.stderr.trim() || String(r.error)}`)
    return r.stdout.trim()
  }
  const docker = (...args: string[]): string => {
    const r = sh('docker', args)
    if (r.status !== 0) throw new Error(`docker ${args.join(' ')} failed: ${r.stderr.trim() || String(r.error)}`)
    return r.stdout.trim()
  }
  const closers: Array<() => Promise<unknown>> = []
  t.teardown(async () => {
    // Unpause anything left paused (a failed assertion) first: a client closed below may wait on it.
    const ids = (...filters: string[]): string[] => sh('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`, ...filters]).stdout.split('\n').filter((s) => s !== '')
    for (const id of ids('--filter', 'status=paused')) sh('docker', ['unpause', id])
    // A closer that hangs must not keep the project from being removed: each gets 10 s.
    for (const c of closers.reverse()) await Promise.race([c().catch(() => undefined), new Promise((resolve) => { setTimeout(resolve, 10_000).unref() })])
    // Containers, network and volume; by hand when docker-compose itself fails.
    if (sh('docker-compose', ['-f', composeFile, '-p', project, 'down', '-v', '--timeout', '5'], env).status !== 0) {
      const left = ids()
      if (left.length > 0) sh('docker', ['rm', '-f', '-v', ...left])
      sh('docker', ['network', 'rm', `${project}_fig4`])
      sh('docker', ['volume', 'rm', `${project}_shared`])
    }
  })

  // The network domain first: with a container on it the bridge has a carrier, so it is an interface
  // the host can listen on (an empty bridge is not running, and Node lists no address for it). The
  // host listens on the bridge only, then the storage domains start and say Hello.
  const t0 = performance.now()
  compose('up', '-d', 'n1')
  const networkId = docker('network', 'inspect', '-f', '{{.Id}}', `${project}_fig4`)
  const bridge = `br-${networkId.slice(0, 12)}`
  const bridgeAddress = (): string | undefined => networkInterfaces()[bridge]?.find((a) => a.family === 'IPv4')?.address
  for (let i = 0; i < 100 && bridgeAddress() === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(bridgeAddress(), `${net}.1`, `the bridge ${bridge} is up beside this file (in the engine's namespace), with the gateway address of ${net}.0/24`)

  const registry = new DiscoveryClient({ listen: true, interfaces: [bridge], filter: { types: [STORAGE_DOMAIN_TYPE] }, reprobeMs: 0 })
  const networks = new DiscoveryClient({ listen: true, interfaces: [bridge], filter: { types: [NETWORK_DOMAIN_TYPE] }, reprobeMs: 0 })
  closers.push(async () => { await registry.close() }, async () => { await networks.close() })
  const byes: Array<{ epr: string, at: number }> = []
  registry.on('removed', (x) => { byes.push({ epr: x.epr, at: performance.now() }) })
  await registry.start()
  await networks.start()
  const allFound = (): boolean => registry.targets.size === 3 && networks.targets.size === 1
  const discovered = new Promise<void>((resolve) => {
    const check = (): void => { if (allFound()) resolve() }
    registry.on('added', check)
    networks.on('added', check)
    check()
  })

  const t1 = performance.now()
  compose('up', '-d')
  const upMs = performance.now() - t1
  const timeout = new Promise<'timeout'>((resolve) => { setTimeout(() => { resolve('timeout') }, 20_000).unref() })
  t.not(await Promise.race([discovered, timeout]), 'timeout', 'three storage domains and the network domain discovered, no configuration')
  const discoveredMs = performance.now() - t1
  t.comment(`docker-compose up -d n1 → network domain discovered (by the host's first Probe) and storage up -d → all 4 discovered: ${(performance.now() - t0).toFixed(0)} ms in all; \`docker-compose up -d\` of s1–s3 ${upMs.toFixed(0)} ms, up → their Hellos heard on ${bridge}: ${discoveredMs.toFixed(0)} ms`)

  const storage = [...registry.targets.values()]
  const service = new Map<string, string>() // EPR → compose service
  for (const d of storage) {
    t.ok(d.from.startsWith(`${net}.`), `${d.epr} heard from ${d.from}, inside the bridge network`)
    t.ok(d.scopes.includes('metaos://volume/shared') && d.scopes.includes('metaos://hosting/container'), 'announced volume=shared, hosting=container')
    const m = /^http:\/\/(\d+\.\d+\.\d+\.(\d+)):8080\/storage$/.exec(d.xaddrs[0] ?? '')
    t.ok(m !== null && m[1]!.startsWith(`${net}.`), `XAddr ${d.xaddrs.join(' ')}: its address on the bridge`)
    service.set(d.epr, `s${Number(m?.[2] ?? 0) - 10}`)
  }
  t.same([...service.values()].sort(), ['s1', 's2', 's3'], 'the three storage services')
  const n1 = [...networks.targets.values()][0]!
  t.same(n1.xaddrs, [`http://${net}.21:8080/network`], 'the network domain, at its address on the bridge')

  const front = new IntelligentFrontend(registry, { hangMs: 1000 })
  closers.push(async () => { await front.close() })
  const dispatcher = front.dispatcherFor('shared')
  const moves: Array<MoveEvent & { at: number }> = []
  dispatcher.on('moved', (m) => { moves.push({ ...m, at: performance.now() }) })
  const proxies: StorageHandler[] = []
  closers.push(async () => { await Promise.all(proxies.map(async (p) => { await p.close() })) })
  const via = (epr: string): StorageHandler => {
    const p = createStorageProxy(registry.targets.get(epr)!.xaddrs[0]!, { timeoutMs: 15_000 })
    proxies.push(p)
    return p
  }
  const readVia = async (h: StorageHandler, path: string, size: number): Promise<Buffer> => {
    const f = await FileStream.open(path, { mode: 'Open', access: 'Read', destination: h, bufferSize: 0 })
    const back = Buffer.alloc(size)
    let n = 0
    for (let k = -1; n < size && k !== 0; n += k) k = await f.read(back, n, Math.min(BLOCK, size - n))
    await f.close()
    return back.subarray(0, n)
  }
  const live = new Set(storage.map((d) => d.epr))
  const another = (epr: string): string => [...live].find((e) => e !== epr)!

  // 32 MiB through the frontend, read back through it and through a second domain.
  const data = randomBytes(32 * MiB)
  const w = await FileStream.open('fig4.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const wid = dispatcher.affinity.entries().find((e) => e.path === 'fig4.bin')!.id
  const placed = dispatcher.affinity.lookup(wid)!
  const w0 = performance.now()
  for (let off = 0; off < data.length; off += BLOCK) await w.write(data, off, BLOCK)
  await w.close()
  const writeMs = performance.now() - w0
  t.ok(service.has(placed), `placed on ${service.get(placed) ?? placed}`)
  t.equal(sha(await readVia(dispatcher, 'fig4.bin', data.length)), sha(data), 'read back through the frontend: the same SHA-256')
  t.equal(sha(await readVia(via(another(placed)), 'fig4.bin', data.length)), sha(data), `read through another domain (${service.get(another(placed)) ?? ''}): the bytes are on the shared volume`)
  t.comment(`32 MiB written through the frontend in ${writeMs.toFixed(0)} ms (${(32 * MiB / 1e6 / (writeMs / 1000)).toFixed(1)} MB/s)`)

  // docker stop of the domain serving a stream: its Bye arrives, the stream moves, the write goes on.
  const s = await FileStream.open('stopped.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const sid = dispatcher.affinity.entries().find((e) => e.path === 'stopped.bin')!.id
  const victim = dispatcher.affinity.lookup(sid)!
  const victimService = service.get(victim)!
  const victimId = compose('ps', '-q', victimService)
  let stopAt = 0
  let stopping: Promise<ReturnType<typeof sh>> | undefined
  let movedAt: number | undefined
  for (let off = 0; off < data.length; off += BLOCK) {
    if (off === 4 * MiB) {
      stopAt = performance.now()
      // Beside the writes (spawnSync would block them): docker stop sends SIGTERM, the domain says Bye and drains.
      stopping = new Promise((resolve) => {
        execFile('docker', ['stop', '--time', '15', victimId], (err, stdout, stderr) => { resolve({ status: err === null ? 0 : 1, stdout, stderr }) })
      })
    }
    await s.write(data, off, BLOCK)
    if (movedAt === undefined && stopAt > 0 && dispatcher.affinity.lookup(sid) !== victim) movedAt = performance.now()
  }
  await s.close()
  t.equal((await stopping!).status, 0, `docker stop ${victimService}`)
  live.delete(victim)
  t.equal(docker('inspect', '-f', '{{.State.ExitCode}}', victimId), '0', 'the domain drained and exited 0')
  const bye = byes.find((b) => b.epr === victim)
  t.ok(bye !== undefined, `its Bye arrived on the host (${victimService})`)
  const stopMove = moves.find((m) => m.stream === sid && m.from === victim)
  t.ok(stopMove !== undefined && live.has(stopMove.to), `the stream moved to another domain (${stopMove?.kind ?? 'none'}, ${stopMove?.reason ?? ''})`)
  t.equal(sha(await readVia(via(another(victim)), 'stopped.bin', data.length)), sha(data), 'no error, and the file has the expected SHA-256')
  t.notOk(front.handlers.has(victim), 'the stopped domain is forgotten')
  t.comment(`docker stop → Bye on the host: ${bye === undefined ? '?' : (bye.at - stopAt).toFixed(0)} ms; Bye → stream moved: ${bye === undefined || stopMove === undefined ? '?' : (stopMove.at - bye.at).toFixed(0)} ms (move ${stopMove?.kind ?? '?'} ${stopMove?.reason ?? ''}, stall ${stopMove?.stallMs.toFixed(0) ?? '?'} ms; first write seen elsewhere ${movedAt === undefined ? '?' : (movedAt - stopAt).toFixed(0)} ms after docker stop)`)

  // docker pause of the domain serving a stream: a hang (the dispatcher's deadline), failover, no error.
  const p = await FileStream.open('paused.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const pid = dispatcher.affinity.entries().find((e) => e.path === 'paused.bin')!.id
  const frozen = dispatcher.affinity.lookup(pid)!
  const frozenService = service.get(frozen)!
  const frozenId = compose('ps', '-q', frozenService)
  let pauseAt = 0
  let longest = 0
  try {
    for (let off = 0; off < data.length; off += BLOCK) {
      if (off === 4 * MiB) { docker('pause', frozenId); pauseAt = performance.now() }
      const c0 = performance.now()
      await p.write(data, off, BLOCK)
      longest = Math.max(longest, performance.now() - c0)
    }
    await p.close()
  } finally {
    if (pauseAt > 0) docker('unpause', frozenId)
  }
  const failover = moves.find((m) => m.stream === pid && m.kind === 'failover')
  t.match(failover, { from: frozen, reason: 'TIMED_OUT' }, `the paused ${frozenService} was a hang: the stream failed over`)
  t.ok(failover !== undefined && live.has(failover.to) && failover.to !== frozen, 'to a live domain')
  t.equal(sha(await readVia(via(another(frozen)), 'paused.bin', data.length)), sha(data), 'no error, and the file has the expected SHA-256')
  t.comment(`docker pause → failover: ${failover === undefined ? '?' : (failover.at - pauseAt).toFixed(0)} ms (stall ${failover?.stallMs.toFixed(0) ?? '?'} ms, longest write ${longest.toFixed(0)} ms)`)
  t.equal(docker('inspect', '-f', '{{.State.Status}}', frozenId), 'running', 'unpaused: running again')
})
