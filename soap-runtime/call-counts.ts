// A domain's per-call metrics as plain numbers: what DomainMetrics.record does on every call. A
// prom-client child's inc/observe validates and hashes its labels on every call (four of them per
// call: ~5 µs of a 512 B Write's server time in a CPU profile); here a call is a Map lookup by
// operation, a few additions and a bucket search. prom-client reads the totals at scrape time:
// the counters through their collect(), the latency histogram through CallLatencyHistogram below,
// in the same exposition as before (same names, labels and buckets).
import { Histogram, type Registry } from 'prom-client'
import type { CallTransport } from './host-types.js'

/** One operation's totals since the domain started. */
export interface OperationCounts {
  readonly operation: string
  /** Calls by listener transport. */
  readonly calls: Map<CallTransport, number>
  requestBytes: number
  responseBytes: number
  /** Calls per latency bucket (not cumulative); the last is +Inf. */
  readonly buckets: Float64Array
  sum: number
  count: number
}

export class CallCounts {
  readonly #bounds: readonly number[]
  readonly byOperation = new Map<string, OperationCounts>()

  constructor (bounds: readonly number[]) { this.#bounds = bounds }

  add (operation: string, transport: CallTransport, seconds: number, requestBytes: number, responseBytes: number): void {
    let op = this.byOperation.get(operation)
    if (op === undefined) {
      if (this.byOperation.size > 1000) this.byOperation.clear() // operation names come from the descriptor; a bound all the same
      op = { operation, calls: new Map(), requestBytes: 0, responseBytes: 0, buckets: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }
      this.byOperation.set(operation, op)
    }
    op.calls.set(transport, (op.calls.get(transport) ?? 0) + 1)
    op.requestBytes += requestBytes
    op.responseBytes += responseBytes
    const bounds = this.#bounds
    let i = 0
    while (i < bounds.length && seconds > bounds[i]!) i++
    op.buckets[i]!++
    op.sum += seconds
    op.count++
  }
}

interface ValuePair { labels: Record<string, string | number>, sharedLabels?: Record<string, string>, value: number, metricName: string }

/** The latency histogram, by operation, read from CallCounts (prom-client's Histogram exposition, its observe unused). */
export class CallLatencyHistogram extends Histogram<'operation'> {
  readonly #counts: CallCounts
  readonly #bounds: readonly number[]
  readonly #name: string
  readonly #help: string

  constructor (counts: CallCounts, config: { name: string, help: string, buckets: number[], registers: Registry[] }) {
    super({ ...config, labelNames: ['operation'] })
    this.#counts = counts
    this.#bounds = config.buckets
    this.#name = config.name
    this.#help = config.help
  }

  /** What prom-client's Registry formats (Histogram's own shape: cumulative buckets, +Inf, sum, count). */
  async getForPromString (): Promise<{ name: string, help: string, type: 'histogram', values: ValuePair[], aggregator: 'sum' }> {
    const values: ValuePair[] = []
    for (const op of this.#counts.byOperation.values()) {
      const shared = { operation: op.operation }
      let acc = 0
      for (let i = 0; i < this.#bounds.length; i++) {
        acc += op.buckets[i]!
        values.push({ labels: { le: this.#bounds[i]! }, sharedLabels: shared, value: acc, metricName: `${this.#name}_bucket` })
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: shared, value: op.count, metricName: `${this.#name}_bucket` },
        { labels: {}, sharedLabels: shared, value: op.sum, metricName: `${this.#name}_sum` },
        { labels: {}, sharedLabels: shared, value: op.count, metricName: `${this.#name}_count` })
    }
    return { name: this.#name, help: this.#help, type: 'histogram', values, aggregator: 'sum' }
  }
}
