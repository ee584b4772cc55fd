// A service's typed implementation run in this process, as the frontend's local handlers run it:
// the same operation table a domain serves, called with a fixed caller, a Batch run over it as the
// host runs one. Service time is the implementation's time; there is no channel.
import { batchOutputs, runBatch } from '../soap-runtime/batch.js'
import type { Invocation } from '../soap-runtime/client.js'
import { MetaosError } from '../soap-runtime/errors.js'
import type { Implementation } from '../soap-runtime/service-host.js'
import type { ServiceContract } from '../wsdl/contracts.js'

/** Most operations one in-process Batch holds (the host's default limit). */
const MAX_BATCH_OPS = 1024

export class InProcessService<Ops extends { [K in keyof Ops]: { input: unknown, output: unknown } }> {
  readonly #implementation: Implementation
  readonly #contract: ServiceContract
  readonly #caller: string
  readonly #outputs: ReadonlyMap<string, string>

  constructor (contract: ServiceContract, implementation: Implementation, caller: string) {
    this.#contract = contract
    this.#implementation = implementation
    this.#caller = caller
    this.#outputs = batchOutputs(contract.descriptor)
  }

  async invoke<K extends keyof Ops & string> (operation: K, input: Ops[K]['input']): Promise<Invocation<Ops[K]['output']>> {
    const t0 = process.hrtime.bigint()
    const output = await this.#execute(operation, input)
    const micros = Number((process.hrtime.bigint() - t0) / 1000n)
    return { output: output as Ops[K]['output'], serviceMicros: micros, totalMicros: micros }
  }

  async #execute (operation: string, input: unknown): Promise<unknown> {
    const c = this.#contract
    if (operation === 'Batch' && this.#implementation.Batch === undefined) {
      return await runBatch({ outputs: this.#outputs, faultElement: c.faultElement, faultCodes: c.faultCodes, maxOps: MAX_BATCH_OPS }, (input as { op: Array<Record<string, unknown>> }).op, async (op, i) => await this.#execute(op, i))
    }
    const fn = this.#implementation[operation]
    if (fn === undefined) throw new MetaosError('INVALID_ARGUMENT', `${c.descriptor.name} has no operation ${operation}`)
    return await fn(input, { caller: this.#caller, operation })
  }
}
