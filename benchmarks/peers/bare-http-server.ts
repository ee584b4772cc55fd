// Benchmark peer "bare-http": the protocol floor. A node:http server that writes each POSTed raw
// body to a file at the offset given in the URL and answers 200 with no body, on 127.0.0.1 and on
// a Unix socket (the floor of each of metaos's transports). Run as a child process; prints one
// ready JSON line like a metaos domain.
import { createServer } from 'node:http'
import { openSync, write } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? '.'
const fd = openSync(join(dir, 'bare-http.bin'), 'w')
const server = createServer({ keepAliveTimeout: 30_000, noDelay: true }, (req, res) => {
  const off = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('off') ?? '0')
  const chunks: Buffer[] = []
  req.on('data', (c: Buffer) => chunks.push(c))
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
    write(fd, body, 0, body.length, off, (err) => {
      res.writeHead(err === null ? 200 : 500, { 'Content-Length': 0 })
      res.end()
    })
  })
})
const socketPath = join(dir, 'bare-http.sock')
const bus = createServer({ keepAliveTimeout: 30_000 }, (req, res) => { server.emit('request', req, res) })
server.listen(0, '127.0.0.1', () => {
  bus.listen(socketPath, () => {
    const a = server.address() as { port: number }
    process.stdout.write(JSON.stringify({ event: 'ready', service: 'bare-http', endpoints: [`http://127.0.0.1:${a.port}/write`, `http+unix://${encodeURIComponent(socketPath)}/write`], epr: '' }) + '\n')
  })
})
process.once('SIGTERM', () => { server.close(); server.closeAllConnections(); bus.close(); bus.closeAllConnections(); process.exit(0) })
