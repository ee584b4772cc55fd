// SOAP envelopes, 1.1 and 1.2: reading a request's envelope (version, headers, the one body
// element, WS-Addressing, mustUnderstand), writing responses and faults in the request's version,
// and reading faults back on the client side. Knows nothing of operations or transports.
import { MetaosError, isErrorCode, type ErrorCode, ERRORS } from './errors.js'
import { escapeXml, parseXml, resolveQName, toXmlSafeText, type XmlElement, type XmlLimits } from './xml.js'

export const SOAP11_NS = 'http://schemas.xmlsoap.org/soap/envelope/'
export const SOAP12_NS = 'http://www.w3.org/2003/05/soap-envelope'
export const WSA10_NS = 'http://www.w3.org/2005/08/addressing'
export const WSA2004_NS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing'
export const XOP_NS = 'http://www.w3.org/2004/08/xop/include'
export const METAOS_NS = 'urn:metaos:v1'

export type SoapVersion = '1.1' | '1.2'

export const SOAP = {
  '1.1': { ns: SOAP11_NS, contentType: 'text/xml', sender: 'Client', receiver: 'Server' },
  '1.2': { ns: SOAP12_NS, contentType: 'application/soap+xml', sender: 'Sender', receiver: 'Receiver' },
} as const

export interface Addressing {
  readonly ns: string
  readonly messageId?: string
  readonly action?: string
  readonly to?: string
  readonly relatesTo?: string
}

export interface ParsedEnvelope {
  readonly version: SoapVersion
  readonly headers: readonly XmlElement[]
  /** The single child of Body (document/literal wrapped). */
  readonly body: XmlElement
  readonly addressing?: Addressing
}

/** SOAP-level fault codes beyond Sender/Receiver, raised while reading an envelope. */
export class EnvelopeError extends MetaosError {
  readonly soapCode: 'VersionMismatch' | 'MustUnderstand' | undefined
  constructor (code: ErrorCode, message: string, soapCode?: 'VersionMismatch' | 'MustUnderstand') {
    super(code, message)
    this.soapCode = soapCode
  }
}

const WSA_FIELDS = new Set(['MessageID', 'Action', 'To', 'RelatesTo', 'ReplyTo', 'FaultTo', 'From'])

/**
 * Reads an envelope. `understood` lists header QNames (Clark notation) the receiver processes;
 * WS-Addressing headers are always understood. Throws EnvelopeError on anything that is not a
 * SOAP 1.1/1.2 envelope with one body element.
 */
export function parseEnvelope (xml: string, limits: XmlLimits, understood: ReadonlySet<string>): ParsedEnvelope {
  return readEnvelope(parseXml(xml, limits), understood)
}

/** Reads an envelope already parsed into an element tree (from text, or from binary XML: soap-runtime/nbfx/). */
export function readEnvelope (env: XmlElement, understood: ReadonlySet<string>): ParsedEnvelope {
  if (env.local !== 'Envelope') throw new EnvelopeError('MALFORMED_MESSAGE', `root element is {${env.ns}}${env.local}, not a SOAP Envelope`)
  const version: SoapVersion | undefined = env.ns === SOAP11_NS ? '1.1' : env.ns === SOAP12_NS ? '1.2' : undefined
  if (version === undefined) throw new EnvelopeError('MALFORMED_MESSAGE', `Envelope in namespace "${env.ns}" is neither SOAP 1.1 nor SOAP 1.2`, 'VersionMismatch')
  let header: XmlElement | undefined
  let body: XmlElement | undefined
  for (const c of env.children) {
    if (c.ns !== env.ns) throw new EnvelopeError('MALFORMED_MESSAGE', `unexpected {${c.ns}}${c.local} in Envelope`)
    if (c.local === 'Header' && header === undefined && body === undefined) header = c
    else if (c.local === 'Body' && body === undefined) body = c
    else throw new EnvelopeError('MALFORMED_MESSAGE', `unexpected ${c.local} in Envelope`)
  }
  if (body === undefined) throw new EnvelopeError('MALFORMED_MESSAGE', 'Envelope has no Body')
  if (body.children.length !== 1) throw new EnvelopeError('MALFORMED_MESSAGE', `Body must hold exactly one element, it holds ${body.children.length}`)
  const headers = header?.children ?? []
  let addressing: { ns: string, messageId?: string, action?: string, to?: string, relatesTo?: string } | undefined
  const mu = `{${env.ns}}mustUnderstand`
  for (const h of headers) {
    const isWsa = (h.ns === WSA10_NS || h.ns === WSA2004_NS) && WSA_FIELDS.has(h.local)
    if (isWsa) {
      addressing ??= { ns: h.ns }
      const v = h.text.trim()
      if (h.local === 'MessageID') addressing.messageId = v
      else if (h.local === 'Action') addressing.action = v
      else if (h.local === 'To') addressing.to = v
      else if (h.local === 'RelatesTo') addressing.relatesTo = v
      continue
    }
    const m = h.attrs[mu]
    if ((m === '1' || m === 'true') && !understood.has(`{${h.ns}}${h.local}`)) {
      throw new EnvelopeError('MALFORMED_MESSAGE', `header {${h.ns}}${h.local} must be understood and is not`, 'MustUnderstand')
    }
  }
  const first = body.children[0]!
  return addressing === undefined ? { version, headers, body: first } : { version, headers, body: first, addressing }
}

/** Writes an envelope; `headerXml` and `bodyXml` are already-serialized children. */
export function buildEnvelope (version: SoapVersion, headerXml: string, bodyXml: string): string {
  const ns = SOAP[version].ns
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${ns}">` +
    (headerXml === '' ? '' : `<s:Header>${headerXml}</s:Header>`) +
    `<s:Body>${bodyXml}</s:Body></s:Envelope>`
}

/** Response-side WS-Addressing headers: RelatesTo the request's MessageID, Action for the reply. */
export function replyAddressing (req: Addressing | undefined, action: string): string {
  if (req === undefined) return ''
  const ns = req.ns
  let h = `<a:Action xmlns:a="${ns}">${escapeXml(action)}</a:Action>`
  if (req.messageId !== undefined) h += `<a:RelatesTo xmlns:a="${ns}">${escapeXml(req.messageId)}</a:RelatesTo>`
  return h
}

export interface FaultSpec {
  readonly code: ErrorCode
  readonly message: string
  /** Overrides Sender/Receiver (VersionMismatch, MustUnderstand). */
  readonly soapCode?: 'VersionMismatch' | 'MustUnderstand' | undefined
  /** Serialized detail element(s), e.g. `<StorageFault xmlns=…>…</StorageFault>`. */
  readonly detailXml: string
}

export function faultAction (req: Addressing | undefined): string {
  return req?.ns === WSA2004_NS ? `${WSA2004_NS}/fault` : `${WSA10_NS}/soap/fault`
}

export function buildFaultBody (version: SoapVersion, f: FaultSpec): string {
  const side = ERRORS[f.code].side
  const code = f.soapCode ?? (side === 'Sender' ? SOAP[version].sender : SOAP[version].receiver)
  const reason = escapeXml(toXmlSafeText(f.message))
  if (version === '1.1') {
    return `<s:Fault><faultcode>s:${code}</faultcode><faultstring>${reason}</faultstring>` +
      (f.detailXml === '' ? '' : `<detail>${f.detailXml}</detail>`) + '</s:Fault>'
  }
  return `<s:Fault><s:Code><s:Value>s:${code}</s:Value></s:Code><s:Reason><s:Text xml:lang="en">${reason}</s:Text></s:Reason>` +
    (f.detailXml === '' ? '' : `<s:Detail>${f.detailXml}</s:Detail>`) + '</s:Fault>'
}

/**
 * HTTP status for a fault: always 500. SOAP 1.2 part 2 suggests 400 for Sender faults, but WCF
 * clients (.NET Framework, dotnet/wcf, Mono) read a fault only from a 500 response and turn a 400
 * into a transport error, losing the typed detail (seen with Mono 6.8: test/interop/wcf.test.ts).
 */
export function faultStatus (): number {
  return 500
}

export interface ReceivedFault {
  readonly soapCode: string
  readonly reason: string
  readonly detail?: XmlElement
}

/** Reads a Fault element (either version) into its parts; `detail` is the detail child named `detailName` (Clark notation), else the first one. */
export function readFault (fault: XmlElement, detailName?: string): ReceivedFault {
  let soapCode = ''
  let reason = ''
  let detail: XmlElement | undefined
  for (const c of fault.children) {
    switch (c.local) {
      case 'faultcode': soapCode = resolveQName(c, c.text); break
      case 'faultstring': reason = c.text; break
      case 'detail': case 'Detail': detail = c.children.find((x) => `{${x.ns}}${x.local}` === detailName) ?? c.children[0]; break
      case 'Code': { const v = c.children.find((x) => x.local === 'Value'); if (v !== undefined) soapCode = resolveQName(v, v.text); break }
      case 'Reason': reason = c.children.find((x) => x.local === 'Text')?.text ?? ''; break
    }
  }
  return detail === undefined ? { soapCode, reason } : { soapCode, reason, detail }
}

/** Turns a received fault into a typed error: the detail's `code` when the detail is ours (`detailName`, Clark notation). */
export function faultToError (f: ReceivedFault, detailName?: string): MetaosError {
  const d = f.detail
  const ours = d !== undefined && `{${d.ns}}${d.local}` === detailName
  const codeEl = ours ? d.children.find((c) => c.local === 'code' && c.ns === d.ns) : undefined
  const code = codeEl?.text.trim()
  const msgEl = ours ? d.children.find((c) => c.local === 'message' && c.ns === d.ns) : undefined
  const message = msgEl?.text ?? f.reason
  if (code !== undefined && isErrorCode(code)) return new MetaosError(code, message, { faultCode: f.soapCode })
  const local = f.soapCode.replace(/^\{[^}]*\}/, '')
  const fallback: ErrorCode = local === 'Client' || local === 'Sender' ? 'INVALID_ARGUMENT' : local === 'VersionMismatch' || local === 'MustUnderstand' ? 'MALFORMED_MESSAGE' : 'IO_ERROR'
  return new MetaosError(fallback, message || `SOAP fault ${f.soapCode}`, { faultCode: f.soapCode })
}
