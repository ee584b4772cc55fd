// A TCP relay on 127.0.0.1 that holds every chunk for `delayMs` in each direction: a real slow
// channel in front of a real domain (the kernel here has no netem), for placement tests.
import { createServer, connect, type Socket } from 'node:net'
import type { Test } from 'tap'

export async function delayRelay (t: Test, target: { host: string, port: number }, delayMs: number): Promise<{ url: (path: string) => string, setDelay: (ms: number) => void }> {
  let delay = delayMs
  const sockets = new Set<Socket>()
  const relay = (from: Socket, to: Socket): void => {
    from.on('data', (c: Buffer) => { setTimeout(() => { if (!to.destroyed) to.write(c) }, delay) })
    from.on('end', () => { setTimeout(() => { to.end() }, delay) })
    from.on('error', () => { to.destroy() })
  }
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    sockets.add(client).add(upstream)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    relay(client, upstream)
    relay(upstream, client)
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', () => { resolve() }) })
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => { server.close(() => { resolve() }) }) })
  const port = (server.address() as { port: number }).port
  return { url: (path) => `http://127.0.0.1:${port}${path}`, setDelay: (ms) => { delay = ms } }
}
