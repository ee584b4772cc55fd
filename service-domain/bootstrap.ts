// The one bootstrap of a service domain, whatever its service: its identity (a stable EPR, or the
// one its certificate names), the facts GetDomainInfo tells, the generic service host over its
// listeners with the domain's security, its metrics (a registry of its own, also served on
// --metrics-listen), fault injection, the ready log line, and the drain and close. A backend gives
// only its engine, its typed implementation and its own facts (backend-storage/storage-domain.ts,
// backend-network/network-domain.ts).
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { ServiceHost, type CallContext, type HostLimits, type Implementation } from '../soap-runtime/service-host.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { DomainMetrics, serveMetrics, type MetricsListener } from '../soap-runtime/metrics.js'
import type { ServiceContract } from '../wsdl/contracts.js'
import type { Hosting } from '../wsdl/generated/storage-service.js'
import { hostSecurity, type DomainSecurity } from '../security/domain-security.js'
import { stableUuid } from './identity.js'
import { domainFacts, type DomainFacts } from './domain-facts.js'
import type { FaultInjection } from './fault-injection.js'

/** The options every domain takes; each service adds its own (and its engine's limits). */
export interface DomainOptions<EngineLimits = object> {
  readonly listen: readonly string[]
  /** Domain name, part of its stable EPR (default: the service's name). */
  readonly name?: string
  readonly hosting?: Hosting
  readonly limits?: Partial<HostLimits & EngineLimits>
  readonly logger?: Logger
  /** TLS, authentication and per-identity authorization (docs/security.md). */
  readonly security?: DomainSecurity
  /** `--metrics-listen`: a separate loopback HTTP listener serving only GET /metrics. */
  readonly metricsListen?: string
}

/** What every running domain has; each service adds its engine and its own facts. */
export interface ServiceDomain {
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly host: ServiceHost
  /** Its metrics (docs/metrics.md), also served at GET /metrics on its listeners. */
  readonly metrics: DomainMetrics
  /** The `--metrics-listen` endpoint as bound (`http://HOST:PORT/metrics`), when one was asked for. */
  readonly metricsEndpoint?: string
  /** Drains (in-flight calls finish, new ones get DOMAIN_DRAINING), then closes what the engine holds. */
  close: (graceMs?: number) => Promise<void>
}

/** What a backend gives the bootstrap. */
export interface Backend {
  readonly service: 'storage' | 'network'
  readonly contract: ServiceContract
  /** What else names this domain in its stable EPR, beside service, host and name (a storage root's real path). */
  readonly identity?: readonly string[]
  readonly engine: {
    /** Called first when the domain closes: long waits answer now, so the drain is not held up. */
    readonly drain?: () => void
    /** Called last: every handle or socket closes. */
    readonly closeAll: () => Promise<void>
  }
  /** The typed implementation (a generated `…ServiceImplementation`), given the facts GetDomainInfo tells. */
  readonly implementation: (facts: () => DomainFacts) => Implementation
  /** Runs before every operation (authorization beyond the host's); throws to refuse. */
  readonly guard?: (input: { readonly path?: unknown }, ctx: CallContext) => void
  /** When given, every operation waits as it says, and it can close the listeners. */
  readonly faults?: FaultInjection
  /** The volume its metrics are labelled with (storage). */
  readonly volume?: string
  /** Adds the engine's own gauges to the domain's metrics. */
  readonly instrument?: (metrics: DomainMetrics) => void
  /** What the ready log line says beside the EPR and the endpoints. */
  readonly readyFacts?: object
}

/** A domain's EPR: the one its certificate names (it announces what it can prove), else a name-based UUID stable across restarts. */
export function domainEpr (o: DomainOptions, service: Backend['service'], identity: readonly string[] = []): string {
  return o.security?.certifiedEpr ?? stableUuid(`metaos-${service}`, hostname(), o.name ?? service, ...identity)
}

export async function startServiceDomain (o: DomainOptions, b: Backend): Promise<ServiceDomain> {
  const logger = o.logger ?? silentLogger
  const hosting = o.hosting ?? 'process'
  const epr = domainEpr(o, b.service, b.identity)
  const auth = o.security?.authenticator
  let endpoints: string[] = []
  const implementation = guarded(b.implementation(domainFacts(epr, hosting, () => endpoints)), b.guard, b.faults)
  const metrics = new DomainMetrics({
    service: b.service, epr, labels: { volume: b.volume ?? '', hosting }, authenticated: auth !== undefined,
    ...(auth === undefined ? {} : { refusals: () => auth.refused }),
  })
  b.instrument?.(metrics)
  const c = b.contract
  const host = new ServiceHost({
    metrics,
    descriptor: c.descriptor,
    implementation,
    wsdl: c.wsdl(),
    path: c.path,
    faultElement: c.faultElement,
    faultCodes: c.faultCodes,
    timingHeader: c.timingHeader,
    ...(o.limits === undefined ? {} : { limits: o.limits }),
    ...hostSecurity(o.security),
    logger,
  })
  let metricsListener: MetricsListener | undefined
  try {
    endpoints = await host.listen(o.listen)
    if (o.metricsListen !== undefined) metricsListener = await serveMetrics(o.metricsListen, metrics, { allowInsecure: o.security?.allowInsecure === true })
  } catch (e) {
    await host.close(0)
    await b.engine.closeAll()
    throw e
  }
  if (b.faults !== undefined) b.faults.onCloseListeners = () => { host.stopListening() }
  logger.info({ epr, endpoints, ...b.readyFacts, ...(metricsListener === undefined ? {} : { metrics: metricsListener.url }) }, `${b.service} domain ready`)
  return {
    epr,
    endpoints,
    host,
    metrics,
    ...(metricsListener === undefined ? {} : { metricsEndpoint: metricsListener.url }),
    close: async (graceMs) => {
      b.faults?.stop()
      b.engine.drain?.()
      await metricsListener?.close()
      await host.close(graceMs)
      await b.engine.closeAll()
    },
  }
}

/** Every operation is authorized first, then goes through the fault injector (nothing to wait for when off). */
function guarded (implementation: Implementation, guard: Backend['guard'], faults: FaultInjection | undefined): Implementation {
  if (guard === undefined && faults === undefined) return implementation
  return Object.fromEntries(Object.entries(implementation).map(([op, f]) => [op, async (i: { path?: unknown }, ctx: CallContext) => {
    guard?.(i, ctx)
    await faults?.before()
    return await f(i, ctx)
  }]))
}
