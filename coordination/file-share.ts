// .NET's FileShare rule, in one place for every side that checks it: the handles of one domain
// (backend-storage/handle-table.ts) and the registrations of every domain of a volume held in etcd
// (share-registry.ts). Each side's access must be admitted by the other side's share.
import type { FileAccess, FileShare } from '../wsdl/generated/storage-service.js'

export const canRead = (a: FileAccess | FileShare): boolean => a === 'Read' || a === 'ReadWrite'
export const canWrite = (a: FileAccess | FileShare): boolean => a === 'Write' || a === 'ReadWrite'

/** Whether a new open (access, share) may coexist with an open one (other.access, other.share). */
export function compatible (access: FileAccess, share: FileShare, other: { readonly access: FileAccess, readonly share: FileShare }): boolean {
  if (canRead(access) && !canRead(other.share)) return false
  if (canWrite(access) && !canWrite(other.share)) return false
  if (canRead(other.access) && !canRead(share)) return false
  if (canWrite(other.access) && !canWrite(share)) return false
  return true
}
