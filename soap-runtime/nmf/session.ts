// One framed session, the receiver's side ([MC-NMF] §3.3): reads the preamble (Version 1.x, Mode
// Duplex, a Via naming this service, an encoding this process has, optionally the TLS upgrade
// `application/ssl-tls` when the host has a certificate — tls-upgrade.ts — and required on a
// net.tcp listener beyond loopback), answers Preamble Ack, then hands every Sized
// Envelope record to the host's message dispatcher — the one dispatch path, with its inspectors
// (authentication, budgets, metrics, logging; a binary envelope read into its tree here and answered
// through dispatchTree) — and writes each answer as soon as it is ready, so
// many calls are in flight at once; the caller correlates them by WS-Addressing RelatesTo.
// What a hostile peer can do costs it a Fault record or a closed socket, never unbounded memory:
// sizes over their quota are refused before the payload is read, bytes held count against the
// host's budget, a preamble must end within a deadline, a session idle too long is ended, and past
// maxCallsPerSession calls in flight the socket is not read until one ends.
// The service may call the caller back on the session (SessionChannel, CallContext.session): one-way
// envelopes written between the answers, in the order sent; a session held by such a callback is
// not ended for being idle.
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { Logger } from 'pino'
import type { MessageDispatcher, OutboundMessage } from '../dispatcher.js'
import { MetaosError } from '../errors.js'
import type { CallbackMessage, HostLimits, HostTls, SessionChannel, TlsFacts } from '../host-types.js'
import { tlsFacts } from '../listeners.js'
import type { RequestBudget } from '../request-budget.js'
import { requestIdOf } from '../request-id.js'
import type { OutboundEnvelope } from '../nbfx/envelope-writer.js'
import type { XmlElement } from '../xml.js'
import './binary-encoding.js'
import {
  encodingByContentType, encodingByKnown, firstElementText, headerText, type EncodingSession, type FramedEncoding, type TextEncodingSession, type TreeEncodingSession,
} from './encoding.js'
import {
  END_RECORD, envelopeHeader, faultRecord, FramingError, Mode, PREAMBLE_ACK_RECORD, RecordReader, RecordType, UPGRADE_RESPONSE_RECORD, type FrameRecord,
} from './records.js'
import { acceptTls, SSL_TLS } from './tls-upgrade.js'

export interface SessionContext {
  readonly dispatcher: MessageDispatcher
  readonly limits: HostLimits
  readonly logger: Logger
  readonly transport: 'net.uds' | 'net.tcp'
  /** The service path a net.tcp Via must name (`/storage`). */
  readonly path: string
  readonly budget: RequestBudget
  /** Once the host drains, calls get DOMAIN_DRAINING and a session finishing its preamble EndpointUnavailable. */
  readonly draining: () => boolean
  /** A call starts or ends on some session: the host's calls in flight. */
  readonly started: () => void
  readonly ended: () => void
  /** The host's certificate (it may be renewed): without one, a TLS upgrade is refused. */
  readonly tls: () => HostTls | undefined
  /** The session must upgrade to TLS before its preamble ends (net.tcp beyond loopback). */
  readonly requireTls: boolean
}

type State = 'preamble' | 'open' | 'ending' | 'faulted' | 'closed'

/** Replies larger than this are written in pieces (corked) rather than copied into one buffer. */
const COPY_MAX = 64 * 1024
/** Reading stops while this much of the answers is still queued for the peer (a peer that does not read). */
const WRITE_HIGH_WATER = 8 * 1024 * 1024
/** After a Fault record or an End record: how long the peer has to close its side, and how much it may still send meanwhile. */
const LINGER_MS = 2000
const LINGER_BYTES = 1024 * 1024

export class ServerSession {
  #s: Socket
  readonly #c: SessionContext
  readonly #peer: string
  readonly #budgetPeer: string
  readonly #reader: RecordReader
  #state: State = 'preamble'
  /** Preamble: 0 Version, 1 Mode, 2 Via, 3 encoding, 4 upgrade requests or Preamble End. */
  #step = 0
  #encoding: FramedEncoding | undefined
  #codec: EncodingSession | undefined
  #inFlight = 0
  #inFlightBytes = 0
  #charged = 0
  #paused = false
  #discarded = 0
  #timer: NodeJS.Timeout | undefined
  /** After a TLS upgrade: what TLS made of the client's certificate, for the authenticator. */
  #tlsFacts: (() => TlsFacts) | undefined
  readonly #onDataBound = (chunk: Buffer): void => { this.#onData(chunk) }
  readonly #onDrainBound = (): void => { this.#flow(); this.#drained() }
  readonly #onIdleBound = (): void => { if (this.#inFlight === 0 && this.#holds === 0 && this.#state === 'open') { this.#debug('idle session ended'); this.end() } }
  #holds = 0
  #closers: Array<() => void> | undefined = []
  #drainWaiters: Array<() => void> = []
  /** The caller's callback channel on this session, handed to every call. */
  readonly channel: SessionChannel
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>

  constructor (socket: Socket, c: SessionContext) {
    this.#s = socket
    this.#c = c
    this.#peer = c.transport === 'net.uds' ? 'unix' : socket.remoteAddress ?? 'unknown'
    this.#budgetPeer = c.transport === 'net.uds' ? '' : this.#peer
    this.#reader = new RecordReader({ maxEnvelopeBytes: c.limits.maxMessageBytes })
    this.closed = new Promise((resolve) => { socket.once('close', () => { resolve() }) })
    if (c.transport === 'net.tcp') socket.setNoDelay(true)
    this.#timer = setTimeout(() => { this.#abort('its preamble did not end in time') }, c.limits.headersTimeoutMs)
    this.#attach(socket)
    socket.once('close', () => { this.#onClose() })
    const session = this // eslint-disable-line @typescript-eslint/no-this-alias -- the getters below read this session
    this.channel = {
      send: (m) => this.#push(m),
      get pendingBytes () { return session.#s.writableLength },
      get open () { return (session.#state === 'open' || session.#state === 'ending') && !session.#s.destroyed },
      onClose: (fn) => { if (this.#closers === undefined) fn(); else this.#closers.push(fn) },
      whenDrained: (fn) => { if (this.#closers === undefined || this.#s.writableLength === 0) setImmediate(fn); else this.#drainWaiters.push(fn) },
      hold: () => {
        let held = true
        this.#holds++
        return () => { if (held) { held = false; this.#holds-- } }
      },
    }
  }

  #drained (): void {
    const waiters = this.#drainWaiters
    if (waiters.length === 0) return
    this.#drainWaiters = []
    for (const fn of waiters) fn()
  }

  /** A one-way envelope to the caller (a callback), encoded in the session's order. */
  #push (m: CallbackMessage): boolean {
    if ((this.#state !== 'open' && this.#state !== 'ending') || this.#s.destroyed) return false
    const codec = this.#codec!
    if (codec.tree === true) { this.#send(codec, m.value); return true }
    const xml = m.xml()
    this.#reply({ chunks: [xml], length: xml.length })
    return true
  }

  #attach (socket: Socket): void {
    socket.on('data', this.#onDataBound)
    socket.on('drain', this.#onDrainBound)
    socket.on('timeout', this.#onIdleBound)
    socket.on('error', (e) => { this.#debug(`socket error: ${e.message}`) })
  }

  /** Upgrade Response, then the same socket carries TLS; the preamble goes on inside it. */
  #upgrade (protocol: string): void {
    const tls = this.#c.tls()
    if (protocol !== SSL_TLS) throw new FramingError('UpgradeInvalid', `upgrade to ${JSON.stringify(protocol.slice(0, 100))} refused: this domain upgrades to ${SSL_TLS} only`)
    if (tls === undefined) throw new FramingError('UpgradeInvalid', this.#c.transport === 'net.uds' ? 'no TLS on net.uds: the socket is this machine\'s own' : 'upgrade to TLS refused: this domain has no certificate (--tls-cert, --tls-key)')
    if (this.#tlsFacts !== undefined) throw new FramingError('UpgradeInvalid', 'the session is already upgraded to TLS')
    if (this.#reader.buffered > 0) throw new FramingError('InvalidRecordSequence', 'bytes after the Upgrade Request, before its Upgrade Response')
    const raw = this.#s
    raw.write(UPGRADE_RESPONSE_RECORD)
    raw.off('data', this.#onDataBound).off('drain', this.#onDrainBound).off('timeout', this.#onIdleBound)
    const secure: TLSSocket = acceptTls(raw, tls)
    secure.once('close', () => { raw.destroy() })
    this.#s = secure
    this.#attach(secure)
    this.#tlsFacts = () => tlsFacts(secure)
  }

  get inFlight (): number { return this.#inFlight }

  /** Ends the session: one still in its preamble gets EndpointUnavailable; an open one sends End once its calls are answered. */
  end (): void {
    if (this.#state === 'preamble') this.#fail(new FramingError('EndpointUnavailable', 'the domain is shutting down'))
    else if (this.#state === 'open') { this.#state = 'ending'; this.#finishIfIdle() }
  }

  /** Closes the socket now (the drain's last step). */
  destroy (): void { this.#s.destroy() }

  #onData (chunk: Buffer): void {
    if (this.#state === 'faulted' || this.#state === 'closed') {
      // Read and drop what the peer still sends, so that closing does not reset the connection
      // before it has read the Fault record; but not forever.
      if ((this.#discarded += chunk.length) > LINGER_BYTES) this.#s.destroy()
      return
    }
    const why = this.#c.budget.over(this.#budgetPeer, chunk.length)
    if (why !== undefined) { this.#fail(new FramingError('ServerTooBusy', `${why}; retry later`)); return }
    this.#reader.push(chunk)
    try {
      for (let r = this.#reader.next(); r !== undefined; r = this.#reader.next()) {
        this.#onRecord(r)
        if (this.#stopped()) break
      }
    } catch (e) {
      this.#fail(e instanceof FramingError ? e : new FramingError('InvalidRecordSequence', (e as Error).message))
    }
    this.#recharge()
  }

  #stopped (): boolean { return this.#state === 'faulted' || this.#state === 'closed' }

  #onRecord (r: FrameRecord): void {
    if (this.#state === 'preamble') { this.#preamble(r); return }
    if (this.#state === 'open' && r.type === RecordType.SizedEnvelope) { this.#call(r.payload); return }
    if (this.#state === 'open' && r.type === RecordType.End) { this.#state = 'ending'; this.#finishIfIdle(); return }
    if (r.type === RecordType.Fault) { this.#debug(`the peer sent a fault: ${r.text}`); this.#s.destroy(); return }
    throw new FramingError('InvalidRecordSequence', `record type 0x${r.type.toString(16).padStart(2, '0')} ${this.#state === 'open' ? 'after the preamble' : 'after End'}`)
  }

  #preamble (r: FrameRecord): void {
    const step = this.#step
    if (step === 0 && r.type === RecordType.Version) {
      // A new minor version only adds values to existing records (§2.2.3.1): what matters is the major.
      if (r.major !== 1) throw new FramingError('UnsupportedVersion', `framing version ${r.major}.${r.minor}; this domain speaks 1.0`)
    } else if (step === 1 && r.type === RecordType.Mode) {
      if (r.value !== Mode.Duplex) throw new FramingError('UnsupportedMode', `mode ${r.value}; this domain serves duplex sessions (mode 2) only`)
    } else if (step === 2 && r.type === RecordType.Via) {
      this.#checkVia(r.text)
    } else if (step === 3 && (r.type === RecordType.KnownEncoding || r.type === RecordType.ExtensibleEncoding)) {
      const known = r.type === RecordType.KnownEncoding
      const e = known ? encodingByKnown(r.value) : encodingByContentType(r.text)
      if (e === undefined) throw new FramingError('ContentTypeInvalid', `encoding ${known ? `0x${r.value.toString(16).padStart(2, '0')}` : JSON.stringify(r.text)} is not one this domain reads`)
      this.#encoding = e
      this.#codec = e.session()
    } else if (step === 4 && r.type === RecordType.UpgradeRequest) {
      this.#upgrade(r.text)
      return
    } else if (step === 4 && r.type === RecordType.PreambleEnd) {
      clearTimeout(this.#timer)
      this.#timer = undefined
      if (this.#c.requireTls && this.#tlsFacts === undefined) throw new FramingError('EndpointAccessDenied', `this listener takes TLS sessions only: upgrade to ${SSL_TLS} first`)
      if (this.#c.draining()) throw new FramingError('EndpointUnavailable', 'the domain is shutting down')
      this.#state = 'open'
      this.#s.setTimeout(this.#c.limits.sessionIdleTimeoutMs)
      this.#s.write(PREAMBLE_ACK_RECORD)
      return
    } else {
      throw new FramingError('InvalidRecordSequence', `record type 0x${r.type.toString(16).padStart(2, '0')} where the preamble expects ${['a Version', 'a Mode', 'a Via', 'an encoding', 'Preamble End'][step]} record`)
    }
    this.#step = step + 1
  }

  #checkVia (via: string): void {
    let u: URL
    try { u = new URL(via) } catch { throw new FramingError('EndpointNotFound', `the Via ${JSON.stringify(via.slice(0, 200))} is not a URI`) }
    const scheme = this.#c.transport
    if (u.protocol !== `${scheme}:`) throw new FramingError('EndpointNotFound', `the Via ${via.slice(0, 200)} is not a ${scheme} address`)
    // A socket file serves one service; a TCP port is named with the service's path.
    const path = u.pathname.replace(/\/+$/, '').toLowerCase()
    if (scheme === 'net.tcp' && path !== this.#c.path.toLowerCase()) throw new FramingError('EndpointNotFound', `no service at ${u.pathname}; this domain serves ${this.#c.path}`)
  }

  #call (payload: Buffer): void {
    const c = this.#c
    this.#inFlight++
    this.#inFlightBytes += payload.length
    c.started()
    this.#flow()
    const codec = this.#codec!
    const size = payload.length
    const failed = (e: unknown): void => {
      c.logger.error({ err: e }, 'could not answer a framed call')
      this.#s.destroy()
    }
    if (codec.tree === true) {
      const answered = this.#callTree(codec, payload)
      answered.then(() => { this.#answered(size) }, (e: unknown) => { failed(e); this.#answered(size) })
      return
    }
    let body: Buffer | undefined
    let bad: MetaosError | undefined
    try { body = codec.decode(payload) } catch (e) {
      bad = e instanceof MetaosError ? e : new MetaosError('MALFORMED_MESSAGE', `the envelope does not decode as ${this.#encoding!.name}: ${(e as Error).message}`)
    }
    const contentType = this.#encoding!.contentType
    // One shape for every message (no spreads on the hot path).
    const answer = body === undefined
      ? Promise.resolve(c.dispatcher.reject({ requestId: requestIdOf(undefined), transport: c.transport, peer: this.#peer, tls: this.#tlsFacts, contentType }, bad!, 500, payload.length))
      : c.dispatcher.dispatch({ requestId: requestIdOf(firstElementText(body, 'MessageID')), transport: c.transport, peer: this.#peer, tls: this.#tlsFacts, contentType, body, late: c.draining(), session: this.channel })
    answer.then((out) => {
      try { this.#reply(out) } catch (e) { failed(e) }
      this.#answered(size)
    }, (e: unknown) => { failed(e); this.#answered(size) })
    // An envelope that does not decode may have left a session dictionary behind: no more calls on it.
    if (bad !== undefined && this.#state === 'open') this.#state = 'ending'
  }

  /** A binary envelope: read into its tree here, answered by the dispatcher through #send (encoded and written at once). */
  async #callTree (codec: TreeEncodingSession, payload: Buffer): Promise<void> {
    const c = this.#c
    let envelope: XmlElement | MetaosError
    try { envelope = codec.read(payload, c.dispatcher.limits) } catch (e) {
      envelope = e instanceof MetaosError ? e : new MetaosError('MALFORMED_MESSAGE', `the envelope does not decode as ${this.#encoding!.name}: ${(e as Error).message}`)
      // What the session dictionary holds is not known any more: this call is answered, no other is read.
      if (this.#state === 'open') this.#state = 'ending'
    }
    const requestId = requestIdOf(envelope instanceof MetaosError ? undefined : headerText(envelope, 'MessageID'))
    await c.dispatcher.dispatchTree({ requestId, transport: c.transport, peer: this.#peer, tls: this.#tlsFacts, envelope, requestBytes: payload.length, late: c.draining(), session: this.channel }, (env) => this.#send(codec, env))
  }

  /** Encodes a binary answer and writes it at once; its size (0 when the session is gone). */
  #send (codec: TreeEncodingSession, env: OutboundEnvelope): number {
    if (this.#state === 'faulted' || this.#state === 'closed' || this.#s.destroyed) return 0
    const p = codec.write(env, this.#c.dispatcher.descriptor)
    this.#writeRecord(p.chunks, p.length)
    return p.length
  }

  #answered (size: number): void {
    this.#inFlight--
    this.#inFlightBytes -= size
    this.#c.ended()
    this.#recharge()
    this.#flow()
    this.#finishIfIdle()
  }

  #reply (out: Pick<OutboundMessage, 'chunks' | 'length'>): void {
    if (this.#state === 'faulted' || this.#state === 'closed' || this.#s.destroyed) return
    const p = (this.#codec as TextEncodingSession).encode(out.chunks, out.length)
    this.#writeRecord(p.chunks, p.length)
  }

  /** A Sized Envelope record: copied into one buffer when small, corked pieces when large. */
  #writeRecord (chunks: readonly Buffer[], length: number): void {
    const header = envelopeHeader(length)
    if (length <= COPY_MAX) {
      this.#s.write(chunks.length === 1 ? Buffer.concat([header, chunks[0]!], header.length + length) : Buffer.concat([header, ...chunks], header.length + length))
      return
    }
    this.#s.cork()
    this.#s.write(header)
    for (const chunk of chunks) this.#s.write(chunk)
    this.#s.uncork()
  }

  /** Reads while there is room: fewer calls in flight than the limit, and the peer reads its answers. */
  #flow (): void {
    const stop = this.#inFlight >= this.#c.limits.maxCallsPerSession || this.#s.writableLength > WRITE_HIGH_WATER
    if (stop && !this.#paused) { this.#paused = true; this.#s.pause() } else if (!stop && this.#paused) { this.#paused = false; this.#s.resume() }
  }

  #finishIfIdle (): void {
    if (this.#state !== 'ending' || this.#inFlight > 0) return
    this.#state = 'closed'
    this.#s.end(END_RECORD)
    this.#linger()
  }

  /** Bytes held for this session (unread records, envelopes being answered), counted against the host's budget. */
  #recharge (): void {
    const held = (this.#state === 'closed' && this.#s.destroyed ? 0 : this.#reader.buffered) + this.#inFlightBytes
    if (held !== this.#charged) { this.#c.budget.charge(this.#budgetPeer, held - this.#charged); this.#charged = held }
  }

  #fail (e: FramingError): void {
    if (this.#state === 'faulted' || this.#state === 'closed') return
    this.#debug(`framing fault ${e.fault}: ${e.message}`)
    this.#state = 'faulted'
    clearTimeout(this.#timer)
    this.#s.end(faultRecord(e.fault))
    this.#linger()
  }

  /** The peer has LINGER_MS to read what was sent last and close its side. */
  #linger (): void {
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => { this.#s.destroy() }, LINGER_MS)
    this.#timer.unref()
    if (this.#paused) { this.#paused = false; this.#s.resume() }
  }

  #abort (why: string): void {
    this.#debug(`session closed: ${why}`)
    this.#s.destroy()
  }

  #onClose (): void {
    this.#state = 'closed'
    clearTimeout(this.#timer)
    this.#recharge()
    const closers = this.#closers
    this.#closers = undefined
    this.#drained()
    for (const fn of closers ?? []) {
      try { fn() } catch (e) { this.#c.logger.error({ err: e }, 'a session close handler failed') }
    }
  }

  #debug (msg: string): void {
    if (this.#c.logger.isLevelEnabled('debug')) this.#c.logger.debug({ transport: this.#c.transport, peer: this.#peer }, msg)
  }
}
