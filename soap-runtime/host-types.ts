// What a served call and its host are made of, shared by the dispatcher, its inspectors and the
// listeners: the call's context as an implementation sees it, who is calling and how that is
// proven, the implementation's shape, TLS material and the host's limits. Types and defaults only.
import type { PeerCertificate } from 'node:tls'
import { DEFAULT_XML_LIMITS, type XmlElement } from './xml.js'
import type { ServiceDescriptor } from './descriptor.js'
import type { OutboundEnvelope } from './nbfx/envelope-writer.js'

/** How a call reached the host: a listener's transport (HTTP ones, [MC-NMF] framed ones), or `memory` (an in-process transport, no socket). */
export type CallTransport = 'http' | 'https' | 'unix' | 'net.uds' | 'net.tcp' | 'memory'

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
  /** The framed session (net.uds, net.tcp) the call came on: the service may call the caller back on it. Undefined over HTTP. */
  readonly session?: SessionChannel
}

/** A one-way message to a caller on its session: as XML for a text session, as a value for a binary one. */
export interface CallbackMessage {
  /** The SOAP 1.2 envelope as UTF-8 XML (made only when the session's encoding is text). */
  readonly xml: () => Buffer
  /** The same envelope as a value, written with the descriptor's codecs (a binary session). */
  readonly value: OutboundEnvelope
  readonly descriptor: ServiceDescriptor
}

/**
 * The caller's side of a framed duplex session, as a service sees it (WCF's callback channel): it
 * sends one-way messages to the caller, and tells when the session is gone.
 */
export interface SessionChannel {
  /** Sends a one-way message to the caller, after everything sent before, in the session's encoding; false when the session is over. */
  send: (m: CallbackMessage) => boolean
  /** Bytes written to the session and not yet taken by the operating system (what the domain holds for a slow caller). */
  readonly pendingBytes: number
  /** Runs `fn` once, when the bytes pending were written out (the caller reads again), or the session is over. */
  whenDrained: (fn: () => void) => void
  /** False once the session ended, failed or closed. */
  readonly open: boolean
  /** Runs `fn` once, when the session is over (at once if it already is). */
  onClose: (fn: () => void) => void
  /** While held, an idle session is not ended (something still calls the caller back); call the result to let go. */
  hold: () => () => void
}

/** An authenticated caller; an authenticator's own type may carry more (grants). */
export interface Principal {
  readonly name: string
  readonly via: string
}

/** What the TLS layer made of a client's certificate (verified against the host's client CA and CRL). */
export interface TlsFacts {
  readonly authorized: boolean
  readonly error: string | undefined
  readonly certificate: PeerCertificate | undefined
}

/** What a call brings to prove who it is. */
export interface CallCredentials {
  readonly transport: CallTransport
  /** The peer's IP address, or "unix". */
  readonly peer: string
  /** For https: what the TLS layer made of the client's certificate. */
  readonly tls?: TlsFacts
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

/** The operations a service's shape names, each with its input and output. */
export type OperationsShape<T> = { [K in keyof T]: { input: unknown, output: unknown } }

/**
 * An implementation: one async function per operation, by operation name. Untyped by default (what
 * the domains pass); `Implementation<StorageOperations>` types each input and output and may leave
 * operations out. An operation left out is answered with a fault (Batch is run by the dispatcher
 * when not implemented).
 */
export type Implementation<Ops extends OperationsShape<Ops> = Record<string, { input: unknown, output: unknown }>> =
  string extends keyof Ops
    ? Readonly<Record<string, (input: any, ctx: CallContext) => Promise<unknown>>> // eslint-disable-line @typescript-eslint/no-explicit-any
    : { readonly [K in keyof Ops]?: (input: Ops[K]['input'], ctx: CallContext) => Promise<Ops[K]['output']> }

/** What a host serves: any Implementation, typed or not. */
export type AnyImplementation = { readonly [operation: string]: ((input: any, ctx: CallContext) => Promise<unknown>) | undefined } // eslint-disable-line @typescript-eslint/no-explicit-any

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
  /** A framed session (net.uds, net.tcp) with no call in flight and no bytes received this long is ended (an End record). */
  sessionIdleTimeoutMs: number
  /** Calls in flight on one framed session: past it the session's socket is not read until one ends. */
  maxCallsPerSession: number
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
  sessionIdleTimeoutMs: 120_000,
  maxCallsPerSession: 1024,
}
