// `metaos storage` and `metaos network` with framed listeners (DESIGN.md §8): `--listen
// net.uds:/path.sock` and `--listen net.tcp://HOST:PORT` (port 0 = a free port), listed in the
// ready line as `net.uds:/path.sock` and `net.tcp://HOST:PORT/storage` (`/network`); proxies and
// a FileStream's `destination:` take the same strings; net.tcp beyond loopback is refused without
// --allow-insecure; SIGTERM drains and removes the socket file.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnDomain } from '../../domains/domain-process.js'
import { FileStream } from '../../frontend/api/file-stream.js'
import { closeSharedProxies, createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { createNetworkProxy } from '../../frontend/handlers/network-handler.js'
import { tempDir } from '../helpers/temp-dir.js'

const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent' }

t.test('metaos storage --listen net.uds:… --listen net.tcp://127.0.0.1:0', async (t) => {
  const dir = tempDir(t, 'metaos-cli-framed-')
  const root = join(dir, 'root')
  mkdirSync(root)
  const sock = join(dir, 's.sock')
  const d = await spawnDomain(['storage', '--root', root, '--listen', `net.uds:${sock}`, '--listen', 'net.tcp://127.0.0.1:0'], { env: ENV })
  t.teardown(async () => { await d.stop() })
  const [uds, tcp] = d.ready.endpoints
  t.equal(uds, `net.uds:${sock}`, 'the ready line names the socket')
  t.match(tcp, /^net\.tcp:\/\/127\.0\.0\.1:[1-9]\d*\/storage$/, 'and the port chosen, with the service path')

  const data = randomBytes(70_000)
  const fs = await FileStream.open('via-destination.bin', { destination: uds!, mode: 'Create', access: 'Write' })
  await fs.write(data)
  await fs.close()
  t.teardown(closeSharedProxies)
  t.equal(createHash('sha256').update(readFileSync(join(root, 'via-destination.bin'))).digest('hex'), createHash('sha256').update(data).digest('hex'), 'a FileStream with destination: net.uds:… wrote the bytes')

  const p = createStorageProxy(tcp!)
  t.teardown(async () => { await p.close() })
  t.same((await p.invoke('GetDomainInfo', {})).output.transports.transport, d.ready.endpoints, 'over net.tcp too')

  t.equal(await d.stop(), 0, 'SIGTERM: exit 0')
  t.notOk(existsSync(sock), 'the socket file is removed')
})

t.test('metaos network --listen net.uds:…', async (t) => {
  const dir = tempDir(t, 'metaos-cli-framed-net-')
  const d = await spawnDomain(['network', '--listen', `net.uds:${join(dir, 'n.sock')}`, '--listen', 'net.tcp://127.0.0.1:0'], { env: ENV })
  t.teardown(async () => { await d.stop() })
  t.match(d.ready.endpoints[1], /^net\.tcp:\/\/127\.0\.0\.1:\d+\/network$/)
  const p = createNetworkProxy(d.ready.endpoints[0]!)
  t.teardown(async () => { await p.close() })
  const r = await p.invoke('ResolveHost', { name: 'localhost' })
  t.ok(r.output.address.length > 0, 'a network call over net.uds')
})

t.test('net.tcp beyond loopback needs --allow-insecure', async (t) => {
  const dir = tempDir(t, 'metaos-cli-framed-exposed-')
  mkdirSync(join(dir, 'root'))
  const e = await spawnDomain(['storage', '--root', join(dir, 'root'), '--listen', 'net.tcp://0.0.0.0:0'], { env: ENV }).catch((err: unknown) => err as { code?: string, message: string })
  t.match(e, { code: 'INVALID_ARGUMENT', message: /plain net\.tcp beyond this machine/ }, 'refused with a clear error')
})
