// The framed client transport: one [MC-NMF] duplex session per transport (so one per domain for a
// proxy), on a Unix socket (`net.uds:/path.sock`) or TCP (`net.tcp://HOST:PORT/path`), opened on
// the first call and again after it is lost. Every call is a Sized Envelope record on it: calls
// from many streams are in flight at once, and each reply finds its call by the WS-Addressing
// RelatesTo the service echoes from the call's MessageID. A session lost mid-call fails the calls
// in flight with TRANSPORT_ERROR (as a dropped HTTP connection does, so a dispatcher fails over);
// the next call opens a new one. An idle session is ended (End record) and does not keep the
// process alive. With `tls`, a net.tcp session upgrades to TLS in its preamble (tls-upgrade.ts).
// With `callbacks`, the caller serves a callback contract on the session (as a WCF duplex client
// does): messages without RelatesTo go to it, it hears when a session carrying callbacks is lost,
// and while it expects callbacks the session is neither ended for being idle nor unref'd.
// Moves bytes only; the SOAP client (client.ts) builds and reads the envelopes.
import { connect, type Socket } from 'node:net'
import { formatEndpoint, isFramed, parseEndpoint, type Endpoint } from '../endpoint.js'
import { MetaosError, type ErrorCode } from '../errors.js'
import { toTransportError, type ClientTls } from '../http-transport.js'
import type { Transport, TransportRequest, TransportResponse } from '../transport.js'
import { DEFAULT_XML_LIMITS, type XmlElement } from '../xml.js'
import './binary-encoding.js'
import { encodingByName, firstElementText, headerText, type EncodingSession, type FramedEncoding } from './encoding.js'
import {
  duplexPreamble, END_RECORD, envelopeHeader, FAULT_NS, FramingError, RecordReader, RecordType, stringRecord, type FrameRecord,
} from './records.js'
import { connectTls, SSL_TLS } from './tls-upgrade.js'

export interface FramedTransportOptions {
  /**
   * The envelope encoding: `binary` (the default: [MC-NBFX] with session strings, NetTcpBinding's),
   * `text` (SOAP 1.2 in UTF-8, a customBinding's textMessageEncoding), or another one registered
   * (soap-runtime/nmf/encoding.ts).
   */
  readonly encoding?: string
  /** Largest reply accepted (default 256 MiB). */
  readonly maxResponseBytes?: number
  /** A session with no call for this long is ended; the next call opens another (default 30 s; a domain ends idle sessions after 120 s). */
  readonly idleMs?: number
  /** net.tcp: upgrade each session to TLS (`application/ssl-tls`), the domain verified against `ca` (and `expectUri`); `cert`/`key` for mutual TLS. */
  readonly tls?: ClientTls
  /** The caller's callback contract on the session (pushed messages from the domain). */
  readonly callbacks?: SessionCallbacks
}

/** What a caller serving callbacks on a framed session is told. */
export interface SessionCallbacks {
  /** A message from the domain that is no reply (no RelatesTo): true when it was a callback and is taken. `tree`: the Envelope read from a binary session (`body` then is its record). */
  message: (body: Buffer, tree?: XmlElement) => boolean
  /** The open session is lost (closed, faulted, ended by the domain): callbacks expected on it will not come. */
  lost: (err: MetaosError) => void
  /** True while callbacks are expected: the session is not ended for being idle and keeps the process alive. */
  active: () => boolean
}

/** A transport to a net.uds or net.tcp endpoint. */
export function createFramedTransport (url: string, defaultPath: string, o: FramedTransportOptions = {}): Transport {
  const ep = parseEndpoint(url, defaultPath)
  if (!isFramed(ep)) throw new MetaosError('INVALID_ARGUMENT', `"${url}" is not a net.uds: or net.tcp:// endpoint`)
  if (o.tls !== undefined && ep.protocol !== 'net.tcp') throw new MetaosError('INVALID_ARGUMENT', `${url}: TLS is for net.tcp:// sessions (a net.uds socket is this machine's own)`)
  const address = formatEndpoint(ep)
  const encoding = encodingByName(o.encoding ?? 'binary')
  let session: ClientSession | undefined
  let closed = false
  return {
    address,
    framing: { soapVersion: '1.2', addressing: true, tree: encoding.session().tree === true },
    send: async (r) => {
      if (closed) throw new MetaosError('TRANSPORT_ERROR', `${address}: the transport is closed`)
      if (r.messageId === undefined) throw new MetaosError('INVALID_ARGUMENT', `${address}: a framed transport needs each request's WS-Addressing MessageID`)
      let s = session
      if (s === undefined || !s.usable) {
        const opened = new ClientSession(ep, address, encoding, o, () => { if (session === opened) session = undefined })
        session = s = opened
      }
      return await s.call(r, r.messageId)
    },
    close: async () => {
      closed = true
      await session?.close()
    },
  }
}

interface Pending {
  readonly resolve: (r: TransportResponse) => void
  readonly reject: (e: MetaosError) => void
  readonly timer: NodeJS.Timeout
  size: number
}

const COPY_MAX = 64 * 1024

class ClientSession {
  #s: Socket
  readonly #address: string
  readonly #encoding: FramedEncoding
  readonly #codec: EncodingSession
  readonly #reader: RecordReader
  readonly #pending = new Map<string, Pending>()
  readonly #gone: () => void
  readonly #ready: Promise<void>
  readonly #idleMs: number
  readonly #callbacks: SessionCallbacks | undefined
  #state: 'upgrading' | 'opening' | 'open' | 'ending' | 'closed' = 'opening'
  #acked: (() => void) | undefined
  #refused: ((e: MetaosError) => void) | undefined
  #idle: NodeJS.Timeout | undefined
  #lastUsed = 0

  constructor (ep: Endpoint, address: string, encoding: FramedEncoding, o: FramedTransportOptions, gone: () => void) {
    this.#address = address
    this.#encoding = encoding
    this.#codec = encoding.session()
    this.#gone = gone
    this.#idleMs = o.idleMs ?? 30_000
    this.#callbacks = o.callbacks
    this.#reader = new RecordReader({ maxEnvelopeBytes: o.maxResponseBytes ?? 256 * 1024 * 1024 })
    this.#ready = new Promise<void>((resolve, reject) => { this.#acked = resolve; this.#refused = reject })
    this.#ready.catch(() => {})
    const s = this.#s = ep.protocol === 'net.uds' ? connect(ep.socketPath!) : connect({ host: ep.host!, port: ep.port!, noDelay: true })
    const encodingRecord = Buffer.of(RecordType.KnownEncoding, encoding.known)
    if (o.tls === undefined) s.write(duplexPreamble(address, encodingRecord))
    else {
      this.#state = 'upgrading'
      this.#upgrade = async () => { await this.#secure(ep.host!, o.tls!) }
      s.write(Buffer.concat([duplexPreamble(address, encodingRecord, false), stringRecord(RecordType.UpgradeRequest, SSL_TLS)]))
    }
    this.#attach(s)
  }

  readonly #onDataBound = (chunk: Buffer): void => { this.#onData(chunk) }
  #upgrade: (() => Promise<void>) | undefined

  #attach (s: Socket): void {
    s.on('data', this.#onDataBound)
    s.on('error', (e) => { this.#lose(toTransportError(e, this.#address)) })
    s.on('close', () => { this.#lose(new MetaosError('TRANSPORT_ERROR', `${this.#address}: the session was closed`)) })
  }

  /** After the Upgrade Response: the TLS handshake on the same socket, then Preamble End inside it. */
  async #secure (host: string, tls: ClientTls): Promise<void> {
    const raw = this.#s
    raw.off('data', this.#onDataBound)
    try {
      const secure = await connectTls(raw, host, tls, 10_000)
      if (this.#state !== 'upgrading') { secure.destroy(); return }
      this.#s = secure
      this.#attach(secure)
      this.#state = 'opening'
      secure.write(Buffer.of(RecordType.PreambleEnd))
    } catch (e) {
      this.#lose(toTransportError(e, this.#address))
      raw.destroy()
    }
  }

  /** New calls may go on it. */
  get usable (): boolean { return this.#state === 'upgrading' || this.#state === 'opening' || this.#state === 'open' }

  async call (r: TransportRequest, messageId: string): Promise<TransportResponse> {
    if (this.#pending.has(messageId)) throw new MetaosError('INVALID_ARGUMENT', `${this.#address}: MessageID ${messageId} is already in flight`)
    const reply = new Promise<TransportResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.#pending.delete(messageId)) this.#quiet()
        reject(new MetaosError('TIMED_OUT', `${this.#address} did not answer within ${r.timeoutMs} ms`))
        // A session that could not even open in that time is given up: the next call tries anew.
        if (this.#state === 'opening' || this.#state === 'upgrading') this.#s.destroy()
      }, r.timeoutMs)
      this.#pending.set(messageId, { resolve, reject, timer, size: r.length })
    })
    reply.catch(() => {}) // it may fail while the session opens: awaited below
    if (this.#pending.size === 1) this.#s.ref()
    if (this.#state === 'opening' || this.#state === 'upgrading') {
      try { await this.#ready } catch { return await reply }
    }
    const p = this.#pending.get(messageId)
    if (p === undefined) return await reply // timed out (or lost) while the session opened
    try { p.size = this.#write(r) } catch (e) {
      // Nothing was sent: the value broke the contract (INVALID_ARGUMENT), or the request does not suit the encoding.
      this.#pending.delete(messageId)
      clearTimeout(p.timer)
      this.#quiet()
      throw e
    }
    return await reply
  }

  /** The envelope as a Sized Envelope record, encoded and written at once (a session encoding's state follows the order sent); its size. */
  #write (r: TransportRequest): number {
    const codec = this.#codec
    let p: { readonly chunks: readonly Buffer[], readonly length: number }
    if (codec.tree === true) {
      if (r.envelope === undefined) throw new MetaosError('INVALID_ARGUMENT', `${this.#address}: the ${this.#encoding.name} encoding takes envelopes as values (framing.tree)`)
      p = codec.write(r.envelope.value, r.envelope.descriptor)
    } else {
      if (r.length === 0 && r.envelope !== undefined) throw new MetaosError('INVALID_ARGUMENT', `${this.#address}: the ${this.#encoding.name} encoding takes envelopes as XML`)
      p = codec.encode(r.chunks, r.length)
    }
    const header = envelopeHeader(p.length)
    if (p.length <= COPY_MAX) { this.#s.write(Buffer.concat([header, ...p.chunks], header.length + p.length)); return p.length }
    this.#s.cork()
    this.#s.write(header)
    for (const c of p.chunks) this.#s.write(c)
    this.#s.uncork()
    return p.length
  }

  #onData (chunk: Buffer): void {
    if (this.#state === 'closed') return
    this.#reader.push(chunk)
    try {
      for (let r = this.#reader.next(); r !== undefined && this.usable; r = this.#reader.next()) this.#onRecord(r)
    } catch (e) {
      const why = e instanceof FramingError ? `${e.fault}: ${e.message}` : (e as Error).message
      this.#fail(new MetaosError('PROTOCOL_ERROR', `${this.#address}: the domain broke the framing (${why})`))
    }
  }

  #onRecord (r: FrameRecord): void {
    if (r.type === RecordType.Fault) { this.#faulted(r.text); return }
    if (this.#state === 'upgrading') {
      if (r.type !== RecordType.UpgradeResponse) throw new Error(`record type 0x${r.type.toString(16)} instead of Upgrade Response`)
      void this.#upgrade!()
      return
    }
    if (this.#state === 'opening') {
      if (r.type !== RecordType.PreambleAck) throw new Error(`record type 0x${r.type.toString(16)} instead of Preamble Ack`)
      this.#state = 'open'
      this.#arm()
      this.#acked?.()
      return
    }
    if (r.type === RecordType.SizedEnvelope) { this.#deliver(r.payload); return }
    if (r.type === RecordType.End) {
      // The domain ended the session (idle, draining): calls still waiting will not be answered on it.
      this.#fail(new MetaosError('TRANSPORT_ERROR', `${this.#address}: the domain ended the session`))
      return
    }
    throw new Error(`unexpected record type 0x${r.type.toString(16)}`)
  }

  #deliver (payload: Buffer): void {
    const codec = this.#codec
    // A binary reply that does not decode leaves the session dictionary unknown: the session fails (PROTOCOL_ERROR).
    const tree = codec.tree === true ? codec.read(payload, DEFAULT_XML_LIMITS) : undefined
    const body = codec.tree === true ? payload : codec.decode(payload)
    let id = tree === undefined ? firstElementText(body, 'RelatesTo') : headerText(tree, 'RelatesTo')
    if (id === undefined && this.#callbacks?.message(body, tree) === true) return
    if (id === undefined && this.#pending.size === 1) id = this.#pending.keys().next().value
    if (id === undefined) throw new Error('a reply without RelatesTo while several calls are in flight')
    const p = this.#pending.get(id)
    if (p === undefined) return // the reply of a call that timed out
    this.#pending.delete(id)
    clearTimeout(p.timer)
    this.#quiet()
    p.resolve(tree === undefined ? { status: 200, contentType: this.#encoding.contentType, body } : { status: 200, contentType: this.#encoding.contentType, body, tree })
  }

  /** A framing fault from the domain: every call in flight fails; the largest one with MESSAGE_TOO_LARGE when the fault says so. */
  #faulted (uri: string): void {
    const name = uri.startsWith(FAULT_NS) ? uri.slice(FAULT_NS.length) : uri
    const code: ErrorCode = TRANSIENT_FAULTS.has(name) ? 'TRANSPORT_ERROR' : name === 'EndpointAccessDenied' ? 'UNAUTHORIZED' : 'PROTOCOL_ERROR'
    const err = new MetaosError(code, `${this.#address}: the domain sent the framing fault ${name}`)
    if (name === 'MaxMessageSizeExceededFault') {
      let largest: [string, Pending] | undefined
      for (const e of this.#pending) if (largest === undefined || e[1].size > largest[1].size) largest = e
      if (largest !== undefined) {
        this.#pending.delete(largest[0])
        clearTimeout(largest[1].timer)
        largest[1].reject(new MetaosError('MESSAGE_TOO_LARGE', `${this.#address}: the message of ${largest[1].size} bytes is over the domain's limit (framing fault ${name})`))
      }
      this.#fail(new MetaosError('TRANSPORT_ERROR', `${this.#address}: the session ended with the framing fault ${name} for another call`))
      return
    }
    this.#fail(err)
  }

  /** The session is over with `err`: every call in flight fails with it, the socket closes. */
  #fail (err: MetaosError): void {
    this.#lose(err)
    this.#s.end(END_RECORD)
    setTimeout(() => { this.#s.destroy() }, 1000).unref()
  }

  #lose (err: MetaosError): void {
    if (this.#state === 'closed') return
    // A session retired as idle ('ending') carried no callbacks; one still opening carried none yet.
    const carried = this.#state === 'open'
    this.#state = 'closed'
    clearTimeout(this.#idle)
    this.#gone()
    this.#refused?.(err)
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) { clearTimeout(p.timer); p.reject(err) }
    this.#s.unref()
    if (carried) this.#callbacks?.lost(err)
  }

  /** No call in flight: the socket no longer keeps the process alive, and the idle clock runs. */
  #quiet (): void {
    if (this.#pending.size > 0 || this.#callbacks?.active() === true) return
    this.#lastUsed = performance.now()
    this.#s.unref()
  }

  /** One timer for the idle clock, re-armed when it finds the session used since. */
  #arm (): void {
    this.#lastUsed = performance.now()
    const check = (): void => {
      if (this.#state !== 'open') return
      const left = this.#idleMs - (performance.now() - this.#lastUsed)
      if (this.#pending.size === 0 && left <= 0 && this.#callbacks?.active() !== true) { this.#retire(); return }
      this.#idle = setTimeout(check, Math.max(left, 1000))
      this.#idle.unref()
    }
    this.#idle = setTimeout(check, this.#idleMs)
    this.#idle.unref()
  }

  /** Ends the session gracefully: End record, then the domain answers with its own and closes. */
  #retire (): void {
    if (this.#state !== 'open') return
    this.#state = 'ending'
    this.#gone()
    this.#s.end(END_RECORD)
    setTimeout(() => { this.#s.destroy() }, 2000).unref()
  }

  async close (): Promise<void> {
    const closed = new Promise<void>((resolve) => { if (this.#s.closed) resolve(); else this.#s.once('close', () => { resolve() }) })
    this.#lose(new MetaosError('TRANSPORT_ERROR', `${this.#address}: the transport is closed`))
    this.#s.end(END_RECORD)
    const timer = setTimeout(() => { this.#s.destroy() }, 1000)
    await closed
    clearTimeout(timer)
  }
}

/** Framing faults that say "not here, not now": another domain may take the call. */
const TRANSIENT_FAULTS = new Set(['EndpointNotFound', 'EndpointUnavailable', 'EndpointPaused', 'ServerTooBusy', 'ServiceActivationFailed', 'ConnectionDispatchFailed'])
