// No path of a developer's machine in the repository: docs, tests, sources and scripts never cite a
// home or work directory, nor a file under /tmp as the source of a measurement — a figure comes
// with a command anyone can run from the repository (benchmarks/, benchmarks/micro/). /tmp as an
// example a user would type (`--root /tmp/metaos-data`, `cat /tmp/metaos-data/hello.txt`) is fine.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { portableCommand } from '../../benchmarks/report.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'

const SKIP_DIRS = new Set(['node_modules', 'dist', '.git', '.tap', 'coverage'])
const TEXT = /\.(md|ts|js|mjs|cjs|json|sh|ya?ml|in|txt|cs|html|css|py|xml|wsdl|svg)$|Dockerfile$|^\.ci$|^run$/
// This file shows the patterns it looks for.
const SKIP_FILES = new Set(['package-lock.json', 'docs-paths.test.ts'])

function files (dir: string): string[] {
  const out: string[] = []
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) { if (!SKIP_DIRS.has(e.name)) out.push(...files(join(dir, e.name))) } else if (TEXT.test(e.name) && !SKIP_FILES.has(e.name)) out.push(join(dir, e.name))
  }
  return out
}

// The directories of a machine that a path in the repository must never start with.
const ROOTS = ['work', 'root', 'home'].map((d) => `/${d}/`)
/**
 * An absolute home/work path: at the start of a word (not `$root/home/…` nor `../root/…`); the
 * container images' own user, /home/metaos (docker/), is no machine's.
 */
const MACHINE = new RegExp(`(?:^|[\\s'"\`(=:,[])(?:${ROOTS.map((r) => r.replaceAll('/', '\\/')).join('|')})(?!metaos[:/"\\s])`, 'm')
/** A file under a directory of /tmp cited as a script or a result (`/tmp/pbench/b.mjs`, `/tmp/run/paper.json`). */
const TMP_SOURCE = new RegExp(`\\/tmp\\/[^\\s/\`'"]+\\/[^\\s/\`'"]+\\.(?:m?js|cjs|ts|json|csv|md)\\b`)

t.test('no machine path in docs, tests, sources or scripts', async (t) => {
  const all = files(PACKAGE_ROOT)
  t.ok(all.length > 100, `${all.length} files read`)
  const found: string[] = []
  for (const f of all) {
    const lines = readFileSync(f, 'utf8').split('\n')
    lines.forEach((l, i) => { if (MACHINE.test(l) || TMP_SOURCE.test(l)) found.push(`${relative(PACKAGE_ROOT, f)}:${i + 1}: ${l.trim().slice(0, 160)}`) })
  }
  t.same(found, [], 'a figure comes with a command anyone can run (benchmarks/micro/), not a path of the machine it ran on')
})

t.test('the patterns catch what they are for, and leave examples alone', async (t) => {
  for (const bad of ['(`node` micro-benchmarks: `/tmp/pbench/b.mjs`)', '--json /tmp/paperfull/paper.json', `cd ${ROOTS[0]}wt/cli`, `"${ROOTS[1]}.npm"`, `see ${ROOTS[2]}me/notes.md`]) t.ok(MACHINE.test(bad) || TMP_SOURCE.test(bad), `caught: ${bad}`)
  for (const ok of ['npx metaos storage --root /tmp/metaos-data', 'cat /tmp/metaos-data/hello.txt', 'mkdir -p "$root/home/metaos"', "'../root/../outside.txt'", 'unix:/tmp/metaos.sock', `metaos:x:10001:10001:metaos:${ROOTS[2]}metaos:/usr/sbin/nologin`]) t.notOk(MACHINE.test(ok) || TMP_SOURCE.test(ok), `left alone: ${ok}`)
})

t.test('a recorded benchmark command shows no machine path', async (t) => {
  t.equal(portableCommand(['--suite', 'paper', '--json', '/tmp/run/paper.json', '--svg=/tmp/run/svg']), '--suite paper --json paper.json --svg=svg', 'outside the working directory: the base name')
  t.equal(portableCommand(['--json', join(PACKAGE_ROOT, 'docs', 'benchmarks', 'peers.json')], PACKAGE_ROOT), '--json docs/benchmarks/peers.json', 'inside it: relative')
  t.equal(portableCommand(['--json', 'docs/benchmarks/char.json', '--file-size', '20m']), '--json docs/benchmarks/char.json --file-size 20m', 'relative paths and values stay')
})
