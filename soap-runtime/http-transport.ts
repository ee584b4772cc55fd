// Client transport: HTTP/1.1 with keep-alive and a bounded connection pool, over TCP (http:),
// TLS (https:, the server verified against the configured CA, optionally with a client
// certificate and a pinned identity) or a Unix domain socket (the co-hosted bus). http: and unix:
// go through the lean client of http1-connection.ts; https: through node:https. Moves bytes
// only; knows nothing of SOAP.
import { Agent, request } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { checkServerIdentity, type PeerCertificate } from 'node:tls'
import { MetaosError } from './errors.js'
import { formatEndpoint, parseEndpoint, type Endpoint } from './endpoint.js'
import type { Http1Pool } from './http1-connection.js'
import type { Transport, TransportResponse } from './transport.js'

export type { Transport, TransportRequest, TransportResponse } from './transport.js'

export interface ClientTls {
  /** CA(s) a domain's certificate must chain to (PEM). Without it, the system's CAs. */
  readonly ca?: string | Buffer
  /** Client certificate and key for mutual TLS. */
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  /** The certificate must also name this URI (a domain's EPR, `urn:uuid:…`) in its subjectAltName. */
  readonly expectUri?: string
}

export interface HttpTransportOptions {
  /** Most connections kept to this endpoint (default 16). */
  readonly maxSockets?: number
  /** Largest response accepted (default 256 MiB). */
  readonly maxResponseBytes?: number
  /** For https: endpoints. */
  readonly tls?: ClientTls
}

/** The URIs of a certificate's subjectAltName. */
export function certificateUris (cert: PeerCertificate): string[] {
  const san = cert.subjectaltname ?? ''
  return san.split(/,\s*/).filter((e) => e.startsWith('URI:')).map((e) => e.slice(4))
}

export function createHttpTransport (url: string, defaultPath: string, options: HttpTransportOptions = {}): Transport {
  const ep: Endpoint = parseEndpoint(url, defaultPath)
  const secure = ep.protocol === 'https'
  if (!secure) return plainTransport(ep, options)
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 16, keepAliveMsecs: 10_000 }
  const tls = options.tls
  const agent = secure
    ? new HttpsAgent({
      ...agentOptions,
      ...(tls?.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls?.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
      checkServerIdentity: (host, cert) => {
        const e = checkServerIdentity(host, cert)
        if (e !== undefined) return e
        if (tls?.expectUri !== undefined && !certificateUris(cert).includes(tls.expectUri)) {
          return Object.assign(new Error(`the certificate of ${host} does not name ${tls.expectUri} (it names ${certificateUris(cert).join(', ') || 'no URI'})`), { code: 'ERR_TLS_IDENTITY_MISMATCH' })
        }
        return undefined
      },
    })
    : new Agent(agentOptions)
  const send = secure ? httpsRequest : request
  const maxResponse = options.maxResponseBytes ?? 256 * 1024 * 1024
  const address = formatEndpoint(ep)
  const base = { host: ep.host, port: ep.port, path: ep.path }
  return {
    address,
    send: async (r) => await new Promise<TransportResponse>((resolve, reject) => {
      const req = send({ ...base, agent, method: 'POST', headers: { ...r.headers, 'Content-Length': String(r.length) } }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxResponse) { req.destroy(new MetaosError('PROTOCOL_ERROR', `response over ${maxResponse} bytes`)); return }
          chunks.push(c)
        })
        res.on('end', () => {
          const echoed = res.headers['x-request-id']
          resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size), ...(typeof echoed === 'string' ? { requestId: echoed } : {}) })
        })
        res.on('error', (e) => { reject(toTransportError(e, address)) })
      })
      req.setNoDelay(true)
      req.setTimeout(r.timeoutMs, () => { req.destroy(new MetaosError('TIMED_OUT', `${address} did not answer within ${r.timeoutMs} ms`)) })
      req.on('error', (e) => { reject(toTransportError(e, address)) })
      // One write for small packages (one segment instead of several). end() comes only once the
      // body is in the kernel: end(chunk) queues an empty write behind the body, which fails with
      // EPIPE on a Unix socket when the domain has already answered and closed (seen while draining).
      const chunks = r.chunks.length === 1 || r.length > 256 * 1024 ? r.chunks : [Buffer.concat(r.chunks as Buffer[], r.length)]
      for (let i = 0; i < chunks.length - 1; i++) req.write(chunks[i])
      req.write(chunks[chunks.length - 1], (err) => { if (err == null) req.end() })
    }),
    close: async () => { agent.destroy() },
  }
}

/**
 * http: and unix: endpoints: the lean HTTP/1.1 client (http1-connection.ts), loaded with the first
 * call (a program that imports metaos and makes no HTTP call does not load it).
 */
function plainTransport (ep: Endpoint, options: HttpTransportOptions): Transport {
  const maxResponse = options.maxResponseBytes ?? 256 * 1024 * 1024
  const address = formatEndpoint(ep)
  let pool: Http1Pool | undefined
  let loading: Promise<Http1Pool> | undefined
  let closed = false
  const load = async (): Promise<Http1Pool> => await (loading ??= import('./http1-connection.js').then((m) => {
    pool = new m.Http1Pool(ep.protocol === 'unix' ? { socketPath: ep.socketPath! } : { host: ep.host!, port: ep.port! }, ep.path, options.maxSockets ?? 16)
    if (closed) pool.close()
    return pool
  }))
  return {
    address,
    send: async (r) => {
      try {
        const res = await (pool ?? await load()).post(r.headers, r.chunks, r.length, r.timeoutMs, maxResponse, () => new MetaosError('TIMED_OUT', `${address} did not answer within ${r.timeoutMs} ms`))
        return res.requestId === undefined ? { status: res.status, contentType: res.contentType, body: res.body } : { status: res.status, contentType: res.contentType, body: res.body, requestId: res.requestId }
      } catch (e) {
        throw toTransportError(e, address)
      }
    },
    close: async () => { closed = true; pool?.close() },
  }
}

/** A connection's error as the caller sees it: UNAUTHORIZED when the domain's certificate is not trusted, else TRANSPORT_ERROR. */
export function toTransportError (e: unknown, address: string): MetaosError {
  if (e instanceof MetaosError) return e
  const code = (e as NodeJS.ErrnoException).code ?? 'error'
  // The domain could not prove who it is (unknown CA, wrong name, expired, another EPR): not a
  // domain to retry blindly, and what the operator must read.
  if (TLS_IDENTITY_CODES.has(code)) return new MetaosError('UNAUTHORIZED', `${address}: the domain's certificate is not trusted (${code}: ${(e as Error).message})`, { cause: e })
  return new MetaosError('TRANSPORT_ERROR', `${address}: ${code}`, { cause: e })
}

const TLS_IDENTITY_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_TLS_IDENTITY_MISMATCH', 'CERT_UNTRUSTED', 'CERT_REJECTED',
])
