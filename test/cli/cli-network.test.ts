// `metaos network` as a real process (DESIGN.md §3, §5): the ready line and nothing else on stdout,
// the stable EPR, `?wsdl` at the HTTP endpoint, GetDomainInfo with the allow-list in force, a
// connection made through the domain, --allow and limit errors as usage errors (exit 2), and
// SIGTERM: waiting calls answer at once, every socket is closed, exit 0.
// Runs the compiled CLI (dist/, built by `npm test`'s pretest).
import t, { type Test } from 'tap'
import { runCli, startCli, type Cli } from '../helpers/cli-process.js'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createNetworkProxy, type NetworkHandler } from '../../frontend/handlers/network-handler.js'

const UUID = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[1-5][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Ready { event: string, service: string, endpoints: string[], epr: string }

async function startNetwork (t: Test, args: string[]): Promise<Cli & { ready: Ready, line: string }> {
  const c = startCli(t, ['network', ...args])
  const line = await c.firstLine
  return { ...c, line, ready: JSON.parse(line) as Ready }
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-cli-net-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

function proxy (t: Test, endpoint: string): NetworkHandler {
  const p = createNetworkProxy(endpoint, { caller: 'urn:test:cli' })
  t.teardown(async () => { await p.close() })
  return p
}

t.test('ready line, stable EPR, GetDomainInfo, a connection through the domain, SIGTERM → exit 0', async (t) => {
  const dir = tempDir(t)
  const sock = join(dir, 'net.sock')
  const args = ['--listen', 'http://127.0.0.1:0', '--listen', `unix:${sock}`]
  const a = await startNetwork(t, args)
  t.same(Object.keys(a.ready).sort(), ['endpoints', 'epr', 'event', 'service'], 'the ready line has exactly the contract keys')
  t.same([a.ready.event, a.ready.service], ['ready', 'network'])
  t.match(a.ready.endpoints[0], /^http:\/\/127\.0\.0\.1:\d+\/network$/)
  t.equal(a.ready.endpoints[1], `http+unix://${encodeURIComponent(sock)}/network`)
  t.match(a.ready.epr, UUID)
  t.equal(a.line, JSON.stringify(JSON.parse(a.line)), 'compact JSON')

  const echoSockets = new Set<Socket>()
  const echo = createServer((s) => { echoSockets.add(s); s.on('error', () => undefined); s.pipe(s) })
  await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', () => { resolve() }) })
  t.teardown(async () => { for (const s of echoSockets) s.destroy(); await new Promise<void>((resolve) => { echo.close(() => { resolve() }) }) })
  const port = (echo.address() as { port: number }).port
  for (const ep of a.ready.endpoints) {
    const p = proxy(t, ep)
    const info = (await p.invoke('GetDomainInfo', {})).output
    t.equal(info.domainId, a.ready.epr)
    t.same(info.allow.rule, ['127.0.0.0/8:*', '::1/128:*'], 'loopback only by default')
    const { socket } = (await p.invoke('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 2000 })).output
    await p.invoke('Send', { socket, data: Buffer.from('through the CLI') })
    t.equal((await p.invoke('Receive', { socket, maxBytes: 100, timeoutMs: 2000 })).output.data.toString(), 'through the CLI')
    await p.invoke('Close', { socket })
  }

  // A call waiting on a socket must not hold the drain up for its 30 s.
  const p = proxy(t, a.ready.endpoints[0]!)
  const { socket } = (await p.invoke('Connect', { host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 2000 })).output
  const waiting = p.invoke('Receive', { socket, maxBytes: 100, timeoutMs: 30_000 })
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  a.child.kill('SIGTERM')
  t.same((await waiting).output, { data: Buffer.alloc(0), closed: false }, 'the waiting Receive answered at once')
  t.same(await a.exited, { code: 0, signal: null }, 'SIGTERM → exit 0')
  t.ok(Date.now() - started < 5000, 'promptly')
  t.equal(a.stdout(), a.line + '\n', 'stdout over the whole life of the process is the ready line alone')
  t.notOk(existsSync(sock), 'socket file removed at exit')

  const b = await startNetwork(t, args)
  t.equal(b.ready.epr, a.ready.epr, 'same host and name → same EPR after a restart')
  b.child.kill('SIGTERM')
  t.same(await b.exited, { code: 0, signal: null })
  const c = await startNetwork(t, [...args, '--name', 'other'])
  t.not(c.ready.epr, a.ready.epr, 'another --name → another EPR')
  c.child.kill('SIGINT')
  t.same(await c.exited, { code: 0, signal: null }, 'SIGINT → exit 0 too')
})

t.test('?wsdl is served at the HTTP endpoint with its own address', async (t) => {
  const d = await startNetwork(t, [])
  const http = d.ready.endpoints[0]!
  const res = await fetch(`${http}?wsdl`)
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type') ?? '', /xml/)
  const text = await res.text()
  t.match(text, /<wsdl:definitions[^>]*targetNamespace="urn:metaos:network:v1"/, 'the network WSDL')
  t.same([...text.matchAll(/<soap(?:12)?:address\s+location="([^"]*)"/g)].map((m) => m[1]), [http, http], 'soap:address and soap12:address are the endpoint asked on')
  d.child.kill('SIGTERM')
  t.same(await d.exited, { code: 0, signal: null })
})

t.test('--allow: the rules in force; a bad rule is a usage error naming it (exit 2)', async (t) => {
  const d = await startNetwork(t, ['--allow', '127.0.0.2/32:80,443', '--allow', '[::1]/128:8000-8100'])
  const info = (await proxy(t, d.ready.endpoints[0]!).invoke('GetDomainInfo', {})).output
  t.same(info.allow.rule, ['127.0.0.2/32:80,443', '[::1]/128:8000-8100'], 'exactly the rules given, replacing the default')
  d.child.kill('SIGTERM')
  t.same(await d.exited, { code: 0, signal: null })

  for (const [rule, why] of [['10.0.0.0/8', /no ":PORTS"/], ['10.0.0.0/33:80', /prefix/], ['10.0.0.0/8:0', /port "0"/], ['example.com/32:80', /not an IPv4 or IPv6 address/], ['10.0.0.0/8:90-80', /backwards/]] as const) {
    const r = await runCli(t, ['network', '--allow', '127.0.0.0/8:*', '--allow', rule])
    t.equal(r.code, 2, `--allow ${rule} → exit 2`)
    t.match(r.stderr, `metaos network: --allow takes a rule CIDR:PORTS`, 'stderr names the option')
    t.match(r.stderr, `got "${rule}"`, 'and the rule')
    t.match(r.stderr, why)
    t.equal(r.stderr.split('\n').length, 2, 'on one line')
    t.equal(r.stdout, '', 'and nothing on stdout')
  }
  for (const [flag, value] of [['--max-sockets', 'many'], ['--idle-socket-ms', '0'], ['--max-buffered-bytes', '-5']] as const) {
    const r = await runCli(t, ['network', `${flag}=${value}`])
    t.equal(r.code, 2, `${flag}=${value} → exit 2`)
    t.equal(r.stderr, `metaos network: ${flag} takes a positive integer; got "${value}"\n`)
  }
  const unknown = await runCli(t, ['network', '--no-such-option'])
  t.equal(unknown.code, 2, 'an unknown option → exit 2')
})

t.test('--help, and `metaos` lists the command', async (t) => {
  const h = await runCli(t, ['network', '--help'])
  t.equal(h.code, 0)
  t.match(h.stdout, /^usage: metaos network/)
  t.match(h.stdout, /--allow CIDR:PORTS/)
  const top = await runCli(t, ['--help'])
  t.match(top.stdout, /^ {2}network +run a network domain/m)
})
