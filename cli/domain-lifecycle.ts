// What every domain command shares (DESIGN.md §5): the options all of them take, their checks, and
// what happens once the domain listens — its process metrics, SIGHUP's TLS reload, announce it on
// WS-Discovery if asked, print exactly one JSON ready line, then wait for SIGTERM or SIGINT: say Bye
// first (clients stop choosing it), drain in-flight calls, close, and return the exit code.
import type { Logger } from 'pino'
import type { TargetService } from '../discovery/target-service.js'
import { HostingValues, type Hosting } from '../wsdl/generated/storage-service.js'
import { announce, announcementOf, type Announcement } from '../service-domain/announcement.js'
import type { ServiceDomain } from '../service-domain/bootstrap.js'

import { SECURITY_ARGS, type DomainSecurity } from '../security/domain-security.js'

/** The --help lines of the options every domain command shares beyond the listeners (metrics). */
export const METRICS_HELP = `  --metrics-listen URL    also serve GET /metrics (Prometheus text) on a listener of its own,
                          http://127.0.0.1:PORT (port 0 = any free port; beyond loopback only
                          with --allow-insecure). /metrics is always served on the domain's
                          unix and loopback http listeners, and on its other listeners when it
                          demands no authentication (docs/metrics.md)
`

/** The parseArgs options every domain command takes (each adds its own). */
export const DOMAIN_OPTIONS = {
  listen: { type: 'string', multiple: true },
  name: { type: 'string' },
  announce: { type: 'boolean' },
  interface: { type: 'string', multiple: true },
  zone: { type: 'string' },
  hosting: { type: 'string' },
  scope: { type: 'string', multiple: true },
  'max-message-bytes': { type: 'string' },
  'log-level': { type: 'string' },
  'hypervisor-bus': { type: 'string' },
  'metrics-listen': { type: 'string' },
  ...SECURITY_ARGS,
  help: { type: 'boolean', short: 'h' },
} as const

/** `--hosting` (default process), or the usage error. */
export function parseHosting (value: string | undefined): { hosting: Hosting } | { error: string } {
  const hosting = (value ?? 'process') as Hosting
  return HostingValues.includes(hosting) ? { hosting } : { error: `--hosting must be one of ${HostingValues.join(', ')}, not "${value}"` }
}

/** The limits given as positive integers (`[flag, key]` pairs; absent flags are left out), or the first error. */
export function positiveIntegers (values: Readonly<Record<string, unknown>>, flags: ReadonlyArray<readonly [string, string]>): { limits: Record<string, number> } | { error: string } {
  const limits: Record<string, number> = {}
  for (const [flag, key] of flags) {
    const v = values[flag]
    if (typeof v !== 'string') continue
    const n = Number(v)
    if (v.trim() === '' || !Number.isSafeInteger(n) || n <= 0) return { error: `--${flag} must be a positive integer, not "${v}"` }
    limits[key] = n
  }
  return { limits }
}

export interface RunningDomain {
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly host: { readonly inFlight: number }
  /** The `--metrics-listen` endpoint as bound: the ready line names it. */
  readonly metricsEndpoint?: string
  close: (graceMs?: number) => Promise<void>
}

export interface ServeOptions {
  /** What the drain log line says beside the calls in flight. */
  readonly drainFacts?: () => object
  /** SIGHUP re-reads the TLS material (a renewed certificate, a new CRL) through this. */
  readonly reloadTls?: () => void
  /** `--hypervisor-bus`: the virtio-serial port to serve as the bus (inside a VM guest). */
  readonly hypervisorBus?: string
}

export async function serveUntilSignalled (service: string, domain: RunningDomain, announcement: Announcement | undefined, logger: Logger, o: ServeOptions = {}): Promise<number> {
  const drainFacts = o.drainFacts ?? (() => ({}))
  // The bus's calls are multiplexed over the port and reach the domain's own Unix socket, in this
  // process: no other process between the port and the service (vm/guest-bus.ts).
  let bus: { close: () => void } | undefined
  if (o.hypervisorBus !== undefined) {
    const { serveHypervisorBus } = await import('../vm/guest-bus.js')
    try {
      bus = await serveHypervisorBus(o.hypervisorBus, domain.endpoints, logger)
    } catch (e) {
      await domain.close(0)
      throw e
    }
  }
  const target: TargetService | undefined = announcement === undefined ? undefined : await announce(domain, announcement, logger)
  // `metrics` only when --metrics-listen was given: the line is otherwise exactly DESIGN.md §5's.
  process.stdout.write(JSON.stringify({ event: 'ready', service, endpoints: domain.endpoints, epr: domain.epr, ...(domain.metricsEndpoint === undefined ? {} : { metrics: domain.metricsEndpoint }) }) + '\n')
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal, inFlight: domain.host.inFlight, ...drainFacts() }, 'draining')
      // Bye first: clients stop choosing this domain while it drains.
      const bye = target?.stop() ?? Promise.resolve()
      Promise.all([bye, domain.close()]).then(() => { resolve() }, (e: unknown) => { logger.error({ err: e }, 'close failed'); resolve() })
    }
    process.once('SIGTERM', stop)
    process.once('SIGINT', stop)
    if (o.reloadTls !== undefined) {
      const reload = o.reloadTls
      process.on('SIGHUP', () => {
        try { reload(); logger.info('TLS material re-read') } catch (e) { logger.error({ err: e }, 'could not re-read the TLS material; the old one stays') }
      })
    }
  })
  bus?.close()
  logger.info('stopped')
  logger.flush()
  return 0
}

/** The flags of DOMAIN_OPTIONS that say how a listening domain is announced and served. */
export interface ServeFlags {
  readonly announce?: boolean
  readonly zone?: string
  readonly scope?: string[]
  readonly interface?: string[]
  readonly 'hypervisor-bus'?: string
}

export interface ServedFacts {
  readonly hosting: Hosting
  readonly volume?: string
  /** Scopes announced before the --scope ones (declared SLA and costs). */
  readonly scopes?: readonly string[]
  readonly security: DomainSecurity
  readonly drainFacts?: () => object
}

/** What every domain command does once its domain listens, as its flags say; returns the exit code. */
export async function serveDomain (service: 'storage' | 'network', domain: ServiceDomain, flags: ServeFlags, f: ServedFacts, logger: Logger): Promise<number> {
  // Node's process metrics (CPU, memory, event loop, GC) belong to this process: the library's registries never add them.
  domain.metrics.includeProcessMetrics()
  const announcement = flags.announce === true
    ? announcementOf({ service, hosting: f.hosting, ...(f.volume === undefined ? {} : { volume: f.volume }), ...(flags.zone === undefined ? {} : { zone: flags.zone }), scopes: [...(f.scopes ?? []), ...(flags.scope ?? [])], ...(flags.interface === undefined ? {} : { interfaces: flags.interface }) })
    : undefined
  return await serveUntilSignalled(service, domain, announcement, logger, {
    ...(f.drainFacts === undefined ? {} : { drainFacts: f.drainFacts }),
    ...(flags['hypervisor-bus'] === undefined ? {} : { hypervisorBus: flags['hypervisor-bus'] }),
    reloadTls: () => { const tls = f.security.reload(); if (tls !== undefined) domain.host.setTls(tls) },
  })
}
