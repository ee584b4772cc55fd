// The dependency rule of docs/architecture.md ("The house"), enforced: every import of the product's
// code (type-only imports too) goes from a layer to one the rule lets it use, and no folder or file
// reaches itself through others. The package's entries (package.json "exports": index.ts,
// frontend/index.ts, domains/index.ts…) are the doors of the house, above every layer: they
// re-export what they open onto and no product file imports one. A failure names the import that
// breaks the rule.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, posix, relative } from 'node:path'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'

/** The package's entries, as source files: "./dist/frontend/index.js" → frontend/index.ts. */
const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }
const ENTRIES = new Map(Object.entries(pkg.exports).map(([subpath, e]) => [e.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'), subpath]))

// Each layer and the layers it may import (besides itself). Below-first.
const RULE: Record<string, readonly string[]> = {
  'soap-runtime': [],
  wsdl: ['soap-runtime'],
  discovery: ['soap-runtime'],
  security: ['soap-runtime'],
  // etcd: leases, share modes across a volume's domains, stream epochs (docs/coordination.md).
  coordination: ['soap-runtime', 'wsdl'],
  'service-domain': ['coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'backend-storage': ['service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'backend-network': ['service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  domains: ['service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  // A VM domain runs the storage backend in its guest.
  vm: ['domains', 'backend-storage', 'backend-network', 'service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'frontend/handlers': ['backend-storage', 'backend-network', 'domains', 'service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'frontend/placement': ['frontend/handlers', 'backend-storage', 'backend-network', 'domains', 'service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'frontend/assembly': ['frontend/placement', 'frontend/handlers', 'backend-storage', 'backend-network', 'domains', 'service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
  'frontend/api': ['frontend/assembly', 'frontend/placement', 'frontend/handlers', 'backend-storage', 'backend-network', 'domains', 'service-domain', 'coordination', 'soap-runtime', 'wsdl', 'discovery', 'security'],
}
const PRODUCT = Object.keys(RULE)
// On top: nothing imports them, except that cli may import benchmarks and dashboard.
const TOP: Record<string, readonly string[]> = {
  dashboard: [...PRODUCT, 'frontend'],
  soapui: [...PRODUCT],
  benchmarks: [...PRODUCT, 'frontend'],
  cli: [...PRODUCT, 'frontend', 'benchmarks', 'dashboard'],
  'docs/tools': [...PRODUCT],
  // The package's entries (ENTRIES): each re-exports what its subpath opens onto, from any layer.
  '(entry)': [...PRODUCT, 'frontend', 'dashboard'],
}

function layerOf (file: string): string {
  if (ENTRIES.has(file)) return '(entry)'
  if (file.startsWith('frontend/')) return file.split('/').slice(0, 2).join('/')
  if (file.startsWith('docs/tools/')) return 'docs/tools'
  return file.split('/')[0]!
}
const allowed = (from: string, to: string): boolean => {
  if (from === to) return true
  const rule = RULE[from] ?? TOP[from]
  if (rule === undefined) return false
  return rule.includes(to) || (to.startsWith('frontend/') && rule.includes('frontend'))
}

function sources (dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (['node_modules', 'dist', 'test', '.git', '.tap'].includes(name)) continue
    const p = join(dir, name)
    if (statSync(p).isDirectory()) sources(p, out)
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts')) out.push(relative(PACKAGE_ROOT, p).split('\\').join('/'))
  }
  return out
}

/** Every relative import of a file (static, dynamic, type-only, re-exports), as repository paths. */
export function importsOf (file: string): Array<{ line: number, target: string }> {
  const out: Array<{ line: number, target: string }> = []
  readFileSync(join(PACKAGE_ROOT, file), 'utf8').split('\n').forEach((text, i) => {
    for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.\.?\/[^'"]+)['"]/g)) {
      out.push({ line: i + 1, target: posix.normalize(posix.join(posix.dirname(file), m[1]!)).replace(/\.js$/, '.ts') })
    }
  })
  return out
}

const files = sources(PACKAGE_ROOT)
const graph = new Map(files.map((f) => [f, importsOf(f)]))

t.test('every import goes down the layers of docs/architecture.md', async (t) => {
  t.ok(files.length > 100, `${files.length} product files read`)
  const broken: string[] = []
  for (const [file, imports] of graph) {
    for (const { line, target } of imports) {
      const from = layerOf(file)
      const to = layerOf(target)
      if (!allowed(from, to)) broken.push(`${file}:${line} imports ${target} (${from} may not import ${to})`)
    }
  }
  t.same(broken, [], 'no import breaks the rule')
  const unknown = files.filter((f) => RULE[layerOf(f)] === undefined && TOP[layerOf(f)] === undefined)
  t.same(unknown, [], 'every product file belongs to a layer of the rule')
})

t.test('every entry of package.json "exports" is an index.ts that only re-exports, and nothing inside imports one', async (t) => {
  t.ok(ENTRIES.size >= 6, `${ENTRIES.size} entries: ${[...ENTRIES.values()].join(', ')}`)
  for (const [file, subpath] of ENTRIES) {
    t.ok(files.includes(file), `${subpath} is ${file}`)
    t.match(file, /(^|\/)index\.ts$/, `${subpath}: an index.ts`)
    const code = readFileSync(join(PACKAGE_ROOT, file), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('//'))
    t.same(code.filter((l) => !/^export (type )?(\*|\{)/.test(l)), [], `${file}: re-exports only`)
  }
  const inward = [...graph].flatMap(([file, imports]) => imports.filter((i) => ENTRIES.has(i.target)).map((i) => `${file}:${i.line} imports ${i.target}`))
  t.same(inward, [], 'no product file imports an entry: inside, modules import each other directly')
})

t.test('no file reaches itself through its imports', async (t) => {
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const stack: string[] = []
  const visit = (f: string): void => {
    state.set(f, 'open'); stack.push(f)
    for (const { target } of graph.get(f) ?? []) {
      if (state.get(target) === 'open') cycles.push([...stack.slice(stack.indexOf(target)), target].join(' -> '))
      else if (state.get(target) === undefined && graph.has(target)) visit(target)
    }
    stack.pop(); state.set(f, 'done')
  }
  for (const f of graph.keys()) if (state.get(f) === undefined) visit(f)
  t.same(cycles, [], 'no file cycle')
})

t.test('the rule itself: the layers it names exist and hold no cycle', async (t) => {
  for (const layer of [...Object.keys(RULE), ...Object.keys(TOP)].filter((l) => l !== '(entry)')) {
    t.ok(statSync(join(PACKAGE_ROOT, layer), { throwIfNoEntry: false })?.isDirectory(), `${layer}/ exists`)
  }
  const seen = new Set<string>()
  for (const layer of Object.keys(RULE)) { // listed below-first: each may only use layers listed before it
    t.same(RULE[layer]!.filter((d) => !seen.has(d)), [], `${layer} uses only layers below it`)
    seen.add(layer)
  }
})
