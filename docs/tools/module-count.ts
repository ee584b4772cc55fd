// How many of the package's own modules an import loads, each in a fresh process:
//   node dist/docs/tools/module-count.js [--list] [--json] [ENTRY…]
// ENTRY is a package entry ('metaos', 'metaos/frontend'…, as package.json "exports" names them) or a
// module of dist/ ('frontend/api/file-stream.js'); default: every entry and FileStream's module. Run
// after `npm run build`. test/project/module-count.test.ts keeps `import { FileStream } from 'metaos'` small.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { PACKAGE_ROOT, packageFile } from '../../wsdl/package-root.js'

const DIST = packageFile('dist')
const HOOK = packageFile('dist', 'docs', 'tools', 'module-loads.js')

/** The package's entries: 'metaos' → dist/index.js, 'metaos/frontend' → dist/frontend/index.js… */
export function packageEntries (): Map<string, string> {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string, exports: Record<string, { default: string }> }
  return new Map(Object.entries(pkg.exports).map(([sub, e]) => [sub === '.' ? pkg.name : `${pkg.name}/${sub.slice(2)}`, join(PACKAGE_ROOT, e.default)]))
}

export interface ModuleCount { entry: string, count: number, modules: string[] }

/**
 * Imports `entry` in a fresh Node process and lists the package's modules it loaded (paths under
 * dist/, in load order). `run`: code run after the import, with the module as `m` (what a first call loads).
 */
export async function countModules (entry: string, o: { run?: string } = {}): Promise<ModuleCount> {
  const file = packageEntries().get(entry) ?? join(DIST, entry)
  const code = `const l = globalThis[Symbol.for('metaos.module-loads')]; const m = await import(${JSON.stringify(pathToFileURL(file).href)}); ${o.run ?? ''}; console.log(JSON.stringify(await l.settled()))`
  const stdout = await new Promise<string>((resolve, reject) => {
    execFile(process.execPath, ['--import', pathToFileURL(HOOK).href, '--input-type=module', '-e', code], { cwd: PACKAGE_ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } }, (err, out, stderr) => {
      if (err !== null) reject(new Error(`importing ${entry} failed: ${err.message}\n${stderr}`))
      else resolve(out)
    })
  })
  const urls = JSON.parse(stdout.trim().split('\n').pop()!) as string[]
  const modules = urls.filter((u) => u.startsWith('file:')).map((u) => fileURLToPath(u))
    .filter((p) => p.startsWith(DIST + '/') && !p.includes('/node_modules/') && p !== HOOK)
    .map((p) => p.slice(DIST.length + 1))
  return { entry, count: modules.length, modules }
}

async function main (argv: string[]): Promise<void> {
  const list = argv.includes('--list')
  const json = argv.includes('--json')
  const asked = argv.filter((a) => !a.startsWith('--'))
  const entries = asked.length > 0 ? asked : [...packageEntries().keys(), 'frontend/api/file-stream.js']
  const counts: ModuleCount[] = []
  for (const e of entries) counts.push(await countModules(e))
  if (json) { console.log(JSON.stringify(counts, null, 2)); return }
  const width = Math.max(...entries.map((e) => e.length))
  for (const c of counts) {
    console.log(`${c.entry.padEnd(width)}  ${String(c.count).padStart(3)} modules`)
    if (list) for (const m of c.modules) console.log(`  ${m}`)
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((e: unknown) => { console.error(e instanceof Error ? e.message : e); process.exitCode = 1 })
}
