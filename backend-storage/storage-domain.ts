// A storage service domain: the storage engine confined to a root, started by the service-domain
// bootstrap (identity, host and listeners, GetDomainInfo's facts, metrics, fault injection, drain)
// with what is its own: the root and the volume it serves, the access policy's volume and path
// checks, and the open-handles gauge. `metaos storage` and tests start domains through here.
// With coordination (etcd), the domain holds a lease, registers every open across the volume's
// domains under it, and fences its handles when the lease is lost (fencing.ts).
import { realpath, stat } from 'node:fs/promises'
import { hostname } from 'node:os'
import { MetaosError } from '../soap-runtime/errors.js'
import { STORAGE_CONTRACT } from '../wsdl/contracts.js'
import { defaultVolume } from '../service-domain/identity.js'
import { domainEpr, startServiceDomain, type DomainOptions, type ServiceDomain } from '../service-domain/bootstrap.js'
import { FaultInjection } from '../service-domain/fault-injection.js'
import { checkPath, checkVolume } from '../security/access-policy.js'
import { identityOf } from '../security/authenticator.js'
import { StorageEngine, type EngineLimits } from './storage-engine.js'
import { confinedTo } from './path-policy.js'
import { storageImplementation } from './storage-implementation.js'
import { StreamFence, followStreamDirectory } from './fencing.js'
import { volumeShares } from './volume-shares.js'
import { VolumeGate } from './volume-gate.js'
import type { Coordination, Lease } from '../coordination/api.js'

export { STORAGE_PATH, storageWsdl } from '../wsdl/contracts.js'
export { stableUuid, defaultVolume } from '../service-domain/identity.js'

export interface StorageDomainOptions extends DomainOptions<EngineLimits> {
  readonly root: string
  readonly volume?: string
  /** A real delay inside the service, switchable at run time (tests, benchmarks). */
  readonly faults?: FaultInjection
  /** `--coordination`: share modes across the volume's domains and a lease that fences this one (docs/coordination.md). */
  readonly coordination?: Coordination
  /** Reads and Writes up to this many bytes, nothing queued on their handle, run synchronously (storage-implementation.ts; default SYNC_IO_MAX, 0 never). */
  readonly syncIoMax?: number
}

export interface StorageDomain extends ServiceDomain {
  readonly volume: string
  readonly engine: StorageEngine
  readonly faults: FaultInjection
  /** Stream epochs and, with coordination, the lease check of every handle operation. */
  readonly fence: StreamFence
  /** With coordination: the domain's lease (revoked when the domain closes). */
  readonly lease?: Lease
  /** Holds new operations, waits for those under way and closes every descriptor (handles stay): the volume may be unmounted (volume-gate.ts). */
  releaseVolume: () => Promise<void>
  /** Reopens the handles' files and lets the held operations through. */
  takeVolume: () => Promise<void>
}

export async function startStorageDomain (o: StorageDomainOptions): Promise<StorageDomain> {
  const rootReal = await realpath(o.root).catch(() => { throw new MetaosError('FILE_NOT_FOUND', `root ${o.root} does not exist`) })
  if (!(await stat(rootReal)).isDirectory()) throw new MetaosError('INVALID_ARGUMENT', `root ${o.root} is not a directory`)
  const volume = o.volume ?? defaultVolume(rootReal)
  if (!/^[A-Za-z0-9._~-]{1,100}$/.test(volume)) throw new MetaosError('INVALID_ARGUMENT', `volume "${volume}" must be 1-100 characters of A-Z a-z 0-9 . _ ~ -`)
  const auth = o.security?.authenticator
  const lease = o.coordination?.domainLease(domainEpr(o, 'storage', [rootReal]), { volume, host: hostname() })
  const fence = new StreamFence(lease)
  lease?.on('lost', () => { fence.leaseLost() })
  const shares = lease === undefined ? undefined : volumeShares(o.coordination!.shares(lease), volume, rootReal)
  const engine = new StorageEngine(confinedTo(rootReal), { ...o.limits, ...(auth === undefined ? {} : { limitFor: (owner: string) => auth.limitFor(owner) }) }, fence, shares)
  const faults = o.faults ?? new FaultInjection()
  const gate = new VolumeGate()
  const releaseVolume = async (): Promise<void> => { await gate.close(); await engine.releaseDescriptors() }
  const takeVolume = async (): Promise<void> => { await engine.reacquireDescriptors(); gate.open() }
  const domain = await startServiceDomain(o, {
    service: 'storage',
    contract: STORAGE_CONTRACT,
    identity: [rootReal],
    engine,
    implementation: (facts) => storageImplementation(engine, () => ({ ...facts(), volume }), gate, o.syncIoMax),
    // The identity's volumes and paths; handles are bound to the identity by the host.
    guard: (i, ctx) => {
      const id = identityOf(ctx.principal)
      if (id === undefined) return
      checkVolume(id, volume)
      if (typeof i.path === 'string') checkPath(id, i.path)
    },
    faults,
    volume,
    instrument: (metrics) => {
      metrics.gauge('metaos_storage_open_handles', 'File handles open in the storage engine', () => engine.openHandles)
      metrics.labelledCounter('metaos_storage_fence_refusals_total', 'Handle operations and Opens the fence refused (DOMAIN_FENCED: no valid lease; STALE_EPOCH: an older or unconfirmed stream epoch)', ['code'], () => Object.entries(fence.refused).map(([code, n]) => [{ code }, n] as const))
    },
    readyFacts: { volume, root: rootReal, ...(lease === undefined ? {} : { coordination: o.coordination!.endpoints.url }) },
  }).catch(async (e: unknown) => { await lease?.release(); throw e })
  if (lease === undefined) return { ...domain, volume, engine, faults, fence, releaseVolume, takeVolume }
  // Epochs of the volume's streams as the stream directory moves them: older operations are refused here too.
  const unfollow = await followStreamDirectory(o.coordination!.streams, volume, fence)
  // Handles close first (their registrations go), then the lease is revoked: nothing of this domain stays in etcd.
  return { ...domain, volume, engine, faults, fence, lease, releaseVolume, takeVolume, close: async (graceMs) => { await unfollow(); await domain.close(graceMs); await lease.release() } }
}
