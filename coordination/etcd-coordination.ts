// Coordination over etcd: the one implementation of coordination.ts's API, loaded by
// connectCoordination (and with it the etcd3 client). Key layout (docs/coordination.md):
//   <prefix>/holders/<id>                         a lease's holder (domain or frontend), under its lease
//   <prefix>/shares/<volume>/<path>/<domain>/<id>  an open of a volume's file, under its domain's lease
//   <prefix>/streams/<stream>                      a stream's owner, epoch and position
//   <prefix>/measures/<module id>                  the PMT rows a frontend measured, under its lease
import { MetaosError } from '../soap-runtime/errors.js'
import type { Coordination, CoordinationEndpoints, CoordinationOptions, HolderInfo, HolderRecord, Lease, LeaseKind, ShareRegistry } from './api.js'
import { EtcdSession, parseValue } from './etcd-session.js'
import { EtcdLease } from './lease.js'
import { EtcdMeasureBoard } from './measure-board.js'
import { EtcdShareRegistry } from './share-registry.js'
import { EtcdStreamRegistry } from './stream-registry.js'

export class EtcdCoordination implements Coordination {
  readonly endpoints: CoordinationEndpoints
  readonly prefix: string
  readonly leaseTtlSeconds: number
  readonly deadlineMs: number
  readonly streams: EtcdStreamRegistry
  readonly measures: EtcdMeasureBoard
  readonly #session: EtcdSession
  readonly #marginMs: number
  readonly #leases = new Map<string, EtcdLease>()

  private constructor (endpoints: CoordinationEndpoints, o: CoordinationOptions) {
    const ttl = o.leaseTtlSeconds ?? 3
    if (!Number.isInteger(ttl) || ttl < 1 || ttl > 3600) throw new MetaosError('INVALID_ARGUMENT', `a lease TTL of ${ttl} s: give a whole number of seconds from 1 to 3600`)
    const margin = o.safetyMarginMs ?? Math.max(200, Math.round(ttl * 1000 / 6))
    if (!(margin >= 0 && margin < ttl * 1000 / 2)) throw new MetaosError('INVALID_ARGUMENT', `a safety margin of ${margin} ms: it must be under half the TTL`)
    const prefix = o.prefix ?? '/metaos'
    if (!/^\/[A-Za-z0-9._~/-]{0,200}$/.test(prefix)) throw new MetaosError('INVALID_ARGUMENT', `coordination prefix "${prefix.slice(0, 200)}" must start with / and hold only A-Z a-z 0-9 . _ ~ - /`)
    this.endpoints = endpoints
    this.leaseTtlSeconds = ttl
    this.#marginMs = margin
    this.#session = new EtcdSession(endpoints, { ...o, prefix })
    this.prefix = this.#session.prefix
    this.deadlineMs = this.#session.deadlineMs
    this.streams = new EtcdStreamRegistry(this.#session)
    this.measures = new EtcdMeasureBoard(this.#session)
  }

  static async connect (endpoints: CoordinationEndpoints, o: CoordinationOptions): Promise<EtcdCoordination> {
    const c = new EtcdCoordination(endpoints, o)
    try {
      // Any member answers its status without a quorum: this only proves the URL and the TLS right.
      await c.#session.call(`connecting to ${endpoints.url}`, async (opts) => await c.#session.client.maintenance.status(opts), Math.max(c.deadlineMs, 5000))
    } catch (e) {
      c.#session.close()
      throw e
    }
    return c
  }

  domainLease (epr: string, info: HolderInfo = {}): Lease { return this.#lease('domain', epr, info) }
  frontendLease (moduleId: string, info: HolderInfo = {}): Lease { return this.#lease('frontend', moduleId, info) }

  #lease (kind: LeaseKind, id: string, info: HolderInfo): EtcdLease {
    if (id === '' || id.length > 512) throw new MetaosError('INVALID_ARGUMENT', 'a lease holder id must be 1-512 characters')
    let lease = this.#leases.get(id)
    if (lease === undefined) this.#leases.set(id, lease = new EtcdLease(this.#session, kind, id, info, this.leaseTtlSeconds, this.#marginMs))
    return lease
  }

  shares (lease: Lease): ShareRegistry {
    if (!(lease instanceof EtcdLease) || this.#leases.get(lease.holder) !== lease) throw new MetaosError('INVALID_ARGUMENT', 'shares(lease): a lease of this coordination client')
    return new EtcdShareRegistry(this.#session, lease)
  }

  async holders (): Promise<HolderRecord[]> {
    const { kvs } = await this.#session.list('lease holders', ['holders'])
    return kvs.map((kv) => parseValue<HolderRecord>(kv)).filter((h): h is HolderRecord => h !== undefined)
  }

  async leaseGone (id: string, o: { timeoutMs?: number } = {}): Promise<void> {
    const s = this.#session
    const key = s.key('holders', id)
    const r = await s.call(`lease of ${id}`, async (opts) => await s.client.kv.range({ key: Buffer.from(key) }, opts))
    const held = r.kvs[0]?.lease
    if (held === undefined) return
    const watcher = s.client.watch().key(key).startRevision(String(BigInt(r.header.revision) + 1n)).watcher()
    try {
      await new Promise<void>((resolve, reject) => {
        watcher.on('delete', () => { resolve() })
        watcher.on('put', (kv) => { if (kv.lease !== held) resolve() })
        if (o.timeoutMs !== undefined) {
          setTimeout(() => { reject(new MetaosError('COORDINATION_UNAVAILABLE', `the lease of ${id} was still held after ${o.timeoutMs} ms`)) }, o.timeoutMs).unref()
        }
      })
    } finally {
      await watcher.cancel().catch(() => {})
    }
  }

  async close (): Promise<void> {
    await Promise.allSettled([...this.#leases.values()].map(async (l) => { await l.release() }))
    this.#leases.clear()
    this.#session.close()
  }
}
