// The storage service's one operation table: every operation of StorageService.wsdl on a storage
// engine, handles owned by the caller. A storage domain serves it (through the bootstrap's guard
// and fault injection); the frontend's local handler runs it in process on an unconfined engine.
// With a gate (volume-gate.ts), every operation but GetDomainInfo waits while the volume is released.
import type { GetDomainInfoResponse, StorageServiceImplementation } from '../wsdl/generated/storage-service.js'
import type { StorageEngine } from './storage-engine.js'
import type { VolumeGate } from './volume-gate.js'

export function storageImplementation (engine: StorageEngine, info: () => GetDomainInfoResponse, gate?: VolumeGate): StorageServiceImplementation {
  const g = gate === undefined ? async <T>(fn: () => Promise<T>): Promise<T> => await fn() : async <T>(fn: () => Promise<T>): Promise<T> => await gate.pass(fn)
  return {
    Open: async (i, ctx) => await g(async () => await engine.open(i, ctx.caller)),
    Read: async (i, ctx) => await g(async () => await engine.read(i, ctx.caller)),
    Write: async (i, ctx) => await g(async () => await engine.write(i, ctx.caller)),
    Seek: async (i, ctx) => await g(async () => await engine.seek(i, ctx.caller)),
    Flush: async (i, ctx) => await g(async () => await engine.flush(i, ctx.caller)),
    SetLength: async (i, ctx) => await g(async () => await engine.setLength(i, ctx.caller)),
    GetLength: async (i, ctx) => await g(async () => await engine.getLength(i, ctx.caller)),
    Close: async (i, ctx) => await g(async () => await engine.close(i, ctx.caller)),
    Delete: async (i) => await g(async () => await engine.delete(i)),
    GetFileInfo: async (i) => await g(async () => await engine.getFileInfo(i)),
    ListDirectory: async (i) => await g(async () => await engine.listDirectory(i)),
    GetDomainInfo: async () => info(),
  }
}
