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
  /**
   * Optional: a Read or Write done at once (a synchronous syscall) when the handler can — the local
   * kernel, on a handle with nothing queued — or undefined, and then nothing was done and `invoke`
   * must be used. Faults are thrown. A FileStream's WriteByte/ReadByte refill its buffer with it.
   */
  invokeSync?: <K extends SyncOp>(operation: K, input: StorageOperations[K]['input']) => Invocation<StorageOperations[K]['output']> | undefined
}

/** The operations `invokeSync` may do. */
export type SyncOp = 'Read' | 'Write'
