// A storage service domain: the storage engine confined to a root, served by the generic service
// host over HTTP and the Unix-socket bus, with its identity (stable EPR, volume) and the facts of
// the kernel it runs on (GetDomainInfo), and its Prometheus metrics (a registry of its own, served
// at /metrics). `metaos storage` and tests start domains through here.
import { realpath, stat } from 'node:fs/promises'
import { hostname, machine, release, type, version } from 'node:os'
import { basename } from 'node:path'
import type { Logger } from 'pino'
import { MetaosError } from '../soap-runtime/errors.js'
import { ServiceHost, type CallContext, type HostLimits, type Implementation } from '../soap-runtime/service-host.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { STORAGE_PATH, storageWsdl } from '../wsdl/contracts.js'
import { stableUuid, defaultVolume } from '../service-domain/identity.js'
import { StorageServiceDescriptor, type GetDomainInfoResponse, type Hosting } from '../wsdl/generated/storage-service.js'
import { StorageEngine, type EngineLimits } from './storage-engine.js'
import { confinedTo } from './path-policy.js'
import { FaultInjection } from './fault-injection.js'
import { hostSecurity, type DomainSecurity } from '../security/domain-security.js'
import { checkPath, checkVolume } from '../security/access-policy.js'
import { identityOf } from '../security/authenticator.js'
import { DomainMetrics, serveMetrics, type MetricsListener } from '../soap-runtime/metrics.js'

export { STORAGE_PATH, storageWsdl } from '../wsdl/contracts.js'
export { stableUuid, defaultVolume } from '../service-domain/identity.js'

export interface StorageDomainOptions {
  readonly root: string
  readonly listen: readonly string[]
  readonly name?: string
  readonly volume?: string
  readonly hosting?: Hosting
  readonly limits?: Partial<HostLimits & EngineLimits>
  readonly logger?: Logger
  /** A real delay inside the service, switchable at run time (tests, benchmarks). */
  readonly faults?: FaultInjection
  /** TLS, authentication and per-identity authorization (docs/security.md). */
  readonly security?: DomainSecurity
  /** `--metrics-listen`: a separate loopback HTTP listener serving only GET /metrics. */
  readonly metricsListen?: string
}

export interface StorageDomain {
  readonly epr: string
  readonly volume: string
  readonly endpoints: readonly string[]
  readonly engine: StorageEngine
  readonly host: ServiceHost
  readonly faults: FaultInjection
  /** Its metrics (docs/metrics.md), also served at GET /metrics on its listeners. */
  readonly metrics: DomainMetrics
  /** The `--metrics-listen` endpoint as bound (`http://HOST:PORT/metrics`), when one was asked for. */
  readonly metricsEndpoint?: string
  /** Drains (in-flight calls finish, new ones get DOMAIN_DRAINING) and closes every handle. */
  close: (graceMs?: number) => Promise<void>
}

export async function startStorageDomain (o: StorageDomainOptions): Promise<StorageDomain> {
  const rootReal = await realpath(o.root).catch(() => { throw new MetaosError('FILE_NOT_FOUND', `root ${o.root} does not exist`) })
  if (!(await stat(rootReal)).isDirectory()) throw new MetaosError('INVALID_ARGUMENT', `root ${o.root} is not a directory`)
  const logger = o.logger ?? silentLogger
  const name = o.name ?? 'storage'
  const volume = o.volume ?? defaultVolume(rootReal)
  if (!/^[A-Za-z0-9._~-]{1,100}$/.test(volume)) throw new MetaosError('INVALID_ARGUMENT', `volume "${volume}" must be 1-100 characters of A-Z a-z 0-9 . _ ~ -`)
  // A domain certificate that names an EPR fixes the domain's identity: it announces what it can prove.
  const epr = o.security?.certifiedEpr ?? stableUuid('metaos-storage', hostname(), name, rootReal)
  const auth = o.security?.authenticator
  const engine = new StorageEngine(confinedTo(rootReal), { ...o.limits, ...(auth === undefined ? {} : { limitFor: (owner: string) => auth.limitFor(owner) }) })
  const started = Date.now()
  let endpoints: string[] = []
  const info = (): GetDomainInfoResponse => ({
    domainId: epr,
    volume,
    hosting: o.hosting ?? 'process',
    kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
    runtime: `node/${process.versions.node}`,
    transports: { transport: endpoints },
    uptime: (Date.now() - started) / 1000,
  })
  const faults = o.faults ?? new FaultInjection()
  const operations: Implementation = {
    Open: async (i, ctx) => await engine.open(i, ctx.caller),
    Read: async (i, ctx) => await engine.read(i, ctx.caller),
    Write: async (i, ctx) => await engine.write(i, ctx.caller),
    Seek: async (i, ctx) => await engine.seek(i, ctx.caller),
    Flush: async (i, ctx) => await engine.flush(i, ctx.caller),
    SetLength: async (i, ctx) => await engine.setLength(i, ctx.caller),
    GetLength: async (i, ctx) => await engine.getLength(i, ctx.caller),
    Close: async (i, ctx) => await engine.close(i, ctx.caller),
    Delete: async (i) => await engine.delete(i),
    GetFileInfo: async (i) => await engine.getFileInfo(i),
    ListDirectory: async (i) => await engine.listDirectory(i),
    GetDomainInfo: async () => info(),
  }
  // Every operation is authorized first (the identity's volumes and paths; handles are bound to
  // the identity by the host), then goes through the fault injector (nothing to wait for when off).
  const authorize = (i: { path?: unknown }, ctx: CallContext): void => {
    const id = identityOf(ctx.principal)
    if (id === undefined) return
    checkVolume(id, volume)
    if (typeof i.path === 'string') checkPath(id, i.path)
  }
  const implementation = Object.fromEntries(Object.entries(operations).map(([op, f]) => [op, async (i: never, ctx: CallContext) => { authorize(i, ctx); await faults.before(); return await f(i, ctx as never) }])) as Implementation
  const metrics = new DomainMetrics({
    service: 'storage', epr, labels: { volume, hosting: o.hosting ?? 'process' }, authenticated: auth !== undefined,
    ...(auth === undefined ? {} : { refusals: () => auth.refused }),
  })
  metrics.gauge('metaos_storage_open_handles', 'File handles open in the storage engine', () => engine.openHandles)
  const host = new ServiceHost({
    metrics,
    descriptor: StorageServiceDescriptor,
    implementation,
    wsdl: storageWsdl(),
    path: STORAGE_PATH,
    faultElement: 'StorageFault',
    timingHeader: 'ServiceTiming',
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
    await engine.closeAll()
    throw e
  }
  faults.onCloseListeners = () => { host.stopListening() }
  logger.info({ epr, volume, endpoints, root: rootReal, ...(metricsListener === undefined ? {} : { metrics: metricsListener.url }) }, 'storage domain ready')
  return {
    epr,
    volume,
    get endpoints () { return endpoints },
    engine,
    host,
    faults,
    metrics,
    ...(metricsListener === undefined ? {} : { metricsEndpoint: metricsListener.url }),
    close: async (graceMs) => {
      faults.stop()
      await metricsListener?.close()
      await host.close(graceMs)
      await engine.closeAll()
    },
  }
}
