// PMT rows through etcd (issue 20 point 5): each frontend publishes the rows it measured itself at
// /metaos/measures/<module id>, under its lease (gone when it dies), and watches the others'. The
// board carries the rows as they were published; the frontend weighs them with the same rules as
// the direct PMT exchange (frontend/placement/pmt-exchange-guard.ts) — a peer is never obeyed.
import { MetaosError } from '../soap-runtime/errors.js'
import type { Lease, MeasureBoard, MeasureEvent } from './api.js'
import { parseValue, putOp, type EtcdSession } from './etcd-session.js'
import { watchPrefix } from './watch.js'

/** Most rows one module publishes (as many as a PMT exchange takes). */
export const MAX_PUBLISHED_ROWS = 1000

interface Published { readonly moduleId: string, readonly rows: readonly unknown[], readonly at: number }

export class EtcdMeasureBoard implements MeasureBoard {
  readonly #session: EtcdSession

  constructor (session: EtcdSession) { this.#session = session }

  async publish (moduleId: string, rows: readonly unknown[], lease: Lease): Promise<void> {
    if (moduleId === '' || moduleId.length > 512) throw new MetaosError('INVALID_ARGUMENT', 'a module id must be 1-512 characters')
    await lease.whenValid()
    const value: Published = { moduleId, rows: rows.slice(0, MAX_PUBLISHED_ROWS), at: Date.now() }
    await this.#session.txn(`measures of ${moduleId}`, { success: [putOp(this.#session.key('measures', moduleId), value, lease.id)] })
  }

  async watch (listener: (e: MeasureEvent<unknown>) => void): Promise<() => Promise<void>> {
    const put = (kv: Parameters<typeof parseValue>[0]): void => {
      const v = parseValue<Published>(kv)
      if (v === undefined || typeof v.moduleId !== 'string' || !Array.isArray(v.rows)) return
      listener({ type: 'put', moduleId: v.moduleId, rows: v.rows.slice(0, MAX_PUBLISHED_ROWS), at: Number(v.at) })
    }
    const { kvs, revision } = await this.#session.list('measures', ['measures'])
    for (const kv of kvs) put(kv)
    return await watchPrefix(this.#session, ['measures'], { put, delete: (moduleId) => { listener({ type: 'delete', moduleId }) } }, String(BigInt(revision) + 1n))
  }
}
