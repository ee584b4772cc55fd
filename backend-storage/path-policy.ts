// Where a caller's path may lead. A domain confines every path to its root: absolute paths, ".."
// that climbs out, and symlinks whose target lies outside are refused before anything is opened.
// The local handler (the app's own kernel) resolves paths as the app itself would.
import { realpath } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, posix, resolve, sep } from 'node:path'
import { MetaosError } from '../soap-runtime/errors.js'

export interface PathPolicy {
  /** Real path to operate on. `mustExist` false lets the last component be missing (create). */
  resolve: (path: string, mustExist: boolean) => Promise<string>
  /** What the caller sees in messages about this path (never the domain's real paths). */
  readonly describe: (path: string) => string
}

function checkChars (path: string): void {
  if (path.includes('\0')) throw new MetaosError('INVALID_ARGUMENT', 'path contains a NUL byte')
  if (path.length > 4096) throw new MetaosError('INVALID_ARGUMENT', 'path is longer than 4096 characters')
}

export function confinedTo (rootReal: string): PathPolicy {
  const inside = (p: string): boolean => p === rootReal || p.startsWith(rootReal.endsWith(sep) ? rootReal : rootReal + sep)
  const describe = (path: string): string => JSON.stringify(path.length > 200 ? path.slice(0, 200) + '…' : path)
  return {
    describe,
    resolve: async (path, mustExist) => {
      checkChars(path)
      if (isAbsolute(path) || /^[A-Za-z]:[\\/]/.test(path)) throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)} is absolute; paths are relative to the domain's root`)
      const norm = posix.normalize(path === '' ? '.' : path)
      if (norm === '..' || norm.startsWith('../')) throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)} leads outside the domain's root`)
      const full = join(rootReal, norm)
      try {
        const real = await realpath(full)
        if (!inside(real)) throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)} resolves outside the domain's root (symlink)`)
        return real
      } catch (e) {
        if (e instanceof MetaosError) throw e
        if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)}: too many symlinks`)
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw wrap(e, describe(path))
      }
      // Something is missing. Whether or not it must exist, the nearest existing ancestor must be
      // inside: "link-to-outside/missing" is outside, not "not found" (that would tell a caller
      // what exists outside the root).
      for (let dir = dirname(full); ; dir = dirname(dir)) {
        let real: string
        try {
          real = await realpath(dir)
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code
          if ((code === 'ENOENT' || code === 'ENOTDIR') && dir !== rootReal && dir !== dirname(dir)) continue
          throw wrap(e, describe(path))
        }
        if (!inside(real)) throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)} resolves outside the domain's root (symlink)`)
        break
      }
      if (mustExist) throw new MetaosError('FILE_NOT_FOUND', `${describe(path)}: no such file or directory`)
      // The last component is missing (a file about to be created): its directory must be inside.
      let parent: string
      try {
        parent = await realpath(dirname(full))
      } catch (e) {
        throw wrap(e, describe(path))
      }
      if (!inside(parent)) throw new MetaosError('PATH_OUTSIDE_ROOT', `${describe(path)} resolves outside the domain's root (symlink)`)
      return join(parent, basename(full))
    },
  }
}

/** The app's own kernel: paths mean what they mean to the app (relative to its working directory). */
export function unconfined (): PathPolicy {
  return {
    describe: (path) => JSON.stringify(path),
    resolve: async (path) => { checkChars(path); return resolve(path) },
  }
}

function wrap (e: unknown, what: string): MetaosError {
  const code = (e as NodeJS.ErrnoException).code
  if (code === 'ENOENT' || code === 'ENOTDIR') return new MetaosError('FILE_NOT_FOUND', `${what}: no such file or directory`)
  if (code === 'EACCES' || code === 'EPERM') return new MetaosError('ACCESS_DENIED', `${what}: permission denied`)
  return new MetaosError('IO_ERROR', `${what}: ${code ?? 'error'}`)
}
