// The tests' Docker engine (docker/netns-dockerd.sh, test/helpers/docker.ts; docs/containers.md,
// "The tests' Docker engine"): a dockerd in a network namespace of its own, whose containers'
// bridges and veths are made there and never in the machine's root namespace (issue 19). Checked:
// the helper points DOCKER_HOST at that engine whatever it was (the machine's own dockerd is never
// used); a container on a bridge network with a published port has its bridge and veth inside the
// namespace and none in the root one; from the root namespace it is reached over its bind-mounted
// bus socket, and its published port only from inside the namespace; under CI no container bridge
// or veth is in the root namespace at all; the after-all check lists an engine started during the
// run, stops it when strict, and checks the containers, networks and volumes in it.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createStorageProxy } from '../../index.js'
import { packageFile } from '../../wsdl/package-root.js'
import { dockerMissing, testDockerdStatus, DOCKERD_SCRIPT } from '../helpers/docker.js'
import { tempDir } from '../helpers/temp-dir.js'
import { underCi } from '../helpers/require-part.js'

const run = randomBytes(3).toString('hex')
const CONTAINER_LINK = /^(docker0|docker_gwbridge|br-[0-9a-f]{12}|veth[0-9a-f]{7})$/

// The machine's own socket, or nowhere: the helper must set DOCKER_HOST to the tests' engine anyway.
process.env.DOCKER_HOST = existsSync('/var/run/docker.sock') ? 'unix:///var/run/docker.sock' : 'unix:///nonexistent/docker.sock'
const skip = dockerMissing({ log: (l) => { t.comment(l) } })

function sh (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env } })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} → ${String(r.status)}: ${(r.stderr || String(r.error)).trim()}`)
  return r.stdout.trim()
}
/** Link names of a network namespace (`ip -o link`; the root one without `netns`). */
const links = (netns?: string): string[] => sh('ip', [...(netns === undefined ? [] : ['-n', netns]), '-o', 'link', 'show'])
  .split('\n').map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1] ?? '').filter((n) => n !== '')
const netnsInode = (path: string): string => /\[(\d+)\]/.exec(readlinkSync(path))?.[1] ?? ''

t.test('the helper uses the tests\' engine: its own namespace, data root and socket, never the machine\'s dockerd', { skip }, async (t) => {
  const engine = testDockerdStatus()!
  t.equal(process.env.DOCKER_HOST, engine.docker, 'DOCKER_HOST is the engine\'s socket, whatever it was')
  t.not(engine.docker, 'unix:///var/run/docker.sock')
  t.equal(sh('docker', ['info', '--format', '{{.DockerRootDir}}']), engine.dataRoot, 'docker info: the engine\'s own data root')
  t.not(netnsInode(`/proc/${engine.pid}/ns/net`), netnsInode('/proc/self/ns/net'), 'its dockerd is not in the root network namespace')
  t.equal(netnsInode(`/proc/${engine.pid}/ns/net`), String(statSync(`/run/netns/${engine.netns}`).ino), `but in ${engine.netns}`)
})

t.test('a container on a bridge network: its bridge and veth in the engine\'s namespace, none in the root one', { skip }, async (t) => {
  const engine = testDockerdStatus()!
  const before = new Set(links())
  const bus = join(tempDir(t, 'metaos-netns-bus-'), 'run')
  mkdirSync(bus)
  chmodSync(bus, 0o777)
  const net = `metaos-netns-${run}`
  const name = `metaos-netns-st-${run}`
  t.teardown(() => { spawnSync('docker', ['rm', '-f', name]); spawnSync('docker', ['network', 'rm', net]) })
  const id = sh('docker', ['network', 'create', '--driver', 'bridge', net]).slice(0, 12)
  sh('docker', ['run', '-d', '--name', name, '--network', net, '-p', '127.0.0.1::8080', '-v', `${bus}:/run/metaos`, 'metaos/storage:dev'])
  for (let i = 0; i < 300 && !sh('docker', ['logs', name]).includes('"event":"ready"'); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  const port = /127\.0\.0\.1:(\d+)/.exec(sh('docker', ['port', name, '8080/tcp']))?.[1] ?? ''

  const inside = links(engine.netns)
  t.ok(inside.includes(`br-${id}`), `br-${id} is in ${engine.netns}`)
  const enslaved = sh('ip', ['-n', engine.netns, '-o', 'link', 'show', 'master', `br-${id}`]).split('\n').filter((l) => l !== '')
  t.ok(enslaved.some((l) => /^\d+:\s+veth[0-9a-f]+@/.test(l)), 'with the container\'s veth on it, there too')
  const added = links().filter((n) => !before.has(n))
  t.same(added.filter((n) => CONTAINER_LINK.test(n)), [], 'no bridge or veth appeared in the root namespace')
  t.notOk(links().includes(`br-${id}`), `br-${id} is not in the root namespace`)

  const p = createStorageProxy(`net.uds:${join(bus, 'storage.sock')}`)
  t.teardown(async () => { await p.close() })
  t.equal((await p.invoke('GetDomainInfo', {})).output.hosting, 'container', 'from the root namespace: over the bind-mounted bus socket')
  const fetch = `fetch('http://127.0.0.1:${port}/storage?wsdl').then(async (r) => console.log(r.status, (await r.text()).includes('definitions')), (e) => console.log('refused', e.cause?.code))`
  t.equal(sh('nsenter', [`--net=/run/netns/${engine.netns}`, '--', process.execPath, '-e', fetch]), '200 true', `inside ${engine.netns}: the WSDL on the published port 127.0.0.1:${port}`)
  t.match(sh(process.execPath, ['-e', fetch]), /^refused/, 'from the root namespace: that port is not there')
})

t.test('.ci/run starts no dockerd of the root namespace: the tests\' engine is stopped on the way out', async (t) => {
  const ci = readFileSync(packageFile('.ci', 'run'), 'utf8').split('\n').filter((l) => !/^\s*#/.test(l)).join('\n')
  t.notMatch(ci, /(^|[;&|]\s*|nohup\s+)dockerd\b/m, 'no `dockerd` command')
  t.match(ci, /bash docker\/netns-dockerd\.sh down --purge/, 'an earlier run\'s engine and images removed first')
  t.match(ci, /trap '[^']*bash docker\/netns-dockerd\.sh down/, 'and the engine stopped on exit')
})

t.test('under CI no container bridge or veth is in the root namespace', async (t) => {
  const found = links().filter((n) => CONTAINER_LINK.test(n))
  if (underCi()) t.same(found, [], 'ip -o link: no docker0, docker_gwbridge, br-… or veth… (no test uses a dockerd of the root namespace)')
  else t.comment(`not CI: container links in the root namespace now: ${found.join(' ') || 'none'} (a dockerd of the machine's own makes them)`)
  t.pass('listed')
})

t.test('the after-all check lists an engine started during the run, checks what is in it, stops it when strict', { skip }, async (t) => {
  const token = `metaos-engine-${run}`
  const dir = tempDir(t, 'metaos-afterall-')
  const env = { METAOS_DOCKERD_NAME: token, METAOS_DOCKERD_RUN: join(dir, 'run'), METAOS_DOCKERD_DATA: join(dir, 'data') }
  t.teardown(() => { spawnSync('bash', [DOCKERD_SCRIPT, 'down', '--purge'], { env: { ...process.env, ...env } }) })
  const since = Date.now() - 1000
  const up = JSON.parse(sh('bash', [DOCKERD_SCRIPT, 'up'], env).split('\n').pop()!) as { docker: string }
  sh('docker', ['-H', up.docker, 'network', 'create', token])
  const after = (strict: '0' | '1'): { status: number | null, out: string } => {
    const r = spawnSync(process.execPath, [...process.execArgv, packageFile('test', 'after-all.ts')], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, ...env, METAOS_AFTER_SINCE: String(since), METAOS_AFTER_MATCH: token, METAOS_AFTER_STRICT: strict } })
    return { status: r.status, out: `${r.stdout}${r.stderr}` }
  }
  const listed = after('0')
  t.equal(listed.status, 0, 'not strict: it passes', { output: listed.out })
  t.match(listed.out, new RegExp(`network ${token} +\\(docker -H ${up.docker} network rm ${token}\\)`), 'the network in the engine, with the command that removes it')
  t.match(listed.out, new RegExp(`note: the tests' Docker engine \\(dockerd \\d+ in network namespace ${token}, .*still runs.*netns-dockerd\\.sh down\\)`), 'and the engine, as a note')
  t.notMatch(listed.out, /^ {2}(process|netns) /m, 'its processes and namespace are the engine, not listed one by one')

  const strict = after('1')
  t.equal(strict.status, 1, 'strict: the network fails the run', { output: strict.out })
  t.match(strict.out, /after-all: removed them/)
  t.match(strict.out, new RegExp(`after-all: stopped the tests' Docker engine \\(dockerd \\d+ in network namespace ${token}`), 'and the engine is stopped')
  t.notOk(existsSync(`/run/netns/${token}`), 'its namespace is gone')
  t.ok(existsSync(join(dir, 'data', 'docker')), 'its data root (the image cache) is kept')
})
