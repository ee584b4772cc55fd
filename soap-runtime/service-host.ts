// The generic service host: serves one ServiceDescriptor over HTTP on TCP and Unix-socket
// listeners. Per request: bounded body → (MTOM) → envelope → operation by body element →
// compiled decoder → implementation → compiled encoder → envelope with the timing header.
// Faults in the request's SOAP version; `?wsdl` with the address rewritten; graceful drain.
// Every call carries a request id (the caller's `X-Request-Id`, else a fresh one): on each log
// line of the call and echoed in the response. With `metrics`, every call is recorded there and
// GET /metrics serves them (only on loopback and unix listeners when calls must authenticate).
// Owns no business logic: operations come from the implementation it is given.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { PeerCertificate, TLSSocket } from 'node:tls'
import { isUtf8 } from 'node:buffer'
import { chmodSync, lstatSync, unlinkSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import type { Logger } from 'pino'
import { compileCodecs, type ElementCodec, type EncodeContext } from './codec.js'
import type { ServiceDescriptor } from './descriptor.js'
import {
  buildEnvelope, buildFaultBody, EnvelopeError, faultAction, faultStatus, METAOS_NS, parseEnvelope,
  replyAddressing, SOAP, type Addressing, type SoapVersion,
} from './envelope.js'
import { formatEndpoint, isLoopbackHost, parseEndpoint, type Endpoint } from './endpoint.js'
import { FAULT_CODES, MetaosError, fromSystemError } from './errors.js'
import { buildMultipartRelated, isMultipartRelated, parseMultipartRelated } from './mtom.js'
import { escapeXml, toXmlSafeText, DEFAULT_XML_LIMITS, type XmlElement } from './xml.js'
import { batchOutputs, runBatch } from './batch.js'
import { WSSE_NS, WSU_NS } from './ws-security.js'
import { newRequestId } from './client.js'
import type { DomainMetrics } from './metrics.js'

export interface CallContext {
  /**
   * Who is calling; handles are bound to it. With an authenticator: the authenticated identity
   * (`id:NAME`). Without: the Caller header (or "anonymous") and the transport peer.
   */
  readonly caller: string
  readonly operation: string
  /** The authenticated principal (undefined when the host has no authenticator). */
  readonly principal?: Principal
  /** The call's request id (the caller's X-Request-Id, else one made here): log it with anything said about the call. */
  readonly requestId?: string
}

/** An authenticated caller; an authenticator's own type may carry more (grants). */
export interface Principal {
  readonly name: string
  readonly via: string
}

/** What a call brings to prove who it is. */
export interface CallCredentials {
  readonly transport: 'http' | 'https' | 'unix'
  /** The peer's IP address, or "unix". */
  readonly peer: string
  /** For https: what the TLS layer made of the client's certificate (verified against the host's client CA and CRL). */
  readonly tls?: { readonly authorized: boolean, readonly error: string | undefined, readonly certificate: PeerCertificate | undefined }
  readonly headers: readonly XmlElement[]
}

/** Decides who a call is (or throws UNAUTHORIZED) and admits its work against that identity's limits. */
export interface Authenticator {
  /** Header names (Clark notation) it reads, so mustUnderstand on them is honoured. */
  readonly understood: readonly string[]
  authenticate: (c: CallCredentials) => Principal
  /** Counts a call of `bytes` against the principal's limits (QUOTA_EXCEEDED when over); returns its release. */
  admit: (p: Principal, bytes: number) => () => void
  /** The owner string handles are bound to. */
  ownerOf: (p: Principal) => string
}

/** TLS material of https listeners (PEM). */
export interface HostTls {
  readonly cert: string | Buffer
  readonly key: string | Buffer
  /** CA of client certificates; when set, clients are asked for one (verified here, judged by the authenticator). */
  readonly clientCa?: string | Buffer
  /** Revoked client certificates. */
  readonly crl?: string | Buffer
}

export type Implementation = Readonly<Record<string, (input: any, ctx: CallContext) => Promise<unknown>>> // eslint-disable-line @typescript-eslint/no-explicit-any

export interface HostLimits {
  maxMessageBytes: number
  maxDepth: number
  maxElements: number
  maxBatchOps: number
  /** Open connections on one listener, and from one IP address (unix: no per-peer limit). */
  maxConnections: number
  maxConnectionsPerPeer: number
  /** Request bodies held at once across all connections, and from one IP address (bounded memory under abuse). */
  maxBufferedBytes: number
  maxBufferedBytesPerPeer: number
  /** Whole request headers must arrive within this (slow-loris), the whole request within requestTimeoutMs. */
  headersTimeoutMs: number
  requestTimeoutMs: number
  /** Largest request header block. */
  maxHeaderBytes: number
  /** A TLS handshake must finish within this. */
  handshakeTimeoutMs: number
}

export const DEFAULT_HOST_LIMITS: HostLimits = {
  maxMessageBytes: 64 * 1024 * 1024,
  maxDepth: DEFAULT_XML_LIMITS.maxDepth,
  maxElements: DEFAULT_XML_LIMITS.maxElements,
  maxBatchOps: 1024,
  maxConnections: 4096,
  maxConnectionsPerPeer: 512,
  maxBufferedBytes: 512 * 1024 * 1024,
  maxBufferedBytesPerPeer: 128 * 1024 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  maxHeaderBytes: 16 * 1024,
  handshakeTimeoutMs: 10_000,
}

export interface ServiceHostOptions {
  readonly descriptor: ServiceDescriptor
  readonly implementation: Implementation
  readonly wsdl: string
  /** HTTP path the service answers on, e.g. `/storage`. */
  readonly path: string
  readonly faultElement: string
  /** The codes the contract's fault detail admits (default: the storage service's); any other goes on the wire as IO_ERROR. */
  readonly faultCodes?: readonly string[]
  readonly timingHeader: string
  readonly limits?: Partial<HostLimits>
  readonly logger: Logger
  /** Called once per finished call, for metrics. */
  readonly onCall?: (operation: string, micros: number, faultCode: string | undefined) => void
  /** Records every call (operation, transport, time, bytes, fault) and is served at GET /metrics. */
  readonly metrics?: DomainMetrics
  /** Certificate and key of https listeners (and the client CA, for mutual TLS). */
  readonly tls?: HostTls
  /** When set, every call must authenticate (UNAUTHORIZED otherwise) and is admitted against its identity's limits. */
  readonly authenticator?: Authenticator
  /**
   * Listening beyond loopback without TLS, or with TLS but without authentication, is refused
   * unless this is set: the operator says the network is trusted (a container's published port
   * on the host's loopback, a private bridge).
   */
  readonly allowInsecure?: boolean
}

interface OperationEntry {
  readonly name: string
  readonly input: ElementCodec
  readonly output: ElementCodec
  readonly action: string
}

const CALLER_HEADER = `{${METAOS_NS}}Caller`
/** The HTTP header that links a frontend's call to the service's log lines. */
export const REQUEST_ID_HEADER = 'X-Request-Id'
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,64}$/

/** The caller's request id when it is a sane token (it goes into logs and a response header), else a fresh one. */
function requestIdOf (h: string | string[] | undefined): string {
  if (typeof h === 'string' && REQUEST_ID.test(h)) return h
  return newRequestId()
}
const PREALLOCATE_MAX = 2 * 1024 * 1024

export class ServiceHost {
  readonly #o: ServiceHostOptions
  readonly #limits: HostLimits
  readonly #codecs: Map<string, ElementCodec>
  readonly #byElement = new Map<string, OperationEntry>()
  readonly #servers: Array<{ server: Server, endpoint: Endpoint }> = []
  readonly #understood: ReadonlySet<string>
  readonly #batchOutputs: ReadonlyMap<string, string>
  readonly #wsdlParts: [string, string, string] | undefined
  #inFlight = 0
  #buffered = 0
  readonly #bufferedByPeer = new Map<string, number>()
  #draining = false
  #drained: (() => void) | undefined

  constructor (options: ServiceHostOptions) {
    this.#o = options
    this.#limits = { ...DEFAULT_HOST_LIMITS, ...options.limits }
    this.#codecs = compileCodecs(options.descriptor)
    const ns = options.descriptor.namespace
    for (const op of Object.values(options.descriptor.operations)) {
      this.#byElement.set(`{${ns}}${op.input}`, {
        name: op.name,
        input: this.#codec(op.input),
        output: this.#codec(op.output),
        action: op.soapAction,
      })
    }
    this.#understood = new Set([CALLER_HEADER, ...(options.authenticator?.understood ?? [])])
    this.#batchOutputs = batchOutputs(options.descriptor)
    // Split the WSDL around its addresses once, so `?wsdl` only concatenates.
    const m = /^([\s\S]*?location=")[^"]*("[\s\S]*?location=")[^"]*("[\s\S]*)$/.exec(options.wsdl)
    this.#wsdlParts = m === null ? undefined : [m[1]!, m[2]!, m[3]!]
    if (options.metrics !== undefined) options.metrics.inFlightSource = () => this.#inFlight
  }

  #codec (name: string): ElementCodec {
    const c = this.#codecs.get(name)
    if (c === undefined) throw new Error(`descriptor has no element ${name}`)
    return c
  }

  get inFlight (): number { return this.#inFlight }
  get draining (): boolean { return this.#draining }

  /** Starts listening on each URL (`http://HOST:PORT`, `https://HOST:PORT`, `unix:/path`). Returns the endpoints actually bound. */
  async listen (urls: readonly string[]): Promise<string[]> {
    const out: string[] = []
    for (const url of urls) {
      const want = parseEndpoint(url, this.#o.path)
      this.#checkExposure(want, url)
      const l = this.#limits
      // connectionsCheckingInterval: Node checks the headers and request timeouts only this often
      // (default 30 s), so a slow-loris connection would otherwise live up to 40 s, not 10.
      const httpOptions = {
        keepAliveTimeout: 30_000, headersTimeout: l.headersTimeoutMs, requestTimeout: l.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, l.headersTimeoutMs), maxHeaderSize: l.maxHeaderBytes, noDelay: true,
      }
      const handler = (req: IncomingMessage, res: ServerResponse): void => { this.#handle(req, res, want) }
      let server: Server
      if (want.protocol === 'https') {
        const tls = this.#o.tls
        if (tls === undefined) throw new MetaosError('INVALID_ARGUMENT', `${url}: an https listener needs a certificate and a key (--tls-cert, --tls-key)`)
        server = createHttpsServer({
          ...httpOptions,
          cert: tls.cert,
          key: tls.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: l.handshakeTimeoutMs,
          ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false }),
          ...(tls.crl === undefined ? {} : { crl: tls.crl }),
        }, handler)
        // A handshake that fails (wrong CA on the client's side, garbage, a scanner) is not an error of the domain.
        server.on('tlsClientError', (e: Error) => { this.#o.logger.debug({ err: e.message }, 'TLS handshake failed') })
      } else {
        server = createServer(httpOptions, handler)
      }
      server.maxConnections = l.maxConnections
      this.#limitPeers(server)
      if (want.protocol === 'unix') await removeStaleSocket(want.socketPath!)
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        if (want.protocol === 'unix') server.listen(want.socketPath, () => { resolve() })
        else server.listen(want.port, want.host, () => { resolve() })
      })
      server.on('error', (e) => { this.#o.logger.error({ err: e }, 'listener error') })
      let bound: Endpoint = want
      if (want.protocol === 'unix') {
        chmodSync(want.socketPath!, 0o600) // the bus is for this user's co-hosted frontends only
      } else {
        const a = server.address()
        if (a !== null && typeof a === 'object') bound = { ...want, port: a.port, host: want.host }
      }
      this.#servers.push({ server, endpoint: bound })
      this.#o.metrics?.listening(bound.protocol)
      out.push(formatEndpoint({ ...bound, path: this.#o.path }))
    }
    return out
  }

  /** Re-reads TLS material (a renewed certificate, a new CRL) into the https listeners; open connections keep theirs. */
  setTls (tls: HostTls): void {
    ;(this.#o as { tls?: HostTls }).tls = tls
    for (const { server, endpoint } of this.#servers) {
      if (endpoint.protocol !== 'https') continue
      ;(server as unknown as { setSecureContext: (o: object) => void }).setSecureContext({
        cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2', ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }), ...(tls.crl === undefined ? {} : { crl: tls.crl }),
      })
    }
  }

  #checkExposure (ep: Endpoint, url: string): void {
    if (ep.protocol === 'unix' || isLoopbackHost(ep.host!) || this.#o.allowInsecure === true) return
    if (ep.protocol === 'http') throw new MetaosError('INVALID_ARGUMENT', `${url} would serve plain HTTP beyond this machine: listen on https:// (with --auth or --client-ca), or say --allow-insecure if this network is trusted`)
    if (this.#o.authenticator === undefined) throw new MetaosError('INVALID_ARGUMENT', `${url} would let anyone who reaches it in without authentication: give --auth FILE or --client-ca FILE, or say --allow-insecure if that is intended`)
  }

  /**
   * GET /metrics. A domain that demands authentication serves them only on its unix listeners and
   * plain-http loopback listeners (this machine's own); its https listeners are what remote callers
   * reach, and a scrape brings no credentials.
   */
  #serveMetrics (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    const metrics = this.#o.metrics!
    if (this.#o.authenticator !== undefined && !(ep.protocol === 'unix' || (ep.protocol === 'http' && isLoopbackHost(ep.host!)))) {
      plain(res, 403, 'this domain demands authentication: its metrics are served on its unix and loopback http listeners (or --metrics-listen), not here\n')
      return
    }
    metrics.text().then((text) => {
      res.writeHead(200, { 'Content-Type': metrics.contentType, 'Content-Length': Buffer.byteLength(text) })
      res.end(req.method === 'HEAD' ? undefined : text)
    }, (e: unknown) => {
      this.#o.logger.error({ err: e }, 'metrics failed')
      plain(res, 500, 'metrics failed\n')
    })
  }

  #record (operation: string, ep: Endpoint, micros: number, requestBytes: number, responseBytes: number, faultCode: string | undefined): void {
    this.#o.metrics?.record({ operation: operation === '?' ? 'unknown' : operation, transport: ep.protocol, micros, requestBytes, responseBytes, faultCode })
  }

  /** Drops connections beyond the per-peer limit as soon as they arrive (before any TLS handshake). */
  #limitPeers (server: Server): void {
    const perPeer = new Map<string, number>()
    const max = this.#limits.maxConnectionsPerPeer
    server.on('connection', (socket: Socket) => {
      const peer = socket.remoteAddress
      if (peer === undefined) return
      const n = (perPeer.get(peer) ?? 0) + 1
      if (n > max) {
        this.#o.logger.debug({ peer }, 'connection over the per-peer limit dropped')
        socket.destroy()
        return
      }
      perPeer.set(peer, n)
      socket.once('close', () => { const m = (perPeer.get(peer) ?? 1) - 1; if (m <= 0) perPeer.delete(peer); else perPeer.set(peer, m) })
    })
  }

  /** Closes the listening sockets only: connections already open keep being served (a fault to inject, or a step of a handover). */
  stopListening (): void {
    for (const { server } of this.#servers) server.close()
  }

  /** Stops taking work: listeners close, calls on open connections get DOMAIN_DRAINING, in-flight calls finish (up to graceMs). */
  async close (graceMs = 10_000): Promise<void> {
    this.#draining = true
    const closed = this.#servers.map(({ server }) => new Promise<void>((resolve) => { server.close(() => { resolve() }) }))
    for (const { server } of this.#servers) server.closeIdleConnections()
    if (this.#inFlight > 0) {
      await Promise.race([
        new Promise<void>((resolve) => { this.#drained = resolve }),
        new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
      ])
    }
    for (const { server } of this.#servers) server.closeAllConnections()
    await Promise.all(closed)
    for (const { endpoint } of this.#servers) {
      if (endpoint.protocol === 'unix') try { unlinkSync(endpoint.socketPath!) } catch { /* already gone */ }
    }
  }

  #handle (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    if (path === '/metrics' && this.#o.metrics !== undefined && (req.method === 'GET' || req.method === 'HEAD')) { this.#serveMetrics(req, res, ep); return }
    if (path !== this.#o.path) { plain(res, 404, `no service at ${path}; this domain serves ${this.#o.path}\n`); return }
    if (req.method === 'GET') {
      // `?wsdl`, and WCF's `?singleWsdl` (the schemas are inline, so it is the same document).
      const query = q < 0 ? '' : url.slice(q + 1).toLowerCase()
      if (query === 'wsdl' || query === 'singlewsdl') { this.#serveWsdl(req, res, ep); return }
      plain(res, 200, `${this.#o.descriptor.name}: POST SOAP 1.1 or 1.2 messages here; the contract is at ${this.#o.path}?wsdl\n`)
      return
    }
    if (req.method !== 'POST') { res.setHeader('Allow', 'GET, POST'); plain(res, 405, 'use POST for SOAP, GET ?wsdl for the contract\n'); return }
    const requestId = requestIdOf(req.headers['x-request-id'])
    res.setHeader(REQUEST_ID_HEADER, requestId)
    const contentType = req.headers['content-type'] ?? ''
    const guess: SoapVersion = /application\/soap\+xml/i.test(contentType) ? '1.2' : '1.1'
    const declared = Number(req.headers['content-length'] ?? '0')
    if (declared > this.#limits.maxMessageBytes) {
      res.setHeader('Connection', 'close')
      const sent = this.#sendFault(res, guess, undefined, new MetaosError('MESSAGE_TOO_LARGE', `message of ${declared} bytes is over the limit of ${this.#limits.maxMessageBytes}`), 0n, 413)
      this.#record('?', ep, 0, 0, sent, 'MESSAGE_TOO_LARGE')
      req.resume()
      return
    }
    // Request bytes held in memory are bounded across all connections and per peer address: past
    // either budget, refuse (503) rather than grow. What is counted is what is held: the buffer
    // preallocated for a small declared body, else the bytes received so far — a peer declaring a
    // large body and trickling it holds (and is charged) only what it really sent.
    const peer = req.socket.remoteAddress ?? ''
    const whole = declared > 0 && declared <= PREALLOCATE_MAX && Number.isSafeInteger(declared) ? declared : 0
    const overBudget = (n: number): string | undefined => {
      if (this.#buffered + n > this.#limits.maxBufferedBytes) return `the domain holds ${this.#buffered} request bytes, its limit`
      if (peer !== '' && (this.#bufferedByPeer.get(peer) ?? 0) + n > this.#limits.maxBufferedBytesPerPeer) return `${peer} has ${this.#bufferedByPeer.get(peer) ?? 0} request bytes in flight, its limit`
      return undefined
    }
    const refuse = (why: string): void => {
      res.setHeader('Connection', 'close')
      const sent = this.#sendFault(res, guess, undefined, new MetaosError('QUOTA_EXCEEDED', `${why}; retry later`), 0n, 503)
      this.#record('?', ep, 0, 0, sent, 'QUOTA_EXCEEDED')
      this.#o.logger.debug({ reqId: requestId, peer, why }, 'request refused: buffered bytes over budget')
      res.once('finish', () => { req.destroy() })
    }
    const initial = overBudget(whole)
    if (initial !== undefined) { refuse(initial); req.resume(); return }
    let buffered = 0
    const charge = (n: number): void => {
      buffered += n
      this.#buffered += n
      if (peer !== '') {
        const m = (this.#bufferedByPeer.get(peer) ?? 0) + n
        if (m <= 0) this.#bufferedByPeer.delete(peer)
        else this.#bufferedByPeer.set(peer, m)
      }
    }
    charge(whole)
    // Requests already arriving when the drain starts are finished; only later ones are refused.
    const lateArrival = this.#draining
    this.#inFlight++
    let counted = true
    const done = (): void => { if (counted) { counted = false; charge(-buffered); this.#done() } }
    // With a Content-Length the body is copied into one buffer as it arrives (while waiting for the
    // rest), instead of concatenated after the last chunk, on the call's critical path. Only up to
    // PREALLOCATE_MAX: a peer that declares a large body and sends nothing must not cost memory.
    const wholeBuf = whole > 0 ? Buffer.allocUnsafe(whole) : undefined
    const chunks: Buffer[] = []
    let size = 0
    let tooLarge = false
    let refused = false
    let ended = false
    req.on('data', (c: Buffer) => {
      if (tooLarge || refused) return
      if (size + c.length > this.#limits.maxMessageBytes || (wholeBuf !== undefined && size + c.length > wholeBuf.length)) { tooLarge = true; chunks.length = 0; return }
      if (wholeBuf === undefined) {
        const why = overBudget(c.length)
        if (why !== undefined) { refused = true; chunks.length = 0; charge(-buffered); refuse(why); return }
        charge(c.length)
        chunks.push(c)
      } else c.copy(wholeBuf, size)
      size += c.length
    })
    // A client that goes away mid-request is no longer in flight.
    req.on('error', () => { if (!ended) done() })
    req.on('close', () => { if (!ended) done() })
    req.on('end', () => {
      ended = true
      const started = process.hrtime.bigint()
      if (refused) { done(); return }
      if (tooLarge) {
        res.setHeader('Connection', 'close')
        const sent = this.#sendFault(res, guess, undefined, new MetaosError('MESSAGE_TOO_LARGE', `message is over the limit of ${this.#limits.maxMessageBytes} bytes`), started, 413)
        this.#record('?', ep, 0, size, sent, 'MESSAGE_TOO_LARGE')
        done()
        return
      }
      const body = wholeBuf !== undefined ? wholeBuf.subarray(0, size) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      this.#dispatch(req, res, ep, contentType, guess, body, started, lateArrival, requestId)
        .catch((e: unknown) => {
          // Never leave a request unanswered, nor a rejection unhandled (that ends the process).
          this.#o.logger.error({ err: e, reqId: requestId }, 'could not answer a request')
          res.destroy()
        })
        .finally(done)
    })
  }

  #done (): void {
    if (--this.#inFlight === 0 && this.#drained !== undefined) this.#drained()
  }

  async #dispatch (req: IncomingMessage, res: ServerResponse, ep: Endpoint, contentType: string, guess: SoapVersion, body: Buffer, started: bigint, lateArrival: boolean, requestId: string): Promise<void> {
    let version = guess
    let addressing: Addressing | undefined
    let operation = '?'
    let release: (() => void) | undefined
    let secured = false
    try {
      let xml: string
      let attachments: ReadonlyMap<string, Buffer> | undefined
      const mtomIn = isMultipartRelated(contentType)
      if (mtomIn) {
        const pkg = parseMultipartRelated(body, contentType)
        xml = pkg.rootXml
        attachments = pkg.attachments
      } else {
        // An encoding error is fatal in XML (1.0 §4.3.3): refuse, do not read U+FFFD into names.
        if (!isUtf8(body)) throw new MetaosError('MALFORMED_MESSAGE', 'the message is not valid UTF-8')
        xml = body.toString('utf8')
      }
      if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1)
      const env = parseEnvelope(xml, this.#limits, this.#understood)
      version = env.version
      addressing = env.addressing
      const entry = this.#byElement.get(`{${env.body.ns}}${env.body.local}`)
      if (entry === undefined) throw new MetaosError('MALFORMED_MESSAGE', `unknown operation {${env.body.ns}}${env.body.local}`)
      operation = entry.name
      if (lateArrival) throw new MetaosError('DOMAIN_DRAINING', 'the domain is shutting down; use another domain of the same volume')
      const peer = req.socket.remoteAddress ?? 'unix'
      let ctx: CallContext
      const auth = this.#o.authenticator
      if (auth !== undefined) {
        // Who it is comes before anything is decoded or touched.
        const principal = auth.authenticate({ transport: ep.protocol, peer, headers: env.headers, ...(ep.protocol === 'https' ? { tls: tlsFacts(req.socket as TLSSocket) } : {}) })
        release = auth.admit(principal, body.length)
        ctx = { caller: auth.ownerOf(principal), operation, principal, requestId }
      } else {
        const callerHeader = env.headers.find((h) => `{${h.ns}}${h.local}` === CALLER_HEADER)?.text.trim()
        ctx = { caller: `${callerHeader !== undefined && callerHeader !== '' ? callerHeader.slice(0, 200) : 'anonymous'}@${peer}`, operation, requestId }
      }
      secured = env.headers.some((h) => h.ns === WSSE_NS && h.local === 'Security')
      const input = entry.input.decode(env.body, attachments === undefined ? {} : { attachments })
      const output = await this.#execute(entry.name, input, ctx)
      const wantMtom = mtomIn || /multipart\/related/i.test(req.headers.accept ?? '')
      const enc: EncodeContext = wantMtom ? { attachments: new Map(), mtomThreshold: 1024 } : {}
      const bodyXml = entry.output.encode(output, enc)
      const micros = (process.hrtime.bigint() - started) / 1000n
      const headerXml = `<${this.#o.timingHeader} xmlns="${this.#o.descriptor.namespace}">${micros}</${this.#o.timingHeader}>` +
        replyAddressing(addressing, `${entry.action}Response`) + (secured ? securityTimestamp() : '')
      const envelope = buildEnvelope(version, headerXml, bodyXml)
      if (this.#draining) res.setHeader('Connection', 'close')
      let sent: number
      if (enc.attachments !== undefined && enc.attachments.size > 0) {
        const pkg = buildMultipartRelated(envelope, SOAP[version].contentType, enc.attachments, version === '1.2' ? `${entry.action}Response` : undefined)
        sent = pkg.length
        res.writeHead(200, { 'Content-Type': pkg.contentType, 'Content-Length': pkg.length, 'MIME-Version': '1.0' })
        if (pkg.length <= 256 * 1024) res.end(Buffer.concat(pkg.chunks, pkg.length)) // one segment
        else { for (const c of pkg.chunks) res.write(c); res.end() }
      } else {
        const buf = Buffer.from(envelope, 'utf8')
        sent = buf.length
        res.writeHead(200, { 'Content-Type': `${SOAP[version].contentType}; charset=utf-8`, 'Content-Length': buf.length })
        res.end(buf)
      }
      this.#o.onCall?.(operation, Number(micros), undefined)
      this.#record(operation, ep, Number(micros), body.length, sent, undefined)
      if (this.#o.logger.isLevelEnabled('debug')) this.#o.logger.debug({ reqId: requestId, operation, caller: callerOf(req, ep), micros: Number(micros), bytesIn: body.length, bytesOut: sent }, 'call')
    } catch (e) {
      const err = e instanceof MetaosError ? e : fromSystemError(e, operation)
      if (err.code === 'IO_ERROR') this.#o.logger.warn({ err: e, operation, reqId: requestId }, 'operation failed')
      else this.#o.logger.debug({ reqId: requestId, code: err.code, operation, msg: err.message }, 'fault')
      if (err.code === 'DOMAIN_DRAINING') res.setHeader('Connection', 'close')
      const sent = this.#sendFault(res, version, addressing, err, started)
      const micros = Number((process.hrtime.bigint() - started) / 1000n)
      this.#o.onCall?.(operation, micros, err.code)
      this.#record(operation, ep, micros, body.length, sent, err.code)
    } finally {
      release?.()
    }
  }

  async #execute (operation: string, input: unknown, ctx: CallContext): Promise<unknown> {
    if (operation === 'Batch' && this.#o.implementation.Batch === undefined) {
      return await runBatch({ outputs: this.#batchOutputs, faultElement: this.#o.faultElement, faultCodes: this.#o.faultCodes ?? FAULT_CODES, maxOps: this.#limits.maxBatchOps },
        (input as { op: Array<Record<string, unknown>> }).op,
        async (name, i) => await this.#execute(name, i, { ...ctx, operation: name }))
    }
    const fn = this.#o.implementation[operation]
    if (fn === undefined) throw new MetaosError('MALFORMED_MESSAGE', `operation ${operation} is not implemented by this domain`)
    return await fn(input, ctx)
  }

  /** Sends the fault; returns the bytes of its body (0 when the response could not be sent). */
  #sendFault (res: ServerResponse, version: SoapVersion, addressing: Addressing | undefined, err: MetaosError, started: bigint, status?: number): number {
    const soapCode = err instanceof EnvelopeError ? err.soapCode : undefined
    const code = err.code
    // Only the contract's fault codes go on the wire; a frontend-side code (never expected here) becomes IO_ERROR.
    const faultCode = (this.#o.faultCodes ?? FAULT_CODES as readonly string[]).includes(code) ? code : 'IO_ERROR'
    const message = toXmlSafeText(err.message)
    const detailXml = `<${this.#o.faultElement} xmlns="${this.#o.descriptor.namespace}"><code>${faultCode}</code><message>${escapeXml(message)}</message></${this.#o.faultElement}>`
    const micros = started === 0n ? 0n : (process.hrtime.bigint() - started) / 1000n
    const headerXml = `<${this.#o.timingHeader} xmlns="${this.#o.descriptor.namespace}">${micros}</${this.#o.timingHeader}>` +
      replyAddressing(addressing, faultAction(addressing))
    const xml = buildEnvelope(version, headerXml, buildFaultBody(version, { code: faultCode, message, soapCode, detailXml }))
    const buf = Buffer.from(xml, 'utf8')
    if (res.headersSent) { res.destroy(); return 0 }
    res.writeHead(status ?? faultStatus(), { 'Content-Type': `${SOAP[version].contentType}; charset=utf-8`, 'Content-Length': buf.length })
    res.end(buf)
    return buf.length
  }

  #serveWsdl (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    // The address is the one the request came in on (Host header), so importers call back the same way.
    const host = req.headers.host
    const address = ep.protocol === 'unix' || host === undefined
      ? formatEndpoint({ ...ep, path: this.#o.path })
      : `${ep.protocol}://${host}${this.#o.path}`
    const text = this.#wsdlParts === undefined
      ? this.#o.wsdl
      : this.#wsdlParts[0] + escapeXml(address) + this.#wsdlParts[1] + escapeXml(address) + this.#wsdlParts[2]
    const buf = Buffer.from(text, 'utf8')
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': buf.length })
    res.end(buf)
  }
}

const tlsCache = new WeakMap<TLSSocket, NonNullable<CallCredentials['tls']>>()
/** The TLS layer's verdict on the client's certificate, once per connection. */
function tlsFacts (socket: TLSSocket): NonNullable<CallCredentials['tls']> {
  let f = tlsCache.get(socket)
  if (f === undefined) {
    const cert = socket.getPeerCertificate()
    const err = socket.authorizationError as unknown
    f = { authorized: socket.authorized, error: err === null || err === undefined ? undefined : String((err as Error).message ?? err), certificate: cert === null || Object.keys(cert).length === 0 ? undefined : cert }
    tlsCache.set(socket, f)
  }
  return f
}

/** A fresh wsu:Timestamp in a wsse:Security header: WS-Security clients (WCF) expect one back. */
function securityTimestamp (): string {
  const now = Date.now()
  return `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="${WSU_NS}"><wsu:Timestamp wsu:Id="_0">` +
    `<wsu:Created>${new Date(now).toISOString()}</wsu:Created><wsu:Expires>${new Date(now + 300_000).toISOString()}</wsu:Expires>` +
    '</wsu:Timestamp></wsse:Security>'
}

/** Where a call came from, for its debug log line. */
function callerOf (req: IncomingMessage, ep: Endpoint): string {
  return ep.protocol === 'unix' ? 'unix' : req.socket.remoteAddress ?? '?'
}

function plain (res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

/** A socket file left by a crashed domain is removed; one a live domain listens on is an error. */
export async function removeStaleSocket (path: string): Promise<void> {
  let st
  try { st = lstatSync(path) } catch { return }
  if (!st.isSocket()) throw new MetaosError('ALREADY_EXISTS', `${path} exists and is not a socket; refusing to replace it`)
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
  if (live) throw new MetaosError('ALREADY_EXISTS', `another process is listening on ${path}`)
  unlinkSync(path)
}
