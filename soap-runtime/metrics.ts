// A service's Prometheus metrics (prom-client): one Registry per host — never prom-client's global
// default registry, so several domains in one process (tests, `metaos up`) do not collide. The
// dispatcher's metrics inspector records every call here (operation, transport, time, bytes, fault
// code); the caller names the service with generic labels and adds gauges read from its engine at
// scrape time (open handles, sockets). `serveMetrics` is the optional separate listener of
// `--metrics-listen`. Owns no HTTP routing of the service itself.
import { createServer, type Server } from 'node:http'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import { CallCounts, CallLatencyHistogram } from './call-counts.js'
import { MetaosError } from './errors.js'
import { isLoopbackHost } from './endpoint.js'
import type { CallTransport } from './host-types.js'
import type { CallRecord } from './inspectors.js'

export type { CallRecord } from './inspectors.js'

/** Call latency buckets (seconds): 50 µs (a bus call of a cached Seek) to 10 s (a hang). */
export const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export interface DomainMetricsOptions {
  /** What the service is (e.g. `storage`): the `service` label of `metaos_domain_info`. */
  readonly service: string
  readonly epr: string
  /** More labels of `metaos_domain_info`, in this order after `service` and `epr` (e.g. the volume served). */
  readonly labels?: Readonly<Record<string, string>>
  /** Calls must authenticate (an authenticator is set). */
  readonly authenticated: boolean
  /** Counted authentication refusals by reason (the authenticator's `refused` map), read at scrape time. */
  readonly refusals?: () => ReadonlyMap<string, number>
}

export class DomainMetrics {
  readonly registry = new Registry()
  readonly #faults: Counter<'operation' | 'code'>
  readonly #listeners: Gauge<'transport'>
  readonly #info: Gauge<string>
  readonly #o: DomainMetricsOptions
  /** Every call's numbers, added up on the call's path; the metrics below read them at scrape time (call-counts.ts). */
  readonly #counts = new CallCounts(LATENCY_BUCKETS)
  #inFlight: () => number = () => 0
  #tls = false

  constructor (o: DomainMetricsOptions) {
    this.#o = o
    const registers = [this.registry]
    const counts = this.#counts
    new Counter({ // eslint-disable-line no-new
      name: 'metaos_domain_calls_total', help: 'SOAP calls answered (a response or a fault), by operation and listener transport', labelNames: ['operation', 'transport'], registers,
      collect () { this.reset(); for (const op of counts.byOperation.values()) for (const [transport, n] of op.calls) this.inc({ operation: op.operation, transport }, n) },
    })
    this.#faults = new Counter({ name: 'metaos_domain_faults_total', help: 'Calls answered with a fault, by operation and fault code', labelNames: ['operation', 'code'], registers })
    new CallLatencyHistogram(counts, { name: 'metaos_domain_call_duration_seconds', help: 'Service-side time of a call, from the whole request received to the response written (what the ServiceTiming header says)', buckets: LATENCY_BUCKETS, registers }) // eslint-disable-line no-new
    new Counter({ // eslint-disable-line no-new
      name: 'metaos_domain_request_bytes_total', help: 'Request body bytes received (SOAP envelope, or the whole MTOM package)', labelNames: ['operation'], registers,
      collect () { this.reset(); for (const op of counts.byOperation.values()) if (op.requestBytes > 0) this.inc({ operation: op.operation }, op.requestBytes) },
    })
    new Counter({ // eslint-disable-line no-new
      name: 'metaos_domain_response_bytes_total', help: 'Response body bytes sent', labelNames: ['operation'], registers,
      collect () { this.reset(); for (const op of counts.byOperation.values()) if (op.responseBytes > 0) this.inc({ operation: op.operation }, op.responseBytes) },
    })
    const metrics = this // eslint-disable-line @typescript-eslint/no-this-alias
    new Gauge({ name: 'metaos_domain_in_flight_calls', help: 'Calls received and not yet answered', registers, collect () { this.set(metrics.#inFlight()) } }) // eslint-disable-line no-new
    this.#listeners = new Gauge({ name: 'metaos_domain_listeners', help: 'Listening endpoints by transport (https = TLS)', labelNames: ['transport'], registers })
    this.#info = new Gauge({ name: 'metaos_domain_info', help: 'Always 1; the labels say which domain this is, whether it serves TLS and whether calls must authenticate', labelNames: ['service', 'epr', ...Object.keys(o.labels ?? {}), 'tls', 'authenticated'], registers, collect () { metrics.#setInfo() } })
    if (o.refusals !== undefined) {
      const refusals = o.refusals
      new Counter({ // eslint-disable-line no-new
        name: 'metaos_domain_auth_refusals_total',
        help: 'Calls refused by authentication, by reason',
        labelNames: ['reason'],
        registers,
        collect () {
          // The authenticator counts; its counts only grow, so they are set as they are.
          this.reset()
          for (const [reason, n] of refusals()) this.inc({ reason }, n)
        },
      })
    }
  }

  #setInfo (): void {
    const o = this.#o
    this.#info.reset()
    this.#info.set({ service: o.service, epr: o.epr, ...o.labels, tls: String(this.#tls), authenticated: String(o.authenticated) }, 1)
  }

  /** The host says how many calls are in flight, at scrape time. */
  set inFlightSource (f: () => number) { this.#inFlight = f }

  /** A listener started (the host calls it once per endpoint bound). */
  listening (transport: CallTransport): void {
    this.#listeners.inc({ transport })
    if (transport === 'https') this.#tls = true
  }

  /** A gauge of the domain's own (open handles, sockets), read at scrape time. */
  gauge (name: string, help: string, read: () => number): void {
    new Gauge({ name, help, registers: [this.registry], collect () { this.set(read()) } }) // eslint-disable-line no-new
  }

  /** A counter kept by the domain's own parts (it only grows), read at scrape time. */
  counter (name: string, help: string, read: () => number): void {
    new Counter({ name, help, registers: [this.registry], collect () { this.reset(); this.inc(read()) } }) // eslint-disable-line no-new
  }

  /** A gauge with labels, read at scrape time as `[labels, value]` pairs. */
  labelledGauge<L extends string> (name: string, help: string, labelNames: readonly L[], read: () => Iterable<readonly [Partial<Record<L, string>>, number]>): void {
    new Gauge({ name, help, labelNames, registers: [this.registry], collect () { this.reset(); for (const [l, v] of read()) this.set(l, v) } }) // eslint-disable-line no-new
  }

  /** A counter with labels kept by the domain's own parts, read at scrape time as `[labels, value]` pairs. */
  labelledCounter<L extends string> (name: string, help: string, labelNames: readonly L[], read: () => Iterable<readonly [Partial<Record<L, string>>, number]>): void {
    new Counter({ name, help, labelNames, registers: [this.registry], collect () { this.reset(); for (const [l, v] of read()) this.inc(l, v) } }) // eslint-disable-line no-new
  }

  record (c: CallRecord): void {
    this.#counts.add(c.operation, c.transport, c.micros / 1e6, c.requestBytes, c.responseBytes)
    if (c.faultCode !== undefined) this.#faults.inc({ operation: c.operation, code: c.faultCode })
  }


  /** Adds Node's process metrics (CPU, memory, event loop lag, GC): for the domain's own process only (`metaos storage|network`). */
  includeProcessMetrics (): void {
    collectDefaultMetrics({ register: this.registry })
  }

  get contentType (): string { return this.registry.contentType }
  async text (): Promise<string> { return await this.registry.metrics() }
}

/** Loopback host names and addresses. */
export interface MetricsListener {
  /** `http://HOST:PORT/metrics` as bound. */
  readonly url: string
  close: () => Promise<void>
}

/**
 * `--metrics-listen http://HOST:PORT`: a plain HTTP listener serving only GET /metrics. It has no
 * authentication, so beyond loopback it needs `allowInsecure` (the operator says the network is trusted).
 */
export async function serveMetrics (url: string, source: { text: () => Promise<string>, readonly contentType: string }, o: { allowInsecure?: boolean } = {}): Promise<MetricsListener> {
  let u: URL
  try { u = new URL(url) } catch { throw new MetaosError('INVALID_ARGUMENT', `--metrics-listen ${url}: not a URL (http://HOST:PORT)`) }
  if (u.protocol !== 'http:' || u.port === '' || (u.pathname !== '/' && u.pathname !== '/metrics')) throw new MetaosError('INVALID_ARGUMENT', `--metrics-listen ${url}: give http://HOST:PORT (port 0 = any free port)`)
  const host = u.hostname.replace(/^\[|\]$/g, '')
  if (!isLoopbackHost(host) && o.allowInsecure !== true) throw new MetaosError('INVALID_ARGUMENT', `--metrics-listen ${url} would serve metrics beyond this machine without authentication: listen on 127.0.0.1, or say --allow-insecure if this network is trusted`)
  const server: Server = createServer({ headersTimeout: 10_000, requestTimeout: 30_000 }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics') { res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }); res.end('metrics are at /metrics\n'); return }
    if (req.method !== 'GET' && req.method !== 'HEAD') { res.writeHead(405, { Allow: 'GET' }); res.end(); return }
    source.text().then((text) => {
      res.writeHead(200, { 'Content-Type': source.contentType, 'Content-Length': Buffer.byteLength(text) })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, (e: unknown) => { res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }); res.end(`metrics failed: ${(e as Error).message}\n`) })
  })
  server.maxConnections = 64
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(Number(u.port), host, () => { server.off('error', reject); resolve() })
  })
  const a = server.address()
  const port = a !== null && typeof a === 'object' ? a.port : Number(u.port)
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}/metrics`,
    close: async () => { await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() }) },
  }
}
