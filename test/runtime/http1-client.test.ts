// The lean HTTP/1.1 client of http: and unix: endpoints (soap-runtime/http1-connection.ts) against
// real servers: node:http's (keep-alive, the pool's bound, a Unix socket) and node:net ones that
// answer with exact bytes (chunked coding with trailers, 100 Continue, a body ended by the
// connection's end, Connection: close, a response over the limit, a server that stops mid-answer or
// never answers), and a request id that would inject a header.
import t from 'tap'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { createHttpTransport } from '../../soap-runtime/http-transport.js'
import type { MetaosError } from '../../soap-runtime/errors.js'
import { tempDir } from '../helpers/temp-dir.js'

const body = Buffer.from('<x>hello</x>')
const req = (headers: Record<string, string> = {}, timeoutMs = 5000): { chunks: Buffer[], length: number, headers: Record<string, string>, timeoutMs: number } =>
  ({ chunks: [body], length: body.length, headers: { 'Content-Type': 'text/xml', 'X-Request-Id': 'r1', ...headers }, timeoutMs })

async function listen (s: Server | HttpServer, where: string | number = 0): Promise<string> {
  await new Promise<void>((resolve) => { typeof where === 'string' ? s.listen(where, resolve) : s.listen(where, '127.0.0.1', resolve) })
  return typeof where === 'string' ? `unix:${where}` : `http://127.0.0.1:${(s.address() as { port: number }).port}/svc`
}

/** A node:net server answering each request (read up to its body) with `answer(n)`, the n-th request on the connection. */
function rawServer (answer: (n: number, s: Socket) => void): Server {
  return createServer((s) => {
    let buf = ''
    let n = 0
    s.on('data', (c) => {
      buf += c.toString('latin1')
      for (;;) {
        const end = buf.indexOf('\r\n\r\n')
        if (end < 0) return
        const len = Number(/content-length: (\d+)/i.exec(buf.slice(0, end))?.[1] ?? '0')
        if (buf.length < end + 4 + len) return
        buf = buf.slice(end + 4 + len)
        answer(n++, s)
      }
    })
    s.on('error', () => {})
  })
}

t.test('node:http server: keep-alive, the pool bound, headers and body both ways', async (t) => {
  const conns = new Set<Socket>()
  let maxOpen = 0
  const seen: Array<Record<string, string | string[] | undefined>> = []
  const server = createHttpServer((q, r) => {
    seen.push(q.headers)
    const chunks: Buffer[] = []
    q.on('data', (c: Buffer) => chunks.push(c))
    q.on('end', () => { setTimeout(() => { r.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'X-Request-Id': String(q.headers['x-request-id']) }); r.end(Buffer.concat(chunks)) }, 5) })
  })
  server.on('connection', (s: Socket) => { conns.add(s); maxOpen = Math.max(maxOpen, conns.size); s.on('close', () => conns.delete(s)) })
  const url = await listen(server)
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const tr = createHttpTransport(url, '/svc', { maxSockets: 2 })
  t.teardown(async () => { await tr.close() })
  for (let i = 0; i < 3; i++) {
    const r = await tr.send(req({ 'X-Request-Id': `seq${i}` }))
    t.same([r.status, r.contentType, r.body.toString(), r.requestId], [200, 'text/xml; charset=utf-8', '<x>hello</x>', `seq${i}`])
  }
  t.equal(maxOpen, 1, 'sequential calls share one connection')
  const many = await Promise.all(Array.from({ length: 20 }, async (_, i) => await tr.send(req({ 'X-Request-Id': `c${i}` }))))
  t.same(many.map((r) => r.requestId), Array.from({ length: 20 }, (_, i) => `c${i}`), 'each answer to its own request')
  t.equal(maxOpen, 2, 'no more connections than maxSockets')
  t.match(seen[0], { host: /^127\.0\.0\.1:\d+$/, 'content-type': 'text/xml', 'content-length': String(body.length) })
  const big = Buffer.alloc(600 * 1024, 1)
  const r = await tr.send({ chunks: [big.subarray(0, 1000), big.subarray(1000)], length: big.length, headers: {}, timeoutMs: 5000 })
  t.ok(r.body.equals(big), 'a large body in parts, echoed whole')
})

t.test('a Unix socket', async (t) => {
  const dir = tempDir(t, 'metaos-http1-')
  const server = createHttpServer((q, r) => { q.resume(); q.on('end', () => { r.writeHead(200, { 'Content-Type': 'text/xml' }); r.end('<ok/>') }) })
  const url = await listen(server, join(dir, 's.sock'))
  t.teardown(() => { server.closeAllConnections(); server.close() })
  const tr = createHttpTransport(url, '/svc')
  t.teardown(async () => { await tr.close() })
  t.equal((await tr.send(req())).body.toString(), '<ok/>')
})

t.test('exact answers: chunked with trailers, 100 Continue, ended by close, Connection: close', async (t) => {
  let conns = 0
  const server = rawServer((n, s) => {
    if (n === 0) s.write('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n<a>x\r\n')
    if (n === 0) setTimeout(() => { s.write('5;ext=1\r\n</a>!\r\n0\r\nX-Trailer: y\r\n\r\n') }, 10)
    if (n === 1) s.write('HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/xml\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad')
  })
  server.on('connection', () => { conns++ })
  const url = await listen(server)
  t.teardown(() => { server.close() })
  const tr = createHttpTransport(url, '/svc')
  t.teardown(async () => { await tr.close() })
  const a = await tr.send(req())
  t.same([a.status, a.body.toString()], [200, '<a>x</a>!'], 'chunks joined, the interim answer and the trailer skipped')
  const b = await tr.send(req())
  t.same([b.status, b.body.toString()], [500, 'bad'], 'a fault status comes back as it is')
  const c = await tr.send(req())
  t.same([c.status, c.body.toString()], [200, '<a>x</a>!'], 'after Connection: close, a new connection')
  t.equal(conns, 2)

  const ended = rawServer((_n, s) => { s.end('HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n<until-close/>') })
  const url2 = await listen(ended)
  t.teardown(() => { ended.close() })
  const tr2 = createHttpTransport(url2, '/svc')
  t.teardown(async () => { await tr2.close() })
  t.equal((await tr2.send(req())).body.toString(), '<until-close/>', 'a body without length ends with the connection')
  t.equal((await tr2.send(req())).body.toString(), '<until-close/>', 'and the next call opens another')
})

t.test('failures: over the limit, cut short, no answer, not HTTP, header injection, refused', async (t) => {
  const server = rawServer((n, s) => {
    if (n === 0) s.write('HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n')
    else s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffff\r\n' + 'x'.repeat(2000))
  })
  const url = await listen(server)
  t.teardown(() => { server.close() })
  const small = createHttpTransport(url, '/svc', { maxResponseBytes: 1000 })
  t.teardown(async () => { await small.close() })
  await t.rejects(small.send(req()), { code: 'PROTOCOL_ERROR', message: /over 1000 bytes/ }, 'a declared length over the limit')
  await t.rejects(small.send(req()), { code: 'PROTOCOL_ERROR', message: /over 1000 bytes/ }, 'chunks over the limit')

  const cut = rawServer((_n, s) => { s.end('HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nshort') })
  const silent = rawServer(() => {})
  const garbage = rawServer((_n, s) => { s.write('SSH-2.0-OpenSSH\r\n\r\n') })
  const urls = [await listen(cut), await listen(silent), await listen(garbage)]
  t.teardown(() => { cut.close(); silent.close(); garbage.close() })
  const [tc, ts, tg] = urls.map((u) => createHttpTransport(u, '/svc'))
  t.teardown(async () => { await Promise.all([tc!.close(), ts!.close(), tg!.close()]) })
  await t.rejects(tc!.send(req()), { code: 'TRANSPORT_ERROR', message: /ECONNRESET/ }, 'a body cut short')
  await t.rejects(ts!.send(req({}, 200)), { code: 'TIMED_OUT', message: /did not answer within 200 ms/ }, 'no answer')
  await t.rejects(tg!.send(req()), { code: 'PROTOCOL_ERROR', message: /not an HTTP\/1\.1 response/ }, 'not HTTP')
  await t.rejects(tc!.send(req({ 'X-Request-Id': 'a\r\nX-Evil: 1' })), { code: 'INVALID_ARGUMENT' }, 'a header value with CR LF is refused before sending')

  const closed = createServer()
  const u = await listen(closed)
  await new Promise<void>((resolve) => { closed.close(() => { resolve() }) })
  const tr = createHttpTransport(u, '/svc')
  const e = await tr.send(req()).catch((x: MetaosError) => x)
  t.match(e, { code: 'TRANSPORT_ERROR', message: /ECONNREFUSED/ }, 'nothing listening')
  await tr.close()
})
