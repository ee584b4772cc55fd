// What every domain command shares (DESIGN.md §5): the options all of them take, their checks, and
// what happens once the domain listens — announce it on WS-Discovery if asked, print exactly one
// JSON ready line, then wait for SIGTERM or SIGINT: say Bye first (clients stop choosing it), drain
// in-flight calls, close, and return the exit code.
import type { Logger } from 'pino'
import type { TargetService } from '../discovery/target-service.js'
import { announce, announcedEndpoints, type Announcement } from '../service-domain/announcement.js'
import { readFileSync } from 'node:fs'
import type { ClientTls, ProxyAnnouncer } from '../discovery/proxy-client.js'
import type { DomainSecurity } from '../security/domain-security.js'
import { HostingValues, type Hosting } from '../wsdl/generated/storage-service.js'
import { file, flag, httpUrl, text, uri, UsageError, type OptionSpecs } from './options.js'
import { hosting, interfaceName, listenEndpoint, logLevel, positive } from './option-kinds.js'

/** The --help lines of the options every domain command shares beyond the listeners (metrics). */
export const METRICS_HELP = `  --metrics-listen URL    also serve GET /metrics (Prometheus text) on a listener of its own,
                          http://127.0.0.1:PORT (port 0 = any free port; beyond loopback only
                          with --allow-insecure). /metrics is always served on the domain's
                          unix and loopback http listeners, and on its other listeners when it
                          demands no authentication (docs/metrics.md)
`

/** The options every domain command takes (each adds its own), for cli/options.ts. */
export const DOMAIN_OPTIONS = {
  listen: { kind: listenEndpoint, multiple: true },
  name: { kind: text('a domain name') },
  announce: flag,
  'announce-hostname': flag,
  interface: { kind: interfaceName, multiple: true },
  zone: { kind: text('a zone name') },
  hosting: { kind: hosting },
  scope: { kind: uri(), multiple: true },
  'max-message-bytes': { kind: positive },
  'log-level': { kind: logLevel },
  'hypervisor-bus': { kind: text('a virtio-serial port name') },
  'metrics-listen': { kind: httpUrl() },
  // Security (docs/security.md): loadDomainSecurity reads the files.
  'tls-cert': { kind: file('a certificate file (PEM)'), needs: ['tls-key'] },
  'tls-key': { kind: file('a private key file (PEM)'), needs: ['tls-cert'] },
  'client-ca': { kind: file('a CA certificate file (PEM)'), needs: ['tls-cert'] },
  crl: { kind: file('a CRL file (PEM)'), needs: ['client-ca'] },
  auth: { kind: file('an access policy file (JSON)') },
  'allow-insecure': flag,
  // Announcing to a discovery proxy on another host (docs/discovery.md, managed mode across hosts).
  'discovery-proxy': { kind: httpUrl('an http(s)://HOST:PORT/discovery URL') },
  'discovery-proxy-ca': { kind: file('a CA certificate file (PEM)'), needs: ['discovery-proxy'] },
} as const satisfies OptionSpecs

/** The --help lines of the discovery proxy options every domain command takes. */
export const DISCOVERY_PROXY_HELP = `  --discovery-proxy URL   also announce to the discovery proxy at URL (https://HOST:PORT/discovery):
                          Hello at start and every 10 s, Bye at drain, over https with the
                          domain's certificate (--tls-cert/--tls-key, which names its EPR) as
                          client certificate; without --announce nothing is multicast
  --discovery-proxy-ca FILE  the CA the proxy's certificate must chain to (default: --client-ca)
`

/** What `--discovery-proxy` asks for: the proxy and the TLS to reach it (the domain's own certificate). */
export function discoveryProxyOf (values: Readonly<Record<string, unknown>>, security: DomainSecurity): DiscoveryProxyTarget | undefined {
  const url = values['discovery-proxy']
  if (typeof url !== 'string') return undefined
  if (!url.startsWith('https://')) return { url }
  if (security.tls === undefined) throw new UsageError(`--discovery-proxy ${url} presents the domain's certificate to the proxy: it needs --tls-cert and --tls-key`)
  const caFile = typeof values['discovery-proxy-ca'] === 'string' ? values['discovery-proxy-ca'] : typeof values['client-ca'] === 'string' ? values['client-ca'] : undefined
  return { url, tls: { cert: security.tls.cert, key: security.tls.key, ...(caFile === undefined ? {} : { ca: readFileSync(caFile) }) } }
}

export interface DiscoveryProxyTarget {
  readonly url: string
  readonly tls?: ClientTls
}

/** The limits given (`[flag, key]` pairs; absent flags are left out). */
export function limitsOf (values: Readonly<Record<string, unknown>>, flags: ReadonlyArray<readonly [string, string]>): Record<string, number> {
  const limits: Record<string, number> = {}
  for (const [flag, key] of flags) if (typeof values[flag] === 'number') limits[key] = values[flag]
  return limits
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
  /** `--discovery-proxy`: announce to this proxy too (the announcement's types and scopes). */
  readonly discoveryProxy?: DiscoveryProxyTarget
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
  const target: TargetService | undefined = announcement === undefined || announcement.multicast === false ? undefined : await announce(domain, announcement, logger)
  let toProxy: ProxyAnnouncer | undefined
  if (announcement !== undefined && o.discoveryProxy !== undefined) {
    // Loaded only for a domain that announces to a proxy: it brings the SOAP client over https.
    const { ProxyAnnouncer } = await import('../discovery/proxy-client.js')
    toProxy = new ProxyAnnouncer({
      proxy: o.discoveryProxy.url,
      ...(o.discoveryProxy.tls === undefined ? {} : { tls: o.discoveryProxy.tls }),
      target: { epr: domain.epr, types: announcement.types, scopes: announcement.scopes, xaddrs: announcedEndpoints(domain, announcement) },
      logger,
    })
    await toProxy.start() // a refusal or an absent proxy is logged; the domain serves all the same
  }
  // `metrics` only when --metrics-listen was given: the line is otherwise exactly DESIGN.md §5's.
  process.stdout.write(JSON.stringify({ event: 'ready', service, endpoints: domain.endpoints, epr: domain.epr, ...(domain.metricsEndpoint === undefined ? {} : { metrics: domain.metricsEndpoint }) }) + '\n')
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal, inFlight: domain.host.inFlight, ...drainFacts() }, 'draining')
      // Bye first: clients stop choosing this domain while it drains.
      const bye = Promise.all([target?.stop(), toProxy?.stop()])
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
