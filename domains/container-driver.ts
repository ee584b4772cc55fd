// The DomainDriver that runs each domain as a Docker container (`docker run -d …`): the spec
// becomes container arguments (the root bind-mounted at /data, HTTP listeners published on the
// host, Unix sockets — net.uds and unix: — in bind-mounted directories), the ready line is read from `docker logs -f`, and
// stop, kill, pause, resume and resize are `docker stop/kill/pause/unpause/update`. Like the
// ProcessDriver it keeps no names or states (the DomainManager does) and never speaks SOAP to the
// domain; the endpoints it hands back are the host's side of every mapping.
//
// Why the docker CLI and not dockerode (or the Engine API over its socket): no new dependency and
// its transitive tree (dockerode pulls ssh2 and a native crypto fallback); the CLI already does API
// version negotiation, contexts, DOCKER_HOST and TLS the way the operator configured them; and every
// step is a command an operator can rerun by hand. The cost, a process per operation, is a few ms
// against a container start of hundreds.
//
// Permissions: the images run as uid 10001 (the `user` option changes it). The directories
// bind-mounted (the root, each socket's directory) must be writable by that uid (chown 10001, or
// mode 0777 in tests); the sockets the domain creates are owned by that uid with mode 0600, so host
// clients connect as root or as that uid. Files are created 0644: domains sharing a volume must run
// as one uid to write each other's files. A socket's whole directory is shared with the container:
// give sockets a directory of their own.
import { execFile, spawn } from 'node:child_process'
import { realpath } from 'node:fs/promises'
import { constants, hostname as hostName } from 'node:os'
import { basename, dirname } from 'node:path'
import { createInterface } from 'node:readline'
import type { Logger } from 'pino'
import type { DomainLimits, LimitsOutcome } from './cgroup-limits.js'
import type { DomainDriver, DomainExit, DomainInstance, DomainSpec } from './driver.js'
import { defaultVolume } from '../service-domain/identity.js'
import { DOMAIN_NODE_OPTIONS_ENV, domainNodeFlags } from '../service-domain/node-flags.js'
import { formatEndpoint, parseEndpoint } from '../soap-runtime/endpoint.js'
import { ERRORS, MetaosError, type ErrorCode } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'

type Service = 'storage' | 'network'

export interface ContainerDriverOptions {
  readonly logger?: Logger
  /** Image per service (default metaos/storage:dev and metaos/network:dev). */
  readonly images?: Partial<Record<Service, string>>
  /** The docker CLI (default `docker` on the PATH); DOCKER_HOST and contexts apply as usual. */
  readonly docker?: string
  /**
   * The hostname inside every container (default this host's). The EPR derives from the hostname,
   * name and root as the domain sees them, so a stable hostname keeps the EPR across restarts.
   */
  readonly hostname?: string
  /**
   * `--user` for the containers (default the image's, uid 10001). Domains of one volume write each
   * other's files only as one uid (the engine creates files 0644): a container sharing a volume
   * with a process domain runs as that process's uid.
   */
  readonly user?: string
  /** A Docker network to attach the containers to (default the bridge). */
  readonly network?: string
  /** More `docker run` options, placed before the image (e.g. `['--init']`). */
  readonly runArgs?: readonly string[]
  /** Pass `--hosting container` to the domain (default true; false for images whose CLI lacks it). */
  readonly hostingFlag?: boolean
  /** How long a domain may take to print its ready line (default 30 s). */
  readonly readyTimeoutMs?: number
  /** `docker run --pull` (default 'never': the images are built locally, and a pull attempt without a registry only delays the error). */
  readonly pull?: 'never' | 'missing' | 'always'
}

/** Where things are inside the container. */
const DATA = '/data'
const SOCKETS = '/run/metaos'
const FIRST_PORT = 8080
/** A container name is [a-zA-Z0-9][a-zA-Z0-9_.-]*; a domain name may also hold '~'. */
export const containerName = (name: string): string => `metaos-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`

interface DaemonFacts { readonly ncpu: number, readonly memTotal: number, readonly cgroup: '1' | '2', readonly memoryLimit: boolean, readonly cpuQuota: boolean }

/** How one spec maps to a container: `docker run` options, the domain's arguments, and the way back. */
interface Mapping {
  readonly run: string[]
  readonly args: string[]
  /** Container listener (`http:8080`, `unix:/run/metaos/x.sock`, `net.uds:/run/metaos/x.sock`) → host endpoint base. */
  readonly back: Map<string, { protocol: 'http', host: string, port: number, containerPort: number } | { protocol: 'unix' | 'net.uds', socketPath: string }>
}

export class ContainerDriver implements DomainDriver {
  readonly #logger: Logger
  readonly #docker: string
  readonly #images: Record<Service, string>
  readonly #hostname: string
  readonly #o: ContainerDriverOptions
  #facts: Promise<DaemonFacts> | undefined

  constructor (options: ContainerDriverOptions = {}) {
    this.#o = options
    this.#logger = options.logger ?? silentLogger
    this.#docker = options.docker ?? 'docker'
    this.#images = { storage: options.images?.storage ?? 'metaos/storage:dev', network: options.images?.network ?? 'metaos/network:dev' }
    this.#hostname = options.hostname ?? hostName()
  }

  /** Runs the docker CLI; its stderr becomes the error: ADDRESS_IN_USE for a taken port (which the manager's restart understands), else TRANSPORT_ERROR. */
  async docker (args: readonly string[], timeoutMs = 60_000): Promise<string> {
    return await new Promise((resolve, reject) => {
      execFile(this.#docker, args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err === null) { resolve(stdout.trim()); return }
        // One line: without the CLI's "docker: " prefix and its "Run 'docker … --help'" hint.
        const text = (stderr.trim() || err.message).split('\n').filter((l) => l.trim() !== '' && !l.startsWith('Run \'docker')).map((l) => l.replace(/^docker: /, '').trim()).join(' ').slice(-2000)
        // The docker CLI's words are all there is to tell a taken port by; from here on it travels as a code.
        const taken = /port is already allocated|address already in use/i.test(text)
        reject(new MetaosError(taken ? 'ADDRESS_IN_USE' : 'TRANSPORT_ERROR', `docker ${args[0] ?? ''}: ${text}`, { cause: err }))
      })
    })
  }

  async start (spec: DomainSpec): Promise<DomainInstance> {
    const service: Service = spec.service ?? 'storage'
    const name = containerName(spec.name)
    const m = await this.#map(spec, service)
    const facts = await this.#daemon()
    const asked = spec.limits === undefined ? undefined : limitArgs(spec.limits, facts)
    // A container left by a run that died without cleaning up would block the name; a running one is not ours to remove.
    await this.docker(['rm', '-v', name]).catch(() => {})
    const base = ['run', '-d', '--pull', this.#o.pull ?? 'never', '--name', name, '--hostname', this.#hostname, '--label', `metaos.domain=${spec.name}`, '--label', `metaos.service=${service}`,
      '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', ...(this.#o.network === undefined ? [] : ['--network', this.#o.network]), ...(this.#o.user === undefined ? [] : ['--user', this.#o.user]),
      // The image sets the domain's Node flags in NODE_OPTIONS; the host's METAOS_DOMAIN_NODE_OPTIONS replaces them.
      ...(process.env[DOMAIN_NODE_OPTIONS_ENV] === undefined ? [] : ['-e', `NODE_OPTIONS=${domainNodeFlags().join(' ')}`]),
      ...Object.entries(spec.env ?? {}).flatMap(([k, v]) => ['-e', `${k}=${v}`]), ...m.run, ...(this.#o.runArgs ?? [])]
    const image = [this.#images[service], ...m.args]
    let limits: LimitsOutcome | undefined
    const t0 = performance.now()
    try {
      await this.docker([...base, ...(asked?.args ?? []), ...image])
      if (asked !== undefined) limits = asked.outcome
    } catch (e) {
      // What the host forbids (a limit out of range) is an outcome: the domain runs without limits.
      if (asked === undefined || asked.args.length === 0 || (e as MetaosError).code === 'ADDRESS_IN_USE' || /No such image|Conflict|Unable to find image/.test((e as Error).message)) throw e
      await this.docker(['rm', '-f', '-v', name]).catch(() => {})
      await this.docker([...base, ...image])
      limits = { applied: false, mechanism: mechanism(facts), reason: (e as Error).message }
    }
    if (limits !== undefined && !limits.applied) this.#logger.warn({ domain: spec.name, reason: limits.reason }, 'resource limits not applied')
    const exited = this.#waitExit(name)
    let ready: { endpoints: string[], epr: string }
    let pid: number
    try {
      ready = await this.#ready(name, exited)
      pid = Number(await this.docker(['inspect', '-f', '{{.State.Pid}}', name]))
    } catch (e) {
      await this.docker(['rm', '-f', '-v', name]).catch(() => {})
      await exited
      throw e
    }
    const endpoints = await this.#hostEndpoints(name, ready.endpoints, m)
    this.#logger.info({ domain: spec.name, container: name, pid, epr: ready.epr, endpoints, readyMs: Math.round(performance.now() - t0) }, 'container domain ready')
    let gone = false
    void exited.then(() => { gone = true })
    // The limits in force, so a resize lifts only what is set (docker update knows no "unlimited").
    let inForce: DomainLimits = limits?.applied === true ? spec.limits! : {}
    /** A command on a container that may have exited meanwhile: then there is nothing to do. */
    const onLive = async (args: string[], timeoutMs?: number): Promise<void> => {
      try { await this.docker(args, timeoutMs) } catch (e) { if (!gone && !/No such container|is not running|is not paused/.test((e as Error).message)) throw e }
    }
    return {
      pid,
      epr: ready.epr,
      endpoints,
      ...(limits === undefined ? {} : { limits }),
      exited,
      stop: async (graceMs) => {
        // SIGTERM (the image's STOPSIGNAL): the domain drains and says Bye; SIGKILL after the grace.
        // A paused container is thawed by the daemon once signalled, so it drains too.
        await onLive(['stop', '-t', String(Math.ceil(graceMs / 1000)), name], graceMs + 30_000)
        return await exited
      },
      kill: async () => { await onLive(['kill', name]); return await exited },
      // The freezer cgroup: the domain keeps its sockets and answers nothing, a hang as seen from outside.
      pause: async () => { await onLive(['pause', name]) },
      resume: async () => { await onLive(['unpause', name]) },
      setLimits: async (l) => {
        if (gone) return { applied: false, mechanism: 'none', reason: 'the domain has exited' }
        const update = updateArgs(l, inForce, facts)
        if (update.outcome !== undefined) return update.outcome
        try {
          if (update.args.length > 0) await this.docker(['update', ...update.args, name])
        } catch (e) {
          return { applied: false, mechanism: mechanism(facts), reason: `${(e as Error).message}; the limits it had stay in force` }
        }
        inForce = { ...l }
        return { applied: true, mechanism: mechanism(facts) }
      },
    }
  }

  /** The spec as `docker run` options and domain arguments. */
  async #map (spec: DomainSpec, service: Service): Promise<Mapping> {
    const run: string[] = []
    const args = ['--name', spec.name]
    if (service === 'storage') {
      const root = await realpath(spec.root).catch(() => { throw new MetaosError('FILE_NOT_FOUND', `root ${spec.root} does not exist`) })
      run.push('--mount', mount(root, DATA))
      // The default volume derives from the root's real path: the host's, not /data, so the
      // container and a process on the same directory are one volume, and other directories are not.
      args.unshift('--root', DATA)
      args.push('--volume', spec.volume ?? defaultVolume(root))
    }
    const back: Mapping['back'] = new Map()
    const dirs = new Map<string, string>()
    let port = FIRST_PORT
    for (const l of spec.listen.length === 0 ? ['http://127.0.0.1:0'] : spec.listen) {
      const ep = parseEndpoint(l)
      if (ep.protocol !== 'http' && ep.protocol !== 'unix' && ep.protocol !== 'net.uds') throw new MetaosError('INVALID_ARGUMENT', `${l}: the container driver publishes http, unix and net.uds listeners only`)
      if (ep.protocol === 'http') {
        const containerPort = port++
        const ip = ep.host!.includes(':') ? `[${ep.host}]` : ep.host!
        run.push('-p', `${ip}:${ep.port === 0 ? '' : String(ep.port)}:${containerPort}`)
        // 0.0.0.0 inside the container's own network namespace; what reaches it is the -p
        // publication above, on the host address the spec names (127.0.0.1 by default).
        args.push('--listen', `http://0.0.0.0:${containerPort}`, '--allow-insecure')
        back.set(`http:${containerPort}`, { protocol: 'http', host: ep.host!, port: ep.port!, containerPort })
        continue
      }
      // The socket's directory is bind-mounted; the domain listens on the same file name inside.
      const dir = dirname(ep.socketPath!)
      let inside = dirs.get(dir)
      if (inside === undefined) {
        inside = dirs.size === 0 ? SOCKETS : `${SOCKETS}-${dirs.size}`
        dirs.set(dir, inside)
        run.push('--mount', mount(await realpath(dir).catch(() => { throw new MetaosError('FILE_NOT_FOUND', `socket directory ${dir} does not exist`) }), inside))
      }
      const path = `${inside}/${basename(ep.socketPath!)}`
      args.push('--listen', `${ep.protocol}:${path}`)
      back.set(`${ep.protocol}:${path}`, { protocol: ep.protocol, socketPath: ep.socketPath! })
    }
    if (this.#o.hostingFlag !== false) args.push('--hosting', 'container')
    args.push(...(spec.extraArgs ?? []))
    return { run, args, back }
  }

  /** The endpoints of the ready line (the container's) as the host reaches them. */
  async #hostEndpoints (name: string, inside: readonly string[], m: Mapping): Promise<string[]> {
    const out: string[] = []
    for (const e of inside) {
      const ep = parseEndpoint(e)
      const to = m.back.get(ep.protocol === 'unix' || ep.protocol === 'net.uds' ? `${ep.protocol}:${ep.socketPath!}` : `http:${ep.port!}`)
      if (to === undefined) { out.push(e); continue }
      if (to.protocol !== 'http') { out.push(formatEndpoint({ protocol: to.protocol, socketPath: to.socketPath, path: ep.path })); continue }
      // `docker port` lists one line per binding (0.0.0.0 may add [::]); the one of our address.
      const lines = (await this.docker(['port', name, `${to.containerPort}/tcp`])).split('\n').map((s) => s.trim()).filter((s) => s !== '')
      const wanted = to.host.includes(':') ? `[${to.host}]:` : `${to.host}:`
      const line = lines.find((s) => s.startsWith(wanted)) ?? lines[0]
      const port = Number(line?.slice(line.lastIndexOf(':') + 1))
      if (!Number.isInteger(port) || port <= 0) throw new MetaosError('PROTOCOL_ERROR', `docker port ${name} ${to.containerPort}: unexpected "${lines.join(' ')}"`)
      out.push(formatEndpoint({ protocol: 'http', host: to.host, port, path: ep.path }))
    }
    return out
  }

  /** The domain's ready line, read from `docker logs -f`; fails when the container exits first or the time is up. */
  async #ready (name: string, exited: Promise<DomainExit>): Promise<{ endpoints: string[], epr: string }> {
    const timeoutMs = this.#o.readyTimeoutMs ?? 30_000
    const logs = spawn(this.#docker, ['logs', '-f', name], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    logs.stderr.on('data', (c: Buffer) => { stderr = (stderr + c.toString()).slice(-4000) })
    const lines = createInterface({ input: logs.stdout })
    let timer: NodeJS.Timeout | undefined
    try {
      return await new Promise((resolve, reject) => {
        timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', `container ${name} did not get ready within ${timeoutMs} ms: ${stderr.slice(-2000)}`)) }, timeoutMs)
        lines.on('line', (line) => {
          let r: { event?: string, endpoints?: string[], epr?: string, code?: string, message?: string }
          try { r = JSON.parse(line) as typeof r } catch { return }
          if (r.event === 'ready' && typeof r.epr === 'string' && Array.isArray(r.endpoints)) resolve({ endpoints: r.endpoints, epr: r.epr })
          // The domain could not start (its error line, domains/domain-process.ts): its code.
          if (r.event === 'error' && typeof r.code === 'string' && Object.hasOwn(ERRORS, r.code)) reject(new MetaosError(r.code as ErrorCode, `container ${name} could not start the domain: ${r.message ?? ''}`))
        })
        logs.once('error', (e) => { reject(new MetaosError('TRANSPORT_ERROR', `docker logs: ${e.message}`, { cause: e })) })
        void exited.then((x) => { reject(new MetaosError('TRANSPORT_ERROR', `container ${name} exited with ${x.signal ?? String(x.code)} before it was ready: ${stderr.slice(-2000)}`)) })
      })
    } finally {
      clearTimeout(timer)
      lines.close()
      logs.kill()
    }
  }

  /** `docker wait`, then `docker rm`: resolves once the container has exited and is gone. */
  async #waitExit (name: string): Promise<DomainExit> {
    let code: number | null = null
    try {
      const out = await this.docker(['wait', name], 0)
      code = /^\d+$/.test(out) ? Number(out) : null
      if (await this.docker(['inspect', '-f', '{{.State.OOMKilled}}', name]).catch(() => '') === 'true') this.#logger.warn({ container: name }, 'container domain killed by the OOM killer (its memory limit)')
    } catch (e) {
      this.#logger.warn({ container: name, err: (e as Error).message }, 'cannot wait for the container')
    }
    await this.docker(['rm', '-f', '-v', name]).catch(() => {})
    // Docker reports a death by signal n as 128 + n: the signal is said alongside the code.
    const n = code !== null && code > 128 ? code - 128 : undefined
    const signal = (Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? null) as NodeJS.Signals | null
    return { code, signal }
  }

  async #daemon (): Promise<DaemonFacts> {
    this.#facts ??= this.docker(['info', '--format', '{{json .}}']).then((s) => {
      const i = JSON.parse(s) as { NCPU?: number, MemTotal?: number, CgroupVersion?: string, MemoryLimit?: boolean, CpuCfsQuota?: boolean }
      return { ncpu: i.NCPU ?? 1, memTotal: i.MemTotal ?? 0, cgroup: i.CgroupVersion === '2' ? '2' : '1', memoryLimit: i.MemoryLimit !== false, cpuQuota: i.CpuCfsQuota !== false }
    })
    this.#facts.catch(() => { this.#facts = undefined })
    return await this.#facts
  }
}

const mechanism = (f: DaemonFacts): LimitsOutcome['mechanism'] => f.cgroup === '2' ? 'cgroup-v2' : 'cgroup-v1'

/** A `--mount` value; docker parses it as CSV, so a field holding a comma or quote is quoted. */
function mount (source: string, target: string): string {
  const field = (s: string): string => /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
  return [field('type=bind'), field(`source=${source}`), field(`target=${target}`)].join(',')
}

/** Memory and swap together: the limit is the total, no swap beyond it (and v1 accepts the pair in any order of growth). */
const memoryArgs = (bytes: number): string[] => ['--memory', String(bytes), '--memory-swap', String(bytes)]
/** Docker takes CPUs between 0.01 and the daemon's count; above that is no limit anyway. */
const cpuArgs = (percent: number, f: DaemonFacts): string[] => ['--cpus', (Math.min(Math.max(percent, 1), f.ncpu * 100) / 100).toFixed(2)]

/** `docker run` options for `limits`, and what becomes of them where the daemon cannot enforce one. */
function limitArgs (l: DomainLimits, f: DaemonFacts): { args: string[], outcome: LimitsOutcome } {
  const missing = [l.memoryBytes !== undefined && !f.memoryLimit ? 'memory' : '', l.cpuPercent !== undefined && !f.cpuQuota ? 'CPU quota' : ''].filter((s) => s !== '')
  if (missing.length > 0) return { args: [], outcome: { applied: false, mechanism: mechanism(f), reason: `the Docker daemon supports no ${missing.join(' or ')} limit` } }
  const args = [...(l.memoryBytes === undefined ? [] : memoryArgs(l.memoryBytes)), ...(l.cpuPercent === undefined ? [] : cpuArgs(l.cpuPercent, f))]
  return { args, outcome: args.length === 0 ? { applied: false, mechanism: 'none', reason: 'no limit asked' } : { applied: true, mechanism: mechanism(f) } }
}

/**
 * `docker update` options turning the limits in force into `l`. Docker cannot lift a limit in place
 * (0 means "unchanged"), so a limit left out becomes the daemon's whole: its memory, all its CPUs —
 * no limit in effect; a restart then starts the container with none at all.
 */
function updateArgs (l: DomainLimits, inForce: DomainLimits, f: DaemonFacts): { args: string[], outcome?: LimitsOutcome } {
  const asked = limitArgs(l, f)
  if (asked.outcome.applied === false && asked.args.length === 0 && (l.memoryBytes !== undefined || l.cpuPercent !== undefined)) return { args: [], outcome: asked.outcome }
  const memory = l.memoryBytes ?? (inForce.memoryBytes === undefined ? undefined : f.memTotal)
  const cpu = l.cpuPercent ?? (inForce.cpuPercent === undefined ? undefined : f.ncpu * 100)
  return { args: [...(memory === undefined || memory === 0 ? [] : memoryArgs(memory)), ...(cpu === undefined ? [] : cpuArgs(cpu, f))] }
}
