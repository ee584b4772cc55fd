// A WS-Discovery Discovery Proxy (managed mode): keeps a registry from the Hello/Bye it hears on
// its interfaces (and from Hello/Bye POSTed to it), answers Probe and Resolve over SOAP/HTTP and
// over unicast UDP from that registry, and answers a multicast Probe/Resolve with the suppression
// Hello (its own Hello, RelatesTo the request) so that clients switch to it. Announces itself with
// the standard DiscoveryProxy type, and says Bye when it stops.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { RemoteInfo } from 'node:dgram'
import type { Logger } from 'pino'
import { silentLogger } from '../soap-runtime/logger.js'
import { formatEndpoint, parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { AppSequencer, body, buildEnvelope, newMessageId, sequenced, type Body, parseDiscovery, type DiscoveryMessage, type TargetInfo } from './messages.js'
import { VERSIONS, type WsdVersion } from './protocol.js'
import { probeMatches } from './scope-match.js'
import { SoapUdp, type Destination } from './soap-udp.js'

export const DISCOVERY_PROXY_TYPES: Readonly<Record<WsdVersion, string>> = {
  '1.1': `{${VERSIONS['1.1'].wsd}}DiscoveryProxy`,
  2005: `{${VERSIONS['2005'].wsd}}DiscoveryProxy`,
}

export interface DiscoveryProxyOptions {
  readonly epr: string
  readonly listen: readonly string[]
  readonly interfaces?: readonly string[]
  /** Re-probe period (ms), which also ages out targets that stopped answering; 0 = never. Default 30 s. */
  readonly reprobeMs?: number
  readonly logger?: Logger
}

const MAX_ENTRIES = 10_000
const MAX_BODY = 64 * 1024

export class DiscoveryProxy {
  readonly registry = new Map<string, TargetInfo>()
  readonly #lastSeen = new Map<string, number>()
  readonly #ownProbes = new Set<string>()
  #timer: NodeJS.Timeout | undefined
  readonly udp: SoapUdp
  readonly #o: DiscoveryProxyOptions
  readonly #log: Logger
  readonly #servers: Server[] = []
  readonly #seq = new AppSequencer()
  #xaddrs: string[] = []

  constructor (o: DiscoveryProxyOptions) {
    this.#o = o
    this.#log = o.logger ?? silentLogger
    this.udp = new SoapUdp({ ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }), logger: this.#log })
    this.udp.on('message', (m: DiscoveryMessage, from: RemoteInfo) => {
      const reply = this.#handle(m, { address: from.address, port: from.port }, 'udp')
      if (reply !== undefined) this.udp.send(reply, { address: from.address, port: from.port })
    })
  }

  get xaddrs (): readonly string[] { return this.#xaddrs }
  get epr (): string { return this.#o.epr }

  #self (v: WsdVersion): TargetInfo {
    return { epr: this.#o.epr, types: [DISCOVERY_PROXY_TYPES[v]], scopes: [], xaddrs: this.#xaddrs, metadataVersion: 1 }
  }

  #envelope (v: WsdVersion, action: 'Hello' | 'Bye' | 'ProbeMatches' | 'ResolveMatches', b: Body, to: string, relatesTo?: string): Buffer {
    return sequenced(this.#seq, v, action, b, to, relatesTo)
  }

  async start (): Promise<void> {
    for (const url of this.#o.listen) {
      const ep = parseEndpoint(url, '/discovery')
      if (ep.protocol !== 'http') throw new MetaosError('INVALID_ARGUMENT', `the discovery proxy listens on http:// only (got ${url})`)
      const server = createServer((req, res) => { this.#http(req, res) })
      await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(ep.port, ep.host, () => { resolve() }) })
      const a = server.address() as { port: number }
      this.#servers.push(server)
      this.#xaddrs.push(formatEndpoint({ ...ep, port: a.port }))
    }
    await this.udp.open()
    for (const v of ['1.1', '2005'] as const) this.udp.send(this.#envelope(v, 'Hello', body.hello(v, this.#self(v)), VERSIONS[v].multicastTo))
    // Targets that announced before the proxy started, and later whether they are still there.
    this.#probe()
    const every = this.#o.reprobeMs ?? 30_000
    if (every > 0) {
      this.#timer = setInterval(() => { this.#probe(); this.#age(2.5 * every) }, every)
      this.#timer.unref()
    }
    this.#log.info({ epr: this.#o.epr, xaddrs: this.#xaddrs }, 'discovery proxy ready')
  }

  #probe (): void {
    for (const v of ['1.1', '2005'] as const) {
      const id = newMessageId()
      this.#ownProbes.add(id)
      if (this.#ownProbes.size > 16) this.#ownProbes.delete(this.#ownProbes.values().next().value!)
      this.udp.send(buildEnvelope({ version: v, action: 'Probe', messageId: id, to: VERSIONS[v].multicastTo, body: body.probe([], []) }))
    }
  }

  /** A target that neither said Bye nor answered the last re-probes is gone (crashed, unplugged). */
  #age (maxAgeMs: number): void {
    const cutoff = Date.now() - maxAgeMs
    for (const [epr, seen] of this.#lastSeen) if (seen < cutoff) { this.#lastSeen.delete(epr); this.registry.delete(epr) }
  }

  async stop (): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.udp.sendAndClose(...(['1.1', '2005'] as const).map((v) => this.#envelope(v, 'Bye', body.bye(v, this.#self(v)), VERSIONS[v].multicastTo)))
    await Promise.all(this.#servers.map(async (s) => { s.closeAllConnections(); await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }

  /** Handles one message; returns the reply to send back on the same channel, if any. */
  #handle (m: DiscoveryMessage, _from: Destination, channel: 'udp' | 'http'): Buffer | undefined {
    const v = m.version
    switch (m.action) {
      case 'Hello': case 'ProbeMatches':
        // ProbeMatches count only as answers to the proxy's own probes.
        if (m.action === 'ProbeMatches' && (channel !== 'udp' || !this.#ownProbes.has(m.relatesTo ?? ''))) return undefined
        for (const t of m.targets) {
          if (t.epr === this.#o.epr) continue
          if (!this.registry.has(t.epr) && this.registry.size >= MAX_ENTRIES) continue
          const known = this.registry.get(t.epr)
          if (known === undefined || t.metadataVersion >= known.metadataVersion) { this.registry.set(t.epr, t); this.#lastSeen.set(t.epr, Date.now()) }
        }
        return undefined
      case 'Bye':
        for (const t of m.targets) { this.registry.delete(t.epr); this.#lastSeen.delete(t.epr) }
        return undefined
      case 'Probe': case 'Resolve': {
        if (this.#ownProbes.has(m.messageId)) return undefined // our own probe, looped back
        const multicast = channel === 'udp' && (m.to === VERSIONS[v].multicastTo || m.to === undefined)
        // Suppression: a client still probing by multicast is told, with our Hello, to ask us instead.
        if (multicast) return this.#envelope(v, 'Hello', body.hello(v, this.#self(v)), VERSIONS[v].anonymous, m.messageId)
        if (m.action === 'Resolve') {
          const t = this.registry.get(m.epr!)
          return this.#envelope(v, 'ResolveMatches', body.resolveMatches(v, t === undefined ? [] : [t]), VERSIONS[v].anonymous, m.messageId)
        }
        const matches = [...this.registry.values()].filter((t) => probeMatches(m, VERSIONS[v].defaultMatchBy, t) === true)
        return this.#envelope(v, 'ProbeMatches', body.probeMatches(v, matches), VERSIONS[v].anonymous, m.messageId)
      }
      default:
        return undefined
    }
  }

  #http (req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'POST') { res.writeHead(405, { Allow: 'POST' }); res.end(); return }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_BODY) chunks.push(c) })
    req.on('end', () => {
      if (size > MAX_BODY) { res.writeHead(413); res.end(); return }
      let m: DiscoveryMessage
      try {
        m = parseDiscovery(Buffer.concat(chunks))
      } catch (e) {
        res.writeHead(400, { 'Content-Type': 'text/plain' })
        res.end(`${(e as Error).message}\n`)
        return
      }
      const reply = this.#handle(m, { address: req.socket.remoteAddress ?? '', port: 0 }, 'http')
      if (reply === undefined) { res.writeHead(202); res.end(); return }
      res.writeHead(200, { 'Content-Type': 'application/soap+xml; charset=utf-8', 'Content-Length': reply.length })
      res.end(reply)
    })
  }
}

/** Client side: sends one message to a proxy over SOAP/HTTP and parses its answer. */
export async function askProxy (xaddr: string, message: Buffer, timeoutMs: number): Promise<DiscoveryMessage | undefined> {
  const res = await fetch(xaddr, { method: 'POST', body: message, headers: { 'Content-Type': 'application/soap+xml; charset=utf-8' }, signal: AbortSignal.timeout(timeoutMs) })
  if (res.status === 202) return undefined
  if (res.status !== 200) throw new MetaosError('PROTOCOL_ERROR', `discovery proxy ${xaddr} answered HTTP ${res.status}`)
  return parseDiscovery(Buffer.from(await res.arrayBuffer()))
}
