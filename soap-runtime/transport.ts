// What a client transport is: it moves one request's bytes to a service and its answer's bytes back,
// knowing nothing of SOAP. Three come with the runtime: HTTP (http-transport.ts: TCP, TLS, Unix
// socket), in-memory (memory-transport.ts: straight to a dispatcher, no socket) and framed
// sessions (nmf/client-transport.ts: [MC-NMF] on a Unix socket or TCP), which correlate replies by
// WS-Addressing and so say what the envelope must carry (`framing`). A framed transport with a
// binary encoding takes the envelope as a value and gives the reply back as an element tree
// (`framing.tree`): no XML text on that path.
import type { ServiceDescriptor } from './descriptor.js'
import type { OutboundEnvelope } from './nbfx/envelope-writer.js'
import type { XmlElement } from './xml.js'

export interface TransportResponse {
  readonly status: number
  readonly contentType: string
  readonly body: Buffer
  /** framing.tree: the reply's Envelope element (`body` is then the record's payload as it came). */
  readonly tree?: XmlElement
  /** The request id the peer echoed (`X-Request-Id`), if any. */
  readonly requestId?: string
}

export interface TransportRequest {
  readonly chunks: readonly Buffer[]
  readonly length: number
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
  /** The request's WS-Addressing MessageID: a framed transport matches the reply's RelatesTo with it. */
  readonly messageId?: string
  /** framing.tree: the envelope as a value, its elements written by the descriptor's codecs (`chunks` are then empty). */
  readonly envelope?: { readonly value: OutboundEnvelope, readonly descriptor: ServiceDescriptor }
}

export interface Transport {
  /** The endpoint in its canonical form (`http://…`, `http+unix://…`, `memory:…`). */
  readonly address: string
  /**
   * A framed transport's needs: SOAP 1.2 envelopes with WS-Addressing 1.0 (Action, MessageID, To),
   * no MTOM; `tree`: requests as values (`envelope`), replies as element trees (binary encodings).
   */
  readonly framing?: { readonly soapVersion: '1.2', readonly addressing: true, readonly tree?: boolean }
  send: (req: TransportRequest) => Promise<TransportResponse>
  close: () => Promise<void>
}
