// Test helper: the tests' Docker engine — a dockerd in a network namespace of its own
// (docker/netns-dockerd.sh; docs/containers.md, "The tests' Docker engine"), shared by every test
// file: the first starts it (under the script's lock), the others find it running, and the images
// built in its data root stay there. The machine's own dockerd (/var/run/docker.sock), when one
// runs, is never used: DOCKER_HOST is set to the engine's socket, whatever it was.
//
// `dockerMissing` makes sure the engine answers (docker-compose too when asked) and that
// docker/build-images.sh built (or found up to date) the project's images in it, and points this
// process's DOCKER_HOST at it. Returns false when containers can run, else the skip reason from
// partMissing (under CI a failure naming what is missing and how .ci/run installs it).
// `dockerInNamespace` does the same, then re-executes the calling test file inside the engine's
// network namespace (nsenter), where its bridges, the containers' addresses and the ports published
// on 127.0.0.1 are: call it at the top of a file that reaches containers other than by a
// bind-mounted Unix socket. Nothing of the containers' networks appears in the root namespace.
import { existsSync } from 'node:fs'
import { spawn, spawnSync } from 'node:child_process'
import { packageFile } from '../../wsdl/package-root.js'
import { partMissing } from './require-part.js'

const lastLine = (s: string): string => s.trim().split('\n').pop() ?? ''
const INSTALL = 'apt-get install docker.io iproute2 util-linux, and run the suite as root (as .ci/run does)'
/** Set in a test file re-executed inside the engine's namespace; the build's summary rides along. */
const INSIDE = 'METAOS_IN_DOCKER_NETNS'
const SUMMARY = 'METAOS_DOCKER_SUMMARY'

export const DOCKERD_SCRIPT = packageFile('docker', 'netns-dockerd.sh')

/** What `docker/netns-dockerd.sh up` prints. */
export interface TestDockerd {
  readonly docker: string
  readonly netns: string
  readonly pid: number
  readonly dataRoot: string
  readonly started: boolean
  readonly seconds: number
}

/** Starts the tests' engine, or finds it running: its ready line, or why it cannot run here. */
export function testDockerd (): TestDockerd | string {
  if (process.getuid?.() !== 0) return 'the tests\' Docker engine runs in a network namespace of its own: that needs root'
  const r = spawnSync('bash', [DOCKERD_SCRIPT, 'up'], { encoding: 'utf8', timeout: 120_000 })
  if (r.status !== 0) return `bash docker/netns-dockerd.sh up fails (${lastLine(r.error?.message ?? r.stderr)})`
  return JSON.parse(lastLine(r.stdout)) as TestDockerd
}

/** The engine's ready line when it runs, without starting it. */
export function testDockerdStatus (): TestDockerd | undefined {
  const r = spawnSync('bash', [DOCKERD_SCRIPT, 'status'], { encoding: 'utf8', timeout: 30_000 })
  return r.status === 0 ? JSON.parse(lastLine(r.stdout)) as TestDockerd : undefined
}

/** Points this process (and what it starts: docker, docker-compose, ContainerDriver) at `docker`. */
function useDocker (docker: string): void {
  process.env.DOCKER_HOST = docker
  for (const k of ['DOCKER_CONTEXT', 'DOCKER_TLS_VERIFY', 'DOCKER_CERT_PATH']) Reflect.deleteProperty(process.env, k)
}

export interface DockerNeeds {
  /** Build the images with docker/build-images.sh (default true). */
  readonly build?: boolean
  /** docker-compose (the v1 command Debian 12 ships) is needed too. */
  readonly compose?: boolean
  readonly log?: (line: string) => void
}

/** The tests' engine is up, DOCKER_HOST names it, and `o` holds: false; else the skip reason. */
export function dockerMissing (o: DockerNeeds = {}): string | false {
  const p = prepare(o)
  if (typeof p === 'string') return p
  o.log?.(p.summary)
  return false
}

/** The engine, `o`'s parts and images; the ready line, or partMissing's reason. */
function prepare (o: DockerNeeds): { engine: TestDockerd, summary: string } | string {
  const client = spawnSync('docker', ['--version'], { encoding: 'utf8', timeout: 30_000 })
  if (client.error !== undefined && (client.error as NodeJS.ErrnoException).code === 'ENOENT') {
    return partMissing('Docker', 'the docker client is not installed', 'apt-get install docker.io')
  }
  const engine = testDockerd()
  if (typeof engine === 'string') return partMissing('the tests\' Docker engine', engine, INSTALL)
  useDocker(engine.docker)
  const root = spawnSync('docker', ['info', '--format', '{{.DockerRootDir}}'], { encoding: 'utf8', timeout: 30_000 })
  if (root.status !== 0 || root.stdout.trim() !== engine.dataRoot) {
    return partMissing('the tests\' Docker engine', `\`docker info\` on ${engine.docker} says data root ${JSON.stringify(root.stdout.trim())}, not ${engine.dataRoot} (${lastLine(root.stderr)})`, INSTALL)
  }
  const lines = [`docker engine ${engine.started ? `started in ${engine.seconds} s` : 'reused'} in network namespace ${engine.netns} (${engine.docker})`]
  if (o.compose === true) {
    const compose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8', timeout: 30_000 })
    if (compose.status !== 0) return partMissing('docker-compose', `\`docker-compose version\` fails (${lastLine(compose.error?.message ?? compose.stderr)})`, 'apt-get install docker-compose')
    lines.push(`docker-compose ${compose.stdout.trim()}`)
  }
  if (o.build !== false) {
    const script = packageFile('docker', 'build-images.sh')
    if (!existsSync(script)) return partMissing('docker/build-images.sh', `${script} does not exist`, 'a complete checkout of the repository')
    const t0 = performance.now()
    const build = spawnSync('bash', [script], { cwd: packageFile(), encoding: 'utf8', timeout: 900_000 })
    if (build.status !== 0) {
      const why = `bash docker/build-images.sh failed: ${(build.stderr || String(build.error)).trim().split('\n').slice(-3).join(' | ')}`
      return partMissing('the metaos images', why, 'bash docker/build-images.sh (offline, from this machine\'s node and the npm cache or node_modules)')
    }
    lines.push(`build-images.sh ${((performance.now() - t0) / 1000).toFixed(1)} s: ${build.stdout.trim().replace(/\n/g, '; ')}`)
  }
  return { engine, summary: lines.join('; ') }
}

/**
 * `dockerMissing`, then the calling file re-executed inside the engine's network namespace (same
 * Node flags, so tap's loader comes along; its TAP output and exit code relayed): in the parent this
 * never returns unless a part is missing (the reason is returned). Inside, it returns false at once.
 * The images are built before entering: the namespace reaches no registry.
 */
export async function dockerInNamespace (o: DockerNeeds = {}): Promise<string | false> {
  if (process.env[INSIDE] === '1') {
    o.log?.(process.env[SUMMARY] ?? '')
    return false
  }
  const p = prepare(o)
  if (typeof p === 'string') return p
  if (spawnSync('nsenter', ['--version']).status !== 0) return partMissing('nsenter', 'nsenter (util-linux) is not on PATH', 'apt-get install util-linux')
  const child = spawn('nsenter', [`--net=/run/netns/${p.engine.netns}`, '--', process.execPath, ...process.execArgv, process.argv[1]!, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, [INSIDE]: '1', [SUMMARY]: p.summary },
  })
  // tap ends a file that runs too long with SIGTERM: the file inside gets it too.
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => { child.kill(sig) })
  const code = await new Promise<number>((resolve) => { child.on('exit', (c, sig) => { resolve(c ?? (sig === null ? 1 : 128)) }) })
  process.exit(code)
}
