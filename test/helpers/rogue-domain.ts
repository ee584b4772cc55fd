// A rogue process for the trusted-discovery test, run as a child (`node <tap's loader> rogue-domain.ts
// CONFIG_JSON`): it serves https with a certificate of its own CA (and plain http), counting every
// HTTP request and TLS connection that reaches it, and on the WS-Discovery segment it
//   1. announces a fake domain with the real one's types and scopes and its own XAddrs (Hello, and
//      ProbeMatches to every Probe),
//   2. announces the real domain's EPR with its own XAddrs (a forged Hello redirecting it),
//   3. on "bye" from stdin, sends Bye for the real domain's EPR (a forged Bye).
// It prints {"event":"ready",…} and answers "count" on stdin with the counters as one JSON line.
import { createServer as createHttps } from 'node:https'
import { createServer as createHttp } from 'node:http'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import { randomUUID } from 'node:crypto'
import { TargetService } from '../../discovery/target-service.js'

interface Config { realEpr: string, types: string[], scopes: string[], cert: string, key: string, selfCert: string, selfKey: string }
const c = JSON.parse(process.argv[2]!) as Config
const counts = { httpsRequests: 0, tlsConnections: 0, httpRequests: 0, selfRequests: 0 }

async function listen (s: ReturnType<typeof createHttp>): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  return (s.address() as { port: number }).port
}
// Its own CA's certificate, naming the real EPR (a rogue can put any URI in a certificate it signs).
const https = createHttps({ cert: readFileSync(c.cert), key: readFileSync(c.key) }, (_req, res) => { counts.httpsRequests++; res.writeHead(500).end() })
https.on('secureConnection', () => { counts.tlsConnections++ })
// A self-signed certificate naming the real EPR: no CA at all.
const self = createHttps({ cert: readFileSync(c.selfCert), key: readFileSync(c.selfKey) }, (_req, res) => { counts.selfRequests++; res.writeHead(500).end() })
const http = createHttp((_req, res) => { counts.httpRequests++; res.writeHead(500).end() })
const [hp, sp, pp] = [await listen(https as never), await listen(self as never), await listen(http)]
const xaddrs = [`https://127.0.0.1:${hp}/storage`, `https://127.0.0.1:${sp}/storage`, `http://127.0.0.1:${pp}/storage`]

const fakeEpr = `urn:uuid:${randomUUID()}`
const fake = new TargetService({ epr: fakeEpr, types: c.types, scopes: c.scopes, xaddrs })
const hijack = new TargetService({ epr: c.realEpr, types: c.types, scopes: c.scopes, xaddrs })
await fake.start()
await hijack.start()
process.stdout.write(JSON.stringify({ event: 'ready', fakeEpr, xaddrs }) + '\n')

for await (const line of createInterface({ input: process.stdin })) {
  if (line === 'count') process.stdout.write(JSON.stringify(counts) + '\n')
  else if (line === 'hello') hijack.update(xaddrs) // again, with a higher MetadataVersion
  else if (line === 'bye') {
    // Bye for the real domain's EPR, from a target of its own (the hijacking one goes on announcing).
    const forger = new TargetService({ epr: c.realEpr, types: c.types, scopes: c.scopes, xaddrs })
    await forger.udp.open()
    await forger.stop()
    process.stdout.write(JSON.stringify({ event: 'bye-sent' }) + '\n')
  } else if (line === 'exit') break
}
await fake.stop().catch(() => undefined)
await hijack.stop().catch(() => undefined)
https.close(); self.close(); http.close()
process.exit(0)
