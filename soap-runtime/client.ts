// The generic SOAP client: one factory turns any ServiceDescriptor plus a Transport into a typed
// proxy (connect-es style). Codecs are compiled once here. Each call returns its output and the
// service-side time from the timing header, so callers can split channel time from service time.
// Each call carries a request id (`X-Request-Id`: the one `withRequestId` set for the calls made
// inside it, else a fresh short one), logged here at debug level and by the domain on its lines
// for that call, so a frontend's call and the service's work can be found together. Over a binary
// framed transport (net.uds, net.tcp: `framing.tree`) no XML text is made: the envelope goes to the
// transport as a value and the reply comes back as an element tree.
import { AsyncLocalStorage } from 'node:async_hooks'
import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import { compileCodecs, type ElementCodec, type EncodeContext } from './codec.js'
import type { ServiceDescriptor } from './descriptor.js'
import { buildEnvelope, faultToError, METAOS_NS, parseEnvelope, readEnvelope, readFault, SOAP, WSA10_NS, type SoapVersion } from './envelope.js'
import { MetaosError } from './errors.js'
import { buildMultipartRelated, isMultipartRelated, parseMultipartRelated } from './mtom.js'
import type { OutboundEnvelope } from './nbfx/envelope-writer.js'
import { escapeXml, DEFAULT_XML_LIMITS, parseXml } from './xml.js'
import type { Transport, TransportResponse } from './transport.js'
import { buildSecurityHeader, type UsernameCredentials } from './ws-security.js'
import { createLogger } from './logger.js'
import { newRequestId, REQUEST_ID_HEADER } from './request-id.js'

const requestIds = new AsyncLocalStorage<string>()

/**
 * Runs `fn` so that every SOAP call it makes (through any FileStream, dispatcher or proxy) carries
 * `id` as its X-Request-Id. The id must be 1-64 characters of A-Z a-z 0-9 . _ : @ - (a domain
 * replaces any other with one of its own).
 */
export async function withRequestId<T> (id: string, fn: () => Promise<T>): Promise<T> {
  return await requestIds.run(id, fn)
}

export { newRequestId } from './request-id.js'

let clientLogger: Logger | undefined
/** The process's client logger, made on first use (METAOS_LOG_LEVEL=debug shows every call). */
function defaultLogger (): Logger { return (clientLogger ??= createLogger('metaos-client')) }

export interface ClientOptions {
  readonly soapVersion?: SoapVersion
  /** Send binary blocks of at least this many bytes as MTOM attachments and ask for MTOM replies; `false` = never (plain base64). Default 1024. */
  readonly mtomThreshold?: number | false
  /** Identity sent in the Caller header; handles are bound to it. Default: a random urn:uuid per client. */
  readonly caller?: string
  readonly timeoutMs?: number
  /** Name of the response header carrying the service time in µs (e.g. ServiceTiming). */
  readonly timingHeader?: string
  /** Sign in with a WS-Security UsernameToken (a fresh nonce and timestamp on every call). */
  readonly credentials?: UsernameCredentials
  /** Where each call is logged at debug level with its request id (default: a pino logger on stderr at METAOS_LOG_LEVEL). */
  readonly logger?: Logger
}

export interface Invocation<T> {
  readonly output: T
  /** Service-side time reported by the domain (µs); undefined when the peer sends no timing header. */
  readonly serviceMicros: number | undefined
  /** Whole round trip as seen by the caller (µs). */
  readonly totalMicros: number
  /** The X-Request-Id the call was sent with (the domain logs it and echoes it back). */
  readonly requestId?: string
}

type OpsShape<T> = { [K in keyof T]: { input: unknown, output: unknown } }

export interface SoapClient<Ops extends OpsShape<Ops>> {
  readonly address: string
  readonly caller: string
  invoke: <K extends keyof Ops & string>(operation: K, input: Ops[K]['input']) => Promise<Invocation<Ops[K]['output']>>
  close: () => Promise<void>
}

interface OpEntry { readonly input: ElementCodec, readonly output: ElementCodec, readonly action: string, readonly fault: string, readonly inputName: string }

export function createClient<Ops extends OpsShape<Ops>> (descriptor: ServiceDescriptor, transport: Transport, options: ClientOptions = {}): SoapClient<Ops> {
  const codecs = compileCodecs(descriptor)
  const ops = new Map<string, OpEntry>()
  for (const op of Object.values(descriptor.operations)) {
    ops.set(op.name, { input: codecs.get(op.input)!, output: codecs.get(op.output)!, action: op.soapAction, fault: `{${descriptor.namespace}}${op.fault}`, inputName: op.input })
  }
  // A framed transport (net.uds, net.tcp) carries SOAP 1.2 with WS-Addressing, and no MTOM.
  const framing = transport.framing
  const version = framing?.soapVersion ?? options.soapVersion ?? '1.1'
  const soapType = SOAP[version].contentType
  const mtom = framing !== undefined ? false : options.mtomThreshold ?? 1024
  const caller = options.caller ?? `urn:uuid:${randomUUID()}`
  const headerXml = `<Caller xmlns="${METAOS_NS}">${escapeXml(caller)}</Caller>`
  const timeoutMs = options.timeoutMs ?? 60_000
  const timing = options.timingHeader === undefined ? undefined : `{${descriptor.namespace}}${options.timingHeader}`
  const understood = new Set<string>(timing === undefined ? [] : [timing])
  const credentials = options.credentials
  const accept = mtom === false ? soapType : `${soapType}, multipart/related`
  const log = (): Logger => options.logger ?? defaultLogger()
  // A binary framed transport takes the envelope as a value and answers with an element tree: no XML text.
  const tree = framing?.tree === true
  const setup: CallSetup = { transport, descriptor, version, timeoutMs, understood, timing, credentials, callerHeader: { ns: METAOS_NS, local: 'Caller', value: caller }, log }

  return {
    address: transport.address,
    caller,
    invoke: async (operation, input) => {
      const entry = ops.get(operation)
      if (entry === undefined) throw new MetaosError('INVALID_ARGUMENT', `${descriptor.name} has no operation ${operation}`)
      if (tree) return await invokeTree(setup, operation, entry, input)
      const enc: EncodeContext = mtom === false ? {} : { attachments: new Map(), mtomThreshold: mtom }
      let headers0 = credentials === undefined ? headerXml : headerXml + buildSecurityHeader(credentials, SOAP[version].ns)
      const messageId = framing?.addressing === true ? `urn:uuid:${randomUUID()}` : undefined
      if (messageId !== undefined) headers0 = addressingHeaders(entry.action, messageId, transport.address) + headers0
      const xml = buildEnvelope(version, headers0, entry.input.encode(input, enc))
      // Over a framed transport the MessageID is the call's request id: the domain logs it.
      const requestId = requestIds.getStore() ?? messageId ?? newRequestId()
      const headers: Record<string, string> = { Accept: accept, [REQUEST_ID_HEADER]: requestId }
      const { chunks, length } = packRequest(xml, enc.attachments, version, entry.action, headers)
      const t0 = process.hrtime.bigint()
      const logger = log()
      const debug = logger.isLevelEnabled('debug')
      let res
      try {
        res = await transport.send(messageId === undefined ? { chunks, length, headers, timeoutMs } : { chunks, length, headers, timeoutMs, messageId })
      } catch (e) {
        if (debug) logger.debug({ reqId: requestId, operation, address: transport.address, code: (e as MetaosError).code, micros: Number((process.hrtime.bigint() - t0) / 1000n) }, 'call failed')
        throw e
      }
      if (debug) logger.debug({ reqId: requestId, operation, address: transport.address, status: res.status, bytesOut: length, bytesIn: res.body.length, micros: Number((process.hrtime.bigint() - t0) / 1000n) }, 'call')
      return readReply(setup, operation, entry, res, t0, requestId)
    },
    close: async () => { await transport.close() },
  }
}

/** What a client's calls share (made once in createClient). */
interface CallSetup {
  readonly transport: Transport
  readonly descriptor: ServiceDescriptor
  readonly version: SoapVersion
  readonly timeoutMs: number
  readonly understood: ReadonlySet<string>
  readonly timing: string | undefined
  readonly credentials: UsernameCredentials | undefined
  readonly callerHeader: { readonly ns: string, readonly local: string, readonly value: string }
  readonly log: () => Logger
}

/** The call over a binary framed transport: the envelope as a value, the reply as an element tree. */
async function invokeTree (c: CallSetup, operation: string, entry: OpEntry, input: unknown): Promise<Invocation<never>> {
  const { transport, credentials, timeoutMs } = c
  const messageId = `urn:uuid:${randomUUID()}`
  const requestId = requestIds.getStore() ?? messageId
  const value: OutboundEnvelope = {
    action: entry.action,
    messageId,
    to: transport.address,
    headers: [c.callerHeader],
    ...(credentials === undefined ? {} : { trees: [parseXml(buildSecurityHeader(credentials, SOAP['1.2'].ns), DEFAULT_XML_LIMITS)] }),
    body: { element: entry.inputName, value: input },
  }
  const t0 = process.hrtime.bigint()
  const logger = c.log()
  const debug = logger.isLevelEnabled('debug')
  let res
  try {
    res = await transport.send({ chunks: [], length: 0, headers: { [REQUEST_ID_HEADER]: requestId }, timeoutMs, messageId, envelope: { value, descriptor: c.descriptor } })
  } catch (e) {
    if (debug) logger.debug({ reqId: requestId, operation, address: transport.address, code: (e as MetaosError).code, micros: Number((process.hrtime.bigint() - t0) / 1000n) }, 'call failed')
    throw e
  }
  if (debug) logger.debug({ reqId: requestId, operation, address: transport.address, status: res.status, bytesIn: res.body.length, micros: Number((process.hrtime.bigint() - t0) / 1000n) }, 'call')
  return readReply(c, operation, entry, res, t0, requestId)
}

/** The reply's envelope → the output (or the fault, thrown), with the service and round-trip times. */
function readReply (c: CallSetup, operation: string, entry: OpEntry, res: TransportResponse, t0: bigint, requestId: string): Invocation<never> {
  const { transport, understood, version, timing } = c
  let env
  let attachments: ReadonlyMap<string, Buffer> | undefined
  try {
    if (res.tree !== undefined) env = readEnvelope(res.tree, understood)
    else {
      const reply = unpackReply(res, transport.address)
      attachments = reply.attachments
      env = parseEnvelope(reply.text, DEFAULT_XML_LIMITS, understood)
    }
  } catch (e) {
    if (e instanceof MetaosError && e.code === 'PROTOCOL_ERROR') throw e
    throw new MetaosError('PROTOCOL_ERROR', `${transport.address}: HTTP ${res.status}, not a SOAP response (${(e as Error).message})`)
  }
  const totalMicros = Number((process.hrtime.bigint() - t0) / 1000n)
  if (env.version !== version) throw new MetaosError('PROTOCOL_ERROR', `${transport.address}: SOAP ${env.version} reply to a SOAP ${version} request`)
  if (env.body.local === 'Fault' && env.body.ns === SOAP[env.version].ns) throw faultToError(readFault(env.body, entry.fault), entry.fault)
  let serviceMicros: number | undefined
  if (timing !== undefined) {
    for (const h of env.headers) if (`{${h.ns}}${h.local}` === timing) serviceMicros = Number(h.text.trim())
  }
  let output
  try {
    output = entry.output.decode(env.body, attachments === undefined ? {} : { attachments })
  } catch (e) {
    throw new MetaosError('PROTOCOL_ERROR', `${transport.address}: response to ${operation} breaks the contract (${(e as Error).message})`)
  }
  return { output: output as never, serviceMicros, totalMicros, requestId }
}

/** WS-Addressing 1.0 headers of a request, as WCF's Soap12WSAddressing10 sends them. */
function addressingHeaders (action: string, messageId: string, to: string): string {
  return `<a:Action xmlns:a="${WSA10_NS}" s:mustUnderstand="1">${escapeXml(action)}</a:Action><a:MessageID xmlns:a="${WSA10_NS}">${messageId}</a:MessageID>` +
    `<a:To xmlns:a="${WSA10_NS}" s:mustUnderstand="1">${escapeXml(to)}</a:To>`
}

/** Packs a request: the envelope, or an MTOM package when it has attachments; sets its Content-Type (and SOAPAction). */
function packRequest (xml: string, attachments: Map<string, Buffer> | undefined, version: SoapVersion, action: string, headers: Record<string, string>): { chunks: Buffer[], length: number } {
  const soapType = SOAP[version].contentType
  let packed: { chunks: Buffer[], length: number }
  if (attachments !== undefined && attachments.size > 0) {
    const pkg = buildMultipartRelated(xml, soapType, attachments, version === '1.2' ? action : undefined)
    headers['Content-Type'] = pkg.contentType
    headers['MIME-Version'] = '1.0'
    packed = { chunks: pkg.chunks, length: pkg.length }
  } else {
    const buf = Buffer.from(xml, 'utf8')
    headers['Content-Type'] = version === '1.1' ? `${soapType}; charset=utf-8` : `${soapType}; charset=utf-8; action="${action}"`
    packed = { chunks: [buf], length: buf.length }
  }
  if (version === '1.1') headers.SOAPAction = `"${action}"`
  return packed
}

/** A reply's root XML (without a BOM) and its MTOM attachments. */
function unpackReply (res: TransportResponse, address: string): { text: string, attachments: ReadonlyMap<string, Buffer> | undefined } {
  let text: string
  let attachments: ReadonlyMap<string, Buffer> | undefined
  try {
    // Some peers echo the request's multipart Content-Type on a plain XML fault: trust the bytes.
    if (isMultipartRelated(res.contentType) && !startsLikeXml(res.body)) {
      const pkg = parseMultipartRelated(res.body, res.contentType)
      text = pkg.rootXml
      attachments = pkg.attachments
    } else text = res.body.toString('utf8')
  } catch (e) {
    throw new MetaosError('PROTOCOL_ERROR', `${address}: unreadable response (${(e as Error).message})`)
  }
  return { text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, attachments }
}

/** A body that opens with '<' (after an optional BOM and whitespace) is plain XML whatever its Content-Type says. */
function startsLikeXml (b: Buffer): boolean {
  let i = b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf ? 3 : 0
  while (i < b.length && (b[i] === 0x20 || b[i] === 0x09 || b[i] === 0x0a || b[i] === 0x0d)) i++
  return b[i] === 0x3c
}
