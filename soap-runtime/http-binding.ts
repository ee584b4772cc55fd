// SOAP over HTTP, the host's side: routes a listener's requests (POST to the service path → the
// dispatcher; GET ?wsdl → the contract; GET /metrics), reads each request body within the size
// limit and the memory budget (refusing with a fault, 413 or 503, rather than growing), gives each
// call its request id (echoed in X-Request-Id), counts the calls in flight for the drain, and
// writes the dispatcher's answer.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { InboundMessage, MessageDispatcher, OutboundMessage } from './dispatcher.js'
import { formatEndpoint, isLoopbackHost, type Endpoint } from './endpoint.js'
import { MetaosError } from './errors.js'
import type { HostLimits } from './host-types.js'
import type { MessageOrigin } from './inspectors.js'
import { tlsFacts } from './listeners.js'
import { RequestBudget } from './request-budget.js'
import { REQUEST_ID_HEADER, requestIdOf } from './request-id.js'
import type { WsdlPublisher } from './wsdl-publisher.js'

export interface HttpBindingOptions {
  readonly dispatcher: MessageDispatcher
  /** HTTP path the service answers on, e.g. `/storage`. */
  readonly path: string
  readonly wsdl: WsdlPublisher
  readonly limits: HostLimits
  readonly logger: Logger
  /** Served at GET /metrics. */
  readonly metrics?: { text: () => Promise<string>, readonly contentType: string } | undefined
  /** Calls must authenticate: GET /metrics is then served only on unix and loopback http listeners. */
  readonly authenticated: boolean
}

const PREALLOCATE_MAX = 2 * 1024 * 1024

export class HttpBinding {
  readonly #o: HttpBindingOptions
  readonly #budget: RequestBudget
  #inFlight = 0
  #draining = false
  #drained: (() => void) | undefined

  constructor (o: HttpBindingOptions) {
    this.#o = o
    this.#budget = new RequestBudget(o.limits.maxBufferedBytes, o.limits.maxBufferedBytesPerPeer)
  }

  get inFlight (): number { return this.#inFlight }
  get draining (): boolean { return this.#draining }

  /** From now on calls get DOMAIN_DRAINING (those already arriving are finished) and connections close after their answer. */
  startDrain (): void { this.#draining = true }

  /** Resolves when no call is in flight, or after graceMs. */
  async settle (graceMs: number): Promise<void> {
    if (this.#inFlight === 0) return
    await Promise.race([
      new Promise<void>((resolve) => { this.#drained = resolve }),
      new Promise<void>((resolve) => setTimeout(resolve, graceMs).unref()),
    ])
  }

  /** A listener's request; `ep` is the endpoint it listens on. */
  handle (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    const url = req.url ?? '/'
    const q = url.indexOf('?')
    const path = q < 0 ? url : url.slice(0, q)
    const o = this.#o
    if (path === '/metrics' && o.metrics !== undefined && (req.method === 'GET' || req.method === 'HEAD')) { this.#serveMetrics(req, res, ep); return }
    if (path !== o.path) { plain(res, 404, `no service at ${path}; this domain serves ${o.path}\n`); return }
    if (req.method === 'GET') {
      // `?wsdl`, and WCF's `?singleWsdl` (the schemas are inline, so it is the same document).
      const query = q < 0 ? '' : url.slice(q + 1).toLowerCase()
      if (query === 'wsdl' || query === 'singlewsdl') { this.#serveWsdl(req, res, ep); return }
      plain(res, 200, `${o.dispatcher.descriptor.name}: POST SOAP 1.1 or 1.2 messages here; the contract is at ${o.path}?wsdl\n`)
      return
    }
    if (req.method !== 'POST') { res.setHeader('Allow', 'GET, POST'); plain(res, 405, 'use POST for SOAP, GET ?wsdl for the contract\n'); return }
    this.#post(req, res, ep)
  }

  #post (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    const { dispatcher, limits, logger } = this.#o
    // The four headers read, from the raw list (req.headers would build an object of all of them).
    const h = readHeaders(req.rawHeaders)
    const requestId = requestIdOf(h.requestId)
    const contentType = h.contentType
    // One shape for every request (no spreads on the hot path).
    const origin: MessageOrigin & { contentType: string } = {
      requestId, transport: ep.protocol, peer: req.socket.remoteAddress ?? 'unix', tls: ep.protocol === 'https' ? () => tlsFacts(req.socket as TLSSocket) : undefined, contentType,
    }
    const declared = Number(h.contentLength)
    if (declared > limits.maxMessageBytes) {
      res.setHeader('Connection', 'close')
      this.#send(res, requestId, dispatcher.reject(origin, new MetaosError('MESSAGE_TOO_LARGE', `message of ${declared} bytes is over the limit of ${limits.maxMessageBytes}`), 413))
      req.resume()
      return
    }
    // Request bytes held in memory are bounded across all connections and per peer address: past
    // either budget, refuse (503) rather than grow. What is counted is what is held: the buffer
    // preallocated for a small declared body, else the bytes received so far — a peer declaring a
    // large body and trickling it holds (and is charged) only what it really sent.
    const peer = req.socket.remoteAddress ?? ''
    const whole = declared > 0 && declared <= PREALLOCATE_MAX && Number.isSafeInteger(declared) ? declared : 0
    const refuse = (why: string): void => {
      res.setHeader('Connection', 'close')
      this.#send(res, requestId, dispatcher.reject(origin, new MetaosError('QUOTA_EXCEEDED', `${why}; retry later`), 503))
      logger.debug({ reqId: requestId, peer, why }, 'request refused: buffered bytes over budget')
      res.once('finish', () => { req.destroy() })
    }
    const initial = this.#budget.over(peer, whole)
    if (initial !== undefined) { refuse(initial); req.resume(); return }
    let buffered = 0
    const charge = (n: number): void => { buffered += n; this.#budget.charge(peer, n) }
    charge(whole)
    // Requests already arriving when the drain starts are finished; only later ones are refused.
    const late = this.#draining
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
      if (size + c.length > limits.maxMessageBytes || (wholeBuf !== undefined && size + c.length > wholeBuf.length)) { tooLarge = true; chunks.length = 0; return }
      if (wholeBuf === undefined) {
        const why = this.#budget.over(peer, c.length)
        if (why !== undefined) { refused = true; chunks.length = 0; charge(-buffered); refuse(why); return }
        charge(c.length)
        chunks.push(c)
      } else c.copy(wholeBuf, size)
      size += c.length
    })
    // A client that goes away mid-request is no longer in flight ('close' follows an error too;
    // without an 'error' listener an IncomingMessage emits none).
    req.on('close', () => { if (!ended) done() })
    req.on('end', () => {
      ended = true
      if (refused) { done(); return }
      if (tooLarge) {
        res.setHeader('Connection', 'close')
        this.#send(res, requestId, dispatcher.reject(origin, new MetaosError('MESSAGE_TOO_LARGE', `message is over the limit of ${limits.maxMessageBytes} bytes`), 413, size, process.hrtime.bigint()))
        done()
        return
      }
      const body = wholeBuf !== undefined ? wholeBuf.subarray(0, size) : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
      this.#dispatch(res, { requestId, transport: origin.transport, peer: origin.peer, tls: origin.tls, contentType, body, accept: h.accept, late }, done)
    })
  }

  #dispatch (res: ServerResponse, m: InboundMessage, done: () => void): void {
    this.#o.dispatcher.dispatch(m)
      .then((out) => {
        if (out.faultCode === undefined ? this.#draining : out.faultCode === 'DOMAIN_DRAINING') res.setHeader('Connection', 'close')
        this.#send(res, m.requestId, out)
      })
      .catch((e: unknown) => {
        // Never leave a request unanswered, nor a rejection unhandled (that ends the process).
        this.#o.logger.error({ err: e, reqId: m.requestId }, 'could not answer a request')
        res.destroy()
      })
      .finally(done)
  }

  #done (): void {
    if (--this.#inFlight === 0 && this.#drained !== undefined) this.#drained()
  }

  #send (res: ServerResponse, requestId: string, out: OutboundMessage): void {
    if (res.headersSent) { res.destroy(); return }
    // Headers as a flat list: node:http stores them as they are, with no header object to fill.
    if (!out.multipart) {
      res.writeHead(out.status, ['Content-Type', out.contentType, 'Content-Length', String(out.length), REQUEST_ID_HEADER, requestId])
      res.end(out.chunks[0])
      return
    }
    res.writeHead(out.status, ['Content-Type', out.contentType, 'Content-Length', String(out.length), REQUEST_ID_HEADER, requestId, 'MIME-Version', '1.0'])
    if (out.length <= 256 * 1024) res.end(Buffer.concat(out.chunks as Buffer[], out.length)) // one segment
    else { for (const c of out.chunks) res.write(c); res.end() }
  }

  /**
   * GET /metrics. A domain that demands authentication serves them only on its unix listeners and
   * plain-http loopback listeners (this machine's own); its https listeners are what remote callers
   * reach, and a scrape brings no credentials.
   */
  #serveMetrics (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    const metrics = this.#o.metrics!
    if (this.#o.authenticated && !(ep.protocol === 'unix' || (ep.protocol === 'http' && isLoopbackHost(ep.host!)))) {
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

  #serveWsdl (req: IncomingMessage, res: ServerResponse, ep: Endpoint): void {
    // The address is the one the request came in on (Host header), so importers call back the same way.
    const host = req.headers.host
    const path = this.#o.path
    const address = ep.protocol === 'unix' || host === undefined ? formatEndpoint({ ...ep, path }) : `${ep.protocol}://${host}${path}`
    const buf = Buffer.from(this.#o.wsdl.at(address), 'utf8')
    res.writeHead(200, { 'Content-Type': 'text/xml; charset=utf-8', 'Content-Length': buf.length })
    res.end(buf)
  }
}

/** The request headers the binding reads, from node:http's raw list (names in any case; the first of each, as node:http keeps them). */
function readHeaders (raw: readonly string[]): { requestId: string | undefined, contentType: string, contentLength: string, accept: string | undefined } {
  let requestId: string | undefined
  let contentType: string | undefined
  let contentLength: string | undefined
  let accept: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!
    switch (k.length) {
      case 6: if (accept === undefined && k.toLowerCase() === 'accept') accept = raw[i + 1]; break
      case 12: {
        const l = k.toLowerCase()
        if (l === 'content-type') contentType ??= raw[i + 1]
        else if (l === 'x-request-id') requestId ??= raw[i + 1]
        break
      }
      case 14: if (contentLength === undefined && k.toLowerCase() === 'content-length') contentLength = raw[i + 1]; break
    }
  }
  return { requestId, contentType: contentType ?? '', contentLength: contentLength ?? '0', accept }
}

function plain (res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}
