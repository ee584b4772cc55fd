// The container images (DESIGN.md §6, issue 7) with real Docker: docker/build-images.sh builds the
// offline base and metaos/storage:dev, metaos/network:dev (kept when up to date, so re-runs are
// fast) in the tests' Docker engine, whose network namespace this file runs in (test/helpers/docker.ts);
// each image is run as the issue describes and used from outside the container — FileStream over
// the HTTP port published in that namespace and over the bind-mounted bus socket (bytes and SHA-256
// on the host volume), NetSocket through the network domain to an echo server on the bridge gateway
// — and GetDomainInfo, the non-root user, the healthcheck and `docker stop` (SIGTERM → drain → exit
// 0) are checked. Skips with the reason when the engine cannot run (under CI: fails, naming what is
// missing). Removes its containers, network and temp dirs.
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { once } from 'node:events'
import { release, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { dockerInNamespace } from '../helpers/docker.js'
import { FileStream, FileMode, FileAccess, NetSocket, createStorageProxy, createNetworkProxy, closeSharedProxies, closeSharedNetworkProxies } from '../../index.js'

const REPO = fileURLToPath(new URL('../..', import.meta.url))
const STORAGE_IMAGE = 'metaos/storage:dev'
const NETWORK_IMAGE = 'metaos/network:dev'
const MAX_IMAGE_BYTES = 350 * 1024 * 1024
const STOP_GRACE_S = 20
const MB = (n: number): string => `${(n / 1024 / 1024).toFixed(1)} MiB`
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function run (file: string, args: readonly string[], timeoutMs = 60_000): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(file, args, { cwd: REPO, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err !== null) reject(new Error(`${file} ${args.join(' ')} failed: ${err.message}\n${stderr}`))
      else resolve(stdout)
    })
  })
}
const docker = async (...args: string[]): Promise<string> => (await run('docker', args)).trim()

async function until<T> (what: string, timeoutMs: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await f()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

interface Ready { event: string, service: string, endpoints: string[], epr: string }

/** `docker run -d …`, then the ready line (docker logs) and the healthcheck's "healthy"; removed at teardown. */
async function runContainer (t: Test, name: string, args: readonly string[]): Promise<{ ready: Ready, readyMs: number, healthyMs: number }> {
  t.teardown(async () => { await docker('rm', '-f', name).catch(() => undefined) })
  const started = Date.now()
  // A 1 s health interval instead of the image's 10 s: the test waits for the first check only.
  await docker('run', '-d', '--name', name, '--health-interval', '1s', ...args)
  const line = await until('the ready line', 30_000, async () => {
    const out = await docker('logs', name)
    return out.split('\n').find((l) => l.includes('"event":"ready"'))
  }).catch(async (e: Error) => { throw new Error(`${e.message}; logs: ${await docker('logs', name).catch(() => '')}`) })
  const readyMs = Date.now() - started
  await until('the healthcheck to say healthy', 30_000, async () => (await docker('inspect', '-f', '{{.State.Health.Status}}', name)) === 'healthy' ? true : undefined)
  return { ready: JSON.parse(line) as Ready, readyMs, healthyMs: Date.now() - started }
}

async function publishedPort (name: string): Promise<number> {
  const m = /127\.0\.0\.1:(\d+)/.exec(await docker('port', name, '8080/tcp'))
  if (m === null) throw new Error(`no port published on 127.0.0.1 for ${name}`)
  return Number(m[1])
}

/** `docker stop`: the time it took, the exit code, and the domain's stderr (pino lines). */
async function stop (name: string): Promise<{ ms: number, exitCode: number, oomKilled: boolean, logs: string }> {
  const started = Date.now()
  await docker('stop', '-t', String(STOP_GRACE_S), name)
  const ms = Date.now() - started
  const [code, oom] = (await docker('inspect', '-f', '{{.State.ExitCode}} {{.State.OOMKilled}}', name)).split(' ')
  const logs = await new Promise<string>((resolve) => { execFile('docker', ['logs', name], { encoding: 'utf8' }, (_e, out, err) => { resolve(`${out}${err}`) }) })
  return { ms, exitCode: Number(code), oomKilled: oom === 'true', logs }
}

function tempDirs (t: Test, ...names: string[]): Record<string, string> {
  const base = mkdtempSync(join(tmpdir(), 'metaos-containers-'))
  t.teardown(() => { rmSync(base, { recursive: true, force: true }) })
  // The container runs as uid 10001: the bind-mounted directories must be writable by it.
  return Object.fromEntries(names.map((n) => { const d = join(base, n); mkdirSync(d); chmodSync(d, 0o777); return [n, d] }))
}

// The tests' Docker engine (test/helpers/docker.ts) builds the images, then this file runs inside its
// network namespace: the bridges, the containers' addresses and the ports published on 127.0.0.1 are there.
const skip = await dockerInNamespace({ log: (l) => { t.comment(l) } })
const images = new Map<string, { id: string, size: number, state: string }>()

t.test('docker/build-images.sh built the base and both images, small, and keeps them', { skip }, async (t) => {
  const started = Date.now()
  const out = await run('bash', ['docker/build-images.sh'], 900_000)
  const ms = Date.now() - started
  for (const m of out.matchAll(/^image (\S+) (sha256:[0-9a-f]+) (\d+) (built|up-to-date)$/gm)) images.set(m[1]!, { id: m[2]!, size: Number(m[3]), state: m[4]! })
  const base = (await docker('image', 'inspect', '-f', '{{.Size}} {{ index .Config.Labels "org.metaos.node-version" }}', 'metaos/node-base:20')).split(' ')
  t.comment(`build-images.sh took ${ms} ms; metaos/node-base:20 ${MB(Number(base[0]))} (node ${base[1]})`)
  for (const tag of [STORAGE_IMAGE, NETWORK_IMAGE]) {
    const i = images.get(tag)
    t.ok(i, `${tag} is reported`)
    if (i === undefined) continue
    t.comment(`${tag}: ${MB(i.size)} (${i.state})`)
    t.ok(i.size > 0 && i.size < MAX_IMAGE_BYTES, `${tag} is under ${MB(MAX_IMAGE_BYTES)}`)
    const cfg = JSON.parse(await docker('image', 'inspect', '-f', '{{json .Config}}', tag)) as { User: string, StopSignal: string, Healthcheck?: { Test: string[] }, Entrypoint: string[] }
    t.equal(cfg.User, '10001:10001', `${tag} runs as uid 10001`)
    t.equal(cfg.StopSignal, 'SIGTERM')
    t.same(cfg.Healthcheck?.Test, ['CMD', 'node', '/app/docker/healthcheck.mjs'], 'healthcheck without curl')
    t.same(cfg.Entrypoint, ['node', '/app/dist/cli/metaos.js', tag === STORAGE_IMAGE ? 'storage' : 'network'])
  }
  t.match(await docker('run', '--rm', '--entrypoint', 'node', STORAGE_IMAGE, '-e', 'process.stdout.write(process.version + " " + require("fs").readdirSync("/app").sort().join(","))'),
    `${process.version} dist,docker,node_modules,package-lock.json,package.json,wsdl`, 'the image holds dist/, wsdl/, package.json, the lock file and node_modules only')
  const again = await run('bash', ['docker/build-images.sh'], 120_000)
  t.match(again, /^image metaos\/storage:dev \S+ \d+ up-to-date$/m, 'a second run keeps the storage image')
  t.match(again, /^image metaos\/network:dev \S+ \d+ up-to-date$/m, 'and the network image')
})

t.test('the storage image: FileStream from the host over HTTP and the bus sockets (net.uds, HTTP), hosting=container, drain on docker stop', { skip }, async (t) => {
  t.teardown(async () => { await closeSharedProxies() })
  const dirs = tempDirs(t, 'data', 'run')
  const name = `metaos-test-storage-${randomUUID().slice(0, 8)}`
  const { ready, readyMs, healthyMs } = await runContainer(t, name, ['-v', `${dirs.data}:/data`, '-v', `${dirs.run}:/run/metaos`, '-p', '127.0.0.1::8080', STORAGE_IMAGE])
  t.comment(`storage: docker run → ready ${readyMs} ms, → healthy ${healthyMs} ms`)
  t.same(ready.endpoints, ['http://0.0.0.0:8080/storage', 'net.uds:/run/metaos/storage.sock', 'http+unix://%2Frun%2Fmetaos%2Fstorage.http.sock/storage'], 'listens on every interface and on the bus sockets: net.uds, and HTTP for curl')
  const socket = join(dirs.run, 'storage.sock')
  t.ok(existsSync(socket), 'the bus socket appears on the host')
  t.ok(existsSync(join(dirs.run, 'storage.http.sock')), 'and its HTTP sibling')
  const destinations = { http: `http://127.0.0.1:${await publishedPort(name)}/storage`, bus: `net.uds:${socket}`, 'bus-http': `unix:${join(dirs.run, 'storage.http.sock')}` }

  for (const [via, destination] of Object.entries(destinations)) {
    const data = randomBytes(300_000 + via.length)
    const w = await FileStream.open(`${via}.bin`, { mode: FileMode.Create, access: FileAccess.Write, bufferSize: 65536, destination })
    await w.write(data)
    await w.close()
    const r = await FileStream.open(`${via}.bin`, { mode: FileMode.Open, access: FileAccess.Read, bufferSize: 65536, destination })
    const back = Buffer.alloc(data.length + 10)
    let n = 0
    for (let k = await r.read(back, 0, back.length); k > 0; k = await r.read(back, n, back.length - n)) n += k
    await r.close()
    t.equal(n, data.length, `${via}: every byte read back`)
    t.equal(sha(back.subarray(0, n)), sha(data), `${via}: SHA-256 of what was read`)
    const onHost = join(dirs.data, `${via}.bin`)
    t.equal(sha(readFileSync(onHost)), sha(data), `${via}: SHA-256 of the bytes on the host volume`)
    t.equal(statSync(onHost).uid, 10001, `${via}: the file belongs to the container user 10001`)
    const info = (await createStorageProxy(destination).invoke('GetDomainInfo', {})).output
    t.equal(info.hosting, 'container', `${via}: GetDomainInfo says hosting=container`)
    t.equal(info.kernel.release, release(), `${via}: the container runs on the host's kernel`)
  }
  t.equal(await docker('exec', name, 'node', '-e', 'process.stdout.write(`${process.getuid()}:${process.getgid()}`)'), '10001:10001', 'the domain runs as uid 10001')

  // A handle is left open: the drain closes it, and the domain still exits 0.
  const open = await FileStream.open('left-open.bin', { mode: FileMode.Create, access: FileAccess.Write, bufferSize: 0, destination: destinations.http })
  await open.write(Buffer.from('partial'))
  const s = await stop(name)
  t.comment(`storage: docker stop took ${s.ms} ms`)
  t.equal(s.exitCode, 0, 'docker stop: exit code 0 (SIGTERM handled, not SIGKILL)')
  t.notOk(s.oomKilled)
  t.ok(s.ms < STOP_GRACE_S * 1000, 'within the grace time')
  t.match(s.logs, /"signal":"SIGTERM"[^\n]*"msg":"draining"/, 'the domain drained on SIGTERM')
  t.match(s.logs, /"msg":"stopped"/)
  t.notOk(existsSync(socket), 'the bus socket is removed on the way out')
  t.notOk(existsSync(join(dirs.run, 'storage.http.sock')), 'and its HTTP sibling')
  t.equal(readFileSync(join(dirs.data, 'left-open.bin'), 'utf8'), 'partial', 'what was written before the stop is on the volume')
})

t.test('the network image: NetSocket from the host through the container to an echo server on the bridge gateway', { skip }, async (t) => {
  t.teardown(async () => { await closeSharedNetworkProxies() })
  const dirs = tempDirs(t, 'run')
  const net = `metaos-test-net-${randomUUID().slice(0, 8)}`
  await docker('network', 'create', '--driver', 'bridge', net)
  t.teardown(async () => { await docker('network', 'rm', net).catch(() => undefined) })
  const ipam = JSON.parse(await docker('network', 'inspect', '-f', '{{json .IPAM.Config}}', net)) as Array<{ Subnet: string, Gateway: string }>
  const gateway = ipam[0]!.Gateway
  const subnetPrefix = ipam[0]!.Subnet.split('.').slice(0, 2).join('.') + '.'
  // The echo server listens on the bridge's gateway address only: reachable from the containers of
  // this network and from the host, nowhere else.
  const peers: string[] = []
  const echo = createServer((s: Socket) => { peers.push(s.remoteAddress ?? ''); s.pipe(s) })
  echo.listen(0, gateway)
  await once(echo, 'listening')
  t.teardown(() => { echo.close() })
  const port = (echo.address() as AddressInfo).port

  const name = `metaos-test-network-${randomUUID().slice(0, 8)}`
  const { ready, readyMs, healthyMs } = await runContainer(t, name, ['--network', net, '-v', `${dirs.run}:/run/metaos`, '-p', '127.0.0.1::8080', NETWORK_IMAGE,
    '--listen', 'http://0.0.0.0:8080', '--listen', 'net.uds:/run/metaos/network.sock', '--hosting', 'container', '--allow-insecure', '--allow', `${gateway}/32:*`])
  t.comment(`network: docker run → ready ${readyMs} ms, → healthy ${healthyMs} ms`)
  t.equal(ready.service, 'network')
  const destinations = { http: `http://127.0.0.1:${await publishedPort(name)}/network`, bus: `net.uds:${join(dirs.run, 'network.sock')}` }

  for (const [via, destination] of Object.entries(destinations)) {
    const sock = NetSocket.connect({ host: gateway, port, destination })
    const chunks: Buffer[] = []
    sock.on('data', (c: Buffer) => { chunks.push(c) })
    const ended = once(sock, 'end')
    await once(sock, 'connect')
    const data = randomBytes(100_000)
    sock.end(data)
    await ended
    t.equal(sha(Buffer.concat(chunks)), sha(data), `${via}: the echo came back whole`)
    const info = (await createNetworkProxy(destination).invoke('GetDomainInfo', {})).output
    t.equal(info.hosting, 'container', `${via}: GetDomainInfo says hosting=container`)
    t.equal(info.kernel.release, release(), `${via}: the host's kernel`)
    t.same(info.allow.rule, [`${gateway}/32:*`], `${via}: the allow rule given on the command line`)
  }
  t.ok(peers.length === 2 && peers.every((p) => p.replace(/^::ffff:/, '').startsWith(subnetPrefix)), `the echo server saw the container's address on the bridge (${peers.join(', ')})`)

  // A socket whose Receive long-poll is in flight when docker stop comes: the drain ends it.
  const idle = NetSocket.connect({ host: gateway, port, destination: destinations.http })
  idle.on('error', () => undefined)
  await once(idle, 'connect')
  const s = await stop(name)
  t.comment(`network: docker stop with a long-poll in flight took ${s.ms} ms`)
  t.equal(s.exitCode, 0, 'docker stop: exit code 0')
  t.ok(s.ms < STOP_GRACE_S * 1000, 'within the grace time')
  t.match(s.logs, /"msg":"draining"/)
  idle.destroy()
})
