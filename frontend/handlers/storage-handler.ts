// The one interface for "execute this storage syscall" (undici's Dispatcher idea): the local
// handler, every proxy, and later the dispatcher and the batching layer implement it, so each
// layer can sit on any other. Also the registry of proxies shared by FileStreams.
import type { Invocation } from '../../soap-runtime/client.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'

export type StorageOp = keyof StorageOperations & string

export interface StorageHandler {
  /** `local`, or the endpoint this handler reaches. */
  readonly destination: string
  invoke: <K extends StorageOp>(operation: K, input: StorageOperations[K]['input']) => Promise<Invocation<StorageOperations[K]['output']>>
  close: () => Promise<void>
}
