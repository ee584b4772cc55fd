// Share modes across every domain of a volume (issue 20, with --coordination): the engine registers
// each open in etcd before its open(2) — a Create or Truncate writes, so the check must come first —
// by its path inside the volume (the same on every domain of it, whatever the root is called
// there), and releases it when the handle goes (Close, reaping, shutdown): a Close returns once etcd
// took the release (or its deadline passed: then it is retried in the background), so an open
// that follows a Close, on any domain, finds the file free. The local handle table
// keeps its own check as well: it answers at once, and without coordination it is the only one.
import { relative, sep } from 'node:path'
import type { ShareRegistry } from '../coordination/api.js'
import type { FileAccess, FileShare } from '../wsdl/generated/storage-service.js'

export interface OpenRegistrar {
  /** SHARING_VIOLATION when an open of the file on any domain of the volume does not admit this one; COORDINATION_UNAVAILABLE without etcd. */
  register: (realPath: string, access: FileAccess, share: FileShare, stream?: string) => Promise<{ release: () => Promise<void> }>
  /** SHARING_VIOLATION when an open on any domain does not admit deleting the file. */
  checkDelete: (realPath: string) => Promise<void>
}

export function volumeShares (registry: ShareRegistry, volume: string, rootReal: string): OpenRegistrar {
  const inVolume = (realPath: string): string => relative(rootReal, realPath).split(sep).join('/')
  return {
    register: async (realPath, access, share, stream) => {
      const r = await registry.register({ volume, path: inVolume(realPath), access, share, ...(stream === undefined ? {} : { stream }) })
      return { release: async () => { await r.release() } }
    },
    checkDelete: async (realPath) => { await registry.checkDelete(volume, inVolume(realPath)) },
  }
}
