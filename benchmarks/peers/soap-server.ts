// Benchmark peer "soap": the npm `soap` package serving the same WSDL (Open/Write/Close over a
// real file). Run as a child process; prints one ready JSON line like a metaos domain.
import { createServer } from 'node:http'
import { closeSync, openSync, writeSync } from 'node:fs'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import soap from 'soap'
import { packageFile } from '../../wsdl/package-root.js'

const dir = process.argv[2] ?? '.'
const files = new Map<string, { fd: number, pos: number }>()
let next = 0
const op = (fn: (args: any) => unknown) => (args: any) => fn(args) // eslint-disable-line @typescript-eslint/no-explicit-any
const service = {
  StorageService: {
    StorageSoap11: {
      Open: op((a) => {
        const h = String(++next)
        files.set(h, { fd: openSync(join(dir, `soap-${String(a.path).replace(/[^\w.-]/g, '_')}`), 'w'), pos: 0 })
        return { handle: h, length: 0, position: 0 }
      }),
      Write: op((a) => {
        const f = files.get(a.handle)!
        const data = Buffer.from(a.data, 'base64')
        writeSync(f.fd, data, 0, data.length, f.pos)
        f.pos += data.length
        return { written: data.length, position: f.pos }
      }),
      Seek: op((a) => { const f = files.get(a.handle)!; f.pos = Number(a.offset); return { position: f.pos } }),
      Close: op((a) => { const f = files.get(a.handle); if (f !== undefined) { closeSync(f.fd); files.delete(a.handle) } return {} }),
    },
  },
}
const server = createServer((_req, res) => { res.statusCode = 404; res.end() })
server.keepAliveTimeout = 30_000
server.listen(0, '127.0.0.1', () => {
  const s = soap.listen(server, { path: '/storage', services: service, xml: readFileSync(packageFile('wsdl', 'StorageService.wsdl'), 'utf8') })
  s.log = () => {}
  const a = server.address() as { port: number }
  process.stdout.write(JSON.stringify({ event: 'ready', service: 'soap', endpoints: [`http://127.0.0.1:${a.port}/storage`], epr: '' }) + '\n')
})
process.once('SIGTERM', () => { server.close(); server.closeAllConnections(); process.exit(0) })
