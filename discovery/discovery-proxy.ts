// A WS-Discovery Discovery Proxy (managed mode): keeps a registry from the Hello/Bye it hears on
// its interfaces (and from Hello/Bye POSTed to it), answers Probe and Resolve over SOAP/HTTP(S) and
// over unicast UDP from that registry, and answers a multicast Probe/Resolve with the suppression
// Hello (its own Hello, RelatesTo the request) so that clients switch to it. Announces itself with
// the standard DiscoveryProxy type, and says Bye when it stops.
// With a client CA (mutual TLS) registrations are authenticated: a Hello or Bye is taken only over
// https from a client certificate of that CA naming the announced EPR (a `urn:uuid:` URI in its
// subjectAltName, as `metaos pki issue-domain` makes them); anything else — plain http, no
// certificate, another EPR, a Hello heard by multicast — is refused with a SOAP fault UNAUTHORIZED
// (over HTTP), logged and counted. Probe and Resolve stay open to whoever reaches a listener.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { TLSSocket } from 'node:tls'
import type { RemoteInfo } from 'node:dgram'
import type { Logger } from 'pino'
import { silentLogger } from '../soap-runtime/logger.js'
import { formatEndpoint, parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { certificateUris } from '../soap-runtime/http-transport.js'
import { AppSequencer, body, buildEnvelope, newMessageId, sequenced, type Body, parseDiscovery, type DiscoveryMessage, type TargetInfo } from './messages.js'
import { VERSIONS, type WsdVersion } from './protocol.js'
import { probeMatches } from './scope-match.js'
import { SoapUdp } from './soap-udp.js'
import { DISCOVERY_PATH, proxyFault } from './proxy-client.js'

export { askProxy } from './proxy-client.js'

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
  /**
   * A target neither heard from (Hello, or an answer to a re-probe) nor withdrawn for this long is
   * forgotten (ms; default 2.5 re-probe periods, 0 = never): a lease its Hellos renew. Domains
   * announcing to a proxy say Hello every 10 s, so three missed Hellos is 30 000.
   */
  readonly forgetAfterMs?: number
  /**
   * Certificate and key of `https://` listeners; with `clientCa` (and optionally a CRL), clients
   * are asked for a certificate and registrations must be authenticated (see above).
   */
  readonly tls?: { readonly cert: string | Buffer, readonly key: string | Buffer, readonly clientCa?: string | Buffer, readonly crl?: string | Buffer }
  readonly logger?: Logger
}

/** Where a message came from: its channel and, over https, what TLS made of the client's certificate. */
interface Origin {
  readonly channel: 'udp' | 'http'
  readonly peer: string
  readonly tls?: { readonly presented: boolean, readonly authorized: boolean, readonly error: string | undefined, readonly uris: readonly string[] }
}

const MAX_ENTRIES = 10_000
const MAX_BODY = 64 * 1024

export class DiscoveryProxy {
  readonly registry = new Map<string, TargetInfo>()
  readonly #lastSeen = new Map<string, number>()
  readonly #ownProbes = new Set<string>()
  readonly #timers: NodeJS.Timeout[] = []
  readonly udp: SoapUdp
  readonly #o: DiscoveryProxyOptions
  readonly #log: Logger
  readonly #servers: Server[] = []
  readonly #seq = new AppSequencer()
  #xaddrs: string[] = []
  /** Registrations refused over HTTP (authenticated mode), and the last reasons, newest last (at most 20). */
  readonly refused = { count: 0, reasons: [] as string[] }
  /** Hello/Bye heard by multicast in authenticated mode: ignored. */
  ignoredMulticast = 0

  constructor (o: DiscoveryProxyOptions) {
    this.#o = o
    this.#log = o.logger ?? silentLogger
    this.udp = new SoapUdp({ ...(o.interfaces === undefined ? {} : { interfaces: o.interfaces }), logger: this.#log })
    this.udp.on('message', (m: DiscoveryMessage, from: RemoteInfo) => {
      const reply = this.#handle(m, { channel: 'udp', peer: from.address })
      if (Buffer.isBuffer(reply)) this.udp.send(reply, { address: from.address, port: from.port })
    })
  }

  get xaddrs (): readonly string[] { return this.#xaddrs }
  get epr (): string { return this.#o.epr }
  /** Registrations must prove the EPR they announce (a client CA is configured). */
  get authenticated (): boolean { return this.#o.tls?.clientCa !== undefined }

  #self (v: WsdVersion): TargetInfo {
    return { epr: this.#o.epr, types: [DISCOVERY_PROXY_TYPES[v]], scopes: [], xaddrs: this.#xaddrs, metadataVersion: 1 }
  }

  #envelope (v: WsdVersion, action: 'Hello' | 'Bye' | 'ProbeMatches' | 'ResolveMatches', b: Body, to: string, relatesTo?: string): Buffer {
    return sequenced(this.#seq, v, action, b, to, relatesTo)
  }

  async start (): Promise<void> {
    for (const url of this.#o.listen) {
      const ep = parseEndpoint(url, DISCOVERY_PATH)
      if (ep.protocol !== 'http' && ep.protocol !== 'https') throw new MetaosError('INVALID_ARGUMENT', `the discovery proxy listens on http:// or https:// (got ${url})`)
      const tls = this.#o.tls
      if (ep.protocol === 'https' && tls === undefined) throw new MetaosError('INVALID_ARGUMENT', `${url}: an https listener needs a certificate and a key (--tls-cert, --tls-key)`)
      const limits = { headersTimeout: 10_000, requestTimeout: 30_000, maxHeaderSize: 16 * 1024, connectionsCheckingInterval: 1000 }
      const server = ep.protocol === 'https'
        ? createHttpsServer({
          ...limits,
          cert: tls!.cert,
          key: tls!.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: 10_000,
          // The certificate is judged per message (a Probe needs none): the handshake never fails for it.
          ...(tls!.clientCa === undefined ? {} : { ca: tls!.clientCa, requestCert: true, rejectUnauthorized: false }),
          ...(tls!.crl === undefined ? {} : { crl: tls!.crl }),
        }, (req, res) => { this.#http(req, res) })
        : createServer(limits, (req, res) => { this.#http(req, res) })
      server.maxConnections = 1024
      server.on('tlsClientError', (e: Error) => { this.#log.debug({ err: e.message }, 'TLS handshake failed') })
      await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(ep.port, ep.host, () => { resolve() }) })
      const a = server.address() as { port: number }
      this.#servers.push(server)
      this.#xaddrs.push(formatEndpoint({ ...ep, port: a.port }))
    }
    await this.udp.open()
    for (const v of ['1.1', '2005'] as const) this.udp.send(this.#envelope(v, 'Hello', body.hello(v, this.#self(v)), VERSIONS[v].multicastTo))
    // Targets that announced before the proxy started, and later whether they are still there (in
    // authenticated mode multicast answers count for nothing: registrations stay alive by their Hellos).
    if (!this.authenticated) this.#probe()
    const every = this.#o.reprobeMs ?? 30_000
    const forget = this.#o.forgetAfterMs ?? 2.5 * every
    if (every > 0 && !this.authenticated) this.#timers.push(setInterval(() => { this.#probe() }, every))
    // Aged a few times per lease, so a target is gone at most a third of a lease after it expired.
    if (forget > 0) this.#timers.push(setInterval(() => { this.#age(forget) }, Math.max(50, Math.min(forget / 3, every > 0 ? every : Infinity))))
    for (const timer of this.#timers) timer.unref()
    this.#log.info({ epr: this.#o.epr, xaddrs: this.#xaddrs }, 'discovery proxy ready')
  }

  /** New TLS material (a renewed certificate, a new CRL) for the https listeners; open connections keep theirs. */
  setTls (tls: NonNullable<DiscoveryProxyOptions['tls']>): void {
    if ((tls.clientCa === undefined) !== (this.#o.tls?.clientCa === undefined)) throw new MetaosError('INVALID_ARGUMENT', 'a client CA cannot be added or removed while the proxy runs')
    ;(this.#o as { tls?: DiscoveryProxyOptions['tls'] }).tls = tls
    for (const s of this.#servers) {
      if (!('setSecureContext' in s)) continue
      ;(s as unknown as { setSecureContext: (o: object) => void }).setSecureContext({
        cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }), ...(tls.crl === undefined ? {} : { crl: tls.crl }),
      })
    }
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
    for (const timer of this.#timers.splice(0)) clearInterval(timer)
    await this.udp.sendAndClose(...(['1.1', '2005'] as const).map((v) => this.#envelope(v, 'Bye', body.bye(v, this.#self(v)), VERSIONS[v].multicastTo)))
    await Promise.all(this.#servers.map(async (s) => { s.closeAllConnections(); await new Promise<void>((resolve) => { s.close(() => { resolve() }) }) }))
  }

  /**
   * In authenticated mode: why `origin` may not register or withdraw `epr`, or undefined when it
   * may (an https client certificate of the client CA that names the EPR).
   */
  #refusal (epr: string, origin: Origin): string | undefined {
    if (!this.authenticated) return undefined
    if (origin.channel === 'udp') return 'heard by multicast: registrations come over https with a client certificate'
    if (origin.tls === undefined) return 'over plain http: registrations come over https with a client certificate'
    if (!origin.tls.presented) return 'no client certificate'
    if (!origin.tls.authorized) return `client certificate refused: ${origin.tls.error ?? 'not verified'}`
    if (!origin.tls.uris.some((u) => u.toLowerCase() === epr.toLowerCase())) return `the client certificate names ${origin.tls.uris.join(', ') || 'no URI'}, not ${epr}`
    return undefined
  }

  #refuse (m: DiscoveryMessage, epr: string, origin: Origin, why: string): void {
    if (origin.channel === 'udp') {
      // Multicast Hellos are the segment's ordinary chatter in this mode: counted apart, logged at debug only.
      this.ignoredMulticast++
      this.#log.debug({ action: m.action, epr, peer: origin.peer }, 'multicast registration ignored (authenticated mode)')
      return
    }
    this.refused.count++
    this.refused.reasons.push(`${m.action} ${epr} from ${origin.peer}: ${why}`)
    if (this.refused.reasons.length > 20) this.refused.reasons.shift()
    this.#log.warn({ action: m.action, epr, peer: origin.peer, reason: why }, 'discovery registration refused')
  }

  /** Handles one message; returns the reply to send back on the same channel, if any (a fault for a refused registration). */
  #handle (m: DiscoveryMessage, origin: Origin): Buffer | { status: number, body: Buffer } | undefined {
    const v = m.version
    const channel = origin.channel
    switch (m.action) {
      case 'Hello': case 'ProbeMatches':
        // ProbeMatches count only as answers to the proxy's own probes.
        if (m.action === 'ProbeMatches' && (channel !== 'udp' || !this.#ownProbes.has(m.relatesTo ?? ''))) return undefined
        for (const t of m.targets) {
          if (t.epr === this.#o.epr) continue
          const why = this.#refusal(t.epr, origin)
          if (why !== undefined) {
            this.#refuse(m, t.epr, origin, why)
            if (channel === 'http') return proxyFault(v, 'UNAUTHORIZED', `Hello for ${t.epr} refused: ${why}`, m.messageId)
            continue
          }
          if (!this.registry.has(t.epr) && this.registry.size >= MAX_ENTRIES) continue
          const known = this.registry.get(t.epr)
          if (known === undefined || t.metadataVersion >= known.metadataVersion) { this.registry.set(t.epr, t); this.#lastSeen.set(t.epr, Date.now()) }
        }
        return undefined
      case 'Bye':
        for (const t of m.targets) {
          if (t.epr === this.#o.epr) continue // our own Bye, looped back
          const why = this.#refusal(t.epr, origin)
          if (why !== undefined) {
            this.#refuse(m, t.epr, origin, why)
            if (channel === 'http') return proxyFault(v, 'UNAUTHORIZED', `Bye for ${t.epr} refused: ${why}`, m.messageId)
            continue
          }
          this.registry.delete(t.epr); this.#lastSeen.delete(t.epr)
        }
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
      const reply = this.#handle(m, { channel: 'http', peer: req.socket.remoteAddress ?? '', ...tlsOf(req) })
      if (reply === undefined) { res.writeHead(202); res.end(); return }
      const { status, body } = Buffer.isBuffer(reply) ? { status: 200, body: reply } : reply
      res.writeHead(status, { 'Content-Type': 'application/soap+xml; charset=utf-8', 'Content-Length': body.length })
      res.end(body)
    })
  }
}

/** What TLS made of an https request's client certificate (nothing for plain http). */
function tlsOf (req: IncomingMessage): { tls?: Origin['tls'] } {
  const socket = req.socket as TLSSocket
  if (socket.encrypted !== true) return {}
  const cert = socket.getPeerCertificate()
  const presented = cert !== null && Object.keys(cert).length > 0
  const error = socket.authorizationError === undefined || socket.authorizationError === null ? undefined : String(socket.authorizationError)
  return { tls: { presented, authorized: socket.authorized, error, uris: presented ? certificateUris(cert) : [] } }
}
