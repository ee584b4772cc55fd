// Benchmark peer "echo": a node:net TCP echo server (what it receives, it sends back; a half-close
// is answered with one) in a process of its own, so the client under test does not share its event
// loop. Prints one ready JSON line like a metaos domain.
import { createServer } from 'node:net'

const server = createServer({ noDelay: true, allowHalfOpen: true }, (s) => { s.pipe(s) })
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as { port: number }
  process.stdout.write(JSON.stringify({ event: 'ready', service: 'echo', endpoints: [`tcp://127.0.0.1:${a.port}`], epr: '' }) + '\n')
})
process.once('SIGTERM', () => { server.close(); process.exit(0) })
