// `metaos storage` as a real process (DESIGN.md §2, §5): the ready line and nothing else on stdout (or the error line with its code when it cannot start),
// the stable EPR, `?wsdl` following the address it was asked on, draining on SIGTERM with calls in
// flight, --help and the errors of the command line, live and stale Unix sockets, GetDomainInfo.
// Runs the compiled CLI (dist/, built by `npm test`'s pretest).
import t, { type Test } from 'tap'
import { runCli, startCli, type Cli, type Exit } from '../helpers/cli-process.js'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { request, type IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { machine, release, tmpdir, type, version } from 'node:os'
import { basename, join } from 'node:path'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { MetaosError } from '../../soap-runtime/errors.js'

const UUID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Ready { event: string, service: string, endpoints: string[], epr: string }

/** Starts `metaos storage …` and returns its parsed ready line. */
async function startStorage (t: Test, args: string[], env?: NodeJS.ProcessEnv): Promise<Cli & { ready: Ready, line: string }> {
  const c = startCli(t, ['storage', ...args], env)
  const line = await c.firstLine
  return { ...c, line, ready: JSON.parse(line) as Ready }
}

async function sigterm (c: Cli): Promise<Exit> {
  c.child.kill('SIGTERM')
  return await c.exited
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-cli-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function proxy (t: Test, endpoint: string, options: Parameters<typeof createStorageProxy>[1] = {}): StorageHandler {
  const p = createStorageProxy(endpoint, options)
  t.teardown(async () => { await p.close() })
  return p
}

function sha256 (b: Buffer): string { return createHash('sha256').update(b).digest('hex') }

interface HttpResult { status: number, headers: IncomingHttpHeaders, body: string }

/** GET over TCP to 127.0.0.1 (with any Host header) or over a Unix socket. */
async function httpGet (target: { port: number, host?: string } | { socketPath: string }, path: string): Promise<HttpResult> {
  return await new Promise((resolve, reject) => {
    const options = 'socketPath' in target
      ? { socketPath: target.socketPath, path }
      : { host: '127.0.0.1', port: target.port, path, headers: target.host === undefined ? {} : { host: target.host } }
    const req = request({ ...options, method: 'GET', agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

function addresses (wsdl: string): { soap11: string[], soap12: string[] } {
  return {
    soap11: [...wsdl.matchAll(/<soap:address\s+location="([^"]*)"/g)].map((m) => m[1]!),
    soap12: [...wsdl.matchAll(/<soap12:address\s+location="([^"]*)"/g)].map((m) => m[1]!),
  }
}

/** Resolves with the error code of a connection attempt, or 'connected'. */
async function tryConnect (target: { port: number } | { path: string }): Promise<string> {
  return await new Promise((resolve) => {
    const s = 'port' in target ? connect(target.port, '127.0.0.1') : connect(target.path)
    s.once('connect', () => { s.destroy(); resolve('connected') })
    s.once('error', (e: NodeJS.ErrnoException) => { resolve(e.code ?? 'error') })
  })
}

async function codeOf (p: Promise<unknown>): Promise<string> {
  try { await p; return 'ok' } catch (e) { return e instanceof MetaosError ? (e.code === 'TRANSPORT_ERROR' ? `${e.code} (${e.message})` : e.code) : `untyped: ${String(e)}` }
}

const portOf = (endpoint: string): number => Number(new URL(endpoint).port)

t.test('ready line: exactly one JSON line, endpoint formats, stable EPR', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'root')
  mkdirSync(root)
  const sock = join(dir, 'bus.sock')
  const args = ['--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${sock}`]

  const a = await startStorage(t, args)
  t.same(Object.keys(a.ready).sort(), ['endpoints', 'epr', 'event', 'service'], 'the ready line has exactly the contract keys')
  t.equal(a.ready.event, 'ready')
  t.equal(a.ready.service, 'storage')
  t.equal(a.ready.endpoints.length, 2, 'one endpoint per --listen')
  const m = /^http:\/\/127\.0\.0\.1:(\d+)\/storage$/.exec(a.ready.endpoints[0]!)
  t.ok(m, `http endpoint ${a.ready.endpoints[0]} is http://127.0.0.1:PORT/storage`)
  t.ok(Number(m?.[1]) > 0 && Number(m?.[1]) < 65536, 'port 0 became a real port')
  t.equal(a.ready.endpoints[1], `http+unix://${encodeURIComponent(sock)}/storage`, 'bus endpoint is http+unix://<percent-encoded path>/storage')
  t.notOk(a.ready.endpoints[1]!.slice('http+unix://'.length).split('/storage')[0]!.includes('/'), 'no raw slash in the encoded socket path')
  t.match(a.ready.epr, UUID, 'EPR is a urn:uuid')
  t.equal(a.line, JSON.stringify(JSON.parse(a.line)), 'the line is compact JSON')

  // Some traffic on both transports: still nothing more on stdout.
  for (const ep of a.ready.endpoints) {
    const info = await proxy(t, ep).invoke('GetDomainInfo', {})
    t.equal(info.output.domainId, a.ready.epr)
  }
  t.equal((await httpGet({ port: portOf(a.ready.endpoints[0]!) }, '/storage?wsdl')).status, 200)
  const ea = await sigterm(a)
  t.same(ea, { code: 0, signal: null }, 'SIGTERM → exit 0')
  t.equal(a.stdout(), a.line + '\n', 'stdout over the whole life of the process is the ready line alone')
  t.notOk(existsSync(sock), 'socket file removed at exit')

  const b = await startStorage(t, args)
  t.equal(b.ready.epr, a.ready.epr, 'same root and name → same EPR after a restart')
  t.same(await sigterm(b), { code: 0, signal: null })
  t.equal(b.stdout(), b.line + '\n')

  const c = await startStorage(t, [...args, '--name', 'other'])
  t.match(c.ready.epr, UUID)
  t.not(c.ready.epr, a.ready.epr, 'a different --name → a different EPR')
  t.same(await sigterm(c), { code: 0, signal: null })

  const d = await startStorage(t, [...args, '--name', 'storage'])
  t.equal(d.ready.epr, a.ready.epr, '--name storage is the default name')
  t.same(await sigterm(d), { code: 0, signal: null })
})

t.test('?wsdl: soap:address and soap12:address follow the address the request came in on', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'root')
  mkdirSync(root)
  const sock = join(dir, 'bus.sock')
  const d = await startStorage(t, ['--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${sock}`])
  const [http, bus] = d.ready.endpoints as [string, string]
  const port = portOf(http)

  const viaFetch = await fetch(`${http}?wsdl`)
  t.equal(viaFetch.status, 200)
  t.match(viaFetch.headers.get('content-type') ?? '', /xml/)
  const text = await viaFetch.text()
  t.match(text, /<wsdl:definitions[^>]*targetNamespace="urn:metaos:storage:v1"/, 'it is the storage WSDL')
  t.same(addresses(text), { soap11: [http], soap12: [http] }, 'fetched at http://127.0.0.1:PORT → that address')

  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
    const r = await httpGet({ port, host }, '/storage?wsdl')
    t.equal(r.status, 200)
    t.same(addresses(r.body), { soap11: [`http://${host}/storage`], soap12: [`http://${host}/storage`] }, `Host ${host} → location follows the Host`)
  }
  const upper = await httpGet({ port, host: `localhost:${port}` }, '/storage?WSDL')
  t.same(addresses(upper.body).soap11, [`http://localhost:${port}/storage`], '?WSDL works too')

  const u = await httpGet({ socketPath: sock }, '/storage?wsdl')
  t.equal(u.status, 200)
  t.match(u.body, /<wsdl:definitions/)
  t.same(addresses(u.body), { soap11: [bus], soap12: [bus] }, 'over the Unix socket → the http+unix endpoint')

  const notFound = await httpGet({ port }, '/elsewhere?wsdl')
  t.equal(notFound.status, 404, 'other paths are not the service')
  t.same(await sigterm(d), { code: 0, signal: null })
  t.equal(d.stdout(), d.line + '\n')
})

t.test('SIGTERM with calls in flight: they finish (or get DOMAIN_DRAINING), new connections are refused, exit 0', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'root')
  mkdirSync(root)
  const sock = join(dir, 'bus.sock')
  // Log level info: the domain logs {"msg":"draining","inFlight":N} on stderr when it takes the signal.
  const d = await startStorage(t, ['--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${sock}`, '--log-level', 'info'])
  const [http, bus] = d.ready.endpoints as [string, string]
  const port = portOf(http)
  const N = 20
  const SIZE = 4 * 1024 * 1024
  const proxies = [proxy(t, http, { maxSockets: 32, caller: 'drain-http' }), proxy(t, bus, { maxSockets: 32, caller: 'drain-bus' })]
  const payloads = Array.from({ length: N }, () => randomBytes(SIZE))
  const handles = await Promise.all(payloads.map(async (_, i) =>
    (await proxies[i % 2]!.invoke('Open', { path: `w${i}.bin`, mode: 'Create', access: 'Write', share: 'None' })).output.handle))

  // A slow client over HTTP: a 1 MiB Write whose body is only half sent when SIGTERM arrives.
  const slowCaller = 'slow-client'
  const slowHandle = (await proxy(t, http, { caller: slowCaller }).invoke('Open', { path: 'slow.bin', mode: 'Create', access: 'Write', share: 'None' })).output.handle
  const slowData = randomBytes(1024 * 1024)
  const slowBody = Buffer.from('<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">' +
    `<s:Header><Caller xmlns="urn:metaos:v1">${slowCaller}</Caller></s:Header>` +
    `<s:Body><Write xmlns="urn:metaos:storage:v1"><handle>${slowHandle}</handle><data>${slowData.toString('base64')}</data></Write></s:Body></s:Envelope>`)
  const half = Math.floor(slowBody.length / 2)
  const slowReq = request({ host: '127.0.0.1', port, path: '/storage', method: 'POST', agent: false, headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"urn:metaos:storage:v1/Write"', 'Content-Length': String(slowBody.length) } })
  const slowRes = new Promise<HttpResult>((resolve, reject) => {
    slowReq.on('response', (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
      res.on('error', reject)
    })
    slowReq.on('error', reject)
  })
  slowRes.catch(() => undefined)
  await new Promise<void>((resolve) => { slowReq.write(slowBody.subarray(0, half), () => { resolve() }) })

  // The 20 writes of 4 MiB, over HTTP and the bus.
  const finished: boolean[] = payloads.map(() => false)
  const results = payloads.map(async (data, i) => {
    try { return await codeOf(proxies[i % 2]!.invoke('Write', { handle: handles[i]!, data }).then((r) => { if (r.output.written !== SIZE) throw new Error(`written ${r.output.written}`) })) } finally { finished[i] = true }
  })
  // Barrier: a call sent after all the writes came back, so the domain has read their requests.
  await new Promise((resolve) => setTimeout(resolve, 20))
  await proxy(t, http).invoke('GetDomainInfo', {})
  const inFlightClient = finished.filter((f) => !f).length
  d.child.kill('SIGTERM')
  const deadline = Date.now() + 10_000
  while (!/"msg":"draining"/.test(d.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  const draining = d.stderr().split('\n').find((l) => l.includes('"msg":"draining"'))
  t.ok(draining, 'the domain took the signal and drains')
  const inFlight = draining === undefined ? -1 : (JSON.parse(draining) as { inFlight: number }).inFlight
  t.comment(`writes unfinished at SIGTERM: ${inFlightClient} of ${N}; the domain reported ${inFlight} calls in flight`)
  t.ok(inFlight >= 1, 'at least the slow call was in flight at SIGTERM')

  // Draining: the process is alive (the slow call holds it) and takes no new connections.
  t.equal(d.child.exitCode, null, 'still draining')
  const tcp = await tryConnect({ port })
  if (tcp === 'connected') {
    // The port is free once the domain closed it: a process of a test running beside this one may
    // have taken it. Only the draining domain itself answering would be a failure.
    const p = createStorageProxy(http, { timeoutMs: 2000 })
    const who = await p.invoke('GetDomainInfo', {}).then((r) => r.output.domainId, (e: unknown) => String(e))
    await p.close()
    t.not(who, d.ready.epr, `new TCP connections do not reach the draining domain (port ${port} was taken by another process: ${who})`)
  } else t.equal(tcp, 'ECONNREFUSED', 'new TCP connections are refused')
  t.match(await tryConnect({ path: sock }), /^(ENOENT|ECONNREFUSED)$/, 'new bus connections are refused')
  t.equal(d.child.exitCode, null, 'still draining after the refusals')

  await new Promise<void>((resolve) => { slowReq.end(slowBody.subarray(half), () => { resolve() }) })
  const slow = await slowRes
  const codes = await Promise.all(results)
  const exit = await d.exited
  t.same(exit, { code: 0, signal: null }, 'exit code 0 after the drain')
  t.notOk(existsSync(sock), 'the Unix socket file is removed')
  t.equal(d.stdout(), d.line + '\n', 'nothing but the ready line on stdout')

  for (const [i, code] of codes.entries()) {
    t.ok(code === 'ok' || code === 'DOMAIN_DRAINING', `write ${i}: ${code}`)
    const onDisk = readFileSync(join(root, `w${i}.bin`))
    if (code === 'ok') t.equal(sha256(onDisk), sha256(payloads[i]!), `write ${i}: the bytes on disk are the bytes sent`)
    else t.equal(onDisk.length, 0, `write ${i}: a refused call left the file untouched`)
  }
  t.comment(`writes: ${codes.filter((c) => c === 'ok').length} completed, ${codes.filter((c) => c === 'DOMAIN_DRAINING').length} DOMAIN_DRAINING`)

  const slowOnDisk = readFileSync(join(root, 'slow.bin'))
  if (slow.status === 200) {
    t.match(slow.body, /<written>1048576<\/written>/, 'the slow call finished')
    t.equal(sha256(slowOnDisk), sha256(slowData), 'and its bytes are on disk')
  } else {
    t.equal(slow.status, 500, 'the slow call got a SOAP fault')
    t.match(slow.body, /<code>DOMAIN_DRAINING<\/code>/, 'typed DOMAIN_DRAINING, not a reset')
    t.equal(slowOnDisk.length, 0)
  }
})

t.test('--help, usage errors and bad roots', async (t) => {
  for (const args of [['--help'], ['storage', '--help'], ['up', '--help'], ['bench', '--help'], ['storage', '-h']]) {
    const r = await runCli(t, args)
    t.equal(r.code, 0, `metaos ${args.join(' ')} exits 0`)
    t.match(r.stdout, args.length === 1 ? /^usage: metaos / : new RegExp(`^usage: metaos ${args[0]} `), `metaos ${args.join(' ')} prints usage`)
    t.equal(r.stderr, '', 'nothing on stderr')
  }
  const dir = tempDir(t)
  const root = join(dir, 'root')
  mkdirSync(root)

  const unknown = await runCli(t, ['storage', '--root', root, '--bogus'])
  t.equal(unknown.code, 2, 'unknown option → exit 2')
  t.equal(unknown.stderr, 'metaos storage: --bogus is not an option (--help lists them)\n', 'one line naming the option')
  t.equal(unknown.stdout, '', 'no ready line')
  const upUnknown = await runCli(t, ['up', '--bogus'])
  t.equal(upUnknown.code, 2)
  t.match(upUnknown.stderr, /^metaos up: --bogus is not an option/)
  const noCommand = await runCli(t, ['frobnicate'])
  t.equal(noCommand.code, 2, 'unknown command → exit 2')
  t.match(noCommand.stderr, /unknown command "frobnicate"/)

  const noRoot = await runCli(t, ['storage', '--listen', 'http://127.0.0.1:0'])
  t.equal(noRoot.code, 2, 'missing --root → exit 2')
  t.equal(noRoot.stderr, 'metaos storage: --root is required; it takes the directory to serve\n', 'one line')
  t.equal(noRoot.stdout, '')

  const missing = await runCli(t, ['storage', '--root', join(dir, 'does-not-exist')])
  t.not(missing.code, 0, 'missing root → non-zero exit')
  t.equal(missing.signal, null)
  t.match(missing.stderr, /FILE_NOT_FOUND/)
  t.match(JSON.parse(missing.stdout), { event: 'error', service: 'storage', code: 'FILE_NOT_FOUND' }, 'no ready line: the error line, with the code')

  const badValue = await runCli(t, ['storage', '--root', root, '--idle-handle-ms', 'soon'])
  t.equal(badValue.code, 2, 'a bad number → exit 2')
  t.equal(badValue.stderr, 'metaos storage: --idle-handle-ms takes a positive integer; got "soon"\n', 'one line naming the option and what it takes')
  const badSla = await runCli(t, ['storage', '--root', root, '--sla', '5'])
  t.equal(badSla.code, 2, '--sla 5 → exit 2')
  t.equal(badSla.stderr, 'metaos storage: --sla takes a number from 0 to 1; got "5"\n', 'one line, no stack trace')
})

t.test('Unix sockets: a live domain\'s socket is refused, a stale one is replaced', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'root')
  mkdirSync(root)
  const sock = join(dir, 'bus.sock')

  const live = await startStorage(t, ['--root', root, '--listen', `unix:${sock}`])
  const second = await runCli(t, ['storage', '--root', root, '--name', 'second', '--listen', `unix:${sock}`])
  t.not(second.code, 0, 'a socket another live domain listens on → non-zero exit')
  t.match(second.stderr, /ALREADY_EXISTS|listening/)
  t.match(JSON.parse(second.stdout), { event: 'error', code: 'ALREADY_EXISTS' }, 'no ready line: the error line, with the code')
  t.ok(lstatSync(sock).isSocket(), 'the live domain keeps its socket')
  const info = await proxy(t, live.ready.endpoints[0]!).invoke('GetDomainInfo', {})
  t.equal(info.output.domainId, live.ready.epr, 'and keeps serving on it')
  t.same(await sigterm(live), { code: 0, signal: null })

  // A domain killed hard leaves its socket file behind.
  const killed = await startStorage(t, ['--root', root, '--listen', `unix:${sock}`])
  killed.child.kill('SIGKILL')
  t.same(await killed.exited, { code: null, signal: 'SIGKILL' })
  t.ok(lstatSync(sock).isSocket(), 'a stale socket file is left over')
  t.equal(await tryConnect({ path: sock }), 'ECONNREFUSED', 'nobody listens on it')

  const next = await startStorage(t, ['--root', root, '--listen', `unix:${sock}`])
  t.equal(next.ready.endpoints[0], `http+unix://${encodeURIComponent(sock)}/storage`, 'the new domain starts on the same path')
  const p = proxy(t, next.ready.endpoints[0]!)
  const h = (await p.invoke('Open', { path: 'after-stale.txt', mode: 'CreateNew', access: 'Write', share: 'None' })).output.handle
  await p.invoke('Write', { handle: h, data: Buffer.from('hello') })
  await p.invoke('Close', { handle: h })
  t.equal(readFileSync(join(root, 'after-stale.txt'), 'utf8'), 'hello', 'and serves calls')
  t.equal(lstatSync(sock).mode & 0o777, 0o600, 'the bus socket is for this user only')
  t.same(await sigterm(next), { code: 0, signal: null })
  t.notOk(existsSync(sock))

  // A regular file where the socket should go is somebody's data: never replaced.
  const notes = join(dir, 'notes.txt')
  writeFileSync(notes, 'precious')
  const refused = await runCli(t, ['storage', '--root', root, '--listen', `unix:${notes}`])
  t.not(refused.code, 0, 'a --listen path that is a regular file → non-zero exit')
  t.match(refused.stderr, /ALREADY_EXISTS.*not a socket/)
  t.equal(readFileSync(notes, 'utf8'), 'precious', 'and the file is untouched')
})

t.test('GetDomainInfo over the proxy: kernel facts, hosting, volume, transports, uptime, domainId', async (t) => {
  const dir = tempDir(t)
  const root = join(dir, 'my root')
  mkdirSync(root)
  const sock = join(dir, 'bus.sock')
  const d = await startStorage(t, ['--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${sock}`, '--volume', 'myvol'])
  for (const ep of d.ready.endpoints) {
    const p = proxy(t, ep)
    const r = await p.invoke('GetDomainInfo', {})
    const info = r.output
    t.equal(info.domainId, d.ready.epr, `${ep}: domainId is the EPR`)
    t.equal(info.volume, 'myvol', '--volume sets the volume')
    t.equal(info.hosting, 'process')
    t.same(info.kernel, { sysname: type(), release: release(), version: version(), machine: machine() }, 'the real kernel facts')
    t.equal(info.runtime, `node/${process.versions.node}`)
    t.same(info.transports.transport, d.ready.endpoints, 'transports are the ready line\'s endpoints')
    t.type(info.uptime, 'number')
    t.ok(info.uptime >= 0 && info.uptime < 60, `uptime ${info.uptime} s`)
    t.type(r.serviceMicros, 'number', 'the ServiceTiming header came back')
    t.ok(r.totalMicros >= (r.serviceMicros ?? 0))
    await new Promise((resolve) => setTimeout(resolve, 30))
    t.ok((await p.invoke('GetDomainInfo', {})).output.uptime >= info.uptime, 'uptime does not go back')
  }
  t.same(await sigterm(d), { code: 0, signal: null })

  // Default volume: derived from the root's real path — the same through a symlink, another for another root.
  const link = join(dir, 'link')
  symlinkSync(root, link)
  const other = join(dir, 'other')
  mkdirSync(other)
  const volumes: string[] = []
  for (const [r, name] of [[root, 'a'], [link, 'b'], [other, 'c']] as const) {
    const x = await startStorage(t, ['--root', r, '--name', name])
    volumes.push((await proxy(t, x.ready.endpoints[0]!).invoke('GetDomainInfo', {})).output.volume)
    t.same(await sigterm(x), { code: 0, signal: null })
  }
  t.match(volumes[0], /^[A-Za-z0-9._~-]{1,100}$/, `default volume ${volumes[0]} is a plain name`)
  t.ok(volumes[0]!.startsWith(basename(root).replace(/[^A-Za-z0-9._-]/g, '-')), 'it starts with the root\'s name')
  t.equal(volumes[1], volumes[0], 'a symlink to the same root → the same volume')
  t.not(volumes[2], volumes[0], 'another root → another volume')
})
