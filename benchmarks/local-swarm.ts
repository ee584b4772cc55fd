// Drives docker/swarm/local-swarm.sh (a swarm of N nodes on this machine, docs/swarm.md) from
// TypeScript, for the swarm tests (test/helpers/swarm.ts) and the swarm benchmark
// (benchmarks/swarm-suite.ts): up, the stack's secrets and deploy, its tasks healthy, a node killed,
// its link cut and restored, `docker node ls`, down. Every command runs without the caller's
// NODE_OPTIONS (a test's loader has no business in the product's processes).
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { packageFile } from '../wsdl/package-root.js'

export const SWARM_SCRIPT = packageFile('docker', 'swarm', 'local-swarm.sh')
export const SWARM_STACK = packageFile('docker', 'swarm', 'stack.yaml')
export const SWARM_SECRETS = packageFile('docker', 'swarm', 'make-secrets.sh')
export const DIST = packageFile('dist')

const { NODE_OPTIONS: _nodeOptions, ...CHILD_ENV } = process.env
/** The environment of the product's processes: this one's, without NODE_OPTIONS. */
export const childEnv = (env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ ...CHILD_ENV, ...env })

export interface Sh { status: number | null, stdout: string, stderr: string }

export function sh (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Sh {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout, env: childEnv(env), maxBuffer: 64 * 1024 * 1024 })
  return { status: r.status, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error === undefined ? '' : String(r.error)) }
}

/** The same without blocking the event loop (while a child's output is being read, say). */
export async function shAsync (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Promise<Sh> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout, env: childEnv(env), maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const status = err === null ? 0 : typeof err.code === 'number' ? err.code : null
      resolve({ status, stdout, stderr: stderr + (err !== null && typeof err.code !== 'number' ? String(err) : '') })
    })
  })
}

const failed = (cmd: string, args: readonly string[], r: Sh): Error => new Error(`${cmd} ${args.join(' ')} → ${r.status}: ${r.stderr.trim().split('\n').slice(-5).join(' | ')}`)

/** `sh`, throwing with the end of stderr unless the command succeeds; its stdout, trimmed. */
export function must (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): string {
  const r = sh(cmd, args, env, timeout)
  if (r.status !== 0) throw failed(cmd, args, r)
  return r.stdout.trim()
}

export async function mustAsync (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}, timeout = 120_000): Promise<string> {
  const r = await shAsync(cmd, args, env, timeout)
  if (r.status !== 0) throw failed(cmd, args, r)
  return r.stdout.trim()
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

/** Polls `probe` every `everyMs` until it returns something; throws naming `what` after `timeoutMs`. */
export async function until<T> (what: string, timeoutMs: number, probe: () => T | undefined | Promise<T | undefined>, everyMs = 500): Promise<T> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** The last line of a command's output, as JSON (the scripts print one JSON line last). */
export const lastJson = <T>(out: string): T => JSON.parse(out.trim().split('\n').pop()!) as T

/** An executable on PATH or in Debian's sbin/bin folders, or undefined. */
export function findCommand (name: string): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin']) {
    if (dir !== '' && existsSync(join(dir, name))) return join(dir, name)
  }
  return undefined
}

/** Why a local swarm cannot run here (root, iproute2, util-linux, docker.io, a built dist/, ip netns), or undefined. */
export function swarmUnavailable (): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (network namespaces, dockerd)'
  for (const c of ['ip', 'unshare', 'setsid', 'dockerd', 'containerd', 'runc', 'docker', 'iptables-save']) {
    if (findCommand(c) === undefined) return `${c} is missing (Debian: apt-get install iproute2 util-linux docker.io)`
  }
  if (!existsSync(join(DIST, 'index.js'))) return 'dist/ is not built (npm run build)'
  const probe = `metaos-probe-${process.pid}`
  if (sh('ip', ['netns', 'add', probe]).status !== 0) return 'ip netns add is refused here'
  sh('ip', ['netns', 'del', probe])
  return undefined
}

/** The switch namespaces of the local swarms (any name) up on this machine. */
export function swarmsUp (): string[] {
  return sh('ip', ['netns', 'list']).stdout.split('\n').map((l) => l.split(' ')[0]!).filter((n) => /-switch$/.test(n))
}

/**
 * Waits (up to `timeoutMs`) until no other local swarm runs here: two can run side by side, but
 * not on a machine of two cores whose timings matter. Throws naming them after that.
 */
export async function waitForOtherSwarms (timeoutMs = 600_000, onWait?: (others: string[]) => void): Promise<void> {
  const end = Date.now() + timeoutMs
  for (let others = swarmsUp(); others.length > 0; others = swarmsUp()) {
    if (Date.now() > end) throw new Error(`another local swarm is still up after ${timeoutMs} ms: ${others.join(' ')}`)
    onWait?.(others)
    await sleep(2000)
  }
}

export interface SwarmNode { readonly name: string, readonly netns: string, readonly docker: string, readonly address: string, readonly role: string, readonly zone: string }
export interface SwarmReady { readonly event: string, readonly nodes: readonly SwarmNode[], readonly client: { readonly netns: string, readonly address: string }, readonly shared: string }

/** The stack's tasks that docker/swarm/stack.yaml places on a swarm of `nodes` nodes (zone a: the proxy; zone b: the network domain). */
export const expectedTasks = (nodes: number): string[] => ['node1 discovery', 'node2 network', ...Array.from({ length: nodes }, (_, i) => `node${i + 1} storage`)].sort()

/**
 * One local swarm: its name (namespaces NAME-node1…), and its state and data directories under
 * `dir`. Nothing happens until `up`; `down` removes what `up` made, and succeeds with nothing to remove.
 */
export class LocalSwarm {
  readonly name: string
  readonly dir: string
  readonly env: NodeJS.ProcessEnv
  #ready: SwarmReady | undefined

  constructor (name: string, dir: string) {
    this.name = name
    this.dir = dir
    this.env = { METAOS_SWARM_NAME: name, METAOS_SWARM_DIR: join(dir, 'run'), METAOS_SWARM_DATA: join(dir, 'data') }
  }

  get ready (): SwarmReady {
    if (this.#ready === undefined) throw new Error(`swarm ${this.name} is not up`)
    return this.#ready
  }

  /** `local-swarm.sh up --nodes N`: its ready line. */
  up (nodes = 3, extra: readonly string[] = []): SwarmReady {
    this.#ready = lastJson<SwarmReady>(must('bash', [SWARM_SCRIPT, 'up', '--nodes', String(nodes), ...extra], this.env, 900_000))
    return this.#ready
  }

  down (): Sh { return sh('bash', [SWARM_SCRIPT, 'down'], this.env, 120_000) }

  node (name: string): SwarmNode {
    const n = this.ready.nodes.find((x) => x.name === name)
    if (n === undefined) throw new Error(`no node ${name} in swarm ${this.name}`)
    return n
  }

  /** `docker -H <node i's socket> …` (i from 1). */
  docker (i: number, ...args: string[]): string { return must('docker', ['-H', this.ready.nodes[i - 1]!.docker, ...args], {}, 120_000) }
  dockerSh (i: number, ...args: string[]): Sh { return sh('docker', ['-H', this.ready.nodes[i - 1]!.docker, ...args], {}, 60_000) }

  /**
   * The stack's certificates and policy in `pki` (docker/swarm/make-secrets.sh), a storage identity
   * per node (its address in the certificate), each put in place for its node (local-swarm.sh identities).
   */
  secrets (pki: string): void {
    must('bash', [SWARM_SECRETS, pki, ...this.ready.nodes.flatMap((n) => ['--node', `${n.name}=${n.address}`])])
    this.#identities = lastJson<{ dir: string }>(must('bash', [SWARM_SCRIPT, 'identities', pki], this.env)).dir
  }

  /** `docker stack deploy` of docker/swarm/stack.yaml as `metaos`, from node1 (after `secrets`). */
  deploy (pki: string, logLevel = 'warn'): void {
    if (this.#identities === undefined) throw new Error('deploy needs the nodes\' identities: call secrets first')
    must('docker', ['-H', this.ready.nodes[0]!.docker, 'stack', 'deploy', '--resolve-image', 'never', '-c', SWARM_STACK, 'metaos'],
      { METAOS_PKI_DIR: pki, METAOS_SHARED_DIR: this.ready.shared, METAOS_IDENTITY_DIR: this.#identities, METAOS_LOG_LEVEL: logLevel })
  }

  #identities: string | undefined

  /** The healthy tasks of the stack, as "nodeI service", sorted. */
  healthy (): string[] {
    return this.ready.nodes.flatMap((n, i) => this.dockerSh(i + 1, 'ps', '--filter', 'label=com.docker.stack.namespace=metaos', '--format', '{{.Label "com.docker.swarm.service.name"}} {{.Status}}').stdout
      .split('\n').filter((l) => l.includes('(healthy)')).map((l) => `${n.name} ${l.split(' ')[0]!.replace(/^metaos_/, '')}`)).sort()
  }

  /** Waits until every task of the stack is healthy where its placement puts it; on a timeout, the error says what `docker stack ps` says. */
  async waitHealthy (timeoutMs = 150_000): Promise<string[]> {
    const expected = expectedTasks(this.ready.nodes.length)
    try {
      return await until('every task healthy', timeoutMs, () => this.healthy().join() === expected.join() ? expected : undefined)
    } catch (e) {
      throw new Error(`${(e as Error).message}: ${this.dockerSh(1, 'stack', 'ps', '--no-trunc', '--format', '{{.Name}} {{.Node}} {{.CurrentState}} {{.Error}}', 'metaos').stdout.trim()}`)
    }
  }

  /** `docker node ls` seen from node i: "nodeJ Status" lines, sorted; undefined when that manager cannot answer (no quorum, say). */
  nodeStatus (from: number): string[] | undefined {
    const r = this.dockerSh(from, 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}')
    return r.status === 0 ? r.stdout.trim().split('\n').sort() : undefined
  }

  /** The same without blocking the event loop. */
  async nodeStatusAsync (from: number): Promise<string[] | undefined> {
    const r = await shAsync('docker', ['-H', this.ready.nodes[from - 1]!.docker, 'node', 'ls', '--format', '{{.Hostname}} {{.Status}}'], {}, 60_000)
    return r.status === 0 ? r.stdout.trim().split('\n').sort() : undefined
  }

  /** A host crash (local-swarm.sh kill-node): its JSON line. */
  async killNode (name: string): Promise<{ event: string, node: string, processes: number }> {
    return lastJson(await mustAsync('bash', [SWARM_SCRIPT, 'kill-node', name], this.env))
  }

  /** The node's cable pulled (local-swarm.sh cut-link): everything keeps running, nothing reaches it. */
  async cutLink (name: string): Promise<{ event: string, node: string }> {
    return lastJson(await mustAsync('bash', [SWARM_SCRIPT, 'cut-link', name], this.env))
  }

  async restoreLink (name: string): Promise<{ event: string, node: string }> {
    return lastJson(await mustAsync('bash', [SWARM_SCRIPT, 'restore-link', name], this.env))
  }

  /** benchmarks/swarm-app.ts with `config`, in the client namespace (this checkout's dist/). */
  clientApp (config: object): AppProcess {
    return new AppProcess('ip', ['netns', 'exec', this.ready.client.netns, process.execPath, join(DIST, 'benchmarks', 'swarm-app.js'), JSON.stringify(config)])
  }

  /**
   * benchmarks/swarm-app.ts with `config`, in a container on node i attached to the stack's overlay
   * (the image's /app/dist: `up` builds the images from this checkout), `pki` mounted at /pki.
   */
  overlayApp (i: number, config: object, pki: string): AppProcess {
    const docker = this.ready.nodes[i - 1]!.docker
    const name = `swarm-app-${process.pid}-${++this.#apps}`
    return new AppProcess('docker', ['-H', docker, 'run', '--rm', '-i', '--name', name, '--network', 'metaos_overlay', '--user', '0:0',
      '-v', `${pki}:/pki:ro`, '--entrypoint', 'node', 'metaos/network:dev', '/app/dist/benchmarks/swarm-app.js', JSON.stringify(config)],
    // Killing the docker client leaves the container running: kill it by name.
    () => { sh('docker', ['-H', docker, 'kill', name], {}, 30_000) })
  }

  #apps = 0
}

export interface AppEvent { readonly event: string, readonly [k: string]: unknown }

/** A running benchmarks/swarm-app.ts: its JSON events as they come, a line to its stdin, its exit. */
export class AppProcess {
  readonly events: AppEvent[] = []
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  #stderr = ''
  readonly #taken = new Set<number>()
  readonly #waiters = new Set<() => void>()
  #exit: number | null | undefined

  readonly #stop: (() => void) | undefined

  constructor (cmd: string, args: readonly string[], stop?: () => void) {
    this.#stop = stop
    this.child = spawn(cmd, args, { env: childEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
    const wake = (): void => { for (const w of this.#waiters) w() }
    createInterface({ input: this.child.stdout! }).on('line', (l) => {
      try { this.events.push(JSON.parse(l) as AppEvent) } catch { this.#stderr += `${l}\n` }
      wake()
    })
    this.child.stderr!.on('data', (d: Buffer) => { this.#stderr += d.toString() })
    this.exited = new Promise((resolve) => { this.child.on('close', (code) => { this.#exit = code; wake(); resolve(code) }) })
  }

  get stderr (): string { return this.#stderr }

  /**
   * The first event not returned before that `match`es; rejects after `timeoutMs`, on an "error"
   * event, or when the app exits without one — saying what it printed.
   */
  async next<E extends AppEvent = AppEvent> (what: string, match: (e: AppEvent) => boolean, timeoutMs = 60_000): Promise<E> {
    return await new Promise<E>((resolve, reject) => {
      const check = (): void => {
        const i = this.events.findIndex((e, k) => !this.#taken.has(k) && match(e))
        const failure = this.events.find((e) => e.event === 'error')
        if (i >= 0) { this.#taken.add(i); done(); resolve(this.events[i] as E); return }
        if (failure !== undefined || this.#exit !== undefined) { done(); reject(new Error(`waiting for ${what}: the app ${failure === undefined ? `exited (${String(this.#exit)})` : `failed: ${JSON.stringify(failure)}`}; stderr: ${this.#stderr.trim().slice(-2000)}`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${this.events.map((e) => e.event).join(' ')}; stderr: ${this.#stderr.trim().slice(-2000)}`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.#waiters.delete(check) }
      this.#waiters.add(check)
      check()
    })
  }

  send (line: string): void { this.child.stdin!.write(`${line}\n`) }

  kill (): void {
    if (this.#exit !== undefined) return
    this.#stop?.()
    this.child.kill('SIGKILL')
  }
}
