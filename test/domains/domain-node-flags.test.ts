// A domain process runs with the Node flags of service-domain/node-flags.ts (young semi-spaces
// capped, so large Writes cause no full GCs): a domain the ProcessDriver starts has them on its
// command line (/proc/<pid>/cmdline, as the kernel shows it); METAOS_DOMAIN_NODE_OPTIONS replaces them (empty: none); the images set them in
// NODE_OPTIONS, and nothing under docker/ (k8s manifests, the swarm stack) sets NODE_OPTIONS otherwise.
import t from 'tap'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ProcessDriver } from '../../domains/process-driver.js'
import type { DomainInstance } from '../../domains/driver.js'
import { DOMAIN_NODE_FLAGS, domainNodeFlags } from '../../service-domain/node-flags.js'
import { packageFile } from '../../wsdl/package-root.js'
import { tempDir } from '../helpers/temp-dir.js'

const cmdline = (pid: number): string[] => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((w) => w !== '')

t.test('the flags: the constant, and the override', async (t) => {
  t.same(DOMAIN_NODE_FLAGS, ['--max-semi-space-size=4'], 'young semi-spaces capped at 4 MB')
  t.same(domainNodeFlags({}), DOMAIN_NODE_FLAGS, 'the constant without the variable')
  t.same(domainNodeFlags({ METAOS_DOMAIN_NODE_OPTIONS: '  --max-semi-space-size=2   --stack-size=900 ' }), ['--max-semi-space-size=2', '--stack-size=900'], 'the variable, split on spaces')
  t.same(domainNodeFlags({ METAOS_DOMAIN_NODE_OPTIONS: '' }), [], 'empty: no flags')
})

t.test('a domain the ProcessDriver starts runs with the flags, or the override', async (t) => {
  const dir = tempDir(t, 'metaos-node-flags-')
  const driver = new ProcessDriver()
  const started: DomainInstance[] = []
  t.teardown(async () => { await Promise.all(started.map(async (d) => await d.stop(3000))) })
  const env = { METAOS_LOG_LEVEL: 'silent' }
  const plain = await driver.start({ name: 'flags', root: dir, listen: ['http://127.0.0.1:0'], env })
  started.push(plain)
  const words = cmdline(plain.pid)
  const script = words.findIndex((w) => w.endsWith(join('cli', 'metaos.js')))
  t.ok(script > 0, `the domain runs the CLI: ${words.join(' ')}`)
  t.same(words.slice(1, script), DOMAIN_NODE_FLAGS, 'node is given DOMAIN_NODE_FLAGS, before the script')
  t.same(words.slice(script + 1, script + 2), ['storage'], 'the command follows the script')

  const overridden = await driver.start({ name: 'flags2', root: dir, listen: ['http://127.0.0.1:0'], env: { ...env, METAOS_DOMAIN_NODE_OPTIONS: '--max-semi-space-size=2' } })
  started.push(overridden)
  const words2 = cmdline(overridden.pid)
  t.same(words2.slice(1, words2.findIndex((w) => w.endsWith(join('cli', 'metaos.js')))), ['--max-semi-space-size=2'], 'METAOS_DOMAIN_NODE_OPTIONS of the spec replaces them')

  const bare = await driver.start({ name: 'flags3', root: dir, listen: ['http://127.0.0.1:0'], env: { ...env, METAOS_DOMAIN_NODE_OPTIONS: '' } })
  started.push(bare)
  t.ok(cmdline(bare.pid)[1]?.endsWith(join('cli', 'metaos.js')), 'empty: node runs the script with no flags')
})

t.test('the images set the flags in NODE_OPTIONS, and nothing under docker/ replaces them', async (t) => {
  const expected = `ENV NODE_OPTIONS="${DOMAIN_NODE_FLAGS.join(' ')}"`
  for (const image of ['storage', 'network']) {
    const dockerfile = readFileSync(packageFile('docker', `${image}.Dockerfile`), 'utf8')
    t.ok(dockerfile.split('\n').includes(expected), `docker/${image}.Dockerfile: ${expected}`)
    t.match(dockerfile, /^ENTRYPOINT \["node", "\/app\/dist\/cli\/metaos\.js"/m, `docker/${image}.Dockerfile: node runs the CLI, NODE_OPTIONS applies`)
  }
  const manifests = [...readdirSync(packageFile('docker', 'k8s')).filter((f) => f.endsWith('.yaml')).map((f) => join('k8s', f)), join('swarm', 'stack.yaml'), 'compose.yaml']
  for (const file of manifests) t.notMatch(readFileSync(packageFile('docker', file), 'utf8'), /NODE_OPTIONS/, `docker/${file} keeps the image's NODE_OPTIONS`)
})
