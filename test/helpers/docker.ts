// Test helper: whether real containers can run here — a Docker engine answers and
// docker/build-images.sh built (or found up to date) the project's images. Returns why not, or
// undefined; the build's summary goes to `log`.
import { existsSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { packageFile } from '../../wsdl/package-root.js'

export function dockerUnavailable (log: (line: string) => void = () => {}): string | undefined {
  const info = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], { encoding: 'utf8', timeout: 30_000 })
  if (info.status !== 0) return `no Docker engine: \`docker info\` fails (${(info.error?.message ?? info.stderr).trim().split('\n').pop() ?? ''})`
  const script = packageFile('docker', 'build-images.sh')
  if (!existsSync(script)) return `${script} is missing: the images cannot be built`
  const build = spawnSync('bash', [script], { cwd: packageFile(), encoding: 'utf8', timeout: 900_000 })
  if (build.status !== 0) return `bash docker/build-images.sh failed: ${(build.stderr || String(build.error)).trim().split('\n').slice(-3).join(' | ')}`
  log(build.stdout.trim().replace(/\n/g, '; '))
  return undefined
}
