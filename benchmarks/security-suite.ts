// The security suite: what TLS and authentication cost on Write round trips, side by side in one
// run. One storage domain process per configuration — plain HTTP (the reference), HTTPS (TLS 1.3,
// server certificate only, ECDSA P-256), HTTPS with mutual TLS (the identity is the client
// certificate's CN, in an access policy), HTTPS with a WS-Security UsernameToken (PasswordDigest,
// PasswordText), plain HTTP on loopback with a UsernameToken digest (WS-Security without TLS), and
// the Unix-socket bus — each measured with 4 KiB Writes one at a time (calls/s, p50/p99) and 1 MiB
// Writes (MB/s), in interleaved rounds whose order rotates, with every ratio to plain HTTP of the
// same run. Then the cost of a new connection: a proxy (a new agent, so a new TCP connection and a
// full handshake, no session resumption) per 4 KiB Write, over http, https and mutual TLS.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../domains/domain-process.js'
import { createStorageProxy, type StorageProxyOptions } from '../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { initCa, issueClientCertificate, issueDomainCertificate } from '../security/pki.js'

export const SECURITY_CONFIGS = ['http', 'https', 'https-mtls', 'https-digest', 'https-text', 'http-digest', 'bus'] as const
export type SecurityConfig = typeof SECURITY_CONFIGS[number]
/** The configurations whose cost of a new connection is measured. */
export const FRESH_CONFIGS = ['http', 'https', 'https-mtls'] as const

const DESCRIBE: Record<SecurityConfig, { transport: 'http' | 'https' | 'bus', tls: 'none' | 'server' | 'mutual', auth: 'none' | 'certificate' | 'digest' | 'text' }> = {
  http: { transport: 'http', tls: 'none', auth: 'none' },
  https: { transport: 'https', tls: 'server', auth: 'none' },
  'https-mtls': { transport: 'https', tls: 'mutual', auth: 'certificate' },
  'https-digest': { transport: 'https', tls: 'server', auth: 'digest' },
  'https-text': { transport: 'https', tls: 'server', auth: 'text' },
  'http-digest': { transport: 'http', tls: 'none', auth: 'digest' },
  bus: { transport: 'bus', tls: 'none', auth: 'none' },
}

/** One configuration: 4 KiB round trips and 1 MiB Writes, with ratios to plain HTTP. */
export interface SecurityRow {
  readonly config: SecurityConfig
  readonly transport: 'http' | 'https' | 'bus'
  readonly tls: 'none' | 'server' | 'mutual'
  readonly auth: 'none' | 'certificate' | 'digest' | 'text'
  /** A call without the configuration's credentials was refused (checked before measuring); null without authentication. */
  readonly authEnforced: boolean | null
  /** 4 KiB Writes measured. */
  readonly calls: number
  readonly callsPerSec: number
  readonly p50us: number
  readonly p99us: number
  /** 1 MiB Writes measured. */
  readonly mibCalls: number
  readonly mbPerSec: number
  readonly mibP50us: number
  readonly mibP99us: number
  /** callsPerSec / http's callsPerSec, and the same for mbPerSec. */
  readonly callsVsHttp: number
  readonly mbVsHttp: number
}

/** 4 KiB Writes each on a connection of its own. */
export interface FreshConnectionRow {
  readonly config: typeof FRESH_CONFIGS[number]
  readonly calls: number
  readonly callsPerSec: number
  readonly p50us: number
  readonly p99us: number
  /** callsPerSec / http's with fresh connections. */
  readonly vsHttpFresh: number
  /** callsPerSec / the same configuration's on a kept-alive connection (SecurityRow). */
  readonly vsReused: number
}

export interface SecurityResult {
  /** What the https listeners negotiated with this client (checked once, on its own connection). */
  readonly negotiated: { protocol: string | null, cipher: string, serverKey: string }
  readonly payloadBytes: number
  readonly bulkBytes: number
  readonly rounds: number
  readonly stopped: boolean
  readonly rows: SecurityRow[]
  readonly fresh: FreshConnectionRow[]
}

export interface SecuritySuiteOptions {
  /** Measured seconds per configuration for each of: 4 KiB Writes, 1 MiB Writes, fresh connections; split over the rounds. */
  readonly seconds: number
  readonly rounds: number
  readonly onProgress?: (done: number, total: number, label: string) => void
  readonly shouldStop?: () => boolean
}

const SMALL = 4096
const BULK = 1024 * 1024
/** Writes wrap around at this offset so files stay small. */
const WRAP = 64 * 1024 * 1024
const USER = 'bench'
const PASSWORD = 'bench-password-1'
/** High enough that the policy's rate limit never shapes what is measured. */
const LIMITS = { requestsPerSecond: 1_000_000, burst: 1_000_000 }

interface Target {
  readonly config: SecurityConfig
  readonly endpoint: string
  readonly options: StorageProxyOptions
  /** Options of a client that lacks the configuration's credentials (undefined: none needed). */
  readonly without: StorageProxyOptions | undefined
}

/** A file open for writing through one proxy; Writes go sequentially and wrap at WRAP. */
interface Writer { proxy: StorageHandler, handle: string, pos: number }

async function openWriter (proxy: StorageHandler, path: string): Promise<Writer> {
  const { output } = await proxy.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })
  return { proxy, handle: output.handle, pos: 0 }
}

async function write (w: Writer, data: Buffer, proxy = w.proxy): Promise<void> {
  if (w.pos + data.length > WRAP) { await proxy.invoke('Seek', { handle: w.handle, offset: 0, origin: 'Begin' }); w.pos = 0 }
  const r = await proxy.invoke('Write', { handle: w.handle, data })
  w.pos = r.output.position
}

/** Starts the CA, the certificates, the policies and one domain per configuration. */
async function startDomains (dir: string): Promise<{ targets: Target[], procs: DomainProcess[], ca: Buffer, httpsPort: number }> {
  const pki = join(dir, 'pki')
  await initCa(pki)
  const client = await issueClientCertificate(pki, { identity: USER, keyType: 'ec' })
  const ca = readFileSync(join(pki, 'ca.crt'))
  const tlsClient = { ca, cert: readFileSync(client.certPath), key: readFileSync(client.keyPath) }
  const certPolicy = join(dir, 'policy-certificate.json')
  const passwordPolicy = join(dir, 'policy-password.json')
  writeFileSync(certPolicy, JSON.stringify({ identities: [{ name: USER, certificate: true, paths: ['*'], limits: LIMITS }] }), { mode: 0o600 })
  writeFileSync(passwordPolicy, JSON.stringify({ identities: [{ name: USER, password: PASSWORD, paths: ['*'], limits: LIMITS }] }), { mode: 0o600 })
  const env = { ...process.env, METAOS_LOG_LEVEL: 'warn' }
  const procs: DomainProcess[] = []
  const targets: Target[] = []
  let httpsPort = 0
  for (const config of SECURITY_CONFIGS) {
    const root = join(dir, `root-${config}`)
    mkdirSync(root)
    const d = DESCRIBE[config]
    const listen = d.transport === 'bus' ? `unix:${join(dir, 'bus.sock')}` : `${d.transport}://127.0.0.1:0`
    // A certificate (and so an EPR) of its own per TLS domain; ECDSA P-256, as pki issues by default.
    const server = d.tls === 'none' ? undefined : await issueDomainCertificate(pki, { name: `bench-${config}`, keyType: 'ec' })
    const extra = server === undefined ? [] : ['--tls-cert', server.certPath, '--tls-key', server.keyPath]
    const auth = d.auth === 'certificate' ? ['--client-ca', join(pki, 'ca.crt'), '--auth', certPolicy] : d.auth === 'none' ? [] : ['--auth', passwordPolicy]
    const p = await spawnDomain(['storage', '--root', root, '--name', `bench-${config}`, '--listen', listen, ...extra, ...auth], { env })
    procs.push(p)
    const endpoint = p.ready.endpoints[0]!
    if (config === 'https') httpsPort = Number(new URL(endpoint).port)
    const credentials = d.auth === 'digest' || d.auth === 'text' ? { username: USER, password: PASSWORD, passwordType: d.auth } : undefined
    const tls = d.tls === 'none' ? undefined : d.tls === 'mutual' ? tlsClient : { ca }
    // One Caller for every proxy of a configuration, so a proxy made per call may use the handles
    // of the long-lived one (an authenticated identity overrides it: handles are bound to that).
    const options: StorageProxyOptions = { caller: 'urn:metaos:bench:security', ...(tls === undefined ? {} : { tls }), ...(credentials === undefined ? {} : { credentials }) }
    const without = d.auth === 'none' ? undefined : { caller: 'urn:metaos:bench:intruder', ...(tls === undefined ? {} : { tls: { ca } }) }
    targets.push({ config, endpoint, options, without })
  }
  return { targets, procs, ca, httpsPort }
}

/** True when a client without the credentials is refused (a TLS refusal counts). */
async function refused (t: Target): Promise<boolean | null> {
  if (t.without === undefined) return null
  const p = createStorageProxy(t.endpoint, { ...t.without, timeoutMs: 5000 })
  try { await p.invoke('Open', { path: 'intruder.bin', mode: 'Create', access: 'Write', share: 'None' }); return false } catch { return true } finally { await p.close() }
}

/** The protocol and cipher an https listener negotiates with Node's defaults, and its key. */
async function negotiated (port: number, ca: Buffer): Promise<SecurityResult['negotiated']> {
  return await new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      const cert = s.getPeerX509Certificate()
      const key = cert?.publicKey
      const details = key?.asymmetricKeyDetails
      resolve({ protocol: s.getProtocol(), cipher: s.getCipher().standardName, serverKey: `${key?.asymmetricKeyType ?? '?'}${details?.namedCurve === undefined ? '' : ` ${details.namedCurve}`}` })
      s.end()
    })
    s.on('error', reject)
  })
}

const quantile = (sorted: readonly number[], f: number): number => sorted[Math.min(sorted.length - 1, Math.floor(f * sorted.length))] ?? 0
function stats (lat: readonly number[]): { n: number, perSec: number, p50: number, p99: number } {
  const sorted = [...lat].sort((a, b) => a - b)
  const sum = lat.reduce((s, x) => s + x, 0)
  return { n: lat.length, perSec: lat.length === 0 ? 0 : lat.length / (sum / 1e6), p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99) }
}

export async function runSecuritySuite (o: SecuritySuiteOptions): Promise<SecurityResult> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-security-'))
  let procs: DomainProcess[] = []
  const proxies: StorageHandler[] = []
  try {
    const started = await startDomains(dir)
    procs = started.procs
    const tls = await negotiated(started.httpsPort, started.ca)
    const small = Buffer.alloc(SMALL, 0x5a)
    const bulk = Buffer.alloc(BULK, 0xa5)
    const acc: Measuring[] = []
    for (const t of started.targets) {
      const proxy = createStorageProxy(t.endpoint, t.options)
      proxies.push(proxy)
      const enforced = await refused(t)
      acc.push({ t, enforced, small: await openWriter(proxy, 'small.bin'), bulk: await openWriter(proxy, 'bulk.bin'), lat: [] as number[], mibLat: [] as number[], freshLat: [] as number[] })
    }
    // Warm-up: JIT, connections, the page cache of each file's first blocks.
    for (const a of acc) {
      for (let i = 0; i < 50; i++) await write(a.small, small)
      for (let i = 0; i < 4; i++) await write(a.bulk, bulk)
    }
    const freshOf = acc.filter((a) => (FRESH_CONFIGS as readonly string[]).includes(a.t.config))
    for (const a of freshOf) for (let i = 0; i < 5; i++) await freshWrite(a.t, a.small, small)
    const { rounds, stopped } = await measureRounds(o, acc, freshOf, small, bulk)
    const { rows, fresh } = summarize(acc, freshOf)
    for (const a of acc) { await a.small.proxy.invoke('Close', { handle: a.small.handle }); await a.bulk.proxy.invoke('Close', { handle: a.bulk.handle }) }
    return { negotiated: tls, payloadBytes: SMALL, bulkBytes: BULK, rounds, stopped, rows, fresh }
  } finally {
    for (const p of proxies) await p.close().catch(() => {})
    await Promise.all(procs.map(async (p) => await p.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
}

/** One configuration being measured: whether it refuses a client without credentials, its two open files, and the latencies (µs) of its 4 KiB, 1 MiB and new-connection writes. */
interface Measuring { t: Target, enforced: boolean | null, small: Writer, bulk: Writer, lat: number[], mibLat: number[], freshLat: number[] }

/** Calls `f` one after the other until `until`, each one's latency (µs) into `lat`. */
async function timed (until: number, lat: number[], f: () => Promise<void>): Promise<void> {
  while (performance.now() < until) {
    const t0 = performance.now()
    await f()
    lat.push((performance.now() - t0) * 1000)
  }
}

/** `o.rounds` rounds, each giving every configuration a slice of 4 KiB writes, one of 1 MiB writes, and (FRESH_CONFIGS) one of new-connection writes. */
async function measureRounds (o: SecuritySuiteOptions, acc: Measuring[], freshOf: Measuring[], small: Buffer, bulk: Buffer): Promise<{ rounds: number, stopped: boolean }> {
  const slice = (o.seconds * 1000) / o.rounds
  const total = o.rounds * (acc.length * 2 + freshOf.length)
  let done = 0
  let rounds = 0
  let stopped = false
  for (let round = 0; round < o.rounds; round++) {
    if (o.shouldStop?.() === true) { stopped = true; break }
    // Rotate who goes first, so no configuration always follows the same neighbour.
    const order = acc.map((_, i) => acc[(i + round) % acc.length]!)
    for (const a of order) {
      o.onProgress?.(done++, total, `round ${round + 1}: ${a.t.config} 4 KiB`)
      await timed(performance.now() + slice, a.lat, async () => { await write(a.small, small) })
      o.onProgress?.(done++, total, `round ${round + 1}: ${a.t.config} 1 MiB`)
      await timed(performance.now() + slice, a.mibLat, async () => { await write(a.bulk, bulk) })
    }
    for (const a of freshOf.map((_, i) => freshOf[(i + round) % freshOf.length]!)) {
      o.onProgress?.(done++, total, `round ${round + 1}: ${a.t.config} 4 KiB, new connection each`)
      await timed(performance.now() + slice, a.freshLat, async () => { await freshWrite(a.t, a.small, small) })
    }
    rounds++
  }
  return { rounds, stopped }
}

/** The rows: each configuration's rates and percentiles, next to plain http's. */
function summarize (acc: Measuring[], freshOf: Measuring[]): { rows: SecurityRow[], fresh: FreshConnectionRow[] } {
  const measured = acc.map((a) => ({ a, s: stats(a.lat), m: stats(a.mibLat) }))
  const ref = measured.find((e) => e.a.t.config === 'http')!
  const rows: SecurityRow[] = measured.map(({ a, s, m }) => ({
    config: a.t.config,
    ...DESCRIBE[a.t.config],
    authEnforced: a.enforced,
    calls: s.n,
    callsPerSec: s.perSec,
    p50us: s.p50,
    p99us: s.p99,
    mibCalls: m.n,
    mbPerSec: m.perSec * (BULK / 1048576),
    mibP50us: m.p50,
    mibP99us: m.p99,
    callsVsHttp: s.perSec / ref.s.perSec,
    mbVsHttp: m.perSec / ref.m.perSec,
  }))
  const freshStats = freshOf.map((a) => ({ a, s: stats(a.freshLat) }))
  const freshRef = freshStats.find((e) => e.a.t.config === 'http')!.s.perSec
  const fresh: FreshConnectionRow[] = freshStats.map(({ a, s }) => ({
    config: a.t.config as FreshConnectionRow['config'],
    calls: s.n,
    callsPerSec: s.perSec,
    p50us: s.p50,
    p99us: s.p99,
    vsHttpFresh: s.perSec / freshRef,
    vsReused: s.perSec / rows.find((r) => r.config === a.t.config)!.callsPerSec,
  }))
  return { rows, fresh }
}

/** One Write through a proxy of its own: a new agent, so a new connection (and handshake), closed after. */
async function freshWrite (t: Target, w: Writer, data: Buffer): Promise<void> {
  const p = createStorageProxy(t.endpoint, t.options)
  try { await write(w, data, p) } finally { await p.close() }
}

const n = (v: number, d = 0): string => v.toFixed(d)
/** A ratio with two significant digits at least: 15×, 1.02×, 0.0050×. */
const x = (r: number): string => `${r >= 10 ? r.toFixed(0) : r >= 0.1 ? r.toFixed(2) : r.toPrecision(2)}×`
const LABEL: Record<SecurityConfig, string> = {
  http: 'http (plain)',
  https: 'https (TLS 1.3)',
  'https-mtls': 'https + mutual TLS',
  'https-digest': 'https + UsernameToken digest',
  'https-text': 'https + UsernameToken text',
  'http-digest': 'http + UsernameToken digest',
  bus: 'bus (Unix socket)',
}
const enforced = (r: SecurityRow): string => r.authEnforced === false ? ' (NOT ENFORCED)' : ''
const head = (r: SecurityResult): string => `TLS: ${r.negotiated.protocol ?? '?'}, ${r.negotiated.cipher}, server key ${r.negotiated.serverKey}; ${r.rounds} interleaved round${r.rounds === 1 ? '' : 's'}${r.stopped ? ' (stopped early)' : ''}`

/** For a terminal. */
export function securityTable (r: SecurityResult): string {
  let out = `\nWrite round trips, one call at a time: 4 KiB (calls/s, p50/p99) and 1 MiB (MB/s), ratios to plain http\n  ${head(r)}\n`
  out += `  ${'configuration'.padEnd(30)} ${'calls/s'.padStart(8)} ${'p50 µs'.padStart(7)} ${'p99 µs'.padStart(7)} ${'× http'.padStart(7)} ${'MB/s'.padStart(7)} ${'p50 µs'.padStart(7)} ${'p99 µs'.padStart(7)} ${'× http'.padStart(7)}\n`
  for (const e of r.rows) out += `  ${(LABEL[e.config] + enforced(e)).padEnd(30)} ${n(e.callsPerSec).padStart(8)} ${n(e.p50us).padStart(7)} ${n(e.p99us).padStart(7)} ${x(e.callsVsHttp).padStart(7)} ${n(e.mbPerSec, 1).padStart(7)} ${n(e.mibP50us).padStart(7)} ${n(e.mibP99us).padStart(7)} ${x(e.mbVsHttp).padStart(7)}\n`
  out += '\nA new connection per 4 KiB Write (a proxy per call: TCP connect, full TLS handshake, no resumption)\n'
  out += `  ${'configuration'.padEnd(30)} ${'calls/s'.padStart(8)} ${'p50 µs'.padStart(7)} ${'p99 µs'.padStart(7)} ${'× http'.padStart(7)} ${'× reused'.padStart(9)}\n`
  for (const e of r.fresh) out += `  ${LABEL[e.config].padEnd(30)} ${n(e.callsPerSec).padStart(8)} ${n(e.p50us).padStart(7)} ${n(e.p99us).padStart(7)} ${x(e.vsHttpFresh).padStart(7)} ${x(e.vsReused).padStart(9)}\n`
  return out
}

/** For docs: the same two tables in Markdown. */
export function securityMarkdown (r: SecurityResult): string {
  let out = `${head(r)}.\n\n`
  out += '| configuration | 4 KiB calls/s | p50 µs | p99 µs | × http | 1 MiB MB/s | p50 µs | p99 µs | × http |\n'
  out += '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
  for (const e of r.rows) out += `| ${LABEL[e.config]}${enforced(e)} | ${n(e.callsPerSec)} | ${n(e.p50us)} | ${n(e.p99us)} | ${x(e.callsVsHttp)} | ${n(e.mbPerSec, 1)} | ${n(e.mibP50us)} | ${n(e.mibP99us)} | ${x(e.mbVsHttp)} |\n`
  out += '\nA new connection per 4 KiB Write:\n\n'
  out += '| configuration | calls/s | p50 µs | p99 µs | × http (new connections) | × same, connection reused |\n'
  out += '| --- | ---: | ---: | ---: | ---: | ---: |\n'
  for (const e of r.fresh) out += `| ${LABEL[e.config]} | ${n(e.callsPerSec)} | ${n(e.p50us)} | ${n(e.p99us)} | ${x(e.vsHttpFresh)} | ${x(e.vsReused)} |\n`
  return out
}
