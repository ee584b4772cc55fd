// Binary SOAP envelopes as WCF's binary message encoder writes them: s:Envelope, s:Header, s:Body,
// the WS-Addressing 1.0 headers (a:Action and a:To with s:mustUnderstand="1", a:MessageID and
// a:RelatesTo as UniqueId records, a:ReplyTo/a:Address) and the SOAP namespaces by their [MC-NBFS]
// static ids; the service's own names, its namespace and Action URIs by [MC-NBFSE] session strings
// when there is a session. The body is a descriptor element (binary-codec.ts), a SOAP fault in the
// envelope's version with the contract's detail element, or any element tree.
import { ERRORS, type ErrorCode } from '../errors.js'
import { SOAP, WSA10_NS, type SoapVersion } from '../envelope.js'
import { toXmlSafeText, type XmlElement } from '../xml.js'
import type { BinaryCodecs } from './binary-codec.js'
import type { NbfxWriterSession } from './session.js'
import { NbfxWriter, type EncodedMessage } from './writer.js'

export const WSA_ANONYMOUS = 'http://www.w3.org/2005/08/addressing/anonymous'
/** The media types of the two binary encodings (MC-NMF's envelope encoding record names them). */
export const BINARY_SESSION_CONTENT_TYPE = 'application/soap+msbinsession1'
export const BINARY_CONTENT_TYPE = 'application/soap+msbin1'
const XML_NS = 'http://www.w3.org/XML/1998/namespace'

/** A header of one simple value: `<local xmlns="ns">value</local>`. */
export interface BinaryHeader {
  readonly ns: string
  readonly local: string
  readonly value: string | number
  readonly mustUnderstand?: boolean
}

export interface BinaryFault {
  readonly code: ErrorCode
  readonly message: string
  /** Overrides Sender/Receiver (VersionMismatch, MustUnderstand). */
  readonly soapCode?: 'VersionMismatch' | 'MustUnderstand' | undefined
  /** The contract's fault element (e.g. StorageFault) and its value ({ code, message }), written by the codecs. */
  readonly detail?: { readonly element: string, readonly value: unknown }
}

export type BinaryBody =
  | { readonly element: string, readonly value: unknown }
  | { readonly fault: BinaryFault }
  | { readonly tree: XmlElement }

/** An envelope to write: WS-Addressing 1.0 headers by field, other headers, and the body. */
export interface OutboundEnvelope {
  /** Default '1.2' (NetTcpBinding's Soap12WSAddressing10). */
  readonly version?: SoapVersion
  readonly action?: string
  readonly messageId?: string
  readonly relatesTo?: string
  /** The ReplyTo address (WCF's requests carry the anonymous one: WSA_ANONYMOUS). */
  readonly replyTo?: string
  readonly to?: string
  readonly headers?: readonly BinaryHeader[]
  /** Headers of any shape (a WS-Security header), written after the others as element trees. */
  readonly trees?: readonly XmlElement[]
  readonly body: BinaryBody
}

/** `<a:name s:mustUnderstand="1">` */
function wsaStart (w: NbfxWriter, local: string, mustUnderstand: boolean): void {
  w.startElement('a', local)
  if (mustUnderstand) { w.attributeName('s', 'mustUnderstand'); w.integer(1, false) }
}

function headers (w: NbfxWriter, env: OutboundEnvelope): void {
  if (env.action !== undefined) { wsaStart(w, 'Action', true); w.dictionaryText(env.action, true) }
  if (env.messageId !== undefined) { wsaStart(w, 'MessageID', false); w.uniqueId(env.messageId, true) }
  if (env.relatesTo !== undefined) { wsaStart(w, 'RelatesTo', false); w.uniqueId(env.relatesTo, true) }
  if (env.replyTo !== undefined) {
    wsaStart(w, 'ReplyTo', false)
    wsaStart(w, 'Address', false)
    w.dictionaryText(env.replyTo, true)
    w.endElement()
  }
  if (env.to !== undefined) { wsaStart(w, 'To', true); w.dictionaryText(env.to, true) }
  for (const h of env.headers ?? []) {
    w.startElement('', h.local)
    w.xmlns('', h.ns)
    if (h.mustUnderstand === true) { w.attributeName('s', 'mustUnderstand'); w.integer(1, false) }
    if (typeof h.value === 'number') w.integer(h.value, true)
    else w.text(h.value, true)
  }
  for (const t of env.trees ?? []) tree(w, t, '')
}

function fault (w: NbfxWriter, version: SoapVersion, f: BinaryFault, codecs: BinaryCodecs | undefined): void {
  const side = ERRORS[f.code].side
  const code = f.soapCode ?? (side === 'Sender' ? SOAP[version].sender : SOAP[version].receiver)
  w.startElement('s', 'Fault')
  if (version === '1.1') {
    w.startElement('', 'faultcode'); w.text(`s:${code}`, true)
    w.startElement('', 'faultstring'); w.text(toXmlSafeText(f.message), true)
    if (f.detail !== undefined) { w.startElement('', 'detail'); detail(w, f, codecs); w.endElement() }
  } else {
    w.startElement('s', 'Code'); w.startElement('s', 'Value'); w.text(`s:${code}`, true); w.endElement()
    w.startElement('s', 'Reason'); w.startElement('s', 'Text')
    w.attributeName('xml', 'lang'); w.text('en', false)
    w.text(toXmlSafeText(f.message), true); w.endElement()
    if (f.detail !== undefined) { w.startElement('s', 'Detail'); detail(w, f, codecs); w.endElement() }
  }
  w.endElement()
}

function detail (w: NbfxWriter, f: BinaryFault, codecs: BinaryCodecs | undefined): void {
  if (codecs === undefined) throw new Error('a fault detail needs the service\'s binary codecs')
  codecs.encode(f.detail!.element, f.detail!.value, w)
}

/** Any element tree: each element unprefixed in its namespace (declared where it changes), attributes prefixed b, c… as needed. */
function tree (w: NbfxWriter, el: XmlElement, inherited: string): void {
  w.startElement('', el.local)
  if (el.ns !== inherited) w.xmlns('', el.ns)
  const keys = Object.keys(el.attrs)
  const prefixes = new Map<string, string>([[XML_NS, 'xml']])
  for (const k of keys) {
    if (!k.startsWith('{')) continue
    const ns = k.slice(1, k.indexOf('}'))
    if (prefixes.has(ns)) continue
    const p = String.fromCharCode(0x62 + prefixes.size - 1) // b, c, …
    prefixes.set(ns, p)
    w.xmlns(p, ns)
  }
  for (const k of keys) {
    const close = k.startsWith('{') ? k.indexOf('}') : -1
    w.attributeName(close < 0 ? '' : prefixes.get(k.slice(1, close))!, k.slice(close + 1))
    w.text(el.attrs[k]!, false)
  }
  if (el.bin !== undefined) return w.bytes(el.bin, true)
  if (el.children.length === 0) return w.text(el.text, true)
  if (el.text.trim() !== '') w.text(el.text, false)
  for (const c of el.children) tree(w, c, el.ns)
  w.endElement()
}

/**
 * Writes an envelope. `session` set: a message of a binary session (application/soap+msbinsession1),
 * opening with its string table; the session's messages must go on the wire in the order they are
 * encoded. Without: a sessionless binary message (application/soap+msbin1). On an error nothing
 * is kept in the session.
 */
export function encodeEnvelope (env: OutboundEnvelope, codecs: BinaryCodecs | undefined, session?: NbfxWriterSession): EncodedMessage {
  const version = env.version ?? '1.2'
  const w = new NbfxWriter(session)
  try {
    w.startElement('s', 'Envelope')
    w.xmlns('s', SOAP[version].ns)
    const wsa = env.action !== undefined || env.messageId !== undefined || env.relatesTo !== undefined || env.replyTo !== undefined || env.to !== undefined
    if (wsa) w.xmlns('a', WSA10_NS)
    if (wsa || (env.headers !== undefined && env.headers.length > 0) || (env.trees !== undefined && env.trees.length > 0)) {
      w.startElement('s', 'Header')
      headers(w, env)
      w.endElement()
    }
    w.startElement('s', 'Body')
    const b = env.body
    if ('element' in b) {
      if (codecs === undefined) throw new Error('an element body needs the service\'s binary codecs')
      codecs.encode(b.element, b.value, w)
    } else if ('fault' in b) fault(w, version, b.fault, codecs)
    else tree(w, b.tree, '')
    w.endElement()
    w.endElement()
    return w.finish()
  } catch (e) {
    session?.rollback()
    throw e
  }
}
