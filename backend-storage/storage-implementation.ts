// The storage service's one operation table: every operation of StorageService.wsdl on a storage
// engine, handles owned by the caller. A storage domain serves it (through the bootstrap's guard
// and fault injection); the frontend's local handler runs it in process on an unconfined engine.
import type { GetDomainInfoResponse, StorageServiceImplementation } from '../wsdl/generated/storage-service.js'
import type { StorageEngine } from './storage-engine.js'

export function storageImplementation (engine: StorageEngine, info: () => GetDomainInfoResponse): StorageServiceImplementation {
  return {
    Open: async (i, ctx) => await engine.open(i, ctx.caller),
    Read: async (i, ctx) => await engine.read(i, ctx.caller),
    Write: async (i, ctx) => await engine.write(i, ctx.caller),
    Seek: async (i, ctx) => await engine.seek(i, ctx.caller),
    Flush: async (i, ctx) => await engine.flush(i, ctx.caller),
    SetLength: async (i, ctx) => await engine.setLength(i, ctx.caller),
    GetLength: async (i, ctx) => await engine.getLength(i, ctx.caller),
    Close: async (i, ctx) => await engine.close(i, ctx.caller),
    Delete: async (i) => await engine.delete(i),
    GetFileInfo: async (i) => await engine.getFileInfo(i),
    ListDirectory: async (i) => await engine.listDirectory(i),
    GetDomainInfo: async () => info(),
  }
}
