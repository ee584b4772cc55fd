// What a test run may have left behind: processes of metaos started under tap (domains, guest
// agents, QEMU booting a metaos image, test peers), docker containers, networks and volumes of
// metaos in the tests' Docker engine (docker/netns-dockerd.sh), named network namespaces, and
// temporary files and directories of metaos — each created after `sinceMs`, so what ran before the
// suite (a developer's own `metaos up`, the kept images) is never counted. The engine itself, when
// a test started it during the run, is listed as `dockerd` (its processes and namespace are not
// listed one by one); with `links`, the container bridges and veths in the root network namespace
// (docker0, br-…, veth…), which no test makes since the tests' engine has a namespace of its own.
// test/after-all.ts runs this when tap has finished every file; test/project/suite-rules.test.ts tests it.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { packageFile } from '../../wsdl/package-root.js'

export type LeftoverKind = 'process' | 'container' | 'network' | 'volume' | 'netns' | 'temp' | 'link' | 'dockerd'

export interface Leftover {
  readonly kind: LeftoverKind
  /** What removes it: a pid, a docker id or name, a namespace name, a path. */
  readonly id: string
  /** What it is, as a person reads it (command line, container name and image…). */
  readonly what: string
  /** The engine a container, network or volume is in (`unix://…`). */
  readonly docker?: string
}

export interface FindOptions {
  /** Only what was created at or after this time (ms since the epoch). */
  readonly sinceMs: number
  /** Only what names this text (a test's unique token); default: anything of metaos. */
  readonly match?: string
  /** Pids never counted (this process and its ancestors are never counted anyway). */
  readonly exclude?: ReadonlySet<number>
  /** Where temporary directories are looked for (default os.tmpdir()). */
  readonly tmp?: string
  /** Count container bridges and veths in the root network namespace (they have no creation time: under CI only). */
  readonly links?: boolean
}

const DOCKERD_SCRIPT = packageFile('docker', 'netns-dockerd.sh')

/** The tests' Docker engine when it runs (`netns-dockerd.sh status`): its socket, namespace and dockerd pid. */
export function testEngine (): { docker: string, netns: string, pid: number, dataRoot: string } | undefined {
  const r = spawnSync('bash', [DOCKERD_SCRIPT, 'status'], { encoding: 'utf8', timeout: 30_000 })
  if (r.status !== 0) return undefined
  try { return JSON.parse(r.stdout.trim().split('\n').pop()!) as { docker: string, netns: string, pid: number, dataRoot: string } } catch { return undefined }
}

/**
 * The engine's own processes: its daemons in its network namespace (not the test files that run
 * there, nor the domains they start: those are checked as any), and whatever is in its containers'
 * cgroups (parent /NETNS).
 */
function enginePids (netns: string): Set<number> {
  const pids = new Set<number>()
  const r = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' })
  for (const p of (r.stdout ?? '').split('\n')) {
    const exe = basename(processInfo(Number(p))?.argv[0] ?? '')
    if (/^\d+$/.test(p.trim()) && /^(dockerd|containerd|containerd-shim.*|docker-proxy|runc|docker-init)$/.test(exe)) pids.add(Number(p))
  }
  for (const pid of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    if (readFileSafe(`/proc/${pid}/cgroup`).includes(`/${netns}/`)) pids.add(Number(pid))
  }
  return pids
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100
const BOOT_MS = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1] ?? 0) * 1000

/** When process `pid` started (ms since the epoch), its parent and its command line; undefined once it is gone. */
export function processInfo (pid: number): { startMs: number, ppid: number, argv: string[] } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((a) => a !== '')
    return { startMs: BOOT_MS + Number(fields[19]) * 1000 / CLOCK_TICKS, ppid: Number(fields[1]), argv }
  } catch { return undefined }
}

function ancestors (pid: number): Set<number> {
  const seen = new Set<number>()
  for (let p: number | undefined = pid; p !== undefined && p > 0 && !seen.has(p); p = processInfo(p)?.ppid) seen.add(p)
  return seen
}

const netnsOf = (pid: number | 'self'): string | undefined => { try { return readlinkSync(`/proc/${pid}/ns/net`) } catch { return undefined } }

/** A process of metaos: the CLI or the guest agent, QEMU with a metaos image, a test peer (test/interop/, a metaos- temp dir, wsdd, nmap). */
function isMetaosProcess (argv: readonly string[]): boolean {
  const line = argv.join(' ')
  const exe = basename(argv[0] ?? '')
  return /dist\/cli\/metaos\.js|dist\/vm\/guest-agent|\/test\/interop\/|metaos-/.test(line) ||
    (exe.startsWith('qemu-system') && /metaos/.test(line)) || exe === 'wsdd' || exe === 'nmap'
}

function processes (o: FindOptions): Leftover[] {
  const skip = new Set([...ancestors(process.pid), ...(o.exclude ?? [])])
  const rootNs = netnsOf('self')
  const out: Leftover[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    if (skip.has(pid)) continue
    const p = processInfo(pid)
    if (p === undefined || p.argv.length === 0 || p.startMs < o.sinceMs) continue
    // A container's processes are named with their container.
    if (/docker|containerd/.test(readFileSafe(`/proc/${pid}/cgroup`))) continue
    // Started by a test: tap gives its test files TAP=1 and they pass their environment on. A process
    // without it (a benchmark or a `metaos up` started from a shell meanwhile) is not the tests'.
    if (o.match === undefined && !readFileSafe(`/proc/${pid}/environ`).split('\0').includes('TAP=1')) continue
    const line = p.argv.join(' ')
    // An orphan in a network namespace of its own: a namespace holder a test started (`unshare --net sleep …`).
    const parent = processInfo(p.ppid)
    const orphanInNetns = netnsOf(pid) !== rootNs && (parent === undefined || parent.startMs < o.sinceMs)
    if (o.match !== undefined ? line.includes(o.match) : isMetaosProcess(p.argv) || orphanInNetns) out.push({ kind: 'process', id: String(pid), what: line.slice(0, 300) })
  }
  return out
}

function readFileSafe (path: string): string { try { return readFileSync(path, 'utf8') } catch { return '' } }

function dockerAt (host: string, args: string[]): string[] | undefined {
  const r = spawnSync('docker', ['-H', host, ...args], { encoding: 'utf8', timeout: 30_000 })
  return r.status === 0 ? r.stdout.split('\n').filter((l) => l.trim() !== '') : undefined
}

/** A time as docker prints it (containers: RFC 3339 with ns; networks: `2026-01-02 03:04:05.678 +0000 UTC`; volumes: to the second) in ms. */
export function dockerTime (s: string): number {
  const m = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)?/.exec(s.trim())
  if (m === null) return Number.NaN
  const zone = (m[4] ?? 'Z').replace(/^([+-]\d\d)(\d\d)$/, '$1:$2')
  return Date.parse(`${m[1]!}T${m[2]!}${(m[3] ?? '').slice(0, 4)}${zone}`)
}

/** Docker objects of metaos created since in the engine at `host`: containers (name, image or compose project), networks and volumes (name). */
function dockerObjects (o: FindOptions, host: string): Leftover[] {
  const docker = (args: string[]): string[] | undefined => dockerAt(host, args)
  const named = (s: string): boolean => o.match !== undefined ? s.includes(o.match) : /metaos/i.test(s)
  // Volumes say when to the second: a second's grace.
  const since = (created: string): boolean => dockerTime(created) >= o.sinceMs - 1000
  const out: Leftover[] = []
  for (const line of docker(['ps', '-a', '--format', '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.Status}}\t{{.Label "com.docker.compose.project"}}']) ?? []) {
    const [id = '', names = '', image = '', status = '', project = ''] = line.split('\t')
    if (!named(`${names} ${image} ${project}`)) continue
    if (since(docker(['inspect', '-f', '{{.Created}}', id])?.[0] ?? '')) out.push({ kind: 'container', id, what: `${names} (${image}, ${status})`, docker: host })
  }
  for (const line of docker(['network', 'ls', '--format', '{{.ID}}\t{{.Name}}']) ?? []) {
    const [id = '', name = ''] = line.split('\t')
    if (named(name) && since(docker(['network', 'inspect', '-f', '{{.Created}}', id])?.[0] ?? '')) out.push({ kind: 'network', id: name, what: name, docker: host })
  }
  for (const name of docker(['volume', 'ls', '--format', '{{.Name}}']) ?? []) {
    if (named(name) && since(docker(['volume', 'inspect', '-f', '{{.CreatedAt}}', name])?.[0] ?? '')) out.push({ kind: 'volume', id: name, what: name, docker: host })
  }
  return out
}

/** Named network namespaces (`ip netns add`) made since. */
function namespaces (o: FindOptions): Leftover[] {
  let names: string[]
  try { names = readdirSync('/run/netns') } catch { return [] }
  return names.filter((n) => (o.match === undefined || n.includes(o.match)) && statSync(join('/run/netns', n)).mtimeMs >= o.sinceMs)
    .map((n) => ({ kind: 'netns' as const, id: n, what: n }))
}

/** Temporary files and directories of metaos made since (lock files of the build scripts are kept on purpose). */
function temps (o: FindOptions): Leftover[] {
  const dir = o.tmp ?? tmpdir()
  const out: Leftover[] = []
  for (const name of readdirSync(dir)) {
    if (o.match !== undefined ? !name.includes(o.match) : !/^\.?metaos[-.]/.test(name) || name.endsWith('.lock')) continue
    try {
      const st = statSync(join(dir, name))
      const born = st.birthtimeMs > 0 ? st.birthtimeMs : st.ctimeMs
      if (born >= o.sinceMs) out.push({ kind: 'temp', id: join(dir, name), what: join(dir, name) + (st.isDirectory() ? '/' : '') })
    } catch { /* gone meanwhile */ }
  }
  return out
}

/** Container bridges and veths in the root network namespace (`ip -o link`): docker0, docker_gwbridge, br-<id>, veth<id>. */
function rootLinks (o: FindOptions): Leftover[] {
  const r = spawnSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
  const out: Leftover[] = []
  for (const line of (r.stdout ?? '').split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1]
    if (name === undefined || !/^(docker0|docker_gwbridge|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/.test(name)) continue
    if (o.match === undefined || name.includes(o.match)) out.push({ kind: 'link', id: name, what: `${name} (a container ${name.startsWith('veth') ? 'veth' : 'bridge'} in the root network namespace)` })
  }
  return out
}

export function findLeftovers (o: FindOptions): Leftover[] {
  const engine = testEngine()
  // The engine's own processes and namespace are the engine: listed once, as `dockerd`.
  const inner: FindOptions = engine === undefined ? o : { ...o, exclude: new Set([...(o.exclude ?? []), ...enginePids(engine.netns)]) }
  const out = processes(inner)
  if (engine !== undefined) {
    out.push(...dockerObjects(o, engine.docker))
    const started = processInfo(engine.pid)?.startMs ?? 0
    if (started >= o.sinceMs && (o.match === undefined || engine.netns.includes(o.match))) {
      out.push({ kind: 'dockerd', id: engine.netns, what: `the tests' Docker engine (dockerd ${engine.pid} in network namespace ${engine.netns}, data root ${engine.dataRoot})` })
    }
  }
  out.push(...namespaces(o).filter((l) => l.id !== engine?.netns), ...temps(o))
  if (o.links === true) out.push(...rootLinks(o))
  return out
}

const at = (l: Leftover): string => l.docker === undefined ? '' : ` -H ${l.docker}`

/** The command that removes `l`, as a person would type it. */
export function removalCommand (l: Leftover): string {
  switch (l.kind) {
    case 'process': return `kill -9 ${l.id}`
    case 'container': return `docker${at(l)} rm -f -v ${l.id}`
    case 'network': return `docker${at(l)} network rm ${l.id}`
    case 'volume': return `docker${at(l)} volume rm ${l.id}`
    case 'link': return `ip link del ${l.id}`
    case 'dockerd': return `bash ${DOCKERD_SCRIPT} down`
    case 'netns': return `ip netns del ${l.id}`
    case 'temp': return `rm -rf ${l.id}`
  }
}

/** Removes `l`: processes first, then containers, then what containers used. Says what failed. */
export function removeLeftovers (all: readonly Leftover[]): string[] {
  const order: LeftoverKind[] = ['process', 'container', 'network', 'volume', 'dockerd', 'link', 'netns', 'temp']
  const failed: string[] = []
  for (const kind of order) {
    for (const l of all.filter((x) => x.kind === kind)) {
      try {
        if (kind === 'process') process.kill(Number(l.id), 'SIGKILL')
        else if (kind === 'temp') rmSync(l.id, { recursive: true, force: true })
        else {
          const [cmd, ...args] = removalCommand(l).split(' ')
          const r = spawnSync(cmd!, args, { encoding: 'utf8', timeout: 60_000 })
          if (r.status !== 0) throw new Error(r.stderr.trim() || String(r.error))
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') failed.push(`${removalCommand(l)}: ${(e as Error).message}`)
      }
    }
  }
  return failed
}
