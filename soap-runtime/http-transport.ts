// Client transport: HTTP/1.1 with keep-alive and a bounded connection pool, over TCP (http:) or
// a Unix domain socket (the co-hosted bus). Moves bytes only; knows nothing of SOAP.
import { Agent, request } from 'node:http'
import { MetaosError } from './errors.js'
import { formatEndpoint, parseEndpoint, type Endpoint } from './endpoint.js'

export interface TransportResponse {
  readonly status: number
  readonly contentType: string
  readonly body: Buffer
}

export interface TransportRequest {
  readonly chunks: readonly Buffer[]
  readonly length: number
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
}

export interface Transport {
  /** The endpoint in its canonical form (`http://…` or `http+unix://…`). */
  readonly address: string
  send: (req: TransportRequest) => Promise<TransportResponse>
  close: () => Promise<void>
}

export interface HttpTransportOptions {
  /** Most connections kept to this endpoint (default 16). */
  readonly maxSockets?: number
  /** Largest response accepted (default 256 MiB). */
  readonly maxResponseBytes?: number
}

export function createHttpTransport (url: string, defaultPath: string, options: HttpTransportOptions = {}): Transport {
  const ep: Endpoint = parseEndpoint(url, defaultPath)
  if (ep.protocol === 'https') throw new MetaosError('INVALID_ARGUMENT', 'https endpoints arrive with the security work (issue 9)')
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 16, keepAliveMsecs: 10_000 })
  const maxResponse = options.maxResponseBytes ?? 256 * 1024 * 1024
  const address = formatEndpoint(ep)
  const base = ep.protocol === 'unix'
    ? { socketPath: ep.socketPath, path: ep.path, host: 'localhost' }
    : { host: ep.host, port: ep.port, path: ep.path }
  return {
    address,
    send: async (r) => await new Promise<TransportResponse>((resolve, reject) => {
      const req = request({ ...base, agent, method: 'POST', headers: { ...r.headers, 'Content-Length': String(r.length) } }, (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > maxResponse) { req.destroy(new MetaosError('PROTOCOL_ERROR', `response over ${maxResponse} bytes`)); return }
          chunks.push(c)
        })
        res.on('end', () => {
          resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] ?? '', body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size) })
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

function toTransportError (e: unknown, address: string): MetaosError {
  if (e instanceof MetaosError) return e
  const code = (e as NodeJS.ErrnoException).code ?? 'error'
  return new MetaosError('TRANSPORT_ERROR', `${address}: ${code}`, { cause: e })
}
