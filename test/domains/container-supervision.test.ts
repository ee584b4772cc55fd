// The supervisor over container domains: a LocalCluster whose domain manager runs storage domains
// as containers (ContainerDriver). The container serving a stream is killed (`docker kill`); the
// stream fails over with no error; the supervisor isolates the domain (its container exited) and,
// by the 'clone' policy, a clone of a healthy container domain stands in — a new EPR on the same
// volume, hosting=container. Skips, saying why, without a Docker engine or the images (under CI: fails).
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { dockerInNamespace } from '../helpers/docker.js'
import { FileStream, createStorageProxy } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { ContainerDriver } from '../../domains/container-driver.js'

// Inside the tests' Docker engine's network namespace: the domains' ports are published there.
const skip = await dockerInNamespace({ log: (l) => { t.comment(l) } })
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('clone policy with container domains', { skip }, async (t) => {
  const c = await LocalCluster.start({ driver: new ContainerDriver(), domains: ['http', 'http'], names: ['cs1', 'cs2'], isolation: 'clone', probeIntervalMs: 200, supervisor: { recoverMs: 500 } })
  t.teardown(async () => { await c.close() })
  const data = randomBytes(16 * 1024 * 1024)
  const f = await FileStream.open('c.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  let killed = ''
  for (let off = 0; off < data.length; off += 64 * 1024) {
    if (off === 4 * 1024 * 1024) {
      killed = c.dispatcher.affinity.entries()[0]!.epr
      await c.manager.kill(c.names[c.index(killed)]!)
    }
    await f.write(data, off, 64 * 1024)
  }
  await f.close()
  t.equal(sha(readFileSync(join(c.root, 'c.bin'))), sha(data), 'no error, and the file on the volume is the one written')
  for (let i = 0; i < 100 && c.names.length < 3; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(c.names.length, 3, 'a clone was started')
  const clone = await c.get(2)
  t.not(clone.epr, killed, 'with an EPR of its own')
  for (let i = 0; i < 100 && c.pmt.row(clone.epr)?.state !== 'healthy'; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(c.pmt.row(clone.epr)?.state, 'healthy', 'and is placed on')
  const p = createStorageProxy(clone.endpoints[0]!)
  t.teardown(async () => { await p.close() })
  const info = (await p.invoke('GetDomainInfo', {})).output
  t.equal(info.hosting, 'container', 'hosting=container')
  t.equal(info.volume, c.volume, 'on the same volume')
  t.ok(c.supervisor.decisions.some((d) => d.epr === killed && d.to === 'isolated'), 'the killed domain was isolated')
})
