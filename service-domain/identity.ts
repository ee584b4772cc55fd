// A service domain's identity: an EPR that stays the same across restarts of the same domain, and
// the default name of the volume it serves (derived from its root's real path).
import { createHash } from 'node:crypto'
import { basename } from 'node:path'

/** A name-based UUID (RFC 4122 v5 layout over SHA-1): the same domain gets the same EPR after a restart. */
export function stableUuid (...parts: string[]): string {
  const h = createHash('sha1').update(parts.join('\0')).digest()
  h[6] = (h[6]! & 0x0f) | 0x50
  h[8] = (h[8]! & 0x3f) | 0x80
  const x = h.subarray(0, 16).toString('hex')
  return `urn:uuid:${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`
}

export function defaultVolume (rootReal: string): string {
  const tag = createHash('sha256').update(rootReal).digest('hex').slice(0, 12)
  const base = basename(rootReal).replace(/[^A-Za-z0-9._-]/g, '-').slice(0, 40) || 'root'
  return `${base}-${tag}`
}
