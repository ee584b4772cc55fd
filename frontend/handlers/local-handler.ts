// The local handler: syscalls go straight to this process's kernel through node:fs, with the same
// engine (and so the same .NET semantics and fault codes) a storage domain uses. Service time is
// the engine's time; there is no channel.
import { hostname, machine, release, type, version } from 'node:os'
import { batchOutputs, runBatch } from '../../soap-runtime/batch.js'
import type { Invocation } from '../../soap-runtime/client.js'
import { StorageEngine } from '../../backend-storage/storage-engine.js'
import { unconfined } from '../../backend-storage/path-policy.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageHandler, StorageOp } from './storage-handler.js'

const CALLER = 'local'

export class LocalHandler implements StorageHandler {
  readonly destination = 'local'
  readonly #engine = new StorageEngine(unconfined())
  readonly #started = Date.now()
  readonly #outputs = batchOutputs(StorageServiceDescriptor)

  async invoke<K extends StorageOp> (operation: K, input: StorageOperations[K]['input']): Promise<Invocation<StorageOperations[K]['output']>> {
    const t0 = process.hrtime.bigint()
    const output = await this.#execute(operation, input)
    const micros = Number((process.hrtime.bigint() - t0) / 1000n)
    return { output: output as StorageOperations[K]['output'], serviceMicros: micros, totalMicros: micros }
  }

  async #execute (operation: string, input: any): Promise<unknown> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const e = this.#engine
    switch (operation) {
      case 'Open': return await e.open(input, CALLER)
      case 'Read': return await e.read(input, CALLER)
      case 'Write': return await e.write(input, CALLER)
      case 'Seek': return await e.seek(input, CALLER)
      case 'Flush': return await e.flush(input, CALLER)
      case 'SetLength': return await e.setLength(input, CALLER)
      case 'GetLength': return await e.getLength(input, CALLER)
      case 'Close': return await e.close(input, CALLER)
      case 'Delete': return await e.delete(input)
      case 'GetFileInfo': return await e.getFileInfo(input)
      case 'ListDirectory': return await e.listDirectory(input)
      case 'Batch': return await runBatch({ outputs: this.#outputs, faultElement: 'StorageFault', maxOps: 1024 }, input.op, async (op, i) => await this.#execute(op, i))
      case 'GetDomainInfo': return {
        domainId: `local:${hostname()}`,
        volume: 'local',
        hosting: 'process',
        kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
        runtime: `node/${process.versions.node}`,
        transports: { transport: [] },
        uptime: (Date.now() - this.#started) / 1000,
      }
    }
    throw new Error(`unknown operation ${operation}`)
  }

  async close (): Promise<void> { await this.#engine.closeAll() }
}
