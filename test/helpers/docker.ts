// Test helper: whether real containers can run here — the docker client is installed, a Docker
// engine answers, docker-compose when asked, and docker/build-images.sh built (or found up to date)
// the project's images. Returns false when they can, else the skip reason from partMissing (under
// CI a failure naming what is missing and how .ci/run installs it); the build's summary goes to `log`.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { packageFile } from '../../wsdl/package-root.js'
import { partMissing } from './require-part.js'

const lastLine = (s: string): string => s.trim().split('\n').pop() ?? ''

export interface DockerNeeds {
  /** Build the images with docker/build-images.sh (default true). */
  readonly build?: boolean
  /** docker-compose (the v1 command Debian 12 ships) is needed too. */
  readonly compose?: boolean
  readonly log?: (line: string) => void
}

export function dockerMissing (o: DockerNeeds = {}): string | false {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 30_000 })
  if (info.error !== undefined && (info.error as NodeJS.ErrnoException).code === 'ENOENT') {
    return partMissing('Docker', 'the docker client is not installed', 'apt-get install docker.io')
  }
  if (info.status !== 0) {
    return partMissing('the Docker engine', `\`docker info\` fails (${lastLine(info.error?.message ?? info.stderr)})`, 'apt-get install docker.io, then `dockerd` started in the background')
  }
  const lines: string[] = []
  if (o.compose === true) {
    const compose = spawnSync('docker-compose', ['version', '--short'], { encoding: 'utf8', timeout: 30_000 })
    if (compose.status !== 0) return partMissing('docker-compose', `\`docker-compose version\` fails (${lastLine(compose.error?.message ?? compose.stderr)})`, 'apt-get install docker-compose')
    lines.push(`docker-compose ${compose.stdout.trim()}`)
  }
  if (o.build !== false) {
    const script = packageFile('docker', 'build-images.sh')
    if (!existsSync(script)) return partMissing('docker/build-images.sh', `${script} does not exist`, 'a complete checkout of the repository')
    const build = spawnSync('bash', [script], { cwd: packageFile(), encoding: 'utf8', timeout: 900_000 })
    if (build.status !== 0) {
      const why = `bash docker/build-images.sh failed: ${(build.stderr || String(build.error)).trim().split('\n').slice(-3).join(' | ')}`
      return partMissing('the metaos images', why, 'bash docker/build-images.sh (offline, from this machine\'s node and the npm cache or node_modules)')
    }
    lines.push(build.stdout.trim().replace(/\n/g, '; '))
  }
  if (lines.length > 0) o.log?.(lines.join('; '))
  return false
}
