// The message dispatcher: bytes in, bytes out, no sockets. Per message: (MTOM) → envelope →
// operation by body element → the inspectors (who is calling, may refuse) → compiled decoder →
// implementation → compiled encoder → envelope with the timing header (and WS-Addressing, and a
// WS-Security timestamp when the request had a Security header). Faults in the request's SOAP
// version, with the contract's fault element and codes (from the service description). Listeners
// (listeners.ts, http-binding.ts) and the in-memory transport feed it.
import { isUtf8 } from 'node:buffer'
import { runBatch, batchOutputs } from './batch.js'
import { compileCodecs, type ElementCodec, type EncodeContext } from './codec.js'
import type { ServiceDescriptor } from './descriptor.js'
import {
  buildEnvelope, buildFaultBody, EnvelopeError, faultAction, faultStatus, METAOS_NS, parseEnvelope,
  readEnvelope, replyAddressing, SOAP, type Addressing, type SoapVersion,
} from './envelope.js'
import { MetaosError, fromSystemError } from './errors.js'
import { DEFAULT_HOST_LIMITS, type AnyImplementation, type CallContext, type HostLimits, type SessionChannel } from './host-types.js'
import type { CallInspector, CallOutcome, MessageOrigin, ReceivedCall } from './inspectors.js'
import { buildMultipartRelated, isMultipartRelated, parseMultipartRelated } from './mtom.js'
import { WSSE_NS, WSU_NS } from './ws-security.js'
import { escapeXml, toXmlSafeText, type XmlElement } from './xml.js'
import type { OutboundEnvelope } from './nbfx/envelope-writer.js'

export interface DispatcherOptions {
  readonly descriptor: ServiceDescriptor
  /** The operations, typed (`Implementation<StorageOperations>`) or not. */
  readonly implementation: AnyImplementation
  /** The fault detail element (e.g. StorageFault); default: the one the descriptor's operations declare. */
  readonly faultElement?: string
  /**
   * The codes the fault detail admits; any other goes on the wire as IO_ERROR. Default: the
   * enumeration the descriptor gives the fault element's `code` (any code when it is a plain string).
   */
  readonly faultCodes?: readonly string[]
  /** Name of the response header carrying the service time in µs (e.g. ServiceTiming). */
  readonly timingHeader: string
  readonly limits?: Partial<Pick<HostLimits, 'maxMessageBytes' | 'maxDepth' | 'maxElements' | 'maxBatchOps'>>
  /** Cross-cutting concerns (authentication, metrics, logging), in the order they see each call. */
  readonly inspectors?: readonly CallInspector[]
}

/** One request as a transport hands it over. */
export interface InboundMessage extends MessageOrigin {
  readonly body: Buffer
  readonly contentType: string
  /** The request's Accept header: `multipart/related` asks for an MTOM reply. */
  readonly accept?: string | undefined
  /** It arrived after the drain started: refused with DOMAIN_DRAINING once its operation is known. */
  readonly late?: boolean
  /** The framed session it came on: the implementation may call the caller back on it (CallContext.session). */
  readonly session?: SessionChannel
}

/**
 * One request a binary encoding read straight into its element tree (a framed session's
 * [MC-NBFX] envelope): no XML text, its bytes fields already bytes.
 */
export interface TreeInboundMessage extends MessageOrigin {
  /** The Envelope element, or why it could not be read (answered with a fault). */
  readonly envelope: XmlElement | MetaosError
  /** The size of the message as it came. */
  readonly requestBytes: number
  readonly late?: boolean
  /** The framed session it came on (CallContext.session). */
  readonly session?: SessionChannel
}

/**
 * Writes the answer to a TreeInboundMessage as a value (the encoding writes it with the
 * descriptor's codecs and sends it at once: a session dictionary follows the order sent); returns
 * its size. Throws when the value breaks the contract (then a fault is sent instead).
 */
export type TreeReplySink = (env: OutboundEnvelope) => number

/** The answer, ready for a transport to send. */
export interface OutboundMessage {
  readonly status: number
  readonly contentType: string
  /** The body: one buffer for an envelope, the parts of an MTOM package. */
  readonly chunks: readonly Buffer[]
  readonly length: number
  /** An MTOM package (sent with MIME-Version: 1.0). */
  readonly multipart: boolean
  /** The operation (`?` when unknown) and, for a fault, its code. */
  readonly operation: string
  readonly faultCode?: string
}

interface OperationEntry {
  readonly name: string
  readonly input: ElementCodec
  readonly output: ElementCodec
  readonly action: string
  /** The output element's name (what a binary answer's body holds). */
  readonly outputName: string
}

const CALLER_HEADER = `{${METAOS_NS}}Caller`

export class MessageDispatcher {
  readonly limits: Pick<HostLimits, 'maxMessageBytes' | 'maxDepth' | 'maxElements' | 'maxBatchOps'>
  readonly faultElement: string
  readonly faultCodes: readonly string[] | undefined
  readonly #o: DispatcherOptions
  readonly #ns: string
  readonly #byElement = new Map<string, OperationEntry>()
  readonly #understood: ReadonlySet<string>
  readonly #batchOutputs: ReadonlyMap<string, string>
  readonly #receivers: ReadonlyArray<NonNullable<CallInspector['received']>>
  readonly #observers: ReadonlyArray<NonNullable<CallInspector['completed']>>
  readonly #timingOpen: string
  readonly #timingClose: string

  constructor (o: DispatcherOptions) {
    this.#o = o
    const d = o.descriptor
    const l = o.limits ?? {}
    this.limits = {
      maxMessageBytes: l.maxMessageBytes ?? DEFAULT_HOST_LIMITS.maxMessageBytes,
      maxDepth: l.maxDepth ?? DEFAULT_HOST_LIMITS.maxDepth,
      maxElements: l.maxElements ?? DEFAULT_HOST_LIMITS.maxElements,
      maxBatchOps: l.maxBatchOps ?? DEFAULT_HOST_LIMITS.maxBatchOps,
    }
    this.#ns = d.namespace
    this.faultElement = o.faultElement ?? declaredFaultElement(d)
    this.faultCodes = o.faultCodes ?? declaredFaultCodes(d, this.faultElement)
    const codecs = compileCodecs(d)
    const codec = (name: string): ElementCodec => {
      const c = codecs.get(name)
      if (c === undefined) throw new Error(`descriptor has no element ${name}`)
      return c
    }
    for (const op of Object.values(d.operations)) {
      this.#byElement.set(`{${d.namespace}}${op.input}`, { name: op.name, input: codec(op.input), output: codec(op.output), action: op.soapAction, outputName: op.output })
    }
    const inspectors = o.inspectors ?? []
    this.#understood = new Set([CALLER_HEADER, ...inspectors.flatMap((i) => i.understood ?? [])])
    this.#receivers = inspectors.flatMap((i) => i.received === undefined ? [] : [i.received])
    this.#observers = inspectors.flatMap((i) => i.completed === undefined ? [] : [i.completed])
    this.#batchOutputs = batchOutputs(d)
    this.#timingOpen = `<${o.timingHeader} xmlns="${d.namespace}">`
    this.#timingClose = `</${o.timingHeader}>`
  }

  get descriptor (): ServiceDescriptor { return this.#o.descriptor }

  /** Answers one message: a response, or a fault. Never rejects. */
  async dispatch (m: InboundMessage): Promise<OutboundMessage> {
    const started = process.hrtime.bigint()
    let version = versionOf(m.contentType)
    let addressing: Addressing | undefined
    let operation = '?'
    let release: (() => void) | undefined
    try {
      const { xml, attachments, mtom } = readBody(m)
      const env = parseEnvelope(xml, this.limits, this.#understood)
      version = env.version
      addressing = env.addressing
      const entry = this.#entryOf(env.body)
      operation = entry.name
      const admitted = this.#admit(operation, env.headers, m, m.body.length)
      release = admitted.release
      const { ctx, secured } = admitted
      const input = entry.input.decode(env.body, attachments === undefined ? {} : { attachments })
      const output = await this.#execute(entry.name, input, ctx)
      const enc: EncodeContext = mtom || /multipart\/related/i.test(m.accept ?? '') ? { attachments: new Map(), mtomThreshold: 1024 } : {}
      const bodyXml = entry.output.encode(output, enc)
      const micros = (process.hrtime.bigint() - started) / 1000n
      const headerXml = this.#timingOpen + String(micros) + this.#timingClose +
        replyAddressing(addressing, `${entry.action}Response`) + (secured ? securityTimestamp() : '')
      const out = respond(buildEnvelope(version, headerXml, bodyXml), version, enc.attachments, `${entry.action}Response`, operation)
      this.#completed({ operation, origin: m, micros: Number(micros), requestBytes: m.body.length, responseBytes: out.length })
      return out
    } catch (e) {
      const err = e instanceof MetaosError ? e : fromSystemError(e, operation)
      const out = this.#fault(version, addressing, err, started, faultStatus(), operation)
      const micros = Number((process.hrtime.bigint() - started) / 1000n)
      this.#completed({ operation, origin: m, micros, requestBytes: m.body.length, responseBytes: out.length, faultCode: err.code, faultMessage: err.message, error: e })
      return out
    } finally {
      release?.()
    }
  }

  /**
   * Answers one message read as an element tree (binary XML), through `send`: the same path as
   * dispatch — inspectors, budgets, metrics, faults — with values in and out instead of XML text.
   * Never rejects unless `send` throws on a fault.
   */
  async dispatchTree (m: TreeInboundMessage, send: TreeReplySink): Promise<void> {
    const started = process.hrtime.bigint()
    let version: SoapVersion = '1.2'
    let addressing: Addressing | undefined
    let operation = '?'
    let release: (() => void) | undefined
    const timing = (micros: bigint): OutboundEnvelope['headers'] => [{ ns: this.#ns, local: this.#o.timingHeader, value: Number(micros) }]
    try {
      if (m.envelope instanceof Error) throw m.envelope
      const env = readEnvelope(m.envelope, this.#understood)
      version = env.version
      addressing = env.addressing
      const entry = this.#entryOf(env.body)
      operation = entry.name
      const admitted = this.#admit(operation, env.headers, m, m.requestBytes)
      release = admitted.release
      const { ctx, secured } = admitted
      const output = await this.#execute(entry.name, entry.input.decode(env.body, {}), ctx)
      const micros = (process.hrtime.bigint() - started) / 1000n
      const action = `${entry.action}Response`
      const responseBytes = send({
        version,
        ...(addressing === undefined ? {} : { action, relatesTo: addressing.messageId }),
        headers: timing(micros),
        ...(secured ? { trees: [securityTimestampTree()] } : {}),
        body: { element: entry.outputName, value: output },
      })
      this.#completed({ operation, origin: m, micros: Number(micros), requestBytes: m.requestBytes, responseBytes })
    } catch (e) {
      const err = e instanceof MetaosError ? e : fromSystemError(e, operation)
      const code = this.faultCodes === undefined || this.faultCodes.includes(err.code) ? err.code : 'IO_ERROR'
      const message = toXmlSafeText(err.message)
      const micros = (process.hrtime.bigint() - started) / 1000n
      const responseBytes = send({
        version,
        ...(addressing === undefined ? {} : { action: faultAction(addressing), relatesTo: addressing.messageId }),
        headers: timing(micros),
        body: { fault: { code: code as MetaosError['code'], message, soapCode: err instanceof EnvelopeError ? err.soapCode : undefined, detail: { element: this.faultElement, value: { code, message } } } },
      })
      this.#completed({ operation, origin: m, micros: Number(micros), requestBytes: m.requestBytes, responseBytes, faultCode: err.code, faultMessage: err.message, error: e })
    } finally {
      release?.()
    }
  }

  /**
   * A message turned away before it could be dispatched (over a size or memory limit): the fault in
   * the SOAP version its Content-Type suggests, with the HTTP status to send it with. Counted by the
   * inspectors as a refusal. `started` (0n: none) is when the whole message had arrived.
   */
  reject (m: MessageOrigin & { readonly contentType: string }, err: MetaosError, status: number, requestBytes = 0, started = 0n): OutboundMessage {
    const out = this.#fault(versionOf(m.contentType), undefined, err, started, status, '?')
    this.#completed({ operation: '?', origin: m, micros: 0, requestBytes, responseBytes: out.length, faultCode: err.code, faultMessage: err.message, refused: true })
    return out
  }

  /** The operation a request's body element names: MALFORMED_MESSAGE for one this service does not have. */
  #entryOf (body: { readonly ns: string, readonly local: string }): OperationEntry {
    const entry = this.#byElement.get(`{${body.ns}}${body.local}`)
    if (entry === undefined) throw new MetaosError('MALFORMED_MESSAGE', `unknown operation {${body.ns}}${body.local}`)
    return entry
  }

  /**
   * Admits a call of a known operation, for both dispatch paths: refused with DOMAIN_DRAINING when it
   * came late, then shown to the inspectors (`release` ends what they hold for it). Its context, and
   * whether it came with a WS-Security header (the reply then carries a timestamp).
   */
  #admit (operation: string, headers: ReceivedCall['headers'], m: InboundMessage | TreeInboundMessage, requestBytes: number): { release: (() => void) | undefined, ctx: CallContext, secured: boolean } {
    if (m.late === true) throw new MetaosError('DOMAIN_DRAINING', 'the domain is shutting down; use another domain of the same volume')
    const call: ReceivedCall = { operation, headers, origin: m, requestBytes, caller: callerOf(headers, m.peer) }
    const release = this.#receive(call)
    const ctx: CallContext = call.principal === undefined
      ? { caller: call.caller, operation, requestId: m.requestId, session: m.session }
      : { caller: call.caller, operation, principal: call.principal, requestId: m.requestId, session: m.session }
    return { release, ctx, secured: headers.some((h) => h.ns === WSSE_NS && h.local === 'Security') }
  }

  #receive (call: ReceivedCall): (() => void) | undefined {
    let releases: Array<() => void> | undefined
    for (const r of this.#receivers) {
      const release = r(call)
      if (release !== undefined) (releases ??= []).push(release)
    }
    if (releases === undefined) return undefined
    if (releases.length === 1) return releases[0]
    return () => { for (const r of releases) r() }
  }

  #completed (o: CallOutcome): void {
    for (const c of this.#observers) c(o)
  }

  async #execute (operation: string, input: unknown, ctx: CallContext): Promise<unknown> {
    const implementation = this.#o.implementation
    if (operation === 'Batch' && implementation.Batch === undefined) {
      return await runBatch({ outputs: this.#batchOutputs, faultElement: this.faultElement, ...(this.faultCodes === undefined ? {} : { faultCodes: this.faultCodes }), maxOps: this.limits.maxBatchOps },
        (input as { op: Array<Record<string, unknown>> }).op,
        async (name, i) => await this.#execute(name, i, { ...ctx, operation: name }))
    }
    const fn = implementation[operation]
    if (fn === undefined) throw new MetaosError('MALFORMED_MESSAGE', `operation ${operation} is not implemented by this domain`)
    return await fn(input, ctx)
  }

  #fault (version: SoapVersion, addressing: Addressing | undefined, err: MetaosError, started: bigint, status: number, operation: string): OutboundMessage {
    const soapCode = err instanceof EnvelopeError ? err.soapCode : undefined
    // Only the contract's fault codes go on the wire; a frontend-side code (never expected here) becomes IO_ERROR.
    const code = this.faultCodes === undefined || this.faultCodes.includes(err.code) ? err.code : 'IO_ERROR'
    const message = toXmlSafeText(err.message)
    const el = this.faultElement
    const detailXml = `<${el} xmlns="${this.#ns}"><code>${code}</code><message>${escapeXml(message)}</message></${el}>`
    const micros = started === 0n ? 0n : (process.hrtime.bigint() - started) / 1000n
    const headerXml = this.#timingOpen + String(micros) + this.#timingClose + replyAddressing(addressing, faultAction(addressing))
    const buf = Buffer.from(buildEnvelope(version, headerXml, buildFaultBody(version, { code, message, soapCode, detailXml })), 'utf8')
    return { status, contentType: `${SOAP[version].contentType}; charset=utf-8`, chunks: [buf], length: buf.length, multipart: false, operation, faultCode: err.code }
  }
}

/** The fault element the descriptor's operations declare (they share one). */
function declaredFaultElement (d: ServiceDescriptor): string {
  const faults = new Set(Object.values(d.operations).map((o) => o.fault))
  if (faults.size !== 1) throw new Error(`${d.name}: its operations declare ${faults.size === 0 ? 'no' : 'several'} fault elements; say which one (faultElement)`)
  return [...faults][0]!
}

/** The enumeration of the fault element's `code`, or undefined (any code) when it is not an enumeration. */
function declaredFaultCodes (d: ServiceDescriptor, faultElement: string): readonly string[] | undefined {
  const t = d.elements[faultElement]
  const fields = t?.kind === 'complex' ? d.types[t.name] : undefined
  const code = fields?.find((f) => f.name === 'code')?.type
  return code?.kind === 'enum' ? code.values : undefined
}

/** The SOAP version a Content-Type suggests (what a fault is sent in before the envelope is read). */
function versionOf (contentType: string): SoapVersion {
  return /application\/soap\+xml/i.test(contentType) ? '1.2' : '1.1'
}

function readBody (m: InboundMessage): { xml: string, attachments: ReadonlyMap<string, Buffer> | undefined, mtom: boolean } {
  let xml: string
  let attachments: ReadonlyMap<string, Buffer> | undefined
  const mtom = isMultipartRelated(m.contentType)
  if (mtom) {
    const pkg = parseMultipartRelated(m.body, m.contentType)
    xml = pkg.rootXml
    attachments = pkg.attachments
  } else {
    // An encoding error is fatal in XML (1.0 §4.3.3): refuse, do not read U+FFFD into names.
    if (!isUtf8(m.body)) throw new MetaosError('MALFORMED_MESSAGE', 'the message is not valid UTF-8')
    xml = m.body.toString('utf8')
  }
  if (xml.charCodeAt(0) === 0xfeff) xml = xml.slice(1)
  return { xml, attachments, mtom }
}

/** Without an authenticator: the Caller header (or "anonymous") at the transport peer. */
function callerOf (headers: readonly XmlElement[], peer: string): string {
  const h = headers.find((x) => `{${x.ns}}${x.local}` === CALLER_HEADER)?.text.trim()
  return `${h !== undefined && h !== '' ? h.slice(0, 200) : 'anonymous'}@${peer}`
}

function respond (envelope: string, version: SoapVersion, attachments: Map<string, Buffer> | undefined, action: string, operation: string): OutboundMessage {
  if (attachments !== undefined && attachments.size > 0) {
    const pkg = buildMultipartRelated(envelope, SOAP[version].contentType, attachments, version === '1.2' ? action : undefined)
    return { status: 200, contentType: pkg.contentType, chunks: pkg.chunks, length: pkg.length, multipart: true, operation }
  }
  const buf = Buffer.from(envelope, 'utf8')
  return { status: 200, contentType: `${SOAP[version].contentType}; charset=utf-8`, chunks: [buf], length: buf.length, multipart: false, operation }
}

/** securityTimestamp() as an element tree, for a binary answer. */
function securityTimestampTree (): XmlElement {
  const now = Date.now()
  const el = (ns: string, local: string, children: XmlElement[], text = '', attrs: Record<string, string> = {}): XmlElement => ({ ns, local, attrs, children, text, nsScope: {} })
  return el(WSSE_NS, 'Security', [el(WSU_NS, 'Timestamp', [
    el(WSU_NS, 'Created', [], new Date(now).toISOString()), el(WSU_NS, 'Expires', [], new Date(now + 300_000).toISOString()),
  ], '', { [`{${WSU_NS}}Id`]: '_0' })])
}

/** A fresh wsu:Timestamp in a wsse:Security header: WS-Security clients (WCF) expect one back. */
function securityTimestamp (): string {
  const now = Date.now()
  return `<wsse:Security xmlns:wsse="${WSSE_NS}" xmlns:wsu="${WSU_NS}"><wsu:Timestamp wsu:Id="_0">` +
    `<wsu:Created>${new Date(now).toISOString()}</wsu:Created><wsu:Expires>${new Date(now + 300_000).toISOString()}</wsu:Expires>` +
    '</wsu:Timestamp></wsse:Security>'
}
