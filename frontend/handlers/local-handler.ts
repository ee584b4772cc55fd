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
import type { StorageHandler, StorageOp } from './storage-handler.js'

const CALLER = 'local'

export class LocalHandler implements StorageHandler {
  readonly destination = 'local'
  readonly #engine = new StorageEngine(unconfined())
  readonly #service: InProcessService<StorageOperations>

  constructor () {
    const facts = localFacts()
    this.#service = new InProcessService(STORAGE_CONTRACT, storageImplementation(this.#engine, () => ({ ...facts(), volume: 'local' })), CALLER)
  }

  async invoke<K extends StorageOp> (operation: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    return await this.#service.invoke(operation, input)
  }

  async close (): Promise<void> { await this.#engine.closeAll() }
}
