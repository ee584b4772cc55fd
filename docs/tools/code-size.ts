// The largest product files and functions, counted in lines:
//   node dist/docs/tools/code-size.js [--top N] [--json]
// Product files are the repository's .ts sources but test/, dist/, node_modules and the generated
// WSDL bindings (wsdl/generated/). Functions are every function declaration, method, constructor,
// accessor, arrow function and function expression (found with the TypeScript compiler API), each
// counted from its first line to its last (a function's nested functions count in it too).
// test/project/code-size.test.ts keeps every file at most 400 lines and every function at most 80.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'

/** Folders that hold no product code, anywhere in the tree; and the generated bindings. */
const SKIP_NAMES = new Set(['node_modules', 'dist', 'test', '.git', '.tap'])
const SKIP_PATHS = new Set(['wsdl/generated'])

export interface FileSize { file: string, lines: number }
export interface FunctionSize { file: string, line: number, name: string, lines: number }
export interface CodeSizes { files: FileSize[], functions: FunctionSize[] }

/** The product's .ts sources (not .d.ts), as repository paths with '/'. */
export function productFiles (root: string = PACKAGE_ROOT): string[] {
  const out: string[] = []
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      if (SKIP_NAMES.has(name)) continue
      const p = join(dir, name)
      const rel = relative(root, p).split('\\').join('/')
      if (SKIP_PATHS.has(rel)) continue
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(rel)
    }
  }
  walk(root)
  return out
}

/** Lines of a text, as `wc -l` counts them when it ends with a newline. */
export function lineCount (text: string): number {
  if (text === '') return 0
  return text.split('\n').length - (text.endsWith('\n') ? 1 : 0)
}

/** 'C.' for a member of class C, '' otherwise. */
function ownerOf (member: ts.Node, sf: ts.SourceFile): string {
  const cls = member.parent
  return cls !== undefined && ts.isClassLike(cls) && cls.name !== undefined ? `${cls.name.getText(sf)}.` : ''
}

function nameOf (node: ts.FunctionLikeDeclaration, sf: ts.SourceFile): string {
  const own = node.name?.getText(sf) ?? ''
  if (ts.isConstructorDeclaration(node)) return `${ownerOf(node, sf)}constructor`
  if (ts.isGetAccessorDeclaration(node)) return `${ownerOf(node, sf)}get ${own}`
  if (ts.isSetAccessorDeclaration(node)) return `${ownerOf(node, sf)}set ${own}`
  if (ts.isMethodDeclaration(node)) return `${ownerOf(node, sf)}${own}`
  if (own !== '') return own
  // An anonymous function takes the name it is bound to: const f = () => …, { f: () => … }, x.f = …
  const p = node.parent
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p)) return p.name.getText(sf)
  if (ts.isPropertyDeclaration(p)) return `${ownerOf(p, sf)}${p.name.getText(sf)}`
  if (ts.isBinaryExpression(p) && p.right === node) return p.left.getText(sf)
  if (ts.isCallExpression(p)) return `(${ts.isArrowFunction(node) ? 'arrow' : 'function'} passed to ${p.expression.getText(sf).slice(0, 40)})`
  return ts.isArrowFunction(node) ? '(arrow)' : '(function)'
}

const isFunction = (n: ts.Node): n is ts.FunctionLikeDeclaration =>
  ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n) || ts.isArrowFunction(n) || ts.isFunctionExpression(n) ||
  ts.isConstructorDeclaration(n) || ts.isGetAccessorDeclaration(n) || ts.isSetAccessorDeclaration(n)

/** Every function of a source text with a body (overload signatures have none), with its size. */
export function functionSizes (file: string, text: string): FunctionSize[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS)
  const out: FunctionSize[] = []
  const visit = (node: ts.Node): void => {
    if (isFunction(node) && node.body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line
      const last = sf.getLineAndCharacterOfPosition(node.getEnd()).line
      out.push({ file, line: first + 1, name: nameOf(node, sf), lines: last - first + 1 })
    }
    ts.forEachChild(node, visit)
  }
  visit(sf)
  return out
}

/** Every product file's and function's size, largest first. */
export function codeSizes (root: string = PACKAGE_ROOT): CodeSizes {
  const files: FileSize[] = []
  const functions: FunctionSize[] = []
  for (const file of productFiles(root)) {
    const text = readFileSync(join(root, file), 'utf8')
    files.push({ file, lines: lineCount(text) })
    functions.push(...functionSizes(file, text))
  }
  files.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file))
  functions.sort((a, b) => b.lines - a.lines || a.file.localeCompare(b.file) || a.line - b.line)
  return { files, functions }
}

const USAGE = 'usage: node dist/docs/tools/code-size.js [--top N] [--json]'

function main (argv: string[]): number {
  let top = 20
  let json = false
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--json') json = true
    else if (a === '--top' && /^[1-9]\d*$/.test(argv[i + 1] ?? '')) top = Number(argv[++i])
    else if (a === '--help' || a === '-h') { console.log(USAGE); return 0 }
    else { console.error(USAGE); return 2 }
  }
  const { files, functions } = codeSizes()
  if (json) {
    console.log(JSON.stringify({ files: files.slice(0, top), functions: functions.slice(0, top) }, null, 2))
    return 0
  }
  console.log(`Largest files (of ${files.length}):`)
  for (const f of files.slice(0, top)) console.log(`${String(f.lines).padStart(6)}  ${f.file}`)
  console.log(`\nLargest functions (of ${functions.length}):`)
  for (const f of functions.slice(0, top)) console.log(`${String(f.lines).padStart(6)}  ${f.file}:${f.line}  ${f.name}`)
  return 0
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2))
}
