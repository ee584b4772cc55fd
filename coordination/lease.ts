// A lease of a domain or a frontend in etcd, renewed every TTL/4 (each keep-alive retried on
// another member until it is answered or the validity left runs out).
// Validity is measured here, never taken from etcd's word alone: each renewal remembers when it
// was sent (performance.now(), the monotonic clock, which keeps running while the process is
// stopped), and an acknowledged renewal makes the lease valid until sent + TTL − margin. etcd's
// leader extends the lease on receipt, at or after that send, so the lease is not valid here any
// longer than it is alive in etcd — whatever happens between (a SIGSTOP, a partition, a stalled
// event loop). Once validity runs out the lease is lost for good: 'lost' is emitted, the old lease
// is revoked when etcd can be reached, and a new one is granted ('regained'); nothing held under
// the lost one is reused. The holder's record (/metaos/holders/<id>) lives under each lease.
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CallOptions } from '@grpc/grpc-js'
import type { ILeaseKeepAliveResponse } from 'etcd3'
import { MetaosError } from '../soap-runtime/errors.js'
import type { HolderInfo, HolderRecord, Lease, LeaseEvents, LeaseKind } from './api.js'
import { putOp, type EtcdSession } from './etcd-session.js'

type State = 'granting' | 'held' | 'released'

export class EtcdLease extends EventEmitter implements Lease {
  readonly kind: LeaseKind
  readonly holder: string
  readonly #session: EtcdSession
  readonly #info: HolderInfo
  readonly #ttlMs: number
  readonly #marginMs: number
  #state: State = 'granting'
  #id: string | undefined
  #generation = 0
  #validUntil = 0
  #expiryTimer: NodeJS.Timeout | undefined
  #granting: Promise<void> | undefined

  constructor (session: EtcdSession, kind: LeaseKind, holder: string, info: HolderInfo, ttlSeconds: number, marginMs: number) {
    super()
    this.#session = session
    this.kind = kind
    this.holder = holder
    this.#info = info
    this.#ttlMs = ttlSeconds * 1000
    this.#marginMs = marginMs
    this.#granting = this.#grantLoop()
  }

  get id (): string | undefined { return this.#id }
  get generation (): number { return this.#generation }

  valid (): boolean { return this.#state === 'held' && performance.now() < this.#validUntil }
  remainingMs (): number { return this.valid() ? this.#validUntil - performance.now() : 0 }

  async whenValid (timeoutMs = this.#session.deadlineMs): Promise<void> {
    if (this.valid()) return
    if (this.#state === 'released') throw new MetaosError('COORDINATION_UNAVAILABLE', `the lease of ${this.holder} was released`)
    await new Promise<void>((resolve, reject) => {
      const done = (): void => { clearTimeout(timer); this.off('granted', done); resolve() }
      const timer = setTimeout(() => {
        this.off('granted', done)
        reject(new MetaosError('COORDINATION_UNAVAILABLE', `${this.holder} holds no coordination lease (etcd has not granted or renewed it within ${timeoutMs} ms: no quorum, or no member reachable)`))
      }, timeoutMs)
      this.on('granted', done)
    })
  }

  override on<E extends keyof LeaseEvents> (event: E, listener: (...args: LeaseEvents[E]) => void): this {
    return super.on(event, listener as (...a: unknown[]) => void)
  }

  override off<E extends keyof LeaseEvents> (event: E, listener: (...args: LeaseEvents[E]) => void): this {
    return super.off(event, listener as (...a: unknown[]) => void)
  }

  /** The lease is no longer held (etcd said so, or a put under it found it gone): lost now, not at the timer. */
  markLost (reason: string): void {
    if (this.#state !== 'held') return
    this.#lose(reason)
  }

  async release (): Promise<void> {
    if (this.#state === 'released') return
    const id = this.#state === 'held' ? this.#id : undefined
    this.#state = 'released'
    clearTimeout(this.#expiryTimer)
    await this.#granting?.catch(() => {})
    if (id !== undefined) await this.#revoke(id, 1)
  }

  async #grantLoop (): Promise<void> {
    for (let attempt = 0; this.#state === 'granting' && !this.#session.closed; attempt++) {
      try {
        const sentAt = performance.now()
        const ttl = this.#ttlMs / 1000
        const r = await this.#session.call('lease grant', async (opts) => await this.#session.client.leaseClient.leaseGrant({ TTL: ttl }, opts))
        const record: HolderRecord = { ...this.#info, id: this.holder, kind: this.kind, lease: r.ID, since: Date.now() }
        await this.#session.txn('holder record', { success: [putOp(this.#session.key('holders', this.holder), record, r.ID)] })
        if (this.#state !== 'granting') { await this.#revoke(r.ID, 1); return }
        this.#id = r.ID
        this.#generation++
        this.#validUntil = sentAt + this.#ttlMs - this.#marginMs
        this.#state = 'held'
        this.#armExpiry()
        void this.#renewLoop(this.#generation)
        this.#session.log.info({ holder: this.holder, lease: r.ID, generation: this.#generation }, 'coordination lease granted')
        this.emit('granted')
        if (this.#generation > 1) this.emit('regained', { lease: r.ID, generation: this.#generation })
        return
      } catch (e) {
        this.#session.log.warn({ holder: this.holder, err: (e as Error).message }, 'coordination lease: grant failed, trying again')
        await sleep(Math.min(1000, 100 * (attempt + 1)))
      }
    }
  }

  /**
   * Renews while this generation of the lease is held: one keep-alive at a time, each on a stream of
   * its own under a deadline (the validity left), retried on another member when one fails; then
   * TTL/4 until the next. Validity counts from when the renewal started, never from its answer.
   */
  async #renewLoop (generation: number): Promise<void> {
    const id = this.#id!
    const current = (): boolean => this.#state === 'held' && this.#generation === generation && !this.#session.closed
    while (current()) {
      const sentAt = performance.now()
      try {
        const res = await this.#session.call('lease renewal', async (opts) => await keepAliveOnce(this.#session, id, opts), Math.max(200, this.#validUntil - sentAt))
        if (!current()) return
        if (res.TTL === '0' || Number(res.TTL) <= 0) { this.#lose('etcd says the lease expired'); return }
        this.#validUntil = Math.max(this.#validUntil, sentAt + this.#ttlMs - this.#marginMs)
        this.#armExpiry()
        await sleep(this.#ttlMs / 4, undefined, { ref: false })
      } catch {
        // Not renewed in time: the expiry timer declares the loss; until then, try again.
        await sleep(50, undefined, { ref: false })
      }
    }
  }

  #armExpiry (): void {
    clearTimeout(this.#expiryTimer)
    this.#expiryTimer = setTimeout(() => {
      if (this.#state !== 'held') return
      if (performance.now() >= this.#validUntil) this.#lose(`no renewal acknowledged within ${this.#ttlMs - this.#marginMs} ms (TTL ${this.#ttlMs} ms − margin ${this.#marginMs} ms)`)
      else this.#armExpiry()
    }, Math.max(1, this.#validUntil - performance.now()))
    this.#expiryTimer.unref()
  }

  #lose (reason: string): void {
    const id = this.#id!
    this.#state = 'granting'
    clearTimeout(this.#expiryTimer)
    this.#session.log.warn({ holder: this.holder, lease: id, reason }, 'coordination lease lost')
    this.emit('lost', { lease: id, reason })
    // What was held under it goes as soon as etcd can be told (else at its TTL); then a new lease.
    void this.#revoke(id, 20)
    this.#granting = this.#grantLoop()
  }

  async #revoke (id: string, attempts: number): Promise<void> {
    for (let i = 0; i < attempts && !this.#session.closed; i++) {
      try {
        await this.#session.call('lease revoke', async (opts) => await this.#session.client.leaseClient.leaseRevoke({ ID: id }, opts))
        return
      } catch (e) {
        if (/not found/i.test((e as Error).message)) return
        await sleep(500)
      }
    }
  }
}

/** One keep-alive on a stream of its own: etcd's answer (TTL 0: the lease is gone), or the call's deadline. */
async function keepAliveOnce (session: EtcdSession, id: string, opts: CallOptions): Promise<ILeaseKeepAliveResponse> {
  const stream = await session.client.leaseClient.leaseKeepAlive(opts)
  try {
    return await new Promise<ILeaseKeepAliveResponse>((resolve, reject) => {
      stream.on('data', resolve)
      stream.on('error', reject)
      stream.on('end', () => { reject(new Error('the keep-alive stream ended without an answer')) })
      stream.write({ ID: id })
    })
  } finally {
    try { stream.end() } catch { /* already ended */ }
  }
}
