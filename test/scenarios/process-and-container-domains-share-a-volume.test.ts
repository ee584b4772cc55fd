// Scenario 1 of the paper (Fig. 3), with real containers: on this host a process-hosted storage
// domain (ProcessDriver) and a container-hosted one (ContainerDriver, image metaos/storage:dev) serve
// the same volume, one temporary directory bind-mounted into the container (run as the process's
// uid, so each writes the other's files); the container's bus is its net.uds socket, in a directory
// bind-mounted to the host. A FileStream writes and reads through P1
// (the container: bus socket and HTTP) and P2 (the process), and a dispatcher migrates a stream
// between them mid-file; `docker pause` of the container is a hang the dispatcher fails over from;
// `docker stop` drains it (exit 0). Then the domain manager drives containers: start with limits,
// pause, resume, restart (same EPR), clone (new EPR, same volume), resize (`docker update`), an exit
// from outside. Measured: start to ready, Write round trips/s and MB/s, container next to process.
// Skips, saying why, when `docker info` fails or docker/build-images.sh cannot build the images
// (under CI: fails, naming what is missing).
import { measureWrites } from '../helpers/measure.js'
import t, { type Test } from 'tap'
import { dockerInNamespace } from '../helpers/docker.js'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream, createStorageProxy, MetaosError, type StorageHandler } from '../../index.js'
import { ContainerDriver, containerName } from '../../domains/container-driver.js'
import { DomainManager, type ManagedDomain } from '../../domains/domain-manager.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import { ProcessDriver } from '../../domains/process-driver.js'

t.setTimeout(300_000)

const MiB = 1024 * 1024
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const run = Math.random().toString(36).slice(2, 7)
const driver = new ContainerDriver()
// A container sharing a volume with a process domain runs as the process's uid: the storage engine
// creates files 0644, so a stream moving from one to the other writes only files of its own uid.
const asProcess = new ContainerDriver({ user: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}` })
const docker = async (...args: string[]): Promise<string> => await driver.docker(args)
const inspect = async (name: string, format: string): Promise<string> => await docker('inspect', '-f', format, containerName(name))

// Inside the tests' Docker engine's network namespace: the container's port is published there,
// and the process domains listen there too.
const skip = await dockerInNamespace({ log: (l) => { t.comment(l) } })

interface Volume { dir: string, root: string, bus: string }
/** A volume directory and a socket directory, writable by the image's uid 10001 too (mode 0777). */
function volume (t: Test): Volume {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-s1-'))
  const root = join(dir, 'volume')
  const bus = join(dir, 'bus')
  for (const d of [root, bus]) { mkdirSync(d); chmodSync(d, 0o777) }
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return { dir, root, bus }
}

function managers (t: Test, containerDriver = driver): { processes: DomainManager, containers: DomainManager } {
  const processes = new DomainManager({ driver: new ProcessDriver(), graceMs: 5000 })
  const containers = new DomainManager({ driver: containerDriver, graceMs: 5000 })
  t.teardown(async () => {
    await Promise.all([processes.close(), containers.close()])
    // Belt and braces: nothing of this run stays behind, even after a failed assertion.
    const left = (await docker('ps', '-aq', '--filter', `label=metaos.domain`, '--filter', `name=${run}`)).split('\n').filter((s) => s !== '')
    if (left.length > 0) await docker('rm', '-f', '-v', ...left)
  })
  return { processes, containers }
}

function proxies (t: Test): (endpoint: string, timeoutMs?: number) => StorageHandler {
  const made: StorageHandler[] = []
  t.teardown(async () => { await Promise.all(made.map(async (p) => { await p.close() })) })
  return (endpoint, timeoutMs = 10_000) => { const p = createStorageProxy(endpoint, { timeoutMs }); made.push(p); return p }
}

async function writeVia (destination: StorageHandler, path: string, data: Buffer, block = 64 * 1024): Promise<void> {
  const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination, bufferSize: 0 })
  for (let off = 0; off < data.length; off += block) await f.write(data, off, Math.min(block, data.length - off))
  await f.close()
}

async function readVia (destination: StorageHandler, path: string, size: number, block = 64 * 1024): Promise<Buffer> {
  const f = await FileStream.open(path, { mode: 'Open', access: 'Read', destination, bufferSize: 0 })
  const back = Buffer.alloc(size)
  let n = 0
  for (let k = -1; n < size && k !== 0; n += k) k = await f.read(back, n, Math.min(block, size - n))
  await f.close()
  return back.subarray(0, n)
}

t.test('scenario 1: a process domain and a container domain on one volume', { skip }, async (t) => {
  const { dir, root, bus } = volume(t)
  const { processes, containers } = managers(t, asProcess)
  const proxy = proxies(t)

  let t0 = performance.now()
  const p1 = await containers.start({ name: `s1-p1-${run}`, root, listen: ['http://127.0.0.1:0', `net.uds:${join(bus, 'p1.sock')}`], env: { METAOS_LOG_LEVEL: 'warn' } })
  const containerReadyMs = performance.now() - t0
  t0 = performance.now()
  const p2 = await processes.start({ name: `s1-p2-${run}`, root, listen: ['http://127.0.0.1:0', `net.uds:${join(dir, 'p2.sock')}`], env: { METAOS_LOG_LEVEL: 'silent' } })
  const processReadyMs = performance.now() - t0
  t.comment(`start to ready: container ${containerReadyMs.toFixed(0)} ms (docker run … ready line, docker port), process ${processReadyMs.toFixed(0)} ms`)

  const [p1Http, p1Bus] = p1.endpoints as [string, string]
  const [p2Http, p2Bus] = p2.endpoints as [string, string]
  t.match(p1Http, /^http:\/\/127\.0\.0\.1:\d+\/storage$/, 'P1 over HTTP: the published host port')
  t.equal(p1Bus, `net.uds:${join(bus, 'p1.sock')}`, 'P1 over the bus (net.uds): the socket as the host sees it')
  t.ok(statSync(join(bus, 'p1.sock')).isSocket(), 'the container\'s socket is on the host')
  t.equal(Number(await inspect(p1.name, '{{.State.Pid}}')), p1.pid, 'pid: the container\'s main process')

  const info1 = (await proxy(p1Bus).invoke('GetDomainInfo', {})).output
  const info2 = (await proxy(p2Http).invoke('GetDomainInfo', {})).output
  t.equal(info1.hosting, 'container', 'GetDomainInfo of P1: hosting=container')
  t.equal(info1.kernel.release, release(), 'with the host\'s kernel (a container shares it)')
  t.equal(info2.hosting, 'process', 'GetDomainInfo of P2: hosting=process')
  t.equal(info1.domainId, p1.epr, 'the EPR of the ready line is the one the domain says')
  t.equal(info1.volume, info2.volume, 'one volume: the container\'s default volume derives from the host directory, not /data')

  // Through P1 (over the bus, then over HTTP) and P2; the bytes are on the host directory.
  const a = randomBytes(3 * MiB + 123)
  await writeVia(proxy(p1Bus), 'via-p1.bin', a)
  t.equal(sha(readFileSync(join(root, 'via-p1.bin'))), sha(a), 'written through P1\'s bus: the bytes are in the host directory')
  t.equal(sha(await readVia(proxy(p1Http), 'via-p1.bin', a.length)), sha(a), 'read back through P1 over HTTP')
  t.equal(sha(await readVia(proxy(p2Bus), 'via-p1.bin', a.length)), sha(a), 'read through P2')
  const b = randomBytes(2 * MiB + 7)
  await writeVia(proxy(p2Http), 'via-p2.bin', b)
  t.equal(sha(await readVia(proxy(p1Bus), 'via-p2.bin', b.length)), sha(b), 'written through P2, read through P1')

  // A dispatcher over both: streams migrate between the container and the process mid-file.
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  for (const [d, endpoint, info] of [[p1, p1Bus, info1], [p2, p2Http, info2]] as const) {
    handlers.set(d.epr, perf.track({ epr: d.epr, endpoints: d.endpoints, hosting: info.hosting, kernel: info.kernel, runtime: info.runtime, volume: info.volume }, proxy(endpoint, 30_000)))
  }
  const dispatcher = new Dispatcher(pmt, handlers, { volume: info1.volume, hangMs: 1000 })
  const other = (epr: string): string => epr === p1.epr ? p2.epr : p1.epr
  const data = randomBytes(16 * MiB)
  const w = await FileStream.open('moving.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const id = dispatcher.affinity.entries()[0]!.id
  for (let off = 0; off < data.length; off += 64 * 1024) {
    if (off > 0 && off % (2 * MiB) === 0) await dispatcher.migrate(id, 'scenario 1', other(dispatcher.affinity.lookup(id)!))
    await w.write(data, off, 64 * 1024)
  }
  await w.close()
  const writeMoves = dispatcher.moves.filter((m) => m.kind === 'migration')
  t.equal(writeMoves.length, 7, 'the write stream moved 7 times')
  t.ok(writeMoves.some((m) => m.from === p1.epr) && writeMoves.some((m) => m.from === p2.epr), 'container → process and process → container')
  t.equal(sha(readFileSync(join(root, 'moving.bin'))), sha(data), 'the file on the host directory is exactly what was written')
  const r = await FileStream.open('moving.bin', { mode: 'Open', access: 'Read', destination: dispatcher, bufferSize: 0 })
  const rid = dispatcher.affinity.entries()[0]!.id
  const back = Buffer.alloc(data.length)
  for (let n = 0, k = -1; n < data.length && k !== 0; n += k) {
    if (n > 0 && n % (4 * MiB) === 0) await dispatcher.migrate(rid, 'scenario 1', other(dispatcher.affinity.lookup(rid)!))
    k = await r.read(back, n, 64 * 1024)
  }
  await r.close()
  t.equal(sha(back), sha(data), 'read back across moves between the container and the process: the same bytes')
  t.comment(`migration stalls: ${dispatcher.moves.map((m) => `${m.from === p1.epr ? 'container→process' : 'process→container'} ${m.stallMs.toFixed(1)} ms`).join(', ')}`)

  // docker pause while a stream writes through the container: a hang; the stream goes on on the process.
  const h = await FileStream.open('paused.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const hid = dispatcher.affinity.entries()[0]!.id
  if (dispatcher.affinity.lookup(hid) !== p1.epr) await dispatcher.migrate(hid, 'onto the container', p1.epr)
  const before = dispatcher.moves.length
  let longest = 0
  for (let off = 0; off < 8 * MiB; off += 64 * 1024) {
    if (off === 2 * MiB) await docker('pause', containerName(p1.name))
    const c0 = performance.now()
    await h.write(data, off, 64 * 1024)
    longest = Math.max(longest, performance.now() - c0)
  }
  await h.close()
  await docker('unpause', containerName(p1.name))
  const failover = dispatcher.moves.slice(before).find((m) => m.kind === 'failover')
  t.ok(failover !== undefined, 'the paused container was a hang: the stream failed over')
  t.match(failover, { from: p1.epr, to: p2.epr, reason: 'TIMED_OUT' }, 'from the container to the process, for the hang deadline')
  t.comment(`docker pause: failover after ${failover?.stallMs.toFixed(0) ?? '?'} ms (longest write ${longest.toFixed(0)} ms)`)
  t.equal(pmt.row(p1.epr)?.state, 'suspect', 'the container domain is suspect')
  // The frozen domain may still perform the write it was given once thawed: the same bytes at the same place.
  t.equal(await proxy(p1Bus).invoke('GetDomainInfo', {}).then((i) => i.output.domainId), p1.epr, 'unpaused: the container serves again')
  t.equal(sha(readFileSync(join(root, 'paused.bin'))), sha(data.subarray(0, 8 * MiB)), 'no error, and the file has the expected SHA-256')
  pmt.setState(p1.epr, 'healthy')

  // Write round trips and throughput, the container next to the process, same run.
  const rows: string[] = []
  for (const [label, endpoint] of [['container over HTTP (published port)', p1Http], ['container over the bind-mounted bus socket', p1Bus], ['process over HTTP', p2Http], ['process over the bus socket', p2Bus]] as const) {
    const m = await measureWrites(proxy(endpoint, 30_000), `bench-${rows.length}.bin`)
    rows.push(`${label}: ${m.rtps.toFixed(0)} Write round trips/s (4 KiB), ${m.mbps.toFixed(1)} MB/s (1 MiB writes)`)
  }
  for (const row of rows) t.comment(row)
  t.equal(readdirSync(root).filter((f) => f.startsWith('bench-')).length, 0, 'measured: 4 × (2 s of 4 KiB writes + 64 MiB), files deleted')

  // docker stop while a stream writes through the container: it drains (exit 0), the stream moves on.
  const s = await FileStream.open('stopped.bin', { mode: 'Create', access: 'Write', destination: dispatcher, bufferSize: 0 })
  const sid = dispatcher.affinity.entries()[0]!.id
  if (dispatcher.affinity.lookup(sid) !== p1.epr) await dispatcher.migrate(sid, 'onto the container', p1.epr)
  const beforeStop = dispatcher.moves.length
  let stopping: Promise<ManagedDomain> | undefined
  const moved = (): boolean => dispatcher.moves.slice(beforeStop).some((m) => m.kind === 'failover')
  for (let off = 0; off < 8 * MiB; off += 64 * 1024) {
    if (off === 2 * MiB) stopping = containers.stop(p1.name, 10_000)
    // Paced once the stop is asked for, until the stream has moved: on a loaded machine SIGTERM can
    // reach the container after the last 6 MiB went through at full speed (then nothing drains mid-stream).
    if (off > 2 * MiB && !moved()) await sleep(20)
    await s.write(data, off, 64 * 1024)
  }
  await s.close()
  const stopped = await stopping!
  t.same(stopped.exit, { code: 0, signal: null }, 'docker stop: SIGTERM, the domain drained and exited 0')
  const drained = dispatcher.moves.slice(beforeStop).find((m) => m.kind === 'failover')
  t.match(drained, { from: p1.epr, to: p2.epr }, `the stream left the stopping container (${drained?.reason ?? 'no move'}, stall ${drained?.stallMs.toFixed(0) ?? '?'} ms)`)
  t.equal(sha(readFileSync(join(root, 'stopped.bin'))), sha(data.subarray(0, 8 * MiB)), 'the stream went on elsewhere: the expected SHA-256')
  t.notOk(existsSync(join(bus, 'p1.sock')), 'the domain removed its socket from the host directory')
  t.equal(await docker('ps', '-aq', '--filter', `name=^${containerName(p1.name)}$`), '', 'the container is removed once it has exited')
})

t.test('the domain manager drives containers: limits, pause, resume, restart, clone, resize, an exit from outside', { skip }, async (t) => {
  const { root, bus } = volume(t)
  const { containers: manager } = managers(t)
  const proxy = proxies(t)
  const name = `s1-m-${run}`
  const ncpu = Number(await docker('info', '--format', '{{.NCPU}}'))

  const m = await manager.start({ name, root, listen: ['http://127.0.0.1:0', `unix:${join(bus, 'm.sock')}`], limits: { memoryBytes: 256 * MiB, cpuPercent: 50 }, env: { METAOS_LOG_LEVEL: 'warn' } })
  t.match(m.limits, { applied: true }, `limits applied (${m.limits?.mechanism ?? ''})`)
  t.equal(await inspect(name, '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}'), `${256 * MiB} 500000000`, 'docker run --memory 256 MiB --cpus 0.5')
  await writeVia(proxy(m.endpoints[0]!), 'm.txt', Buffer.from('from the managed container\n'))
  t.equal(statSync(join(root, 'm.txt')).uid, 10001, 'written by the image\'s user, uid 10001, in a directory of mode 0777')

  const paused = await manager.pause(name)
  t.equal(paused.state, 'paused', 'the manager says paused')
  t.equal(await inspect(name, '{{.State.Paused}}'), 'true', 'docker pause: frozen')
  const hung = await proxy(m.endpoints[0]!, 300).invoke('GetDomainInfo', {}).then(() => undefined, (e: unknown) => e)
  t.ok(hung instanceof MetaosError && hung.code === 'TIMED_OUT', `a call to the paused container times out (${String(hung)})`)
  const resized = await manager.resize(name, { memoryBytes: 512 * MiB, cpuPercent: 25 })
  t.match(resized.limits, { applied: true }, 'resized while paused')
  t.equal(await inspect(name, '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}'), `${512 * MiB} 250000000`, 'docker update --memory 512 MiB --cpus 0.25')
  t.equal((await manager.resume(name)).state, 'running', 'resumed')
  t.equal(await inspect(name, '{{.State.Paused}}'), 'false', 'docker unpause')
  t.equal((await proxy(m.endpoints[0]!).invoke('GetDomainInfo', {})).output.domainId, m.epr, 'serving after resume')
  const lifted = await manager.resize(name, { memoryBytes: 256 * MiB })
  t.equal(lifted.pid, m.pid, 'in place: the same process')
  t.equal(await inspect(name, '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}'), `${256 * MiB} ${ncpu * 1e9}`, 'a CPU limit left out: the daemon\'s every CPU (docker update cannot unset one)')

  const m2 = await manager.restart(name)
  t.equal(m2.epr, m.epr, 'restart: same EPR (same hostname, name and /data)')
  t.same(m2.endpoints, m.endpoints, 'on the same host port and socket')
  t.not(m2.pid, m.pid, 'a new container')
  t.equal(await inspect(name, '{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}'), `${256 * MiB} 0`, 'the restart has the resized limits: memory only')
  t.equal((await proxy(m2.endpoints[1]!).invoke('GetDomainInfo', {})).output.domainId, m.epr, 'serving over its socket')

  const c = await manager.clone(name, `${name}-c`)
  t.not(c.epr, m.epr, 'clone: a new EPR')
  t.same(c.spec.listen, ['http://127.0.0.1:0', `unix:${join(bus, `${name}-c.sock`)}`], 'its own port and socket')
  const [im, ic] = await Promise.all([m2, c].map(async (d) => (await proxy(d.endpoints[1]!).invoke('GetDomainInfo', {})).output))
  t.equal(ic!.volume, im!.volume, 'the same volume')
  t.equal(ic!.hosting, 'container', 'hosting=container')
  t.equal((await readVia(proxy(c.endpoints[0]!), 'm.txt', 100)).toString(), 'from the managed container\n', 'and the same files')

  // An exit nobody asked for (docker kill from outside): the manager reports it.
  const exited = new Promise<[string, number | null, NodeJS.Signals | null]>((resolve) => { manager.once('exited', (...a) => { resolve(a) }) })
  await docker('kill', containerName(c.name))
  t.same(await exited, [c.name, 137, 'SIGKILL'], 'exited: docker\'s code 137 and the signal it stands for')
  t.equal((await manager.get(c.name)).state, 'exited', 'the manager sees it exited')
  const back = await manager.restart(c.name)
  t.equal(back.epr, c.epr, 'restarted after the kill, same EPR')

  const stopped = await manager.stop(name)
  t.same(stopped.exit, { code: 0, signal: null }, 'stop: drained, exit 0')
  const killed = await manager.kill(c.name)
  t.same(killed.exit, { code: 137, signal: 'SIGKILL' }, 'kill: docker kill')
  t.equal(await docker('ps', '-aq', '--filter', `name=${run}`), '', 'every container removed after its exit')
})
