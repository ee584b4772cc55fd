// Benchmark peer "raw": what a transport itself allows. A node:net server on a Unix socket and on
// 127.0.0.1 reading length-prefixed frames (u32 length, u64 offset, then the payload), writing each
// payload to a file at its offset (fs.write, as bare-http-server.ts does) and answering one byte
// (0: written, 1: failed). Run as a child process; prints one ready JSON line like a metaos domain.
import { createServer, type Socket } from 'node:net'
import { openSync, write } from 'node:fs'
import { join } from 'node:path'

const dir = process.argv[2] ?? '.'
const fd = openSync(join(dir, 'raw-frame.bin'), 'w')
const OK = Buffer.from([0])
const FAILED = Buffer.from([1])
const MAX = 256 * 1024 * 1024

function serve (s: Socket): void {
  let buf: Buffer | undefined
  s.on('data', (c: Buffer) => {
    buf = buf === undefined ? c : Buffer.concat([buf, c])
    while (buf !== undefined && buf.length >= 12) {
      const len = buf.readUInt32BE(0)
      if (len > MAX) { s.destroy(); return }
      if (buf.length < 12 + len) return
      const off = Number(buf.readBigUInt64BE(4))
      const payload = buf.subarray(12, 12 + len)
      buf = buf.length > 12 + len ? buf.subarray(12 + len) : undefined
      write(fd, payload, 0, len, off, (err) => { s.write(err === null ? OK : FAILED) })
    }
  })
  s.on('error', () => { s.destroy() })
}

const socketPath = join(dir, 'raw-frame.sock')
const tcp = createServer({ noDelay: true }, serve)
const uds = createServer(serve)
tcp.listen(0, '127.0.0.1', () => {
  uds.listen(socketPath, () => {
    const a = tcp.address() as { port: number }
    process.stdout.write(JSON.stringify({ event: 'ready', service: 'raw-frame', endpoints: [`tcp://127.0.0.1:${a.port}`, `unix:${socketPath}`], epr: '' }) + '\n')
  })
})
process.once('SIGTERM', () => { tcp.close(); uds.close(); process.exit(0) })
