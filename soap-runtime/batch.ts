// Batch (the exception-less variant of the paper's future work, after FlexSC): runs the operations
// of one message in order and gives each its result or its fault, so one failing call neither
// aborts the others nor costs a round trip. Generic over any service descriptor.
import { MetaosError, fromSystemError } from './errors.js'
import type { ServiceDescriptor } from './descriptor.js'

export type Execute = (operation: string, input: unknown) => Promise<unknown>

export interface BatchShape {
  /** Output element name of each batchable operation, by operation (input element) name. */
  readonly outputs: ReadonlyMap<string, string>
  /** Name of the fault detail element, e.g. StorageFault. */
  readonly faultElement: string
  /** Codes the fault element admits; any other is reported as IO_ERROR (default: any). */
  readonly faultCodes?: readonly string[]
  readonly maxOps: number
}

/** Output element of every operation a Batch may hold (all but Batch itself), by input element. */
export function batchOutputs (d: ServiceDescriptor): ReadonlyMap<string, string> {
  return new Map(Object.values(d.operations).filter((o) => o.name !== 'Batch').map((o) => [o.input, o.output]))
}

export async function runBatch (shape: BatchShape, ops: ReadonlyArray<Record<string, unknown>>, execute: Execute): Promise<{ result: Array<Record<string, unknown>> }> {
  if (ops.length > shape.maxOps) throw new MetaosError('MESSAGE_TOO_LARGE', `a Batch holds at most ${shape.maxOps} operations, this one ${ops.length}`)
  const result: Array<Record<string, unknown>> = []
  for (const op of ops) {
    const name = Object.keys(op)[0]!
    const out = shape.outputs.get(name)
    if (out === undefined) throw new MetaosError('INVALID_ARGUMENT', `${name} cannot be batched`)
    try {
      result.push({ [out]: await execute(name, op[name]) })
    } catch (e) {
      const err = e instanceof MetaosError ? e : fromSystemError(e, name)
      const code = shape.faultCodes === undefined || shape.faultCodes.includes(err.code) ? err.code : 'IO_ERROR'
      result.push({ [shape.faultElement]: { code, message: err.message } })
    }
  }
  return { result }
}
