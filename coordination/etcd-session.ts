// The etcd client as coordination uses it: one Etcd3 (gRPC) per process and URL, every unary call
// under a deadline (default 2 s) and retried on another member while the deadline allows, every
// failure turned into COORDINATION_UNAVAILABLE naming what was tried. Keys are built here: the
// prefix, then '/'-separated parts, each percent-encoded so that no part can reach into another.
import { setTimeout as sleep } from 'node:timers/promises'
import type { CallOptions } from '@grpc/grpc-js'
import { Etcd3, type IKeyValue, type IOptions, type IRequestOp, type ITxnRequest, type ITxnResponse } from 'etcd3'
import type { Logger } from 'pino'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'
import type { CoordinationEndpoints, CoordinationOptions } from './api.js'

/** etcd's compare targets and results (rpc.proto). */
export const CMP = { EQUAL: 0, GREATER: 1, LESS: 2, NOT_EQUAL: 3 } as const
export const TARGET = { VERSION: 0, CREATE: 1, MOD: 2, VALUE: 3, LEASE: 4 } as const

/** A policy that runs the call once: the retries are this module's, bounded by the deadline. */
const NEVER = new AbortController().signal
const ONCE = { execute: async <T>(fn: (ctx: { signal: AbortSignal, attempt: number }) => Promise<T>): Promise<T> => await fn({ signal: NEVER, attempt: 0 }) }

/** Watches reconnect after 100 ms, doubling up to 1 s (etcd3's default grows to 30 s: epochs and measures would wait that long after a quorum came back). */
class WatchBackoff {
  readonly duration: number
  constructor (duration = 100) { this.duration = duration }
  next (): WatchBackoff { return new WatchBackoff(Math.min(1000, this.duration * 2)) }
}

export class EtcdSession {
  readonly client: Etcd3
  readonly prefix: string
  readonly deadlineMs: number
  /** One attempt's share of the deadline (a quarter, at least 500 ms). */
  readonly attemptMs: number
  readonly log: Logger
  #closed = false

  constructor (endpoints: CoordinationEndpoints, o: CoordinationOptions) {
    const options: IOptions = {
      hosts: [...endpoints.hosts],
      dialTimeout: o.deadlineMs ?? 2000,
      // No circuit breaker (it would keep refusing a member for 5 s after quorum is back) and no retries of its own.
      faultHandling: { host: () => ONCE as never, global: ONCE as never, watchBackoff: new WatchBackoff() },
      grpcOptions: { 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5000, 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000 },
    }
    if (endpoints.tls) {
      options.credentials = {
        rootCertificate: Buffer.from(o.ca!),
        ...(o.cert === undefined ? {} : { certChain: Buffer.from(o.cert), privateKey: Buffer.from(o.key!) }),
      }
    }
    this.client = new Etcd3(options)
    this.prefix = (o.prefix ?? '/metaos').replace(/\/+$/, '')
    this.deadlineMs = o.deadlineMs ?? 2000
    this.attemptMs = Math.max(500, Math.ceil(this.deadlineMs / 4))
    this.log = o.logger ?? silentLogger
  }

  /** The key of these parts under the prefix: `/metaos/a/b%2Fc`. */
  key (...parts: string[]): string {
    return `${this.prefix}/${parts.map((p) => encodeURIComponent(p)).join('/')}`
  }

  /** Every key under these parts: [start, end) for a range. */
  range (...parts: string[]): { key: Buffer, range_end: Buffer } {
    const start = Buffer.from(`${this.key(...parts)}/`)
    const end = Buffer.from(start)
    end[end.length - 1]! += 1 // '/' + 1 = '0': just past every key that starts with the prefix
    return { key: start, range_end: end }
  }

  /**
   * Runs `fn` with a gRPC deadline, again on failure (another member) while `deadlineMs` allows;
   * COORDINATION_UNAVAILABLE when it runs out. A MetaosError from `fn` passes through. An attempt
   * that timed out may still have been applied: what `fn` does must be safe to do twice, or
   * recognise its own earlier success (share-registry.ts, stream-registry.ts do).
   */
  async call<T> (what: string, fn: (options: CallOptions) => Promise<T>, deadlineMs = this.deadlineMs): Promise<T> {
    const end = Date.now() + deadlineMs
    let last: unknown
    for (let attempt = 0; ; attempt++) {
      if (this.#closed) throw new MetaosError('COORDINATION_UNAVAILABLE', `${what}: the coordination client is closed`)
      const left = end - Date.now()
      if (left <= 0) break
      try {
        // A proposal sent to a leader that just died is never answered: each attempt gets a slice of
        // the deadline (a new leader is elected within about one election timeout), the last what is left.
        return await fn({ deadline: Date.now() + Math.min(left, this.attemptMs) })
      } catch (e) {
        if (e instanceof MetaosError) throw e
        last = e
        this.log.debug({ what, attempt, err: (e as Error).message }, 'coordination: an etcd call failed, trying again')
      }
      await sleep(Math.min(50 * (attempt + 1), 250, Math.max(0, end - Date.now())))
    }
    throw new MetaosError('COORDINATION_UNAVAILABLE', `${what}: etcd did not answer within ${deadlineMs} ms (no quorum, or no member reachable): ${(last as Error | undefined)?.message ?? 'no attempt'}`)
  }

  async txn (what: string, req: ITxnRequest, deadlineMs?: number): Promise<ITxnResponse> {
    return await this.call(what, async (opts) => await this.client.kv.txn(req, opts), deadlineMs)
  }

  async get (what: string, key: string): Promise<IKeyValue | undefined> {
    const r = await this.call(what, async (opts) => await this.client.kv.range({ key: Buffer.from(key) }, opts))
    return r.kvs[0]
  }

  async list (what: string, parts: string[]): Promise<{ kvs: IKeyValue[], revision: string }> {
    const r = await this.call(what, async (opts) => await this.client.kv.range(this.range(...parts), opts))
    return { kvs: r.kvs, revision: r.header.revision }
  }

  async delete (what: string, key: string): Promise<void> {
    await this.call(what, async (opts) => await this.client.kv.deleteRange({ key: Buffer.from(key) }, opts))
  }

  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.client.close()
  }

  get closed (): boolean { return this.#closed }
}

/** A put of JSON under an optional lease, as a transaction's operation. */
export function putOp (key: string, value: unknown, lease?: string): IRequestOp {
  return { request_put: { key: Buffer.from(key), value: Buffer.from(JSON.stringify(value)), ...(lease === undefined ? {} : { lease }) } }
}

/** The JSON value of a key, or undefined when it does not parse (never trusted blindly). */
export function parseValue<T> (kv: IKeyValue): T | undefined {
  try { return JSON.parse(kv.value.toString('utf8')) as T } catch { return undefined }
}
