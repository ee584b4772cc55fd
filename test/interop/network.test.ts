// Interop of the network service contract (wsdl/NetworkService.wsdl) with real peers, against one
// real network domain on 127.0.0.1 (default allow-list: loopback only) and a real TCP echo server:
// 1. python-zeep loads `?wsdl` and, over the SOAP 1.1 and the SOAP 1.2 port, runs Connect/Send/
//    Receive/Shutdown/Receive-until-closed/Close through the echo, ResolveHost('localhost'), and
//    gets typed NetworkFaults (DESTINATION_NOT_ALLOWED, INVALID_HANDLE) (network/zeep_client.py).
// 2. gSOAP: wsdl2h + soapcpp2 on the served WSDL, a C++ client (network/client.cpp) compiled with
//    g++ and libgsoap++ does Connect/Send/Receive/Close and a Receive on the closed handle.
// 3. Our own proxy over SOAP 1.2 with MTOM forced: 8 MiB through the echo, SHA-256 equal, and the
//    bytes on the wire seen by a plain HTTP relay: multipart/related packages, raw binary parts.
// 4. WCF as Mono ships it (network/NetworkClient.cs, mcs): Connect/Send/Receive/Close and a typed
//    fault, over BasicHttpBinding and a SOAP 1.2 CustomBinding.
// Each peer skips with its reason when its tool is missing. After each part, and at the end, the
// engine holds no socket. Everything generated goes to temporary directories.
import t, { type Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, request as httpRequest, Agent, type IncomingHttpHeaders } from 'node:http'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startNetworkDomain } from '../../backend-network/network-domain.js'
import { createNetworkProxy } from '../../frontend/handlers/network-handler.js'
import { which } from '../helpers/which.js'
import { partMissing } from '../helpers/require-part.js'
import { parseLines, runPeer } from '../helpers/run-peer.js'

const here = dirname(fileURLToPath(import.meta.url))
// Works from test/interop (tap runs the .ts) and from dist/test/interop (compiled copy).
const sourceDir = [resolve(here, 'network'), resolve(here, '../../../test/interop/network')].find((d) => existsSync(join(d, 'client.cpp')))
const NS = 'urn:metaos:network:v1'
const PYTHON = '/usr/bin/python3' // the system Python, which has Debian's python3-zeep (not pyenv's python3 on PATH)

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')



/** Lines `key=value` → object. */

/** Bytes that must survive every encoding: NUL, 0xFF, '<', '&', then random ones. */
function payload (size: number): Buffer {
  const b = randomBytes(size)
  b[0] = 0; b[1] = 0xff; b[2] = 0x3c; b[3] = 0x26
  return b
}

// ── The domain and the echo server every part talks to ──────────────────────────────────────────

const domain = await startNetworkDomain({ listen: ['http://127.0.0.1:0'] })
const endpoint = domain.endpoints[0]!
const echoSockets = new Set<Socket>()
/** Echoes, and ends its side once the client ended (so Shutdown → closed is visible). */
const echo = createServer({ allowHalfOpen: true }, (s) => {
  echoSockets.add(s)
  s.on('close', () => echoSockets.delete(s))
  s.on('error', () => undefined)
  s.pipe(s)
})
await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', () => { resolve() }) })
const echoPort = (echo.address() as { port: number }).port
t.teardown(async () => {
  await domain.close(1000)
  for (const s of echoSockets) s.destroy()
  await new Promise<void>((resolve) => { echo.close(() => { resolve() }) })
})

/** Nothing leaks: once a peer closed its handles, the engine holds no socket, listener or byte. */
function noLeaks (t: Test, who: string): void {
  const s = domain.engine.stats
  t.same({ sockets: s.sockets, listeners: s.listeners, bufferedBytes: s.bufferedBytes }, { sockets: 0, listeners: 0, bufferedBytes: 0 }, `after ${who}, the engine holds no socket`)
}

// ── 1. python-zeep ──────────────────────────────────────────────────────────────────────────────

interface ZeepFault { code: string, message: string, detailTag: string | null, detailXml: string | null, networkFaultCode: string | null, networkFaultMessage: string | null }
interface ZeepResult {
  error?: string
  traceback?: string
  address: string
  binding: string
  connect: { socketLength: number, localAddress: string, localPort: number, remoteAddress: string, remotePort: number }
  sent: number
  echoHex: string
  shutdown: string
  closed: boolean
  bytesAfterShutdown: number
  close: string
  resolved: string[]
  timings: Array<number | null>
  notAllowed: ZeepFault | null
  invalidHandle: ZeepFault | null
}

let zeepMissing: string | false = false
if (sourceDir === undefined) zeepMissing = partMissing('zeep_client.py', 'test/interop/network/zeep_client.py does not exist', 'a complete checkout of the repository')
else {
  try {
    execFileSync(PYTHON, ['-c', 'import zeep, lxml'], { stdio: 'pipe', timeout: 10_000 })
  } catch (e) {
    zeepMissing = partMissing('zeep', `${PYTHON} cannot import zeep and lxml (${(e as Error).message.split('\n')[0]})`, 'apt-get install python3-zeep')
  }
}

t.test('zeep: Connect/Send/Receive/Shutdown/Close through the echo, ResolveHost, typed faults', { skip: zeepMissing }, async (t) => {
  const ports = [
    { port: 'NetworkSoap11', soapFaultCode: 's:Client', detailTag: 'detail' },
    { port: 'NetworkSoap12', soapFaultCode: 's:Sender', detailTag: '{http://www.w3.org/2003/05/soap-envelope}Detail' },
  ] as const
  for (const p of ports) {
    await t.test(p.port, async (t) => {
      const data = payload(16 * 1024)
      const r = await runPeer(PYTHON, [join(sourceDir!, 'zeep_client.py'), `${endpoint}?wsdl`, p.port, String(echoPort), data.toString('hex')],
        { cwd: tmpdir(), timeout: 30_000, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } })
      let z: ZeepResult | undefined
      try { z = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ZeepResult } catch { z = undefined }
      if (z === undefined || z.error !== undefined || r.code !== 0) {
        t.fail('zeep client failed', { error: z?.error, traceback: z?.traceback, stdout: r.stdout.slice(0, 4000), stderr: r.stderr.slice(0, 4000) })
        return
      }
      t.equal(z.address, endpoint, 'soap:address of the served WSDL is the live endpoint')
      t.equal(z.binding, `{${NS}}${p.port}Binding`, 'zeep bound the port\'s binding')
      t.ok(z.connect.socketLength >= 22, 'Connect returned an opaque handle')
      t.same({ address: z.connect.remoteAddress, port: z.connect.remotePort }, { address: '127.0.0.1', port: echoPort }, 'connected to the echo server')
      t.equal(z.connect.localAddress, '127.0.0.1')
      t.equal(z.sent, data.length, 'Send took every byte')
      t.equal(z.echoHex, data.toString('hex'), 'Receive returned the bytes sent, echoed')
      t.equal(z.shutdown, 'ok')
      t.equal(z.closed, true, 'after Shutdown, Receive reports closed once the echo ended its side')
      t.equal(z.bytesAfterShutdown, 0, 'nothing more came after the echo')
      t.equal(z.close, 'ok')
      t.ok(z.resolved.some((a) => a === '127.0.0.1' || a === '::1'), `ResolveHost('localhost') → ${z.resolved.join(', ')}`)
      t.ok(z.timings.length >= 7 && z.timings.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0), 'zeep read the ServiceTiming header (xs:long) of every response')

      for (const [what, f, code] of [['Connect to 10.255.255.1:80', z.notAllowed, 'DESTINATION_NOT_ALLOWED'], ['Receive on a made-up socket', z.invalidHandle, 'INVALID_HANDLE']] as const) {
        if (f === null) { t.fail(`${what} raised no Fault`); continue }
        t.equal(f.code, p.soapFaultCode, `${what}: a caller error is a ${p.soapFaultCode} fault`)
        t.equal(f.detailTag, p.detailTag, `${what}: detail element of SOAP ${p.port.endsWith('12') ? '1.2' : '1.1'}`)
        t.equal(f.networkFaultCode, code, `${what}: NetworkFault/code ${code}`)
        t.match(f.detailXml, `<NetworkFault xmlns="${NS}">`, `${what}: the detail is a NetworkFault element`)
      }
      t.match(z.notAllowed?.networkFaultMessage, /10\.255\.255\.1/)
      noLeaks(t, `zeep over ${p.port}`)
    })
  }
})

// ── 2. gSOAP ────────────────────────────────────────────────────────────────────────────────────

/** Warnings other than the one wsdl2h prints for a WSDL with a SOAP 1.1 and a SOAP 1.2 binding (without -N). */
/** Warnings other than the expected: several bindings in one service, and the callback binding on net.tcp (NetworkCallbackBinding: the domain calls it on a framed session; gSOAP speaks HTTP). */
function unexpectedWarnings (output: string): string[] {
  return output.split('\n').filter((l) => /warning/i.test(l) && !/service bindings found, but collected as one service/.test(l) && !/ignoring RESTful binding "NetworkCallbackBinding" because of non-SOAP transport "http:\/\/schemas\.microsoft\.com\/soap\/tcp"/.test(l))
}

const wsdl2h = which('wsdl2h')
const soapcpp2 = which('soapcpp2')
const gsoapMissing = wsdl2h === undefined || soapcpp2 === undefined ? partMissing('gSOAP', 'wsdl2h or soapcpp2 is not on PATH', 'apt-get install gsoap libgsoap-dev') : false

t.test('gSOAP: code generated from the served WSDL compiles, and its client echoes bytes (SOAP 1.1 and 1.2)', { skip: gsoapMissing }, async (t) => {
  const importDir = ['/usr/share/gsoap/import', '/usr/local/share/gsoap/import'].find((d) => existsSync(join(d, 'soap12.h'))) ?? '/usr/share/gsoap/import'
  const defaultTypemap = ['/usr/share/gsoap/WS/typemap.dat', '/usr/local/share/gsoap/WS/typemap.dat'].find((f) => existsSync(f))
  const dir = mkdtempSync(join(tmpdir(), 'metaos-gsoap-net-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

  // The schema namespace gets the prefix `net`, and -N gives each binding its own proxy class.
  writeFileSync(join(dir, 'typemap.dat'), (defaultTypemap !== undefined ? readFileSync(defaultTypemap, 'utf8') : '') + `\nnet = "${NS}"\n`)
  const w = await runPeer(wsdl2h!, ['-t', 'typemap.dat', '-Nsvc', '-o', 'network.h', `${endpoint}?wsdl`], { cwd: dir })
  t.equal(w.code, 0, 'wsdl2h on ?wsdl exits 0', { output: w.output })
  t.notMatch(w.output, /error/i, 'wsdl2h reports no error')
  t.same(unexpectedWarnings(w.output), [], 'wsdl2h reports no warning')
  const header = existsSync(join(dir, 'network.h')) ? readFileSync(join(dir, 'network.h'), 'utf8') : ''
  for (const op of ['Connect', 'Send', 'Receive', 'SendTo', 'ReceiveFrom', 'Listen', 'Accept', 'Shutdown', 'Close', 'ResolveHost', 'Batch', 'GetDomainInfo']) {
    t.match(header, new RegExp(`int __svc__${op}\\(`), `operation ${op} is declared`)
  }
  t.match(header, /LONG64\*\s+net__ServiceTiming/, 'ServiceTiming is a SOAP header (xsd:long)')
  const s = await runPeer(soapcpp2!, ['-j', '-C', '-x', `-I${importDir}`, 'network.h'], { cwd: dir })
  t.equal(s.code, 0, 'soapcpp2 exits 0', { output: s.output })
  t.notMatch(s.output, /error/i, 'soapcpp2 reports no error')
  t.same(unexpectedWarnings(s.output), [], 'soapcpp2 reports no warning')
  if (w.code !== 0 || s.code !== 0) return
  const proxy11 = readFileSync(join(dir, 'soapNetworkSoap11BindingProxy.cpp'), 'utf8')
  t.ok(proxy11.includes(`"${endpoint}"`), 'the served WSDL carries the live endpoint as soap:address')

  const gxx = which('g++')
  const haveHeader = ['/usr/include/stdsoap2.h', '/usr/local/include/stdsoap2.h'].some((f) => existsSync(f))
  if (gxx === undefined || !haveHeader || sourceDir === undefined) {
    const why = gxx === undefined ? 'g++ is not on PATH' : !haveHeader ? 'stdsoap2.h does not exist (libgsoap-dev)' : 'test/interop/network/client.cpp does not exist'
    await t.test('the C++ client echoes bytes', { skip: partMissing('the gSOAP C++ toolchain', `cannot build the C++ client: ${why}`, 'apt-get install g++ pkg-config libgsoap-dev') }, () => undefined)
    return
  }
  // Compile flags must match how libgsoap++ was built (Debian: -DWITH_IPV6 -DWITH_DOM): they change struct soap.
  let cflags = ['-DWITH_IPV6', '-DWITH_DOM']
  let libs = ['-lgsoap++']
  if (which('pkg-config') !== undefined) {
    const c = await runPeer('pkg-config', ['--cflags', 'gsoap++'], { cwd: dir })
    const l = await runPeer('pkg-config', ['--libs', 'gsoap++'], { cwd: dir })
    if (c.code === 0 && l.code === 0) {
      cflags = c.stdout.trim().split(/\s+/).filter(Boolean)
      libs = l.stdout.trim().split(/\s+/).filter(Boolean)
    }
  }
  const sources = [join(sourceDir, 'client.cpp'), 'soapC.cpp', 'soapNetworkSoap11BindingProxy.cpp', 'soapNetworkSoap12BindingProxy.cpp']
  const cc = await runPeer(gxx, ['-O0', '-w', ...cflags, '-I.', '-o', 'client', ...sources, ...libs], { cwd: dir, timeout: 150_000 })
  t.equal(cc.code, 0, 'g++ builds the client', { output: cc.output })
  if (cc.code !== 0) return

  for (const version of ['1.1', '1.2'] as const) {
    await t.test(`SOAP ${version}`, async (t) => {
      const data = payload(3000)
      const r = await runPeer(join(dir, 'client'), [endpoint, version, String(echoPort), data.toString('hex')], { cwd: dir, timeout: 30_000 })
      const out = parseLines(r.stdout)
      t.equal(r.code, 0, 'client exits 0', { stdout: r.stdout.slice(0, 4000), stderr: r.stderr.slice(0, 4000) })
      t.equal(out['response.soapVersion'], version === '1.1' ? '1' : '2', `the domain answered in SOAP ${version}`)
      t.match(out['connect.socket'], /^\S{22,}$/, 'Connect returned a handle')
      t.equal(out['connect.remoteAddress'], '127.0.0.1')
      t.equal(out['connect.remotePort'], String(echoPort))
      t.equal(out['send.sent'], String(data.length), 'Send took every byte')
      t.equal(out['receive.hex'], data.toString('hex'), 'the client printed the echoed bytes')
      t.equal(out.close, 'ok')
      for (const op of ['connect', 'send', 'receive', 'close']) {
        t.match(out[`${op}.timing`], /^\d+$/, `gSOAP parsed the ServiceTiming header of ${op}`)
      }
      t.equal(out['fault.soapVersion'], version === '1.1' ? '1' : '2', 'the fault is in the request\'s SOAP version')
      t.match(out['fault.soapCode'], version === '1.1' ? /:Client$/ : /:Sender$/, 'a caller error is a Client/Sender fault')
      t.equal(out['fault.code'], 'INVALID_HANDLE', 'a Receive on the closed handle: typed NetworkFault INVALID_HANDLE')
      noLeaks(t, `gSOAP over SOAP ${version}`)
    })
  }
})

// ── 3. Our own proxy: SOAP 1.2 with MTOM forced ─────────────────────────────────────────────────

interface Exchange {
  readonly requestType: string
  readonly accept: string
  readonly request: Buffer
  responseType: string
  responseLength: number
}

/**
 * A plain HTTP relay in front of the domain that keeps what went over the wire: each request's
 * Content-Type, Accept and body, each response's Content-Type and length. It knows nothing of SOAP.
 */
async function httpRelay (t: Test, target: URL): Promise<{ endpoint: string, exchanges: Exchange[] }> {
  const exchanges: Exchange[] = []
  const agent = new Agent({ keepAlive: true })
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const x: Exchange = { requestType: req.headers['content-type'] ?? '', accept: req.headers.accept ?? '', request: body, responseType: '', responseLength: 0 }
      exchanges.push(x)
      const headers: IncomingHttpHeaders = { ...req.headers, host: target.host }
      const up = httpRequest({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers, agent }, (upRes) => {
        x.responseType = upRes.headers['content-type'] ?? ''
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.on('data', (c: Buffer) => { x.responseLength += c.length })
        upRes.pipe(res)
      })
      up.on('error', (e) => { res.destroy(e) })
      up.end(body)
    })
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', () => { resolve() }) })
  t.teardown(async () => {
    agent.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => { server.close(() => { resolve() }) })
  })
  const port = (server.address() as { port: number }).port
  return { endpoint: `http://127.0.0.1:${port}${target.pathname}`, exchanges }
}

t.test('our proxy over SOAP 1.2 with MTOM forced: 8 MiB through the echo', async (t) => {
  const SIZE = 8 * 1024 * 1024
  const relay = await httpRelay(t, new URL(endpoint))
  const proxy = createNetworkProxy(relay.endpoint, { soapVersion: '1.2', mtomThreshold: 1, caller: 'urn:test:interop-mtom' })
  t.teardown(async () => { await proxy.close() })
  const data = payload(SIZE)

  const { output: c } = await proxy.invoke('Connect', { host: '127.0.0.1', port: echoPort, protocol: 'tcp', timeoutMs: 5000 })
  t.equal(c.remotePort, echoPort)
  // Receive while sending: the echo writes back as it reads, and the domain buffers at most
  // maxBufferedBytesPerSocket before TCP flow control stops the echo (and so our Send).
  const receiving = (async () => {
    const parts: Buffer[] = []
    let got = 0
    let calls = 0
    while (got < SIZE && calls < 2000) {
      const { output: r } = await proxy.invoke('Receive', { socket: c.socket, maxBytes: 1024 * 1024, timeoutMs: 2000 })
      calls++
      parts.push(r.data)
      got += r.data.length
      if (r.closed) break
    }
    return Buffer.concat(parts)
  })()
  const { output: sent } = await proxy.invoke('Send', { socket: c.socket, data })
  const back = await receiving
  t.equal(sent.sent, SIZE, 'Send took 8 MiB')
  t.equal(back.length, SIZE, '8 MiB came back')
  t.equal(sha256(back), sha256(data), 'SHA-256 of the bytes received is that of the bytes sent')
  await proxy.invoke('Shutdown', { socket: c.socket })
  const { output: last } = await proxy.invoke('Receive', { socket: c.socket, maxBytes: 1024, timeoutMs: 2000 })
  t.same({ bytes: last.data.length, closed: last.closed }, { bytes: 0, closed: true }, 'after Shutdown the stream ends, nothing more')
  await proxy.invoke('Close', { socket: c.socket })

  // What went over the wire, as a plain HTTP relay saw it.
  const soap12Action = (op: string): RegExp => new RegExp(`action="${NS}/${op}"`)
  const sends = relay.exchanges.filter((x) => soap12Action('Send').test(x.requestType))
  t.equal(sends.length, 1, 'one Send request')
  const send = sends[0]
  if (send !== undefined) {
    t.match(send.requestType, /^multipart\/related;/, 'the Send request is multipart/related')
    t.match(send.requestType, /type="application\/xop\+xml"/, 'an XOP package')
    t.match(send.requestType, /start-info="application\/soap\+xml"/, 'whose root is a SOAP 1.2 envelope')
    t.ok(send.request.includes('<xop:Include '), 'the envelope refers to the data with xop:Include')
    t.ok(send.request.includes(data.subarray(0, 64 * 1024)) && send.request.includes(data.subarray(SIZE - 64 * 1024)), 'the 8 MiB travel as raw binary, not base64')
    t.ok(send.request.length < SIZE + 4096, `the request is ${send.request.length} bytes: 8 MiB and a small envelope (base64 would be ${Math.ceil(SIZE / 3) * 4})`)
  }
  const receives = relay.exchanges.filter((x) => soap12Action('Receive').test(x.requestType))
  t.ok(receives.length >= 8, `${receives.length} Receive requests`)
  // A Receive request has no binary to attach: it goes as a plain SOAP 1.2 envelope that asks for MTOM.
  t.ok(receives.every((x) => /^application\/soap\+xml;/.test(x.requestType) && /multipart\/related/.test(x.accept)), 'Receive requests are plain SOAP 1.2 and accept multipart/related')
  const withData = receives.filter((x) => x.responseLength > 1024 * 64)
  t.ok(withData.length > 0 && withData.every((x) => /^multipart\/related;.*start-info="application\/soap\+xml"/.test(x.responseType)), 'the domain answers Receive with SOAP 1.2 MTOM packages')
  const received = receives.reduce((n, x) => n + x.responseLength, 0)
  t.ok(received < SIZE + receives.length * 4096, `the responses carried ${received} bytes: raw binary, not base64`)
  noLeaks(t, 'our proxy')
})

// ── 4. WCF (Mono) ───────────────────────────────────────────────────────────────────────────────

const mcs = which('mcs')
const mono = which('mono')
const assemblyDir = ['/usr/lib/mono/4.5', '/usr/lib/mono/4.5-api'].find((d) => existsSync(join(d, 'System.ServiceModel.dll')))
const wcfMissing = mcs === undefined || mono === undefined
  ? partMissing('Mono', 'mcs or mono is not on PATH', 'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil')
  : assemblyDir === undefined ? partMissing('Mono\'s WCF', 'System.ServiceModel.dll is not in /usr/lib/mono/4.5', 'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil')
    : sourceDir === undefined ? partMissing('NetworkClient.cs', 'test/interop/network/NetworkClient.cs does not exist', 'a complete checkout of the repository') : false

t.test('WCF (Mono): Connect/Send/Receive/Close through the echo, typed fault', { skip: wcfMissing }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-wcf-net-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const refs = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir!, a)}`)
  const cc = await runPeer(mcs!, ['-nologo', '-warnaserror-', '-out:NetworkClient.exe', ...refs, join(sourceDir!, 'NetworkClient.cs')], { cwd: dir, timeout: 120_000 })
  t.equal(cc.code, 0, 'mcs compiles the client', { output: cc.output })
  t.notMatch(cc.output, /error/i, 'no compiler error')
  if (cc.code !== 0) return

  for (const binding of ['soap11', 'soap12'] as const) {
    await t.test(binding === 'soap11' ? 'BasicHttpBinding (SOAP 1.1)' : 'CustomBinding (SOAP 1.2, no addressing)', async (t) => {
      const data = payload(2500)
      const r = await runPeer(mono!, [join(dir, 'NetworkClient.exe'), endpoint, binding, String(echoPort), data.toString('hex')], { cwd: dir, timeout: 60_000 })
      const out = parseLines(r.stdout)
      const info = { stdout: r.stdout.slice(0, 4000), stderr: r.stderr.slice(0, 4000) }
      t.equal(out.error, undefined, 'the round trip raised no exception', info)
      t.equal(r.code, 0, 'client exits 0', info)
      t.equal(out.messageVersion?.startsWith(binding === 'soap11' ? 'Soap11' : 'Soap12'), true, `the client speaks ${binding}`)
      t.match(out['connect.socket'], /^\S{22,}$/, 'Connect returned a handle')
      t.equal(out['connect.remotePort'], String(echoPort))
      t.equal(out['send.sent'], String(data.length), 'Send took every byte')
      t.equal(out['receive.hex'], data.toString('hex'), 'Receive returned the bytes sent, echoed')
      t.equal(out.close, 'ok')
      for (const op of ['connect', 'send', 'receive', 'close']) {
        t.match(out[`${op}.timing`], /^\d+$/, `WCF bound the ServiceTiming header of ${op}`)
      }
      t.equal(out['fault.kind'], 'typed', 'the fault arrives as FaultException<NetworkFault>')
      t.equal(out['fault.code'], 'INVALID_HANDLE', 'a Receive on the closed handle: INVALID_HANDLE')
      t.equal(out['fault.soapCode'], binding === 'soap11' ? 'Client' : 'Sender', 'a caller error is a Client/Sender fault')
      noLeaks(t, `WCF over ${binding}`)
    })
  }
})

t.test('nothing leaked: the engine holds no socket at the end', async (t) => {
  t.equal(domain.engine.stats.sockets, 0, 'engine.stats.sockets is 0')
  noLeaks(t, 'every peer')
})
