// What every domain command shares (DESIGN.md §5): the options all of them take, their checks, and
// what happens once the domain listens — announce it on WS-Discovery if asked, print exactly one
// JSON ready line, then wait for SIGTERM or SIGINT: say Bye first (clients stop choosing it), drain
// in-flight calls, close, and return the exit code.
import type { Logger } from 'pino'
import { TargetService } from '../discovery/target-service.js'
import { HostingValues, type Hosting } from '../wsdl/generated/storage-service.js'

import { SECURITY_ARGS } from '../security/domain-security.js'

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
  'announce-hostname': { type: 'boolean' },
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

export interface Announcement {
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  readonly interfaces?: readonly string[]
  /** `--announce-hostname`: listeners on 0.0.0.0 or [::] are announced under this name instead. */
  readonly hostname?: string
}

/** An endpoint on a wildcard address (0.0.0.0, [::]) named `host` instead: what others can reach. */
export function namedEndpoint (endpoint: string, host: string): string {
  const m = /^(https?:\/\/)(0\.0\.0\.0|\[::\])(:\d+\/.*)$/.exec(endpoint)
  return m === null ? endpoint : `${m[1]!}${host}${m[3]!}`
}

export interface ServeOptions {
  /** What the drain log line says beside the calls in flight. */
  readonly drainFacts?: () => object
  /** SIGHUP re-reads the TLS material (a renewed certificate, a new CRL) through this. */
  readonly reloadTls?: () => void
  /** `--hypervisor-bus`: the virtio-serial port to serve as the bus (inside a VM guest). */
  readonly hypervisorBus?: string
}

export async function serveUntilSignalled (service: string, domain: RunningDomain, announce: Announcement | undefined, logger: Logger, o: ServeOptions = {}): Promise<number> {
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
  let target: TargetService | undefined
  if (announce !== undefined) {
    target = new TargetService({
      epr: domain.epr,
      types: announce.types,
      scopes: announce.scopes,
      xaddrs: announce.hostname === undefined ? domain.endpoints : domain.endpoints.map((e) => namedEndpoint(e, announce.hostname!)),
      ...(announce.interfaces === undefined ? {} : { interfaces: announce.interfaces }),
      logger,
    })
    try {
      await target.start()
    } catch (e) {
      await domain.close(0)
      throw e
    }
  }
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
