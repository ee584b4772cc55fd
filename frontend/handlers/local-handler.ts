// The local handler: syscalls go straight to this process's kernel through node:fs, running the
// storage service's own implementation (the one a storage domain serves) on an unconfined engine,
// so the same .NET semantics and fault codes. Service time is the engine's time; there is no channel.
import { StorageEngine } from '../../backend-storage/storage-engine.js'
import { unconfined } from '../../backend-storage/path-policy.js'
import { storageImplementation } from '../../backend-storage/storage-implementation.js'
import type { Invocation } from '../../soap-runtime/client.js'
import { InProcessService } from '../../service-domain/in-process.js'
import { localFacts } from '../../service-domain/domain-facts.js'
import { STORAGE_CONTRACT } from '../../wsdl/contracts.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp, SyncOp } from './storage-handler.js'

const CALLER = 'local'

export class LocalHandler implements StorageHandler {
  readonly destination = 'local'
  readonly #engine = new StorageEngine(unconfined())
  readonly #service: InProcessService<StorageOperations>

  constructor () {
    const facts = localFacts()
    // invoke() keeps the threadpool for every Read and Write (syncMax 0): the synchronous path of the
    // local kernel is invokeSync's, which a FileStream takes where .NET's would be synchronous.
    this.#service = new InProcessService(STORAGE_CONTRACT, storageImplementation(this.#engine, () => ({ ...facts(), volume: 'local' }), undefined, 0), CALLER)
  }

  async invoke<K extends StorageOp> (operation: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    return await this.#service.invoke(operation, input)
  }

  /** Read and Write as synchronous syscalls when the handle has nothing queued (StorageHandler.invokeSync). */
  invokeSync<K extends SyncOp> (operation: K, input: StorageOperations[K]['input']): Invocation<StorageOperations[K]['output']> | undefined {
    const t0 = process.hrtime.bigint()
    const output = operation === 'Write'
      ? this.#engine.writeNow(input as StorageOperations['Write']['input'], CALLER)
      : this.#engine.readNow(input as StorageOperations['Read']['input'], CALLER)
    if (output === undefined) return undefined
    const micros = Number(process.hrtime.bigint() - t0) / 1000
    return { output: output as StorageOperations[K]['output'], serviceMicros: micros, totalMicros: micros }
  }

  async close (): Promise<void> { await this.#engine.closeAll() }
}
