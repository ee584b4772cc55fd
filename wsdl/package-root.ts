// Locates files shipped with the package (wsdl/, docker/…) whether the code runs from dist/ or
// from the TypeScript sources (tests).
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function findRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'wsdl', 'StorageService.wsdl'))) return dir
    const up = dirname(dir)
    if (up === dir) throw new Error('metaos: cannot find the package root (package.json beside wsdl/)')
    dir = up
  }
}

export const PACKAGE_ROOT = findRoot()
export const packageFile = (...parts: string[]): string => join(PACKAGE_ROOT, ...parts)
