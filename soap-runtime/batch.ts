// Batch (the exception-less variant of the paper's future work, after FlexSC): runs the operations
// of one message in order and gives each its result or its fault, so one failing call neither
// aborts the others nor costs a round trip. Generic over any service descriptor.
//
// Dependencies: the operations on one handle depend on each other (a Write lands where the Seek
// before it moved the handle). Once an operation on a handle fails, the later operations of the
// Batch on that handle are not run: each gets a NOT_RUN_AFTER_FAILURE fault, and the handle stays
// as the failure left it. Operations on other handles, and operations that name no handle (Open,
// Delete, GetFileInfo, Connect, ResolveHost…: keyed by a path or a destination), still run.
import { MetaosError, fromSystemError, type ErrorCode } from './errors.js'
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

/** The code of the fault an operation gets when an earlier one on its handle failed in the same Batch. */
export const NOT_RUN: ErrorCode = 'NOT_RUN_AFTER_FAILURE'

/**
 * The input elements that carry a handle, in every contract: `handle` (storage), `socket` and
 * `listener` (network; Close names either in `socket`, so handles are matched by value).
 */
const HANDLE_FIELDS = ['handle', 'socket', 'listener'] as const

/** The handle an operation works on, or undefined for one keyed by a path or a destination. */
export function handleOf (input: unknown): string | undefined {
  if (typeof input !== 'object' || input === null) return undefined
  for (const f of HANDLE_FIELDS) {
    const v = (input as Record<string, unknown>)[f]
    if (typeof v === 'string') return v
  }
  return undefined
}

/** Output element of every operation a Batch may hold (all but Batch itself), by input element. */
export function batchOutputs (d: ServiceDescriptor): ReadonlyMap<string, string> {
  return new Map(Object.values(d.operations).filter((o) => o.name !== 'Batch').map((o) => [o.input, o.output]))
}

export async function runBatch (shape: BatchShape, ops: ReadonlyArray<Record<string, unknown>>, execute: Execute): Promise<{ result: Array<Record<string, unknown>> }> {
  if (ops.length > shape.maxOps) throw new MetaosError('MESSAGE_TOO_LARGE', `a Batch holds at most ${shape.maxOps} operations, this one ${ops.length}`)
  const result: Array<Record<string, unknown>> = []
  /** Handles an operation failed on: the failed operation's place (1-based), name and code. */
  const failed = new Map<string, string>()
  for (const [i, op] of ops.entries()) {
    const name = Object.keys(op)[0]!
    const out = shape.outputs.get(name)
    if (out === undefined) throw new MetaosError('INVALID_ARGUMENT', `${name} cannot be batched`)
    const handle = handleOf(op[name])
    const before = handle === undefined ? undefined : failed.get(handle)
    if (before !== undefined) {
      result.push({ [shape.faultElement]: { code: NOT_RUN, message: `${name} was not run: ${before}` } })
      continue
    }
    try {
      result.push({ [out]: await execute(name, op[name]) })
    } catch (e) {
      const err = e instanceof MetaosError ? e : fromSystemError(e, name)
      const code = shape.faultCodes === undefined || shape.faultCodes.includes(err.code) ? err.code : 'IO_ERROR'
      result.push({ [shape.faultElement]: { code, message: err.message } })
      if (handle !== undefined) failed.set(handle, `operation ${i + 1} of the Batch (${name}) on the same handle failed with ${code}`)
    }
  }
  return { result }
}
