// The storage service's one operation table: every operation of StorageService.wsdl on a storage
// engine, handles owned by the caller. A storage domain serves it (through the bootstrap's guard
// and fault injection); the frontend's local handler runs it in process on an unconfined engine.
// With a gate (volume-gate.ts), every operation but GetDomainInfo waits while the volume is released.
//
// Small Reads and Writes (up to `syncMax` bytes, default SYNC_IO_MAX) with nothing queued on their
// handle run as one synchronous pread/pwrite on the event loop (StorageEngine.readNow/writeNow:
// same checks, fence and faults): copying a few KiB to or from the page cache takes microseconds,
// while handing it to libuv's threadpool costs two thread wake-ups on the call's path. Larger ones,
// a handle with calls queued, and a released volume take the threadpool as before. `syncMax: 0`
// (`metaos storage --sync-io-max 0`) sends every one to the threadpool: for a volume whose system
// calls may block long (a network file system), where one call must not hold the others.
import type { GetDomainInfoResponse, StorageServiceImplementation } from '../wsdl/generated/storage-service.js'
import type { StorageEngine } from './storage-engine.js'
import type { VolumeGate } from './volume-gate.js'

/** Reads and Writes up to this many bytes run synchronously when nothing is queued on the handle. */
export const SYNC_IO_MAX = 64 * 1024

export function storageImplementation (engine: StorageEngine, info: () => GetDomainInfoResponse, gate?: VolumeGate, syncMax = SYNC_IO_MAX): StorageServiceImplementation {
  const g = gate === undefined ? async <T>(fn: () => Promise<T>): Promise<T> => await fn() : async <T>(fn: () => Promise<T>): Promise<T> => await gate.pass(fn)
  const open = (): boolean => gate === undefined || !gate.closed
  return {
    Open: async (i, ctx) => await g(async () => await engine.open(i, ctx.caller)),
    Read: async (i, ctx) => (i.count <= syncMax && open() ? engine.readNow(i, ctx.caller) : undefined) ?? await g(async () => await engine.read(i, ctx.caller)),
    Write: async (i, ctx) => (i.data.length <= syncMax && open() ? engine.writeNow(i, ctx.caller) : undefined) ?? await g(async () => await engine.write(i, ctx.caller)),
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
