// The dispatcher (the paper's load balancer): a StorageHandler that places each stream on the
// best domain of the Performance Mapping Table when it is opened, then keeps every syscall of the
// stream on that domain through the affinity table. Domains that are isolated or draining are never
// chosen; suspect ones only when nothing healthy is left. The rules engine (issue #4, to come)
// will narrow and reorder the candidates before the score decides.
import { MetaosError } from '../soap-runtime/errors.js'
import type { Invocation } from '../soap-runtime/client.js'
import type { StorageOperations } from './generated/storage-service.js'
import type { StorageHandler, StorageOp } from './storage-handler.js'
import type { PerformanceMappingTable, PmtRow } from './pmt.js'
import { AffinityTable } from './affinity-table.js'

export interface Placement {
  readonly chosen: string
  /** Candidates best first, with their scores: why the choice was made. */
  readonly ranking: ReadonlyArray<{ readonly epr: string, readonly score: number, readonly state: string }>
}

export class Dispatcher implements StorageHandler {
  readonly destination = 'dispatcher'
  readonly affinity = new AffinityTable()
  readonly #pmt: PerformanceMappingTable
  readonly #handlers: ReadonlyMap<string, StorageHandler>
  /** Placements made, by domain (for measurements and `metaos status`). */
  readonly placements = new Map<string, number>()

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, StorageHandler>) {
    this.#pmt = pmt
    this.#handlers = handlers
  }

  /** Which domain a new stream (of `mbPerCall` MB per call) would go to, and why. */
  place (mbPerCall = 0): Placement {
    const rows = this.#pmt.rows(mbPerCall).filter((r) => this.#handlers.has(r.identity.epr))
    const usable = (r: PmtRow): boolean => r.state === 'healthy'
    const candidates = rows.some(usable) ? rows.filter(usable) : rows.filter((r) => r.state === 'suspect')
    if (candidates.length === 0) throw new MetaosError('TRANSPORT_ERROR', 'no usable storage domain (all isolated, draining, or none known)')
    return { chosen: candidates[0]!.identity.epr, ranking: rows.map((r) => ({ epr: r.identity.epr, score: r.score.score, state: r.state })) }
  }

  async invoke<K extends StorageOp> (op: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    const handle = (input as { handle?: string }).handle ?? firstHandle(op, input)
    if (handle !== undefined) {
      const epr = this.affinity.lookup(handle)
      if (epr === undefined) throw new MetaosError('INVALID_HANDLE', 'this stream was not opened through the dispatcher, or is closed')
      const inv = await this.#handlers.get(epr)!.invoke(op, input)
      if (op === 'Close') this.affinity.release(handle)
      return inv
    }
    const { chosen } = this.place()
    const inv = await this.#handlers.get(chosen)!.invoke(op, input)
    if (op === 'Open') {
      this.affinity.bind((inv.output as StorageOperations['Open']['output']).handle, chosen)
      this.placements.set(chosen, (this.placements.get(chosen) ?? 0) + 1)
    }
    return inv
  }

  async close (): Promise<void> { /* the handlers belong to whoever made them */ }
}

function firstHandle (op: string, input: unknown): string | undefined {
  if (op !== 'Batch') return undefined
  for (const o of (input as StorageOperations['Batch']['input']).op) {
    const inner = Object.values(o)[0] as { handle?: string }
    if (inner.handle !== undefined) return inner.handle
  }
  return undefined
}
