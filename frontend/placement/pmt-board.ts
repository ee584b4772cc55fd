// PMT measures through etcd (issue 20 point 5): beside the direct exchange between performance
// modules (pmt-exchange.ts), a frontend with coordination publishes the rows it measured itself on
// the coordination measure board, under its lease (they vanish when it dies), every `intervalMs`,
// and watches the other frontends' rows. What a peer publishes is weighed by the same rules as the
// direct exchange (pmt-exchange-guard.ts's weighRows): sane rows only, for domains this frontend
// heard announced, never over its own fresh measure; a peer's rows go when its key goes. No TLS of
// its own: who may write a module's key is etcd's authentication (docs/coordination.md).
import type { Logger } from 'pino'
import type { Lease, MeasureBoard, MeasureEvent } from '../../coordination/api.js'
import { silentLogger } from '../../soap-runtime/logger.js'
import type { PmtEntry } from '../../wsdl/generated/performance-service.js'
import { DEFAULT_ROW_RULES, newRefusalCounters, weighRows, type RefusalCounters, type RowRules } from './pmt-exchange-guard.js'
import type { PerformanceMappingTable } from './pmt.js'

export interface PmtBoardOptions {
  readonly pmt: PerformanceMappingTable
  readonly board: MeasureBoard
  /** The frontend's lease: its rows live under it. */
  readonly lease: Lease
  readonly moduleId: string
  /** How often this module's own rows are published (default 2000 ms). */
  readonly intervalMs?: number
  readonly knows?: (epr: string) => boolean
  readonly rules?: Partial<RowRules>
  readonly maxRows?: number
  readonly logger?: Logger
}

export class PmtBoard {
  readonly #o: PmtBoardOptions
  readonly #rules: RowRules
  /** Rows refused, by reason (as the direct exchange counts them). */
  readonly refused: RefusalCounters = newRefusalCounters()
  /** Modules whose rows were last seen on the board. */
  readonly peers = new Set<string>()
  /** Publications that failed (etcd without quorum, the lease not held); logged, never thrown. */
  failures = 0
  #timer: NodeJS.Timeout | undefined
  #unwatch: (() => Promise<void>) | undefined

  constructor (o: PmtBoardOptions) {
    this.#o = o
    this.#rules = { ...DEFAULT_ROW_RULES, ...o.rules }
  }

  get #log (): Logger { return this.#o.logger ?? silentLogger }

  /** Watches the others' rows, publishes this module's now and then every interval. */
  async start (): Promise<void> {
    this.#unwatch = await this.#o.board.watch((e) => { this.#take(e) })
    await this.publish()
    this.#timer = setInterval(() => { void this.publish() }, this.#o.intervalMs ?? 2000)
    this.#timer.unref()
  }

  /** Publishes this module's own rows once (failures counted and logged). */
  async publish (): Promise<void> {
    try {
      await this.#o.board.publish(this.#o.moduleId, this.#o.pmt.exportOwn(), this.#o.lease)
    } catch (e) {
      this.failures++
      this.#log.warn({ err: (e as Error).message }, 'PMT board: publishing this module\'s rows failed')
    }
  }

  #take (e: MeasureEvent<unknown>): void {
    if (e.moduleId === this.#o.moduleId) return
    if (e.type === 'delete') { this.peers.delete(e.moduleId); this.#o.pmt.dropOrigin(e.moduleId); return }
    this.peers.add(e.moduleId)
    weighRows(e.rows as PmtEntry[], e.moduleId, `etcd:${e.moduleId.slice(0, 128)}`, Date.now(), {
      pmt: this.#o.pmt, rules: this.#rules, refused: this.refused, knows: this.#o.knows, maxRows: this.#o.maxRows ?? 1000, log: this.#log,
    })
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#unwatch?.()
  }
}
