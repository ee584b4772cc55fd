// Metrics and request ids on real parts: a `metaos storage` process runs a known workload through
// createStorageProxy and its /metrics — scraped over HTTP, over the bus and on --metrics-listen,
// and parsed — moved exactly as the calls did (calls by operation, faults by code, bytes, the
// histogram's count), counters only grow; a domain demanding authentication refuses /metrics on its
// https listener and serves it on the bus; a frontend's registry (createFrontendMetrics) shows
// probes, scores, decisions and migrations; a request id sent by the frontend is on the domain's
// log line for that call and echoed in the response. Runs the compiled CLI (dist/).
import t, { type Test } from 'tap'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { PerformanceMappingTable, type DomainIdentity } from '../../frontend/placement/pmt.js'
import { PerformanceModule } from '../../frontend/placement/performance-module.js'
import { Dispatcher } from '../../frontend/placement/dispatcher.js'
import { Supervisor } from '../../frontend/assembly/supervisor.js'
import { createFrontendMetrics } from '../../frontend/assembly/frontend-metrics.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { withRequestId } from '../../soap-runtime/client.js'
import { parseEndpoint } from '../../soap-runtime/endpoint.js'
import { initCa, issueDomainCertificate } from '../../security/pki.js'
import { tempDir } from '../helpers/temp-dir.js'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))

interface Ready { event: string, service: string, endpoints: string[], epr: string, metrics?: string }
interface Domain { readonly ready: Ready, readonly stderr: () => string, readonly child: ChildProcess }

async function startDomain (t: Test, args: string[]): Promise<Domain> {
  const env = { ...process.env }
  delete env.METAOS_LOG_LEVEL
  const child = spawn(process.execPath, [CLI, 'storage', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
  let out = ''
  let err = ''
  child.stderr!.setEncoding('utf8').on('data', (c: string) => { if (err.length < 4_000_000) err += c })
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve() }) })
  t.teardown(async () => { if (child.exitCode === null && child.signalCode === null) { child.kill('SIGTERM'); await exited } })
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (c: string) => { out += c; const nl = out.indexOf('\n'); if (nl >= 0) resolve(out.slice(0, nl)) })
    void exited.then(() => { reject(new Error(`metaos storage exited before its ready line: ${err.slice(-2000)}`)) })
  })
  return { ready: JSON.parse(line) as Ready, stderr: () => err, child }
}

// --- The text exposition format, parsed (https://prometheus.io/docs/instrumenting/exposition_formats/).
interface Sample { readonly name: string, readonly labels: Readonly<Record<string, string>>, readonly value: number }
interface Exposition { readonly samples: readonly Sample[], readonly types: ReadonlyMap<string, string> }

function parseExposition (text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type !== null) { types.set(type[1]!, type[2]!); continue }
    if (line.startsWith('#')) continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line)
    if (m === null) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    const body = m[2] ?? ''
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gy
    let l: RegExpExecArray | null
    let end = 0
    while ((l = re.exec(body)) !== null) { labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => c === 'n' ? '\n' : c); end = re.lastIndex }
    if (end !== body.length) throw new Error(`bad labels in: ${line}`)
    const v = m[3]!
    samples.push({ name: m[1]!, labels, value: v === '+Inf' ? Infinity : v === '-Inf' ? -Infinity : Number(v) })
  }
  return { samples, types }
}

/** Sum of the samples of `name` whose labels include `match`. */
function sum (e: Exposition, name: string, match: Record<string, string> = {}): number {
  return e.samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0)
}
function has (e: Exposition, name: string, match: Record<string, string> = {}): boolean {
  return e.samples.some((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v))
}

interface Got { status: number, headers: IncomingHttpHeaders, body: string }
async function get (o: RequestOptions & { secure?: boolean, ca?: Buffer, body?: string }): Promise<Got> {
  return await new Promise<Got>((resolve, reject) => {
    const req = (o.secure === true ? httpsRequest : httpRequest)({ method: 'GET', ...o }, (res) => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => { resolve({ status: res.statusCode ?? 0, headers: res.headers, body }) })
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

/** GET /metrics at an endpoint (`http://…`, `https://…` or `http+unix://…`). */
async function scrape (endpoint: string, extra: { ca?: Buffer } = {}): Promise<Got> {
  const ep = parseEndpoint(endpoint, '/storage')
  if (ep.protocol === 'unix') return await get({ socketPath: ep.socketPath!, path: '/metrics', host: 'localhost' })
  return await get({ host: ep.host, port: ep.port, path: '/metrics', secure: ep.protocol === 'https', ...extra })
}
async function scrapeParsed (endpoint: string): Promise<Exposition> {
  const r = await scrape(endpoint)
  if (r.status !== 200) throw new Error(`GET /metrics at ${endpoint}: ${r.status} ${r.body}`)
  if (!String(r.headers['content-type']).startsWith('text/plain; version=0.0.4')) throw new Error(`content type ${r.headers['content-type']}`)
  return parseExposition(r.body)
}

async function eventually (what: string, f: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('a storage domain\'s metrics move exactly as its calls do, on every listener', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-metrics-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'root'))
  const d = await startDomain(t, ['--root', join(dir, 'root'), '--listen', 'http://127.0.0.1:0', '--listen', `unix:${join(dir, 'bus.sock')}`, '--metrics-listen', 'http://127.0.0.1:0', '--log-level', 'debug'])
  const [http, bus] = d.ready.endpoints as [string, string]
  t.match(d.ready.metrics, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/, 'the ready line names the --metrics-listen endpoint')

  const before = await scrapeParsed(http)
  t.equal(before.types.get('metaos_domain_calls_total'), 'counter')
  t.equal(before.types.get('metaos_domain_call_duration_seconds'), 'histogram')
  t.equal(before.types.get('metaos_storage_open_handles'), 'gauge')
  t.equal(sum(before, 'metaos_domain_calls_total'), 0, 'no call yet')
  t.equal(sum(before, 'metaos_domain_info', { service: 'storage', epr: d.ready.epr, tls: 'false', authenticated: 'false' }), 1)
  t.equal(sum(before, 'metaos_domain_listeners', { transport: 'http' }), 1)
  t.equal(sum(before, 'metaos_domain_listeners', { transport: 'unix' }), 1)
  t.ok(has(before, 'process_cpu_user_seconds_total'), 'the CLI process adds Node\'s process metrics')

  // The workload: over HTTP, Open (Create), three Writes of known sizes, Close, and an Open of a
  // missing file (FILE_NOT_FOUND on purpose); over the bus, one GetFileInfo.
  const p = createStorageProxy(http)
  const pb = createStorageProxy(bus)
  t.teardown(async () => { await p.close(); await pb.close() })
  const sizes = [1000, 5000, 100_000]
  const { output: opened } = await p.invoke('Open', { path: 'a.bin', mode: 'Create', access: 'ReadWrite', share: 'None' })
  for (const n of sizes) await p.invoke('Write', { handle: opened.handle, data: Buffer.alloc(n, 7) })
  const during = await scrapeParsed(bus)
  t.equal(sum(during, 'metaos_storage_open_handles'), 1, 'one handle open while the file is')
  await p.invoke('Close', { handle: opened.handle })
  await t.rejects(p.invoke('Open', { path: 'missing.bin', mode: 'Open', access: 'Read', share: 'Read' }), { code: 'FILE_NOT_FOUND' })
  await pb.invoke('GetFileInfo', { path: 'a.bin' })

  for (const [where, endpoint] of [['http', http], ['the bus', bus], ['--metrics-listen', d.ready.metrics!]] as const) {
    const m = await scrapeParsed(endpoint)
    t.equal(sum(m, 'metaos_domain_calls_total', { operation: 'Open' }), 2, `${where}: 2 Opens`)
    t.equal(sum(m, 'metaos_domain_calls_total', { operation: 'Write' }), 3, `${where}: 3 Writes`)
    t.equal(sum(m, 'metaos_domain_calls_total', { operation: 'Close' }), 1, `${where}: 1 Close`)
    t.equal(sum(m, 'metaos_domain_calls_total', { operation: 'GetFileInfo', transport: 'unix' }), 1, `${where}: 1 GetFileInfo, over the bus`)
    t.equal(sum(m, 'metaos_domain_calls_total', { transport: 'http' }), 6, `${where}: 6 calls over http`)
    t.equal(sum(m, 'metaos_domain_calls_total'), 7, `${where}: 7 calls in all`)
    t.equal(sum(m, 'metaos_domain_faults_total', { operation: 'Open', code: 'FILE_NOT_FOUND' }), 1, `${where}: the FILE_NOT_FOUND`)
    t.equal(sum(m, 'metaos_domain_faults_total'), 1, `${where}: and no other fault`)
    t.ok(sum(m, 'metaos_domain_request_bytes_total', { operation: 'Write' }) >= 106_000, `${where}: request bytes ≥ the 106000 written`)
    t.ok(sum(m, 'metaos_domain_response_bytes_total', { operation: 'Write' }) > 0, `${where}: response bytes`)
    t.equal(sum(m, 'metaos_domain_call_duration_seconds_count'), 7, `${where}: histogram count = calls`)
    t.equal(sum(m, 'metaos_domain_call_duration_seconds_count', { operation: 'Write' }), 3)
    t.equal(sum(m, 'metaos_domain_call_duration_seconds_bucket', { operation: 'Write', le: '+Inf' }), 3, `${where}: +Inf bucket = count`)
    t.ok(sum(m, 'metaos_domain_call_duration_seconds_sum') > 0)
    t.equal(sum(m, 'metaos_storage_open_handles'), 0, `${where}: no handle left open`)
    t.equal(sum(m, 'metaos_domain_in_flight_calls'), 0, `${where}: nothing in flight (a scrape is not a call)`)
  }

  // Counters only grow: two more Writes, scraped again.
  const first = await scrapeParsed(http)
  const { output: again } = await p.invoke('Open', { path: 'a.bin', mode: 'Open', access: 'Write', share: 'None' })
  await p.invoke('Write', { handle: again.handle, data: Buffer.alloc(2000) })
  await p.invoke('Write', { handle: again.handle, data: Buffer.alloc(3000) })
  await p.invoke('Close', { handle: again.handle })
  const second = await scrapeParsed(http)
  t.equal(sum(second, 'metaos_domain_calls_total', { operation: 'Write' }) - sum(first, 'metaos_domain_calls_total', { operation: 'Write' }), 2, 'exactly 2 more Writes')
  t.ok(sum(second, 'metaos_domain_request_bytes_total', { operation: 'Write' }) - sum(first, 'metaos_domain_request_bytes_total', { operation: 'Write' }) >= 5000)
  for (const s of first.samples) {
    const type = first.types.get(s.name.replace(/_(bucket|count|sum)$/, ''))
    if (type !== 'counter' && type !== 'histogram') continue
    const later = second.samples.find((x) => x.name === s.name && JSON.stringify(x.labels) === JSON.stringify(s.labels))
    if (later === undefined || later.value < s.value) t.fail(`${s.name}${JSON.stringify(s.labels)} went from ${s.value} to ${later?.value}`)
  }
  t.pass('no counter went down between two scrapes')

  // The request id: sent by the frontend, on the domain's log line for that call, echoed back.
  const lines: string[] = []
  const sink = new Writable({ write (c: Buffer, _e, cb) { lines.push(c.toString()); cb() } })
  const logged = createStorageProxy(http, { logger: pino({ level: 'debug' }, sink) })
  t.teardown(async () => { await logged.close() })
  const inv = await withRequestId('metrics-test-42', async () => await logged.invoke('GetFileInfo', { path: 'a.bin' }))
  t.equal(inv.requestId, 'metrics-test-42', 'the call went with the id given')
  const client = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === 'metrics-test-42')
  t.match(client, { level: 20, operation: 'GetFileInfo', msg: 'call' }, 'the frontend logged its call with the id at debug level')
  const domainLine = (): Record<string, unknown> | undefined => d.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.reqId === 'metrics-test-42')
  await eventually('the domain\'s log line', () => domainLine() !== undefined)
  t.match(domainLine(), { level: 20, name: 'metaos-storage', operation: 'GetFileInfo', msg: 'call' }, 'the domain logged that call with the same id')
  await t.rejects(withRequestId('metrics-test-43', async () => await logged.invoke('Delete', { path: 'nothing-here.bin' })), { code: 'FILE_NOT_FOUND' })
  await eventually('the fault\'s log line', () => d.stderr().includes('"reqId":"metrics-test-43"'))
  t.match(d.stderr().split('\n').find((l) => l.includes('"reqId":"metrics-test-43"')), /"code":"FILE_NOT_FOUND"/, 'a fault\'s log line carries the id too')

  // In the response header, as sent by hand; an id that is not a sane token is replaced.
  const ep = parseEndpoint(http, '/storage')
  const envelope = '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetDomainInfo xmlns="urn:metaos:storage:v1"/></s:Body></s:Envelope>'
  const post = async (id: string): Promise<Got> => await get({ method: 'POST', host: ep.host, port: ep.port, path: '/storage', headers: { 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: '"urn:metaos:storage:v1/GetDomainInfo"', 'X-Request-Id': id }, body: envelope })
  const echoed = await post('raw-id-7')
  t.equal(echoed.status, 200)
  t.equal(echoed.headers['x-request-id'], 'raw-id-7', 'echoed in the response header')
  const replaced = await post('not a token\tat all')
  t.match(replaced.headers['x-request-id'], /^[0-9a-f]{16}$/, 'a bad id is replaced by one of the domain\'s')
})

t.test('a domain demanding authentication keeps /metrics off its https listener', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-metrics-auth-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'root'))
  const { caCertPath } = await initCa(join(dir, 'ca'))
  const cert = await issueDomainCertificate(join(dir, 'ca'), { name: 'metrics1' })
  writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: [{ name: 'alice', password: 'correct horse', paths: ['*'] }] }), { mode: 0o600 })
  const d = await startDomain(t, ['--root', join(dir, 'root'), '--listen', 'https://127.0.0.1:0', '--listen', `unix:${join(dir, 'bus.sock')}`,
    '--tls-cert', cert.certPath, '--tls-key', cert.keyPath, '--auth', join(dir, 'policy.json'), '--log-level', 'silent'])
  const [https, bus] = d.ready.endpoints as [string, string]
  const ca = readFileSync(caCertPath)

  const refused = await scrape(https, { ca })
  t.equal(refused.status, 403, '/metrics is refused on the https listener')
  t.notMatch(refused.body, /metaos_domain/, 'and nothing of it leaks')

  const tls = { ca }
  const wrong = createStorageProxy(https, { tls, credentials: { username: 'alice', password: 'wrong' } })
  const right = createStorageProxy(https, { tls, credentials: { username: 'alice', password: 'correct horse' } })
  t.teardown(async () => { await wrong.close(); await right.close() })
  await t.rejects(wrong.invoke('GetFileInfo', { path: 'x' }), { code: 'UNAUTHORIZED' })
  await t.rejects(wrong.invoke('GetFileInfo', { path: 'x' }), { code: 'UNAUTHORIZED' })
  await right.invoke('GetFileInfo', { path: 'x' })

  const m = await scrapeParsed(bus)
  t.equal(sum(m, 'metaos_domain_info', { tls: 'true', authenticated: 'true' }), 1, 'served on the bus; TLS and authentication said')
  t.equal(sum(m, 'metaos_domain_listeners', { transport: 'https' }), 1)
  t.equal(sum(m, 'metaos_domain_auth_refusals_total'), 2, 'the two refusals, by reason')
  t.equal(sum(m, 'metaos_domain_faults_total', { operation: 'GetFileInfo', code: 'UNAUTHORIZED' }), 2)
  t.equal(sum(m, 'metaos_domain_calls_total', { operation: 'GetFileInfo', transport: 'https' }), 3)
})

t.test('a frontend\'s registry: probes, scores, decisions, migrations, open streams', async (t) => {
  const dir = tempDir(t, 'metaos-frontend-metrics-')
  const root = join(dir, 'v')
  mkdirSync(root)
  const a = await startStorageDomain({ root, name: 'a', volume: 'v', listen: ['http://127.0.0.1:0'] })
  const b = await startStorageDomain({ root, name: 'b', volume: 'v', listen: [`unix:${join(dir, 'b.sock')}`] })
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const id = (epr: string, endpoint: string): DomainIdentity => ({ epr, endpoints: [endpoint], hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: 'v' })
  const handlers = new Map<string, StorageHandler>()
  for (const d of [a, b]) handlers.set(d.epr, perf.track(id(d.epr, d.endpoints[0]!), createStorageProxy(d.endpoints[0]!)))
  // A domain that does not answer: its probes fail (it is not the dispatcher's).
  const dead = perf.track({ ...id('urn:uuid:00000000-0000-5000-8000-000000000dead', 'http://127.0.0.1:9/storage'), volume: 'elsewhere' }, createStorageProxy('http://127.0.0.1:9/storage', { timeoutMs: 1000 }))
  const dispatcher = new Dispatcher(pmt, handlers, { volume: 'v' })
  const supervisor = new Supervisor({ pmt, dispatchers: [dispatcher] })
  const fm = createFrontendMetrics({ pmt, supervisor, dispatchers: [dispatcher] })
  t.teardown(async () => {
    fm.close()
    for (const h of [...handlers.values(), dead]) await h.close()
    for (const d of [a, b]) await d.close(0)
    rmSync(dir, { recursive: true, force: true })
  })
  t.equal(fm.contentType, 'text/plain; version=0.0.4; charset=utf-8')
  const scrapeFm = async (): Promise<Exposition> => parseExposition(await fm.metrics())

  const f = await FileStream.open('s.bin', { mode: 'Create', access: 'ReadWrite', destination: dispatcher, bufferSize: 0 })
  for (let i = 0; i < 5; i++) await f.write(Buffer.alloc(4000, i))
  const on = dispatcher.affinity.entries()[0]!.epr
  const other = on === a.epr ? b.epr : a.epr
  await perf.probe(other)
  await perf.probe(other)
  await perf.probe('urn:uuid:00000000-0000-5000-8000-000000000dead')

  let m = await scrapeFm()
  t.equal(sum(m, 'metaos_frontend_calls_total', { epr: on }), pmt.row(on)!.measures.calls, 'calls as the performance module counted them')
  t.ok(sum(m, 'metaos_frontend_calls_total', { epr: on }) >= 6, 'the Open and the five Writes at least')
  t.ok(sum(m, 'metaos_frontend_bytes_total', { epr: on }) >= 20_000, 'the 20000 bytes written')
  t.equal(sum(m, 'metaos_frontend_call_duration_seconds_count', { epr: on }), sum(m, 'metaos_frontend_calls_total', { epr: on }), 'a latency per successful call')
  t.equal(sum(m, 'metaos_frontend_probes_total', { epr: other, result: 'success' }), 2, 'two good probes')
  t.equal(sum(m, 'metaos_frontend_probes_total', { epr: 'urn:uuid:00000000-0000-5000-8000-000000000dead', result: 'failure' }), 1, 'one failed probe')
  for (const epr of [a.epr, b.epr]) {
    t.ok(sum(m, 'metaos_frontend_domain_score', { epr }) > 0, `a score for ${epr === a.epr ? 'a' : 'b'}`)
    for (const part of ['perf', 'health', 'sla', 'cost', 'freshness']) t.ok(has(m, 'metaos_frontend_domain_score_part', { epr, part }), `its ${part}`)
    t.equal(sum(m, 'metaos_frontend_domain_state', { epr, state: 'healthy' }), 1)
  }
  const own = pmt.row(a.epr)!.score.score
  t.ok(Math.abs(sum(m, 'metaos_frontend_domain_score', { epr: a.epr }) - own) < own * 0.01, 'the PMT\'s own score (it ages with its measures: within 1 %)')
  t.ok(sum(m, 'metaos_frontend_domain_latency_seconds', { epr: on, stat: 'p50' }) > 0)
  t.equal(sum(m, 'metaos_frontend_open_streams', { epr: on }), 1, 'the open stream, on its domain')
  t.equal(sum(m, 'metaos_frontend_stream_moves_total'), 0)

  // A migration on purpose.
  await dispatcher.migrate(dispatcher.affinity.entries()[0]!.id, 'test', other)
  await f.write(Buffer.alloc(100, 1))
  m = await scrapeFm()
  t.equal(sum(m, 'metaos_frontend_stream_moves_total', { kind: 'migration', from: on }), 1, 'the migration counted')
  t.equal(sum(m, 'metaos_frontend_open_streams', { epr: other }), 1, 'the stream is on the other domain now')
  t.equal(sum(m, 'metaos_frontend_open_streams', { epr: on }), 0)

  // The supervisor isolates the domain the stream is on: a decision to suspect, one to isolate, and the stream moves back.
  supervisor.report(other, 'test: isolate it')
  await eventually('the isolation', () => supervisor.decisions.some((d) => d.to === 'isolated'))
  m = await scrapeFm()
  t.equal(sum(m, 'metaos_frontend_supervisor_decisions_total', { epr: other, to: 'suspect' }), 1)
  t.equal(sum(m, 'metaos_frontend_supervisor_decisions_total', { epr: other, to: 'isolated' }), 1, 'the isolation counted')
  t.equal(sum(m, 'metaos_frontend_stream_moves_total', { kind: 'migration' }), 2, 'and the supervisor\'s migration')
  t.equal(sum(m, 'metaos_frontend_domain_state', { epr: other, state: 'isolated' }), 1)
  const again = await scrapeFm()
  t.equal(sum(again, 'metaos_frontend_supervisor_decisions_total'), 2, 'a decision is counted once, however often scraped')
  await f.close()
  m = await scrapeFm()
  t.equal(sum(m, 'metaos_frontend_open_streams'), 0, 'closed: no open stream')
})
