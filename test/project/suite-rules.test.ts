// Rules of the test suite itself, checked on its source and by running small fixtures:
// - every skip of test/ goes through partMissing (test/helpers/require-part.ts), so that under CI no
//   test skips because a part is missing; the helper fails under CI, naming the part, and skips without;
// - a temporary directory is removed by a teardown registered right after it is made, before any
//   await or assertion can end the test;
// - isolateNetwork's prepare step runs outside the network namespace (registry downloads go there);
// - the after-all check (test/after-all.ts) names what a run left behind and fails, and removes it;
// - .ci/run's closing line says "N passed, N failed", and why npm test failed when the totals do not.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { randomBytes } from 'node:crypto'
import { packageFile } from '../../wsdl/package-root.js'
import { tempDir } from '../helpers/temp-dir.js'
import { dockerMissing } from '../helpers/docker.js'
import { partMissing } from '../helpers/require-part.js'

const REPO = packageFile()
const TEST = join(REPO, 'test')

function sources (dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) { if (name !== 'fixtures') out.push(...sources(p)) } else if (p.endsWith('.ts')) out.push(p)
  }
  return out.sort()
}
const files = sources(TEST).filter((f) => !f.endsWith('suite-rules.test.ts'))
const where = (f: string, i: number): string => `${relative(REPO, f)}:${i + 1}`
const isComment = (l: string): boolean => /^\s*(\/\/|\*|\/\*)/.test(l)

/** The helpers that return partMissing's reason: partMissing, and the functions test/helpers/ exports that call it. */
function checkers (): string[] {
  const names = new Set(['partMissing'])
  for (const f of sources(join(TEST, 'helpers'))) {
    if (f.endsWith('require-part.ts')) continue
    const text = readFileSync(f, 'utf8')
    for (const m of text.matchAll(/^export (?:async )?function (\w+)[^]*?(?=^export |(?![^]))/gm)) if (m[0].includes('partMissing(')) names.add(m[1]!)
  }
  return [...names]
}

/** The skips of test/ that do not go through partMissing: "file:line: text". */
function strayedSkips (): string[] {
  const calls = checkers()
  const callRe = new RegExp(`\\b(${calls.join('|')})\\(`)
  const bad: string[] = []
  for (const f of files) {
    const lines = readFileSync(f, 'utf8').split('\n')
    // Names bound to a checker's result: `const x = …checker(`, `x = …checker(`, `const { a, b } = checker(`,
    // with the continuation lines of a multi-line right-hand side.
    const bound = new Set<string>()
    lines.forEach((l, i) => {
      const m = /^(\s*)(?:(?:const|let|var)\s+)?(\{[^}]*\}|[A-Za-z_$][\w$]*)\s*(?::[^=]+)?=(?![=>])(.*)$/.exec(l)
      if (m === null) return
      let rhs = m[3]!
      for (let j = i + 1; j < lines.length && (lines[j]!.startsWith(m[1]! + ' ') || /^\s*[?:]/.test(lines[j]!)); j++) rhs += lines[j]
      if (callRe.test(rhs)) for (const n of m[2]!.replace(/[{}]/g, '').split(',')) bound.add(n.trim().split(':').pop()!.trim())
    })
    const through = (expr: string): boolean => callRe.test(expr) || expr.trim() === 'false' || bound.has(expr.trim())
    lines.forEach((l, i) => {
      if (isComment(l)) return
      for (const m of l.matchAll(/\bskip:\s*([^,}]+)/g)) if (!through(m[1]!) && !callRe.test(l)) bad.push(`${where(f, i)}: ${l.trim()}`)
      if (/[{,]\s*skip\s*[,}]/.test(l) && !bound.has('skip')) bad.push(`${where(f, i)}: ${l.trim()}`)
      for (const m of l.matchAll(/\.(?:skip\(|plan\(\s*0\s*,)\s*([^)]*)\)?/g)) if (!through(m[1]!) && !callRe.test(l)) bad.push(`${where(f, i)}: ${l.trim()}`)
    })
  }
  return bad
}

/** Temporary directories (mkdtempSync) whose removal is not registered before the next await or assertion. */
function unguardedTempDirs (): string[] {
  const bad: string[] = []
  for (const f of files) {
    if (f.endsWith(join('helpers', 'temp-dir.ts'))) continue
    const lines = readFileSync(f, 'utf8').split('\n')
    lines.forEach((l, i) => {
      if (!/mkdtempSync\(/.test(l) || isComment(l)) return
      const name = /(?:const|let|var)\s+(\w+)\s*=.*mkdtempSync\(/.exec(l)?.[1]
      let ok = false
      for (let j = i; j < lines.length && !ok; j++) {
        if (/teardown\(/.test(lines[j]!)) ok = name !== undefined && new RegExp(`rmSync\\(${name}\\b`).test(lines.slice(j, j + 10).join('\n'))
        if (!ok && j > i && /\bawait\b|\bt\.(?!teardown)\w+\(|\bthrow\b|^\}/.test(lines[j]!)) break
      }
      if (!ok) bad.push(`${where(f, i)}: ${l.trim()}`)
    })
  }
  return bad
}

/** Runs a fixture with tap's loader (the flags this file runs with). */
function runFixture (file: string, args: string[], env: NodeJS.ProcessEnv): { status: number | null, out: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, join(TEST, 'fixtures', file), ...args], { encoding: 'utf8', env, timeout: 60_000 })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}
const withoutCi = (): NodeJS.ProcessEnv => { const env = { ...process.env }; delete env.CI; return env }

t.test('every skip goes through partMissing (test/helpers/require-part.ts)', async (t) => {
  const bad = strayedSkips()
  t.equal(bad.length, 0, `skips that do not go through partMissing(part, why, install)${bad.map((b) => `\n  ${b}`).join('')}`)
  t.same(checkers().sort(), ['dockerInNamespace', 'dockerMissing', 'etcdMissing', 'monoTools', 'partMissing', 'vmPartsMissing'], 'the part checkers: partMissing and the helpers that call it')
})

t.test('partMissing: under CI the file fails naming the part; without CI it skips with the reason', async (t) => {
  const part = `no-such-part-${randomBytes(3).toString('hex')}`
  const ci = runFixture('part-missing.ts', [part], { ...withoutCi(), CI: '1' })
  t.not(ci.status, 0, 'CI=1: the file fails')
  t.match(ci.out, new RegExp(`not ok \\d+ - ${part} is missing on CI \\(CI=1\\): .*\\.ci/run installs it: apt-get install ${part}`), 'with an assertion naming the part and how .ci/run installs it')
  t.notMatch(ci.out, /# SKIP/, 'and nothing skipped')
  t.notMatch(ci.out, /RAN WITHOUT THE PART/, 'the test that needs the part did not run')
  const local = runFixture('part-missing.ts', [part], withoutCi())
  t.equal(local.status, 0, 'without CI: the file passes')
  t.match(local.out, new RegExp(`# SKIP ${part} is missing: ${part} is not on PATH`), 'its test skips, saying which part is missing and why')
  t.equal(runFixture('part-missing.ts', [part], { ...withoutCi(), CI: 'false' }).status, 0, 'CI=false counts as no CI')
})

t.test('a temporary directory is removed by a teardown registered at once', async (t) => {
  const bad = unguardedTempDirs()
  t.equal(bad.length, 0, `mkdtempSync without a teardown removing it before the next await or assertion (use tempDir(t, prefix))${bad.map((b) => `\n  ${b}`).join('')}`)
})

t.test('isolateNetwork runs its prepare step outside the namespace, and passes what it returns in', async (t) => {
  const r = runFixture('netns-prepare.ts', [], process.env)
  t.equal(r.status, 0, 'the isolated fixture ran', { output: r.out })
  const seen = JSON.parse(r.out.trim().split('\n').pop() ?? '{}') as { prepared: string | null, inside: string }
  t.equal(seen.prepared, readlinkSync('/proc/self/ns/net'), 'prepare ran in the network namespace the file started in')
  t.not(seen.inside, seen.prepared, 'and the file then ran in another')
})

t.test('the after-all check names what the tests left, fails, and removes it', async (t) => {
  const token = `metaos-leftover-${randomBytes(4).toString('hex')}`
  const since = Date.now() - 1000
  const after = (env: NodeJS.ProcessEnv): { status: number | null, out: string } => {
    const r = spawnSync(process.execPath, [...process.execArgv, join(TEST, 'after-all.ts')], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, METAOS_AFTER_SINCE: String(since), METAOS_AFTER_MATCH: token, ...env } })
    return { status: r.status, out: `${r.stdout}${r.stderr}` }
  }
  const clean = after({ METAOS_AFTER_STRICT: '1' })
  t.equal(clean.status, 0, 'nothing left: it passes')
  t.match(clean.out, /after-all: nothing the tests started is left/)

  // What a careless test would leave: a process, a temporary directory, a named network namespace, a docker network.
  const proc = spawn('bash', ['-c', `exec -a ${token} sleep 600`], { detached: true, stdio: 'ignore' })
  proc.unref()
  const dir = join(tmpdir(), token)
  const docker = dockerMissing({ build: false })
  t.teardown(() => {
    try { process.kill(proc.pid!, 'SIGKILL') } catch {}
    spawnSync('ip', ['netns', 'del', token])
    if (docker === false) spawnSync('docker', ['network', 'rm', token])
    spawnSync('rm', ['-rf', dir])
  })
  mkdirSync(dir)
  writeFileSync(join(dir, 'x'), 'left behind')
  const ns = spawnSync('ip', ['netns', 'add', token], { encoding: 'utf8' })
  const nsMissing = ns.status === 0 ? false : partMissing('named network namespaces', `ip netns add fails (${ns.stderr.trim()})`, 'apt-get install iproute2, as root')
  if (docker === false) t.equal(spawnSync('docker', ['network', 'create', token]).status, 0, 'a docker network made')
  for (let i = 0; i < 50 && !(readFileSync(`/proc/${proc.pid!}/cmdline`, 'utf8').startsWith(token)); i++) await new Promise((resolve) => setTimeout(resolve, 20))

  const found = after({ METAOS_AFTER_STRICT: '1' })
  t.equal(found.status, 1, 'it fails')
  t.match(found.out, /after-all: FAILED: the tests left \d+ thing\(s\) behind/)
  t.match(found.out, new RegExp(`process ${token} 600 +\\(kill -9 ${proc.pid!}\\)`), 'naming the process and how to end it')
  t.match(found.out, new RegExp(`temp ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/ +\\(rm -rf `), 'the temporary directory')
  if (nsMissing === false) t.match(found.out, new RegExp(`netns ${token} +\\(ip netns del ${token}\\)`), 'the network namespace')
  else t.pass('the network namespace', { skip: nsMissing })
  if (docker === false) t.match(found.out, new RegExp(`network ${token} +\\(docker -H ${process.env.DOCKER_HOST ?? ''} network rm ${token}\\)`), 'the docker network, in the tests\' Docker engine')
  else t.pass('the docker network', { skip: docker })
  t.match(found.out, /after-all: removed them/)
  for (let i = 0; i < 50 && existsSync(`/proc/${proc.pid!}`) && !readFileSync(`/proc/${proc.pid!}/stat`, 'utf8').includes(') Z'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(existsSync(`/proc/${proc.pid!}`) && !readFileSync(`/proc/${proc.pid!}/stat`, 'utf8').includes(') Z'), 'the process is gone')
  t.notOk(existsSync(dir), 'the directory is gone')
  t.notOk(existsSync(join('/run/netns', token)), 'the namespace is gone')
  if (docker === false) t.not(spawnSync('docker', ['network', 'inspect', token]).status, 0, 'the docker network is gone')

  // Outside CI, with chosen files (another run may own what is found), it lists and passes.
  mkdirSync(dir)
  const listed = after({ METAOS_AFTER_STRICT: '0', CI: '' })
  t.equal(listed.status, 0, 'not strict: it passes')
  t.match(listed.out, /after-all: note: 1 thing\(s\) of metaos created during this run are still there/, 'and lists what it found')
  t.ok(existsSync(dir), 'and removes nothing')
})

t.test('.ci/run: caches of its own, the guest kernel fetched first, a closing line that says why', async (t) => {
  const run = readFileSync(join(REPO, '.ci', 'run'), 'utf8')
  t.match(run, /export XDG_CACHE_HOME="\$ci_tmp\/cache"/, 'the VM image cache is an empty directory of the run')
  t.match(run, /unset METAOS_VM_CACHE/)
  const fetch = run.indexOf('bash vm/build-image.sh --fetch-only')
  t.ok(fetch > 0 && fetch < run.indexOf('npm test 2>&1'), 'the guest kernel package is fetched before the tests run')
  t.notMatch(run, /tests will skip/, 'a missing Docker engine is not announced as a skip')

  const dir = tempDir(t, 'metaos-closing-line-')
  const closing = (log: string, status: number): string => {
    writeFileSync(join(dir, 'log'), log)
    return spawnSync(process.execPath, [join(REPO, '.ci', 'closing-line.mjs'), join(dir, 'log'), String(status)], { encoding: 'utf8' }).stdout.trim()
  }
  t.equal(closing('ok 1 - x\n# { total: 15833, pass: 15823, fail: 2, todo: 8 }\n', 1), '15823 passed, 2 failed, 8 todo')
  t.equal(closing('# { total: 12, pass: 10, skip: 2 }\n', 0), '10 passed, 0 failed, 2 skipped')
  t.equal(closing('# { total: 3, pass: 3 }\nafter-all: FAILED: the tests left 1 thing(s) behind:\n  temp /tmp/metaos-x/\n', 1), '3 passed, 0 failed, after-all: the tests left 1 thing(s) behind (listed above)')
  t.equal(closing('error TS2304: Cannot find name\n', 2), 'no test totals: tap reported none (see the output above), npm test exited 2')
})
