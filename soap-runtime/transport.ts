// What a client transport is: it moves one request's bytes to a service and its answer's bytes back,
// knowing nothing of SOAP. Two come with the runtime: HTTP (http-transport.ts: TCP, TLS, Unix
// socket) and in-memory (memory-transport.ts: straight to a dispatcher, no socket).

export interface TransportResponse {
  readonly status: number
  readonly contentType: string
  readonly body: Buffer
  /** The request id the peer echoed (`X-Request-Id`), if any. */
  readonly requestId?: string
}

export interface TransportRequest {
  readonly chunks: readonly Buffer[]
  readonly length: number
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
}

export interface Transport {
  /** The endpoint in its canonical form (`http://…`, `http+unix://…`, `memory:…`). */
  readonly address: string
  send: (req: TransportRequest) => Promise<TransportResponse>
  close: () => Promise<void>
}
