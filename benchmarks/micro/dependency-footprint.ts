// How much each runtime dependency brings (docs/dependencies.md): the packages it installs with
// its own dependencies (from package-lock.json, resolved as npm lays them out), how many of them no
// other runtime dependency brings too, and their size on disk under node_modules/.
//
//   npm run build && node dist/benchmarks/micro/dependency-footprint.js [PACKAGE...]
//   (default: each runtime dependency of package.json; a group as a+b, e.g. @peculiar/x509+reflect-metadata)
import { lstatSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'
import { header, table } from './measure.js'

interface LockEntry { dependencies?: Record<string, string>, optionalDependencies?: Record<string, string> }
const lock = JSON.parse(readFileSync(packageFile('package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }

/** Where npm put `name` as seen from the package at `from` (a lock key such as node_modules/a/node_modules/b). */
function resolve (from: string, name: string): string | undefined {
  let dir = from
  for (;;) {
    const key = `${dir === '' ? '' : `${dir}/`}node_modules/${name}`
    if (lock.packages[key] !== undefined) return key
    if (dir === '') return undefined
    const i = dir.lastIndexOf('/node_modules/')
    dir = i < 0 ? '' : dir.slice(0, i)
  }
}

/** The lock keys of these packages and everything they depend on. */
function closure (names: readonly string[]): Set<string> {
  const seen = new Set<string>()
  const todo = names.map((n) => { const k = resolve('', n); if (k === undefined) throw new Error(`${n} is not in package-lock.json`); return k })
  while (todo.length > 0) {
    const k = todo.pop()!
    if (seen.has(k)) continue
    seen.add(k)
    const e = lock.packages[k]!
    for (const d of Object.keys({ ...e.dependencies, ...e.optionalDependencies })) {
      const r = resolve(k, d)
      if (r !== undefined) todo.push(r)
    }
  }
  return seen
}

/** Bytes of the files of one package directory, without the packages nested in its node_modules. */
function bytes (dir: string): number {
  let n = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules') continue
    const p = join(dir, e.name)
    if (e.isDirectory()) n += bytes(p)
    else n += lstatSync(p).size
  }
  return n
}

const pkg = JSON.parse(readFileSync(packageFile('package.json'), 'utf8')) as { dependencies: Record<string, string> }
const groups = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(pkg.dependencies)
const runtime = Object.keys(pkg.dependencies)
const rows = groups.map((g) => {
  const names = g.split('+')
  const keys = closure(names)
  const others = closure(runtime.filter((r) => !names.includes(r)))
  let size = 0
  for (const k of keys) { try { size += bytes(packageFile(k)) } catch { /* not installed here (optional, other platform) */ } }
  return [g, String(keys.size), String([...keys].filter((k) => !others.has(k)).length), `${(size / 1048576).toFixed(1)} MB`]
})
process.stdout.write(header('dependency-footprint') + '\n' + table(['dependency', 'packages (itself included)', 'of which no other runtime dependency brings', 'on disk (all its packages)'], rows))
