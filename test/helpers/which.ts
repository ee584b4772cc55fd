// Finds an executable as a shell would (PATH), and in the sbin/bin folders Debian installs peers
// into even when PATH lacks them (CI's environment may). Used by the interop tests to skip, with a
// reason, only when a peer is truly absent.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

export function which (name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin']) {
    if (dir === '') continue
    const p = join(dir, name)
    try { accessSync(p, constants.X_OK); return p } catch { /* next */ }
  }
  return undefined
}
