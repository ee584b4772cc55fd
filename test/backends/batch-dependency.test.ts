// A Batch never applies an operation that depended on one that failed: once an operation on a
// handle (file handle, socket, listener) fails, the later operations of the Batch on that handle
// are not run (NOT_RUN_AFTER_FAILURE) and the handle stays as the failure left it; other handles
// and operations keyed by a path or a destination still run. Checked with raw SOAP against real
// storage and network domains, through the in-process handlers ('local'), and through an
// exception-less FileStream whose pipelined write fails for real (the kernel's file size limit,
// `ulimit -f`), on a domain and on the local kernel: the application sees the failure's own code,
// and the bytes on disk are exactly those written before it. The limited processes run the compiled
// package (dist/, built by `npm test`'s pretest).
import t, { type Test } from 'tap'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'
import { parseXml, type XmlElement } from '../../soap-runtime/xml.js'
import { LocalHandler } from '../../frontend/handlers/local-handler.js'
import { LocalNetworkHandler } from '../../frontend/handlers/local-network-handler.js'
import { startNetworkDomain } from '../../backend-network/network-domain.js'
import { CLI_PATH } from '../../domains/domain-process.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'
import { which } from '../helpers/which.js'
import { partMissing } from '../helpers/require-part.js'
import { startTestDomain } from '../helpers/domain.js'

const NOT_RUN = 'NOT_RUN_AFTER_FAILURE'
type Fields = Record<string, string | number | Buffer>
type Op = Record<string, Fields>

function tempDir (t: Test, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

// ------------------------------------------------------------------------------------------------
// Raw SOAP: the envelope built by hand, the response read element by element.

const opXml = (op: Op): string => Object.entries(op).map(([name, fields]) =>
  `<${name}>${Object.entries(fields).map(([k, v]) => `<${k}>${Buffer.isBuffer(v) ? v.toString('base64') : String(v)}</${k}>`).join('')}</${name}>`).join('')

/** Posts one operation (a Batch: `ops`) in a SOAP 1.1 envelope; returns the response element. */
async function soap (url: string, ns: string, op: Op | { Batch: Op[] }): Promise<XmlElement> {
  const name = Object.keys(op)[0]!
  const inner = name === 'Batch' ? (op as { Batch: Op[] }).Batch.map((o) => `<op>${opXml(o)}</op>`).join('') : opXml(op as Op)
  const body = name === 'Batch' ? `<Batch>${inner}</Batch>` : inner
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"${ns}/${name}"` },
    body: `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body xmlns="${ns}">${body}</s:Body></s:Envelope>`,
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}: ${text}`)
  return parseXml(text).children.find((c) => c.local === 'Body')!.children[0]!
}

const field = (el: XmlElement, local: string): string => el.children.find((c) => c.local === local)?.text ?? ''

/** What each result of a Batch response is: its response element, or its fault's code; and the faults' messages. */
function rawResults (body: XmlElement): { kinds: string[], messages: string[] } {
  const results = body.children.filter((c) => c.local === 'result').map((r) => r.children[0]!)
  return {
    kinds: results.map((r) => r.local.endsWith('Fault') ? field(r, 'code') : r.local),
    messages: results.map((r) => r.local.endsWith('Fault') ? field(r, 'message') : ''),
  }
}

/** The same, from a typed Batch output (the in-process handlers). */
function typedResults (result: ReadonlyArray<Record<string, unknown>>): { kinds: string[], messages: string[] } {
  const entries = result.map((r) => Object.entries(r)[0]!)
  return {
    kinds: entries.map(([k, v]) => k.endsWith('Fault') ? (v as { code: string }).code : k),
    messages: entries.map(([k, v]) => k.endsWith('Fault') ? (v as { message: string }).message : ''),
  }
}

// ------------------------------------------------------------------------------------------------
// Storage

const STORAGE_NS = 'urn:metaos:storage:v1'
const openFields = (path: string, mode = 'Create'): Fields => ({ path, mode, access: 'ReadWrite', share: 'None' })

/** [Write A, Seek(-5), Write C, …] on h, interleaved with operations on g, on paths, and on a forged handle. */
function storageOps (h: string, g: string, path: (name: string) => string): Op[] {
  return [
    { Write: { handle: h, data: Buffer.from('AAAA') } },
    { Seek: { handle: h, offset: -5, origin: 'Begin' } }, // fails: before the start of the file
    { Write: { handle: h, data: Buffer.from('CCCC') } }, // would land at 4, an offset never asked for
    { GetLength: { handle: h } },
    { Write: { handle: g, data: Buffer.from('gg') } }, // another handle: runs
    { GetFileInfo: { path: path('a.bin') } }, // keyed by a path: runs, and sees what h wrote before the failure
    { Open: { ...openFields(path('missing.bin'), 'Open') } }, // fails, but makes no handle: nothing depends on it
    { Delete: { path: path('missing.bin') } }, // runs (and fails on its own)
    { Close: { handle: h } }, // not run: the handle stays open where the failure left it
    { Write: { handle: g, data: Buffer.from('hh') } },
    { Read: { handle: 'forged-handle', count: 1 } },
    { Close: { handle: 'forged-handle' } },
  ]
}

const STORAGE_EXPECTED = [
  'WriteResponse', 'INVALID_ARGUMENT', NOT_RUN, NOT_RUN, 'WriteResponse', 'GetFileInfoResponse',
  'FILE_NOT_FOUND', 'FILE_NOT_FOUND', NOT_RUN, 'WriteResponse', 'INVALID_HANDLE', NOT_RUN,
]

function checkStorage (t: Test, r: { kinds: string[], messages: string[] }, files: { a: () => string, b: () => string }): void {
  t.same(r.kinds, STORAGE_EXPECTED, 'each operation after the failure on its handle is not run; the others run')
  t.match(r.messages[2], /operation 2 of the Batch \(Seek\) .*INVALID_ARGUMENT/, 'the not-run fault names the failure it followed')
  t.match(r.messages[11], /operation 11 of the Batch \(Read\) .*INVALID_HANDLE/)
  t.equal(files.a(), 'AAAA', 'nothing was written after the failed Seek')
  t.equal(files.b(), 'gghh', 'the other handle was written in full')
}

t.test('storage Batch over raw SOAP to a real domain', async (t) => {
  const d = await startTestDomain(t)
  const open = async (path: string): Promise<string> => field(await soap(d.http, STORAGE_NS, { Open: openFields(path) }), 'handle')
  const h = await open('a.bin')
  const g = await open('b.bin')
  t.same(rawResults(await soap(d.http, STORAGE_NS, { Batch: [] })).kinds, [], 'an empty Batch answers nothing')
  const batch = await soap(d.http, STORAGE_NS, { Batch: storageOps(h, g, (n) => n) })
  const r = rawResults(batch)
  checkStorage(t, r, { a: () => readFileSync(join(d.root, 'a.bin'), 'utf8'), b: () => readFileSync(join(d.root, 'b.bin'), 'utf8') })
  const info = batch.children.filter((c) => c.local === 'result')[5]!.children[0]!
  t.equal(field(info, 'length'), '4', 'GetFileInfo ran after the failure and saw only the write before it')
  // The handle was neither moved nor closed by what came after the failure: it is where the last Write left it.
  const w = await soap(d.http, STORAGE_NS, { Write: { handle: h, data: Buffer.from('DD') } })
  t.equal(field(w, 'position'), '6')
  t.equal(readFileSync(join(d.root, 'a.bin'), 'utf8'), 'AAAADD', 'the next call goes on from the last operation that ran')
  for (const x of [h, g]) await soap(d.http, STORAGE_NS, { Close: { handle: x } })
})

t.test('storage Batch through the local handler: the same results', async (t) => {
  const dir = tempDir(t, 'metaos-batch-local-')
  const local = new LocalHandler()
  t.teardown(async () => { await local.close() })
  const open = async (name: string): Promise<string> => (await local.invoke('Open', { path: join(dir, name), mode: 'Create', access: 'ReadWrite', share: 'None' })).output.handle
  const h = await open('a.bin')
  const g = await open('b.bin')
  const ops = storageOps(h, g, (n) => join(dir, n))
  const r = await local.invoke('Batch', { op: ops as never })
  checkStorage(t, typedResults(r.output.result as never), { a: () => readFileSync(join(dir, 'a.bin'), 'utf8'), b: () => readFileSync(join(dir, 'b.bin'), 'utf8') })
  t.equal((await local.invoke('Write', { handle: h, data: Buffer.from('DD') })).output.position, 6, 'the handle is where the last Write that ran left it')
  for (const x of [h, g]) await local.invoke('Close', { handle: x })
})

// ------------------------------------------------------------------------------------------------
// Network: sockets and listeners are the handles.

const NETWORK_NS = 'urn:metaos:network:v1'

/** A TCP server that keeps what each connection sent; `ended()` resolves with it when the client closes. */
async function sink (t: Test): Promise<{ port: number, ended: () => Promise<string> }> {
  const received: Array<Promise<string>> = []
  const sockets = new Set<Socket>()
  const server = createServer((s) => {
    sockets.add(s)
    const parts: Buffer[] = []
    s.on('data', (c: Buffer) => parts.push(c))
    s.on('error', () => undefined)
    received.push(new Promise((resolve) => { s.on('close', () => { sockets.delete(s); resolve(Buffer.concat(parts).toString()) }) }))
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise((resolve) => server.close(resolve)) })
  return { port: (server.address() as { port: number }).port, ended: async () => await received[0]! }
}

const connectFields = (port: number): Fields => ({ host: '127.0.0.1', port, protocol: 'tcp', timeoutMs: 5000 })

function networkOps (s: string): Op[] {
  return [
    { Send: { socket: s, data: Buffer.from('one') } },
    { Receive: { socket: s, maxBytes: -1, timeoutMs: 100 } }, // fails: a negative maxBytes
    { Send: { socket: s, data: Buffer.from('two') } },
    { Shutdown: { socket: s } },
    { Close: { socket: s } },
    { GetDomainInfo: {} }, // names no handle: runs
    { Close: { socket: 'forged-socket' } },
    { Send: { socket: 'forged-socket', data: Buffer.from('x') } },
  ]
}

const NETWORK_EXPECTED = ['SendResponse', 'INVALID_ARGUMENT', NOT_RUN, NOT_RUN, NOT_RUN, 'GetDomainInfoResponse', 'INVALID_HANDLE', NOT_RUN]

t.test('network Batch over raw SOAP to a real domain, and through the local handler', async (t) => {
  const dir = tempDir(t, 'metaos-batch-net-')
  const domain = await startNetworkDomain({ listen: ['http://127.0.0.1:0', `unix:${join(dir, 'bus.sock')}`] })
  t.teardown(async () => { await domain.close(1000) })
  const url = domain.endpoints[0]!

  await t.test('raw SOAP', async (t) => {
    const server = await sink(t)
    const s = field(await soap(url, NETWORK_NS, { Connect: connectFields(server.port) }), 'socket')
    const r = rawResults(await soap(url, NETWORK_NS, { Batch: networkOps(s) }))
    t.same(r.kinds, NETWORK_EXPECTED, 'nothing more on the socket after its failure; GetDomainInfo still runs')
    t.match(r.messages[2], /operation 2 of the Batch \(Receive\) .*INVALID_ARGUMENT/)
    await soap(url, NETWORK_NS, { Close: { socket: s } }) // open still: the Close in the Batch did not run
    t.equal(await server.ended(), 'one', 'the peer got only what was sent before the failure')
    t.equal(domain.engine.stats.sockets, 0)
  })

  await t.test('local handler', async (t) => {
    const server = await sink(t)
    const local = new LocalNetworkHandler()
    t.teardown(async () => { await local.close() })
    const s = (await local.invoke('Connect', { host: '127.0.0.1', port: server.port, protocol: 'tcp', timeoutMs: 5000 })).output.socket
    const r = typedResults((await local.invoke('Batch', { op: networkOps(s) as never })).output.result as never)
    t.same(r.kinds, NETWORK_EXPECTED, 'the same results as a domain')
    await local.invoke('Close', { socket: s })
    t.equal(await server.ended(), 'one')
    t.equal(local.stats.sockets, 0)
  })
})

// ------------------------------------------------------------------------------------------------
// An exception-less FileStream whose pipelined write fails for real.
//
// Under `ulimit -f 64` (64 KiB) the kernel ends a file at 65536 bytes: a write crossing it is cut
// there (and the engine's next attempt gets EFBIG → INVALID_ARGUMENT, the handle not moved), while a
// write below it still succeeds. The stream writes A (40 KiB), B (40 KiB), C (10 KiB) as separate
// operations (maxOpBytes 40 KiB); A goes alone, B and C wait for it and go in the next Batch. B
// fails; C would fit at the handle's position (40 KiB) and overwrite B's start, but is not run.

const KIB = 1024
const WRITER = `
const [index, destination, path] = process.argv.slice(2)
const { FileStream } = await import(index)
const fs = await FileStream.open(path, { mode: 'Create', access: 'Write', bufferSize: 0, destination, exceptionLess: { maxOpBytes: ${40 * KIB} } })
for (const [byte, n] of [[0x41, ${40 * KIB}], [0x42, ${40 * KIB}], [0x43, ${10 * KIB}]]) await fs.write(Buffer.alloc(n, byte))
const out = { position: 0 }
try { await fs.flush(); out.code = 'none' } catch (e) { out.code = e.code; out.message = e.message }
out.position = fs.position
await fs.close()
console.log(JSON.stringify(out))
`

const CHILD_ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }

/**
 * `bash -c 'ulimit -f 64; exec node …'`: a process whose files end at 64 KiB. Without NODE_OPTIONS:
 * the test runner puts its instrumentation into every child, and its exit handler would turn the
 * kernel's SIGXFSZ, which Node ignores, back into a kill.
 */
function limited (args: string[]): ReturnType<typeof spawn> {
  return spawn('bash', ['-c', 'unset NODE_OPTIONS; ulimit -f 64 && exec "$0" "$@"', process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV })
}

async function run (child: ReturnType<typeof spawn>): Promise<{ code: number | string | null, stdout: string, stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString() })
  const code = await new Promise<number | string | null>((resolve) => { child.once('exit', (c, signal) => { resolve(c ?? signal) }) })
  return { code, stdout, stderr }
}

async function writer (t: Test, destination: string, path: string, limit: boolean): Promise<{ code: string, message?: string, position: number }> {
  const dir = tempDir(t, 'metaos-batch-writer-')
  const script = join(dir, 'writer.mjs')
  writeFileSync(script, WRITER)
  const args = [script, pathToFileURL(join(PACKAGE_ROOT, 'dist', 'index.js')).href, destination, path]
  const r = await run(limit ? limited(args) : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: CHILD_ENV }))
  t.equal(r.code, 0, `the writer exits 0 (stderr: ${r.stderr.slice(-2000)})`)
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code: string, message?: string, position: number }
}

function checkWriter (t: Test, out: { code: string, message?: string, position: number }, file: Buffer): void {
  t.equal(out.code, 'INVALID_ARGUMENT', 'the application gets the failed write\'s own code (EFBIG), never NOT_RUN_AFTER_FAILURE')
  t.match(out.message, /EFBIG.*\(10240 later bytes were not written\)/, 'and is told what was not written')
  t.equal(out.position, 40 * KIB, 'the position is the handle\'s again: after A, the last write that succeeded')
  t.equal(file.length, 64 * KIB, 'the file ends where the kernel cut B')
  t.same(file, Buffer.concat([Buffer.alloc(40 * KIB, 0x41), Buffer.alloc(24 * KIB, 0x42)]), 'exactly A, then B up to the limit: C was never written')
}

t.test('an exception-less FileStream whose pipelined write fails', async (t) => {
  if (which('bash') === undefined) {
    t.plan(0, partMissing('bash', 'ulimit -f limits the file size of the limited processes', 'apt-get install -y bash'))
    return
  }

  await t.test('on a storage domain whose files end at 64 KiB', async (t) => {
    const dir = tempDir(t, 'metaos-batch-domain-')
    const root = join(dir, 'root')
    mkdirSync(root)
    const domain = limited([CLI_PATH, 'storage', '--root', root, '--listen', 'http://127.0.0.1:0'])
    const exited = new Promise((resolve) => { domain.once('exit', resolve) })
    t.teardown(async () => { if (domain.exitCode === null && domain.signalCode === null) { domain.kill('SIGTERM'); await exited } })
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: domain.stdout! }).once('line', resolve)
      void exited.then(() => { reject(new Error('the storage domain exited before it was ready')) })
    })
    const endpoint = (JSON.parse(line) as { endpoints: string[] }).endpoints[0]!
    const out = await writer(t, endpoint, 'el.bin', false)
    checkWriter(t, out, readFileSync(join(root, 'el.bin')))
  })

  await t.test('on the local kernel (destination local), with the same limit', async (t) => {
    const path = join(tempDir(t, 'metaos-batch-kernel-'), 'el.bin')
    const out = await writer(t, 'local', path, true)
    checkWriter(t, out, readFileSync(path))
  })
})
