// A NetSocket with `destination: 'discover'`: a network domain announced on WS-Discovery (in a
// network namespace of this file's own) is found, measured and placed on with no configuration;
// the local kernel is a candidate too; a domain's Bye takes it out of the table. A domain that
// also listens on net.uds is reached there, and its sockets are pushed their data (the domain's
// own gauge counts the subscription).
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { spawnDomain } from '../../domains/domain-process.js'
import { NetSocket } from '../../frontend/api/net-socket.js'
import { LOCAL_NETWORK_EPR, closeSharedNetworkFrontend, sharedNetworkFrontend } from '../../frontend/assembly/network-frontend.js'
import { closeSharedNetworkProxies } from '../../frontend/handlers/network-handler.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('discover → PMT → network dispatcher → NetSocket', async (t) => {
  const server = createServer((s) => { s.pipe(s) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  const d = await spawnDomain(['network', '--name', 'announced', '--listen', 'http://127.0.0.1:0', '--announce', '--zone', 'z9'], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  t.teardown(async () => { await d.stop(); await closeSharedNetworkFrontend(); await closeSharedNetworkProxies(); server.close() })
  const front = await sharedNetworkFrontend()
  for (let i = 0; i < 100 && !front.handlers.has(d.ready.epr); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.ok(front.handlers.has(d.ready.epr), 'the announced network domain is tracked')
  t.ok(front.handlers.has(LOCAL_NETWORK_EPR), 'beside the local kernel')
  t.equal(front.pmt.row(d.ready.epr)!.identity.zone, 'z9', 'with the identity its scopes announce')

  const s = NetSocket.connect({ host: '127.0.0.1', port, destination: 'discover' })
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  const back = new Promise<string>((resolve) => { let got = ''; s.on('data', (c: Buffer) => { got += c.toString(); if (got.length >= 5) resolve(got) }) })
  s.write('hello')
  t.equal(await back, 'hello', 'echoed through the domain the dispatcher chose')
  t.equal(front.dispatcher.affinity.size, 1, 'one socket placed')
  s.destroy()

  // Only the domain: the local kernel excluded by setting it isolated.
  front.pmt.setState(LOCAL_NETWORK_EPR, 'isolated')
  t.equal(front.dispatcher.place().chosen, d.ready.epr, 'with the local kernel out, the domain is chosen')
  await d.stop()
  for (let i = 0; i < 100 && front.handlers.has(d.ready.epr); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(front.handlers.has(d.ready.epr), 'after its Bye the domain leaves the table')
})

t.test('a discovered domain on net.uds: reached on its bus, its sockets read by pushes', async (t) => {
  const server = createServer({ allowHalfOpen: true }, (s) => { s.pipe(s); s.on('error', () => {}) })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as { port: number }).port
  const dir = tempDir(t, 'metaos-netdisc-')
  const d = await spawnDomain(['network', '--name', 'framed', '--listen', 'http://127.0.0.1:0', '--listen', `net.uds:${join(dir, 'n.sock')}`, '--metrics-listen', 'http://127.0.0.1:0', '--announce'], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  t.teardown(async () => { await d.stop(); await closeSharedNetworkFrontend(); await closeSharedNetworkProxies(); server.close() })
  const subscriptions = async (): Promise<number> => {
    const text = await (await fetch((d.ready as unknown as { metrics: string }).metrics)).text()
    return Number(/^metaos_network_push_subscriptions(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1] ?? NaN)
  }
  const front = await sharedNetworkFrontend()
  for (let i = 0; i < 100 && !front.handlers.has(d.ready.epr); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(front.handlers.get(d.ready.epr)?.destination, d.ready.endpoints[1], 'the domain is called on its net.uds bus')
  t.ok(front.handlers.get(d.ready.epr)?.pushes !== undefined, 'whose session carries pushes')
  front.pmt.setState(LOCAL_NETWORK_EPR, 'isolated')

  const s = NetSocket.connect({ host: '127.0.0.1', port, destination: 'discover' })
  await new Promise((resolve, reject) => { s.once('connect', resolve); s.once('error', reject) })
  t.ok(s.handler.pushes?.carries?.([...front.dispatcher.affinity.keys()][0]!), 'the socket, placed on the domain, is carried by the dispatcher\'s push channel')
  const data = randomBytes(512 * 1024)
  const parts: Buffer[] = []
  s.on('data', (c: Buffer) => { parts.push(c) })
  s.write(data)
  while (parts.reduce((n, p) => n + p.length, 0) < data.length) await once(s, 'data')
  t.equal(createHash('sha256').update(Buffer.concat(parts)).digest('hex'), createHash('sha256').update(data).digest('hex'), 'echoed, SHA-256 equal')
  t.equal(await subscriptions(), 1, 'the domain pushes to the socket (one subscription)')
  s.destroy()
  await once(s, 'close')
})
