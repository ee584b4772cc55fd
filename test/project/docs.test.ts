// The docs a newcomer follows are run, not trusted: docs/quick-start.md's marked blocks run for real
// (npm start until Ctrl-C, a storage domain, the first FileStream program, curl, then the image
// build, a container domain on a bridge of the run's own, discovery and a FileStream through it, in
// the tests' Docker engine and its network namespace);
// every relative link of docs/*.md and README.md resolves; docs/cli-reference.md is what the CLI's
// --help makes now; docs/wsdl.md names every operation and element of both WSDLs; docs/api.md
// names every public member of FileStream and NetSocket. The markers are described at the end of
// docs/quick-start.md ("How this page is tested").
import t, { type Test } from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'
import { generateCliReference, CLI_REFERENCE } from '../../docs/tools/cli-reference.js'
import { dockerMissing, testDockerdStatus } from '../helpers/docker.js'

t.setTimeout(300_000)
const REPO = packageFile()
const run = Math.random().toString(36).slice(2, 7)

// ---------------------------------------------------------------------------------------------
// The quick start's blocks

interface Block { line: number, section: string, marker: string, lang: string, code: string }

/** Fenced blocks, each with the `<!-- doc-test: … -->` comment right before it (or ''), and its `## ` section. */
function blocks (md: string): Block[] {
  const lines = md.split('\n')
  const out: Block[] = []
  let section = ''
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!
    if (l.startsWith('## ')) section = l
    const open = /^```(\S*)\s*$/.exec(l)
    if (open === null) continue
    const end = lines.indexOf('```', i + 1)
    const prev = lines[i - 1] ?? ''
    const marker = /^<!-- doc-test: (.*) -->$/.exec(prev)?.[1] ?? ''
    out.push({ line: i + 1, section, marker, lang: open[1]!, code: lines.slice(i + 1, end).join('\n') })
    i = end
  }
  return out
}

/** The backquoted strings right after `after` in a marker: expect `a` and `b` → ['a', 'b']. */
const quoted = (s: string, after: string): string[] => {
  const m = new RegExp(`${after}((?:\`[^\`]+\`(?: and )?)+)`).exec(s)
  return m === null ? [] : [...m[1]!.matchAll(/`([^`]+)`/g)].map((x) => x[1]!)
}

interface Running { child: ChildProcess, out: () => string, exit: Promise<number | null>, what: string, until: (section: string) => boolean, check?: (t: Test, out: string, code: number | null) => void }

const quickStart = readFileSync(packageFile('docs', 'quick-start.md'), 'utf8')
const all = blocks(quickStart)

t.test('every code block of the quick start is marked: run, background, file, or skip with a reason', async (t) => {
  for (const b of all.filter((b) => b.lang !== 'text')) t.not(b.marker, '', `docs/quick-start.md:${b.line} (${b.lang}) has a doc-test marker`)
  t.ok(all.filter((b) => b.marker.startsWith('skip')).every((b) => /\(.+\)/.test(b.marker)), 'skipped blocks say why')
})

/** The first three octets of a /24 in 172.30.100–249 that no docker network or interface uses. */
function freeSubnet (): string {
  const used: string[] = []
  const ids = spawnSync('docker', ['network', 'ls', '-q'], { encoding: 'utf8' }).stdout.split('\n').filter((s) => s !== '')
  if (ids.length > 0) used.push(spawnSync('docker', ['network', 'inspect', '-f', '{{range .IPAM.Config}}{{.Subnet}} {{end}}', ...ids], { encoding: 'utf8' }).stdout)
  for (const addrs of Object.values(networkInterfaces())) for (const a of addrs ?? []) used.push(a.address)
  const text = used.join(' ')
  for (let i = 0; i < 100; i++) {
    const prefix = `172.30.${100 + Math.floor(Math.random() * 150)}`
    if (!text.includes(`${prefix}.`) && !text.includes('172.30.0.0/16') && !text.includes('172.16.0.0/12')) return prefix
  }
  throw new Error('no free /24 in 172.30.100.0–172.30.249.0')
}

t.test('the quick start runs as written', async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'metaos-docs-'))
  const net = { name: `metaos-qs-${run}`, bridge: `mqs${run}`, subnet: '' }
  const background: Running[] = []
  let holder: ChildProcess | undefined
  let dockerUp = false
  // Registered before anything can fail: the namespace holder, background processes, the docker
  // container and network of the Docker steps, the temporary directory.
  t.teardown(async () => {
    for (const r of background) { try { process.kill(-r.child.pid!, 'SIGKILL') } catch {} }
    holder?.kill('SIGKILL')
    if (dockerUp) {
      spawnSync('docker', ['rm', '-f', `${net.name}-st1`], { timeout: 30_000 })
      spawnSync('docker', ['network', 'rm', net.name], { timeout: 30_000 })
    }
    rmSync(tmp, { recursive: true, force: true })
  })
  // The files' folder: `import 'metaos'` resolves to this checkout, as `npm install /path/to/clone` makes it.
  const app = join(tmp, 'app')
  mkdirSync(join(app, 'node_modules'), { recursive: true })
  symlinkSync(REPO, join(app, 'node_modules', 'metaos'))
  const rewrite = (s: string, docker: boolean): string => {
    s = s.replaceAll('/tmp/metaos', join(tmp, 'metaos'))
    if (docker) s = s.replaceAll('metaos-qs', net.name).replaceAll('metaos0', net.bridge).replaceAll('172.30.99', net.subnet)
    return s
  }

  // Steps 1–3: in a network namespace of the test's own (port 8080 and 127.0.0.1 are its own).
  holder = spawn('unshare', ['--net', 'sleep', '1000000'], { stdio: 'ignore' })
  const nsPath = `/proc/${holder.pid!}/ns/net`
  for (let i = 0; i < 100 && readlinkSync(nsPath) === readlinkSync('/proc/self/ns/net'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.not(readlinkSync(nsPath), readlinkSync('/proc/self/ns/net'), 'a network namespace for steps 1–3')
  spawnSync('nsenter', [`--net=${nsPath}`, 'ip', 'link', 'set', 'lo', 'up'])

  const stop = async (t: Test, r: Running): Promise<void> => {
    if (r.child.exitCode === null && r.child.signalCode === null) process.kill(-r.child.pid!, 'SIGINT')
    const killer = setTimeout(() => { try { process.kill(-r.child.pid!, 'SIGKILL') } catch {} }, 20_000)
    const code = await r.exit
    clearTimeout(killer)
    r.check?.(t, r.out(), code)
  }

  // Step 4 runs in the tests' Docker engine (test/helpers/docker.ts), inside its network namespace: the
  // bridge and the container's address are there. The images are built first (no registry inside).
  const missing = all.some((b) => /\bdocker\b/.test(b.marker)) ? dockerMissing() : false
  const dockerNs = missing === false ? testDockerdStatus()?.netns : undefined

  let section = ''
  for (const b of all) {
    if (b.marker === '' || b.marker.startsWith('skip')) continue
    const docker = /\bdocker\b/.test(b.marker)
    if (b.section !== section) {
      // Background processes get Ctrl-C when the section their marker names begins.
      for (const r of background.filter((r) => r.until(b.section))) { background.splice(background.indexOf(r), 1); await stop(t, r) }
      section = b.section
    }
    if (docker && missing !== false) { t.pass(`docs/quick-start.md:${b.line}`, { skip: missing }); continue }
    if (docker && !dockerUp) { net.subnet = freeSubnet(); dockerUp = true }
    const file = /^file (\S+)/.exec(b.marker)?.[1]?.replace(/,$/, '')
    if (file !== undefined) { writeFileSync(join(app, file), rewrite(b.code, docker)); continue }

    let code = rewrite(b.code, docker)
    for (const prefix of quoted(b.marker, 'skip ')) { t.ok(code.startsWith(prefix), `docs/quick-start.md:${b.line} starts with "${prefix}"`); code = code.slice(prefix.length) }
    const cwd = b.marker.includes('beside the files') ? app : REPO
    const argv = ['nsenter', `--net=${docker ? `/run/netns/${dockerNs ?? '?'}` : nsPath}`, '--', 'bash', '-e', '-c', code]
    const env = { ...process.env, METAOS_LOG_LEVEL: 'warn' }
    const what = `docs/quick-start.md:${b.line} \`${code.split('\n')[0]!.slice(0, 90)}\``
    const t0 = performance.now()
    const child = spawn(argv[0]!, argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    const exit = new Promise<number | null>((resolve) => { child.on('close', (c, sig) => { resolve(c ?? (sig === 'SIGINT' ? 130 : -1)) }) })

    if (b.marker.startsWith('background')) {
      const ready = quoted(b.marker, 'ready when ')[0]!
      // `then Ctrl-C`: at the end of its section; `Ctrl-C after step N`: when step N+1 begins.
      const after = /Ctrl-C after step (\d+)/.exec(b.marker)?.[1]
      const started = b.section
      const until = after === undefined ? (s: string) => s !== started : (s: string) => s.startsWith(`## ${Number(after) + 1}.`)
      const r: Running = { child, out: () => out, exit, what, until }
      if (code.includes('npm start')) {
        r.check = (t, out, c) => {
          for (const d of ['local', 'bus', 'network']) t.match(out, new RegExp(`^${d} .* identical$`, 'm'), `npm start: ${d} written, read back, identical`)
          t.notMatch(out, /DIFFER/, 'npm start: no bytes differ')
          t.match(out, /stopping/, 'npm start: Ctrl-C stops the domains')
          t.ok(c === 0 || c === 130, `npm start: exit code ${String(c)} after Ctrl-C (0, or 130: npm itself ends on SIGINT)`)
        }
      }
      background.push(r)
      const deadline = Date.now() + 120_000
      while (!out.includes(ready) && child.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
      t.ok(out.includes(ready), `${what}: ready ("${ready}") in ${((performance.now() - t0) / 1000).toFixed(1)} s`, out.includes(ready) ? {} : { output: out.slice(-2000) })
      if (!out.includes(ready)) return
      continue
    }
    const c = await exit
    t.equal(c, 0, `${what}: exit 0 in ${((performance.now() - t0) / 1000).toFixed(1)} s`, c === 0 ? {} : { output: out.slice(-2000) })
    for (const e of quoted(b.marker, 'expect ')) t.ok(out.includes(rewrite(e, docker)), `${what}: prints "${e}"`, out.includes(rewrite(e, docker)) ? {} : { output: out.slice(-2000) })
    if (c !== 0) return
  }
  for (const r of background.splice(0)) await stop(t, r)
})

// ---------------------------------------------------------------------------------------------
// Links

/** GitHub's anchor of a heading. */
const slug = (h: string): string => h.trim().toLowerCase().replace(/[`*_]/g, '').replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-')

function anchors (md: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  let fence = false
  for (const l of md.split('\n')) {
    if (l.startsWith('```')) fence = !fence
    const m = fence ? null : /^#{1,6} (.*)$/.exec(l)
    if (m === null) continue
    const s = slug(m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1'))
    const n = seen.get(s) ?? 0
    seen.set(s, n + 1)
    out.add(n === 0 ? s : `${s}-${n}`)
  }
  return out
}

t.test('every relative link of docs/*.md and README.md resolves to a file (and an anchor)', async (t) => {
  const pages = [packageFile('README.md'), ...readdirSync(packageFile('docs')).filter((f) => f.endsWith('.md')).map((f) => packageFile('docs', f))]
  let links = 0
  for (const page of pages) {
    const md = readFileSync(page, 'utf8').replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')
    for (const m of md.matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1]!
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // http:, https:, mailto:
      links++
      const [path, anchor] = target.split('#') as [string, string | undefined]
      const file = path === '' ? page : resolve(dirname(page), decodeURIComponent(path))
      const where = `${page.slice(REPO.length + 1)}: (${target})`
      if (!existsSync(file)) { t.fail(`${where}: ${file.slice(REPO.length + 1)} does not exist`); continue }
      if (anchor !== undefined && anchor !== '' && file.endsWith('.md') && !anchors(readFileSync(file, 'utf8')).has(anchor)) t.fail(`${where}: no heading #${anchor} in ${file.slice(REPO.length + 1)}`)
    }
  }
  t.ok(links > 50, `${links} relative links checked in ${pages.length} pages`)
})

// ---------------------------------------------------------------------------------------------
// Generated and reference pages

t.test('docs/cli-reference.md is what every command\'s --help prints now', async (t) => {
  const fresh = await generateCliReference()
  const page = readFileSync(CLI_REFERENCE, 'utf8')
  if (page !== fresh) {
    const a = page.split('\n')
    const b = fresh.split('\n')
    const i = a.findIndex((l, k) => l !== b[k])
    t.fail(`docs/cli-reference.md is stale: run npm run docs:cli (first difference at line ${i + 1}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])})`)
  } else t.pass('docs/cli-reference.md in sync (npm run docs:cli regenerates it)')
  t.match(page, /^## metaos storage$/m)
  t.match(page, /^## metaos pki init$/m, 'the pki subcommands too')
  t.match(readFileSync(packageFile('docs', 'cli.md'), 'utf8'), /\(cli-reference\.md\)/, 'the guide links the generated reference')
})

t.test('docs/wsdl.md names every operation and element of both WSDLs', async (t) => {
  const doc = readFileSync(packageFile('docs', 'wsdl.md'), 'utf8')
  for (const wsdl of ['StorageService.wsdl', 'NetworkService.wsdl']) {
    const text = readFileSync(packageFile('wsdl', wsdl), 'utf8')
    const operations = new Set([...text.matchAll(/<wsdl:operation name="([^"]+)"/g)].map((m) => m[1]!))
    const elements = new Set([...text.matchAll(/<xs:element name="([^"]+)"/g)].map((m) => m[1]!))
    const types = new Set([...text.matchAll(/<xs:(?:simpleType|complexType) name="([^"]+)"/g)].map((m) => m[1]!))
    t.ok(operations.size >= 10 && elements.size > operations.size, `${wsdl}: ${operations.size} operations, ${elements.size} elements, ${types.size} named types`)
    const missing = [...operations, ...elements, ...types].filter((n) => !new RegExp(`\\b${n}\\b`).test(doc))
    t.same(missing, [], `${wsdl}: every operation, element and named type appears in docs/wsdl.md`)
  }
})

t.test('docs/api.md names every public member of FileStream and NetSocket and every option', async (t) => {
  const doc = readFileSync(packageFile('docs', 'api.md'), 'utf8')
  // The class's file, and the file of its options when they have one of their own.
  for (const [file, cls, ifaces, optionsFile] of [['file-stream.ts', 'FileStream', ['FileStreamOptions', 'StreamStats'], 'file-stream-shapes.ts'], ['net-socket.ts', 'NetSocket', ['NetSocketOptions', 'NetConnectOptions', 'SocketStats'], 'net-socket.ts']] as const) {
    const src = readFileSync(packageFile('frontend', 'api', file), 'utf8')
    const options = readFileSync(packageFile('frontend', 'api', optionsFile), 'utf8')
    const body = src.slice(src.indexOf(`export class ${cls}`)).split('\n}\n')[0]!
    const members = new Set([...body.matchAll(/^ {2}(?:static |override |readonly |async |get )*([a-zA-Z]\w*)\s*[(:]/gm)].map((m) => m[1]!).filter((n) => !['constructor'].includes(n)))
    for (const i of ifaces) {
      t.ok(options.includes(`export interface ${i}`), `${optionsFile} declares ${i}`)
      const decl = options.slice(options.indexOf(`export interface ${i}`))
      for (const m of decl.slice(0, decl.indexOf('\n}')).matchAll(/^ {2}(?:readonly )?(\w+)\??:/gm)) members.add(m[1]!)
    }
    const missing = [...members].filter((n) => !new RegExp(`\\b${n}\\b`).test(doc))
    t.same(missing, [], `${cls}: ${members.size} public members and options, each in docs/api.md`)
  }
})

for (const svg of ['architecture.svg', 'house.svg']) {
  t.test(`docs/${svg} is well-formed SVG and docs/architecture.md shows it`, async (t) => {
    const { SaxesParser } = await import('saxes')
    const parser = new SaxesParser({ xmlns: true })
    let root = ''
    parser.on('opentag', (tag) => { if (root === '') root = `{${tag.uri ?? ''}}${tag.local ?? ''}` })
    t.doesNotThrow(() => { parser.write(readFileSync(packageFile('docs', svg), 'utf8')).close() }, 'well-formed XML')
    t.equal(root, '{http://www.w3.org/2000/svg}svg', 'an SVG document')
    t.match(readFileSync(packageFile('docs', 'architecture.md'), 'utf8'), new RegExp(`!\\[[^\\]]+\\]\\(${svg.replace('.', '\\.')}\\)`), 'shown in architecture.md')
  })
}
