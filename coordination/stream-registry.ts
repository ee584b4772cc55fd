// The streams' checkpoints in etcd, /metaos/streams/<stream>: which domain owns a stream, at which
// epoch, from which acknowledged position — readable by every frontend and the dashboard. A move
// is a compare-and-set on the epoch (the key's mod revision as read with the epoch expected), so of
// two frontends moving one stream only one wins; a checkpoint of the position is written only
// while the stream is still at the writer's epoch. A record put under a frontend's lease goes with
// that frontend.
import type { IKeyValue } from 'etcd3'
import { MetaosError } from '../soap-runtime/errors.js'
import type { Lease, StreamEvent, StreamRecord, StreamRegistry } from './api.js'
import { CMP, TARGET, parseValue, putOp, type EtcdSession } from './etcd-session.js'
import { watchPrefix } from './watch.js'

function checkRecord (r: StreamRecord): void {
  if (typeof r.stream !== 'string' || r.stream === '' || r.stream.length > 512) throw new MetaosError('INVALID_ARGUMENT', 'a stream id must be 1-512 characters')
  if (!Number.isSafeInteger(r.epoch) || r.epoch < 1) throw new MetaosError('INVALID_ARGUMENT', `epoch ${r.epoch} must be a whole number ≥ 1`)
  if (!Number.isSafeInteger(r.position) || r.position < 0) throw new MetaosError('INVALID_ARGUMENT', `position ${r.position} must be a whole number ≥ 0`)
}

export class EtcdStreamRegistry implements StreamRegistry {
  readonly #session: EtcdSession

  constructor (session: EtcdSession) { this.#session = session }

  async open (r: StreamRecord, lease?: Lease): Promise<boolean> {
    checkRecord(r)
    const key = this.#session.key('streams', r.stream)
    const record = { ...r, at: Date.now() }
    if (lease !== undefined) await lease.whenValid()
    const put = putOp(key, record, lease?.id)
    for (;;) {
      const current = await this.#read(r.stream)
      // An earlier attempt that timed out may have written it after all.
      if (current?.kv.value.equals(put.request_put!.value!) === true) return true
      if (current !== undefined && current.record.epoch >= r.epoch) return false
      const res = await this.#session.txn(`stream ${r.stream}: open`, {
        compare: [{ key: Buffer.from(key), target: TARGET.MOD, result: CMP.EQUAL, mod_revision: current?.kv.mod_revision ?? '0' }],
        success: [put],
      })
      if (res.succeeded) return true
    }
  }

  async move (stream: string, epoch: number, next: StreamRecord): Promise<boolean> {
    checkRecord(next)
    if (next.stream !== stream || next.epoch <= epoch) throw new MetaosError('INVALID_ARGUMENT', `a move of ${stream} goes to a newer epoch than ${epoch} of the same stream`)
    return await this.#update(stream, epoch, (r) => ({ ...next, frontend: next.frontend ?? r.frontend, at: Date.now() }), 'move')
  }

  async checkpoint (stream: string, epoch: number, position: number): Promise<boolean> {
    if (!Number.isSafeInteger(position) || position < 0) throw new MetaosError('INVALID_ARGUMENT', `position ${position} must be a whole number ≥ 0`)
    return await this.#update(stream, epoch, (r) => ({ ...r, position, at: Date.now() }), 'checkpoint')
  }

  async close (stream: string): Promise<void> {
    await this.#session.delete(`stream ${stream}: close`, this.#session.key('streams', stream))
  }

  async get (stream: string): Promise<StreamRecord | undefined> {
    return (await this.#read(stream))?.record
  }

  async list (): Promise<StreamRecord[]> {
    const { kvs } = await this.#session.list('streams', ['streams'])
    return kvs.map((kv) => parseValue<StreamRecord>(kv)).filter((r): r is StreamRecord => r !== undefined)
  }

  async watch (listener: (e: StreamEvent) => void): Promise<() => Promise<void>> {
    return await watchPrefix(this.#session, ['streams'], {
      put: (kv) => { const record = parseValue<StreamRecord>(kv); if (record !== undefined) listener({ type: 'put', record }) },
      delete: (name) => { listener({ type: 'delete', stream: name }) },
    })
  }

  /** Rewrites the record while it is at `epoch` (compare-and-set on its mod revision), under the lease it was put with. */
  async #update (stream: string, epoch: number, change: (r: StreamRecord) => StreamRecord, what: string): Promise<boolean> {
    const key = this.#session.key('streams', stream)
    let written: Buffer | undefined
    for (;;) {
      const current = await this.#read(stream)
      // An earlier attempt that timed out may have written it after all.
      if (written !== undefined && current?.kv.value.equals(written) === true) return true
      if (current === undefined || current.record.epoch !== epoch) return false
      const lease = current.kv.lease === '0' ? undefined : current.kv.lease
      const put = putOp(key, change(current.record), lease)
      written = put.request_put!.value as Buffer
      const res = await this.#session.txn(`stream ${stream}: ${what}`, {
        compare: [{ key: Buffer.from(key), target: TARGET.MOD, result: CMP.EQUAL, mod_revision: current.kv.mod_revision }],
        success: [put],
      })
      if (res.succeeded) return true
    }
  }

  async #read (stream: string): Promise<{ kv: IKeyValue, record: StreamRecord } | undefined> {
    const kv = await this.#session.get(`stream ${stream}`, this.#session.key('streams', stream))
    const record = kv === undefined ? undefined : parseValue<StreamRecord>(kv)
    return kv === undefined || record === undefined ? undefined : { kv, record }
  }
}
