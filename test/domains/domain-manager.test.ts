// DomainManager with real `metaos storage` processes (no mocks): two domains on one root (HTTP and
// Unix socket) with their stable EPRs, a write through one landing on disk, pause (calls time out,
// the kernel shows the process stopped) and resume, restart (same EPR, new pid), clone (new EPR,
// same volume and files), a kill from outside reported as 'exited', the errors of bad names,
// cgroup limits where the host allows them (under CI they must apply), and resize (limits changed in place, running or paused,
// kept for the restart), a port already taken (ADDRESS_IN_USE). Runs the compiled CLI (dist/, built by `npm test`).
import t, { type Test } from 'tap'
import { once } from 'node:events'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createStorageProxy, MetaosError, type StorageHandler } from '../../index.js'
import { stableUuid } from '../../backend-storage/storage-domain.js'
import { DomainManager, type LimitsOutcome, type ManagedDomain } from '../../domains/domain-manager.js'
import { CGROUP_SETUP, partMissing } from '../helpers/require-part.js'
import { ProcessDriver } from '../../domains/process-driver.js'

interface Setup { manager: DomainManager, dir: string, root: string, proxy: (endpoint: string, timeoutMs?: number) => StorageHandler }

function setup (t: Test): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-dm-'))
  const root = join(dir, 'root')
  mkdirSync(root)
  const manager = new DomainManager({ driver: new ProcessDriver(), graceMs: 3000 })
  const proxies: StorageHandler[] = []
  t.teardown(async () => {
    await Promise.all(proxies.map(async (p) => { await p.close() }))
    await manager.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const proxy = (endpoint: string, timeoutMs = 5000): StorageHandler => {
    const p = createStorageProxy(endpoint, { timeoutMs })
    proxies.push(p)
    return p
  }
  return { manager, dir, root, proxy }
}

const eprOf = (name: string, root: string): string => stableUuid('metaos-storage', hostname(), name, realpathSync(root))

/** The process state letter from /proc/<pid>/stat (R, S, T…). */
function procState (pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.charAt(stat.lastIndexOf(')') + 2)
}

async function writeFile (p: StorageHandler, path: string, data: Buffer): Promise<void> {
  const { handle } = (await p.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })).output
  await p.invoke('Write', { handle, data })
  await p.invoke('Close', { handle })
}

async function readWhole (p: StorageHandler, path: string): Promise<Buffer> {
  const { handle } = (await p.invoke('Open', { path, mode: 'Open', access: 'Read', share: 'Read' })).output
  const { data } = (await p.invoke('Read', { handle, count: 1 << 20 })).output
  await p.invoke('Close', { handle })
  return data
}

async function domainId (p: StorageHandler): Promise<string> {
  return (await p.invoke('GetDomainInfo', {})).output.domainId
}

/** Whether `pid` is in the group (cgroup.procs). */
const holds = (group: string, pid: number): boolean => readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').includes(String(pid))

/** What the kernel holds for a domain's groups: memory in bytes, CPU quota and period in µs (quota -1 = none). */
function limitsIn (l: LimitsOutcome): { memory?: number, quota?: number, period?: number } {
  const { memory, cpu } = l.groups ?? {}
  const read = (dir: string, file: string): string => readFileSync(join(dir, file), 'utf8').trim()
  if (l.mechanism === 'cgroup-v1') {
    return {
      ...(memory === undefined ? {} : { memory: Number(read(memory, 'memory.limit_in_bytes')) }),
      ...(cpu === undefined ? {} : { quota: Number(read(cpu, 'cpu.cfs_quota_us')), period: Number(read(cpu, 'cpu.cfs_period_us')) }),
    }
  }
  const [quota, period] = cpu === undefined ? [] : read(cpu, 'cpu.max').split(' ')
  const max = memory === undefined ? undefined : read(memory, 'memory.max')
  return {
    ...(max === undefined ? {} : { memory: max === 'max' ? -1 : Number(max) }),
    ...(quota === undefined ? {} : { quota: quota === 'max' ? -1 : Number(quota), period: Number(period) }),
  }
}

t.test('two domains on one root: EPRs, writes on disk, pause/resume, restart, clone', async (t) => {
  const { manager, dir, root, proxy } = setup(t)
  const started: string[] = []
  manager.on('started', (d) => { started.push(d.name) })
  const [a, b] = await Promise.all([
    manager.start({ name: 'a', root, listen: ['http://127.0.0.1:0'] }),
    manager.start({ name: 'b', root, listen: [`unix:${join(dir, 'b.sock')}`] }),
  ])
  t.equal(a.state, 'running')
  t.equal(a.epr, eprOf('a', root), 'EPR derives from host, name and root')
  t.equal(b.epr, eprOf('b', root))
  t.not(a.epr, b.epr)
  t.match(a.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+\/storage$/)
  t.match(b.endpoints[0], /^http\+unix:\/\//)
  t.same((await manager.list()).map((d) => d.name).sort(), ['a', 'b'])
  t.same(started.sort(), ['a', 'b'])

  const payload = Buffer.from('through domain a\n')
  await writeFile(proxy(a.endpoints[0]!), 'hello.txt', payload)
  t.same(readFileSync(join(root, 'hello.txt')), payload, 'the bytes are on disk under the root')
  t.same(await readWhole(proxy(b.endpoints[0]!), 'hello.txt'), payload, 'and the other domain serves them')

  // pause: the process is stopped, calls time out; resume: they work again.
  const paused = await manager.pause('a')
  t.equal(paused.state, 'paused')
  t.equal(procState(a.pid), 'T')
  const err = await proxy(a.endpoints[0]!, 300).invoke('GetDomainInfo', {}).then(() => undefined, (e: unknown) => e)
  t.ok(err instanceof MetaosError && err.code === 'TIMED_OUT', `a call to a paused domain times out (${String(err)})`)
  t.equal((await manager.resume('a')).state, 'running')
  t.not(procState(a.pid), 'T')
  t.equal(await domainId(proxy(a.endpoints[0]!)), a.epr, 'serving again after resume')

  // restart of the Unix-socket domain: same EPR, new pid, the socket path reused.
  const stopped = once(manager, 'stopped') as Promise<[ManagedDomain]>
  const b2 = await manager.restart('b')
  t.equal((await stopped)[0].name, 'b')
  t.equal(b2.epr, b.epr, 'same name + root ⇒ same EPR')
  t.not(b2.pid, b.pid)
  t.equal(b2.restarts, 1)
  t.same(b2.endpoints, b.endpoints)
  t.equal(await domainId(proxy(b2.endpoints[0]!)), b.epr)

  // restart of a paused domain (killed, not drained).
  await manager.pause('a')
  const a2 = await manager.restart('a')
  t.equal(a2.epr, a.epr)
  t.not(a2.pid, a.pid)
  t.same(a2.endpoints, a.endpoints, 'an HTTP domain comes back on the port it had')
  t.equal(await domainId(proxy(a2.endpoints[0]!)), a.epr)

  // clone: new name ⇒ new EPR, same volume and files, its own socket.
  const c = await manager.clone('b', 'c')
  t.equal(c.spec.root, root)
  t.same(c.spec.listen, [`unix:${join(dir, 'c.sock')}`])
  t.equal(c.epr, eprOf('c', root))
  t.not(c.epr, b.epr)
  const infoB = (await proxy(b2.endpoints[0]!).invoke('GetDomainInfo', {})).output
  const infoC = (await proxy(c.endpoints[0]!).invoke('GetDomainInfo', {})).output
  t.equal(infoC.volume, infoB.volume, 'the clone serves the same volume')
  t.same(await readWhole(proxy(c.endpoints[0]!), 'hello.txt'), payload)
  const d = await manager.clone('a', 'd')
  t.match(d.spec.listen, ['http://127.0.0.1:0'])
  t.not(d.endpoints[0], a2.endpoints[0])

  const s = await manager.stop('c')
  t.equal(s.state, 'stopped')
  t.equal(s.exit?.code, 0, 'SIGTERM: the domain drained and exited 0')
  t.notOk(existsSync(join(dir, 'c.sock')), 'the domain removed its socket')
})

t.test('a kill from outside is an exited event; errors have codes', async (t) => {
  const { manager, root, proxy } = setup(t)
  const e = await manager.start({ name: 'e', root, listen: ['http://127.0.0.1:0'] })
  const dup = await manager.start({ name: 'e', root, listen: ['http://127.0.0.1:0'] }).catch((err: unknown) => err)
  t.equal((dup as MetaosError).code, 'INVALID_ARGUMENT', 'a name that runs cannot start again')
  for (const op of [async () => await manager.get('nope'), async () => await manager.stop('nope'), async () => await manager.pause('nope'), async () => await manager.clone('nope', 'x')]) {
    t.equal(((await op().catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', 'unknown name')
  }
  t.equal(((await manager.start({ name: '../x', root, listen: [] }).catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', 'bad name')
  t.equal(((await manager.start({ name: 'f', root, listen: [], extraArgs: ['--name', 'g'] }).catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', 'extraArgs cannot override the spec')

  const exited = once(manager, 'exited') as Promise<[string, number | null, NodeJS.Signals | null]>
  process.kill(e.pid, 'SIGKILL')
  const [name, code, signal] = await exited
  t.same({ name, code, signal }, { name: 'e', code: null, signal: 'SIGKILL' })
  const now = await manager.get('e')
  t.equal(now.state, 'exited')
  t.same(now.exit, { code: null, signal: 'SIGKILL' })
  t.equal(((await manager.pause('e').catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', 'an exited domain cannot be paused')

  const back = await manager.restart('e')
  t.equal(back.state, 'running')
  t.equal(await domainId(proxy(back.endpoints[0]!)), e.epr, 'restarted after the crash, same EPR')
})

t.test('resource limits where the host allows', async (t) => {
  const { manager, root } = setup(t)
  const memoryBytes = 256 * 1024 * 1024
  const l = await manager.start({ name: 'limited', root, listen: ['http://127.0.0.1:0'], limits: { memoryBytes, cpuPercent: 50 } })
  const limits = l.limits!
  t.ok(limits !== undefined, 'the snapshot says what became of the limits')
  if (!limits.applied) {
    t.ok(typeof limits.reason === 'string' && limits.reason !== '', 'the reason is said')
    t.pass('the kernel holds the limits', { skip: partMissing('cgroup support', `limits not applied (${limits.mechanism}): ${limits.reason ?? ''}`, CGROUP_SETUP) })
    return
  }
  t.comment(`limits applied with ${limits.mechanism}: ${JSON.stringify(limits.groups)}`)
  const memory = limits.groups!.memory!
  const cpu = limits.groups!.cpu!
  for (const g of new Set([memory, cpu])) {
    t.ok(readFileSync(join(g, 'cgroup.procs'), 'utf8').split('\n').includes(String(l.pid)), `pid ${l.pid} is in ${g}`)
  }
  if (limits.mechanism === 'cgroup-v1') {
    t.equal(Number(readFileSync(join(memory, 'memory.limit_in_bytes'), 'utf8')), memoryBytes)
    const period = Number(readFileSync(join(cpu, 'cpu.cfs_period_us'), 'utf8'))
    t.equal(Number(readFileSync(join(cpu, 'cpu.cfs_quota_us'), 'utf8')), period / 2)
  } else {
    t.equal(Number(readFileSync(join(memory, 'memory.max'), 'utf8')), memoryBytes)
    t.equal(readFileSync(join(cpu, 'cpu.max'), 'utf8').trim(), '50000 100000')
  }
  await manager.stop('limited')
  t.notOk(existsSync(memory) || existsSync(cpu), 'the groups are removed once the domain has exited')
})

t.test('resize: new limits in place, running or paused, kept for the restart', async (t) => {
  const { manager, root, proxy } = setup(t)
  const MiB = 1024 * 1024
  const r = await manager.start({ name: 'r', root, listen: ['http://127.0.0.1:0'] })
  t.equal(r.limits, undefined, 'started without limits')

  const big = await manager.resize('r', { memoryBytes: 512 * MiB, cpuPercent: 25 })
  t.equal(big.pid, r.pid, 'same process: resized in place')
  t.equal(big.state, 'running')
  t.same(big.spec.limits, { memoryBytes: 512 * MiB, cpuPercent: 25 }, 'the spec has the new limits')
  t.ok(big.limits !== undefined, 'the snapshot says what became of them')
  const applied = big.limits!.applied
  if (applied) {
    t.comment(`resized with ${big.limits!.mechanism}: ${JSON.stringify(big.limits!.groups)}`)
    const { memory, cpu } = big.limits!.groups!
    for (const g of new Set([memory!, cpu!])) t.ok(holds(g, r.pid), `pid ${r.pid} moved into ${g}`)
    t.same(limitsIn(big.limits!), { memory: 536870912, quota: 25000, period: 100000 }, 'the kernel holds 512 MiB and 25% of a CPU')
  } else {
    t.ok(typeof big.limits!.reason === 'string' && big.limits!.reason !== '', 'with a reason')
    t.pass('the kernel holds the new limits', { skip: partMissing('cgroup support', `limits not applied on this host (${big.limits!.mechanism}): ${big.limits!.reason ?? ''}`, CGROUP_SETUP) })
  }
  t.equal(await domainId(proxy(big.endpoints[0]!)), r.epr, 'the domain still serves')

  // Paused: resized all the same. Limits replace the old ones: the CPU limit left out is lifted.
  await manager.pause('r')
  const small = await manager.resize('r', { memoryBytes: 256 * MiB })
  t.equal(small.state, 'paused')
  t.equal(small.pid, r.pid)
  t.same(small.spec.limits, { memoryBytes: 256 * MiB })
  t.equal(small.limits?.applied, applied)
  if (applied) {
    t.same(small.limits!.groups, big.limits!.groups, 'the same groups, rewritten')
    t.same(limitsIn(small.limits!), { memory: 268435456, quota: -1, period: 100000 }, 'the kernel holds 256 MiB and no CPU limit')
  }
  t.equal((await manager.resume('r')).state, 'running')
  t.equal(await domainId(proxy(small.endpoints[0]!)), r.epr, 'serving after resize and resume')

  // Invalid values: rejected, nothing changes.
  for (const bad of [{ memoryBytes: 0 }, { memoryBytes: 1.5 }, { cpuPercent: -5 }, { cpuPercent: Number.NaN }]) {
    t.equal(((await manager.resize('r', bad).catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', `rejects ${String(Object.entries(bad)[0])}`)
  }
  t.equal(((await manager.resize('nope', { memoryBytes: MiB }).catch((err: unknown) => err)) as MetaosError).code, 'INVALID_ARGUMENT', 'unknown name')
  t.same((await manager.get('r')).spec.limits, { memoryBytes: 256 * MiB }, 'the spec kept the last valid limits')

  // The restart gets the resized limits; the old groups went with the old process.
  const r2 = await manager.restart('r')
  t.not(r2.pid, r.pid)
  t.same(r2.spec.limits, { memoryBytes: 256 * MiB })
  t.ok(r2.limits !== undefined, 'the restart asked for the limits')
  t.equal(r2.limits!.applied, applied)
  if (applied) {
    const { memory, cpu } = r2.limits!.groups!
    t.equal(cpu, undefined, 'no CPU group: the last resize lifted that limit')
    t.ok(holds(memory!, r2.pid), `pid ${r2.pid} is in ${memory!}`)
    t.same(limitsIn(r2.limits!), { memory: 268435456 })
    const old = big.limits!.groups!
    t.notOk(existsSync(old.memory!) || existsSync(old.cpu!), 'the first run\'s groups are removed')
  }

  const stopped = await manager.stop('r')
  t.equal(stopped.state, 'stopped')
  const err = await manager.resize('r', { memoryBytes: 128 * MiB }).catch((e: unknown) => e)
  t.ok(err instanceof MetaosError, 'a stopped domain cannot be resized')
  t.equal((err as MetaosError).code, 'INVALID_ARGUMENT')
  t.same((await manager.get('r')).spec.limits, { memoryBytes: 256 * MiB }, 'and its spec is unchanged')
})

t.test('a restart comes back on its port, or on a new one when another process took it', async (t) => {
  const { manager, root, proxy } = setup(t)
  const a = await manager.start({ name: 'p', root, listen: ['http://127.0.0.1:0'] })
  const again = await manager.restart('p')
  t.same(again.endpoints, a.endpoints, 'same port after a restart')
  await manager.stop('p')
  const { createServer } = await import('node:net')
  const squatter = createServer()
  await new Promise<void>((resolve) => { squatter.listen(Number(new URL(a.endpoints[0]!).port), '127.0.0.1', resolve) })
  t.teardown(() => { squatter.close() })
  const moved = await manager.restart('p')
  t.not(moved.endpoints[0], a.endpoints[0], `the port was taken: a new one (${moved.endpoints[0]})`)
  t.equal(moved.epr, a.epr, 'the same EPR')
  t.equal((await proxy(moved.endpoints[0]!).invoke('GetDomainInfo', {})).output.domainId, a.epr, 'serving')
})

t.test('a domain started on a port already taken: ADDRESS_IN_USE, from the child\'s error line', async (t) => {
  const { manager, root } = setup(t)
  const { createServer } = await import('node:net')
  const { spawnDomain } = await import('../../domains/domain-process.js')
  const squatter = createServer()
  await new Promise<void>((resolve) => { squatter.listen(0, '127.0.0.1', resolve) })
  t.teardown(() => { squatter.close() })
  const listen = `http://127.0.0.1:${(squatter.address() as { port: number }).port}`
  await t.rejects(spawnDomain(['storage', '--root', root, '--listen', listen]), { code: 'ADDRESS_IN_USE' }, 'spawnDomain, storage')
  await t.rejects(spawnDomain(['network', '--listen', listen]), { code: 'ADDRESS_IN_USE' }, 'spawnDomain, network')
  const err = await manager.start({ name: 'taken', root, listen: [listen] }).catch((e: unknown) => e)
  t.ok(err instanceof MetaosError, 'the manager gives a MetaosError')
  t.equal((err as MetaosError).code, 'ADDRESS_IN_USE', 'with the code')
  t.same(await manager.list(), [], 'and keeps no domain')
})

t.test('network domains are managed the same way', async (t) => {
  const { manager } = setup(t)
  const { createNetworkProxy } = await import('../../frontend/handlers/network-handler.js')
  const n = await manager.start({ service: 'network', name: 'gw', root: '', listen: ['http://127.0.0.1:0'] })
  t.match(n.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+\/network$/, 'a network endpoint')
  const p = createNetworkProxy(n.endpoints[0]!)
  t.teardown(async () => { await p.close() })
  t.equal((await p.invoke('GetDomainInfo', {})).output.domainId, n.epr, 'it answers as itself')
  const again = await manager.restart('gw')
  t.equal(again.epr, n.epr, 'restarted: same EPR')
  t.same(again.endpoints, n.endpoints, 'same address')
  t.equal((await p.invoke('GetDomainInfo', {})).output.domainId, n.epr, 'serving again')
  await t.rejects(manager.start({ name: 's', root: '', listen: [] }), { code: 'INVALID_ARGUMENT' }, 'a storage domain still needs a root')
})

t.test('killRun (fencing): a stopped run is killed and reaped; a later run is left alone', async (t) => {
  const { manager, root } = setup(t)
  const d = await manager.start({ name: 'k', root, listen: ['http://127.0.0.1:0'] })
  const since = Date.now()
  process.kill(d.pid, 'SIGSTOP') // hung, as far as the manager knows it runs
  t.equal(await manager.killRun('k', since), true, 'the run current at `since` is killed')
  t.match(await manager.get('k'), { state: 'stopped', exit: { signal: 'SIGKILL' } }, 'and has exited (SIGKILL works on a stopped process)')
  t.throws(() => process.kill(d.pid, 0), { code: 'ESRCH' }, 'the process is gone (reaped)')
  const again = await manager.restart('k')
  t.equal(await manager.killRun('k', since), false, 'a run launched after `since` is not the one that hung: left alone')
  t.match(await manager.get('k'), { state: 'running', pid: again.pid })
})
