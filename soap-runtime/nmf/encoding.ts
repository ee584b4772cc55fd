// Envelope encodings of a framed session ([MC-NMF] §2.2.3.4): what the preamble's encoding record
// names and how an envelope record's payload becomes the envelope the dispatcher reads (and back).
// Every encoding plugs in the same way, as a FramedEncoding: the text ones here (SOAP 1.2 and 1.1,
// UTF-8: what WCF's textMessageEncoding sends), the binary ones ([MC-NBFX] with the [MC-NBFS]
// dictionary, and [MC-NBFSE] session strings) registered by their module. An encoding keeps its
// per-session state (binary: the session dictionary of each direction) in an EncodingSession, made
// once per session; envelopes are decoded in the order they arrive and encoded in the order sent.
import type { ServiceDescriptor } from '../descriptor.js'
import { MetaosError } from '../errors.js'
import type { OutboundEnvelope } from '../nbfx/envelope-writer.js'
import type { XmlElement, XmlLimits } from '../xml.js'
import { KnownEncoding } from './records.js'

/** A text encoding's session: envelopes travel as their XML. */
export interface TextEncodingSession {
  readonly tree?: undefined
  /** An envelope record's payload → the envelope's XML (UTF-8). Throws MALFORMED_MESSAGE. */
  decode: (payload: Buffer) => Buffer
  /** An envelope's XML (UTF-8, in chunks) → the payload of its envelope record. */
  encode: (xml: readonly Buffer[], length: number) => { readonly chunks: readonly Buffer[], readonly length: number }
}

/**
 * A binary encoding's session: an envelope record's payload is read straight into the element
 * tree the dispatcher and the client read, and an envelope is written from values (the operation's
 * input or output, the fault) — no XML text, bytes as raw byte records. `write` must be followed
 * by the record going on the wire before another `write` (the session dictionary follows that order).
 */
export interface TreeEncodingSession {
  readonly tree: true
  /** An envelope record's payload → the Envelope element. Throws MALFORMED_MESSAGE. */
  read: (payload: Buffer, limits: XmlLimits) => XmlElement
  /** An envelope → the payload of its envelope record, its elements by the descriptor's codecs. Throws INVALID_ARGUMENT for a value the contract refuses. */
  write: (env: OutboundEnvelope, descriptor: ServiceDescriptor) => { readonly chunks: readonly Buffer[], readonly length: number }
}

export type EncodingSession = TextEncodingSession | TreeEncodingSession

export interface FramedEncoding {
  /** Its name in options and messages: `text`, `binary`… */
  readonly name: string
  /** Its Known Encoding record value. */
  readonly known: number
  /** Its content type: what an Extensible Encoding record names, and what the dispatcher is told the XML is. */
  readonly contentType: string
  /** Other content types an Extensible Encoding record may name it by. */
  readonly aliases?: readonly string[]
  /** The state of one session. */
  session: () => EncodingSession
}

const identity: TextEncodingSession = {
  decode: (payload) => payload,
  encode: (xml, length) => ({ chunks: xml, length }),
}

/** SOAP 1.2 in UTF-8 text: `customBinding(textMessageEncoding(Soap12WSAddressing10), tcpTransport)`. */
export const SOAP12_TEXT: FramedEncoding = {
  name: 'text',
  known: KnownEncoding.Soap12Utf8,
  contentType: 'application/soap+xml; charset=utf-8',
  session: () => identity,
}

/** SOAP 1.1 in UTF-8 text (a textMessageEncoding of Soap11WSAddressing10 or Soap11). */
export const SOAP11_TEXT: FramedEncoding = {
  name: 'text-soap11',
  known: KnownEncoding.Soap11Utf8,
  contentType: 'text/xml; charset=utf-8',
  session: () => identity,
}

const byKnown = new Map<number, FramedEncoding>()
const byName = new Map<string, FramedEncoding>()

/** Makes an encoding available to framed listeners and clients (the binary module calls this when loaded). */
export function registerEncoding (e: FramedEncoding): void {
  byKnown.set(e.known, e)
  byName.set(e.name, e)
}
registerEncoding(SOAP12_TEXT)
registerEncoding(SOAP11_TEXT)

/** The encoding a Known Encoding record names, if this process has it. */
export function encodingByKnown (value: number): FramedEncoding | undefined {
  return byKnown.get(value)
}

/** The encoding an Extensible Encoding record's content type names (media type and charset compared without case), if any. */
export function encodingByContentType (contentType: string): FramedEncoding | undefined {
  const want = normalize(contentType)
  for (const e of byKnown.values()) {
    if (normalize(e.contentType) === want || e.aliases?.some((a) => normalize(a) === want) === true) return e
  }
  return undefined
}

/** The encoding named `name` (`text`, `binary`…): INVALID_ARGUMENT naming those known when there is none. */
export function encodingByName (name: string): FramedEncoding {
  const e = byName.get(name)
  if (e === undefined) throw new MetaosError('INVALID_ARGUMENT', `no framed encoding "${name}" (known: ${[...byName.keys()].join(', ')})`)
  return e
}

function normalize (ct: string): string {
  return ct.split(';').map((p) => p.trim().toLowerCase().replace(/"/g, '')).filter((p) => p !== '' && !p.startsWith('action=')).join(';')
}

const names = new Map<string, Buffer>()
const LT = 0x3c
const GT = 0x3e

/**
 * The text of the first element named `local` (any prefix) in an envelope's XML: the WS-Addressing
 * MessageID of a request, the RelatesTo of a reply. Headers come before the Body, and a `<` in
 * character data is always escaped, so the first tag of that name is the header. No parse: this is
 * how a session correlates a reply with its call before the client reads the envelope.
 */
export function firstElementText (xml: Buffer, local: string): string | undefined {
  let name = names.get(local)
  if (name === undefined) names.set(local, name = Buffer.from(local, 'latin1'))
  let from = 0
  for (;;) {
    const at = xml.indexOf(name, from)
    if (at < 0) return undefined
    from = at + name.length
    // Preceded by `<` or `<prefix:`, followed by `>`, whitespace (attributes) or `/`.
    let p = at - 1
    if (xml[p] === 0x3a) { p--; while (p >= 0 && isNameChar(xml[p]!)) p-- }
    if (xml[p] !== LT) continue
    const after = xml[from]
    if (after === undefined || !(after === GT || after === 0x20 || after === 0x09 || after === 0x0a || after === 0x0d || after === 0x2f)) continue
    const open = xml.indexOf(GT, from)
    if (open < 0 || xml[open - 1] === 0x2f) return undefined
    const close = xml.indexOf(LT, open + 1)
    if (close < 0) return undefined
    return xml.toString('utf8', open + 1, close).trim()
  }
}

function isNameChar (c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c === 0x5f || c === 0x2d || c === 0x2e || c >= 0x80
}

/** The text of the header named `local` in an Envelope element tree (MessageID, RelatesTo), if any. */
export function headerText (envelope: XmlElement, local: string): string | undefined {
  for (const part of envelope.children) {
    if (part.local !== 'Header') continue
    for (const h of part.children) if (h.local === local) return h.text.trim()
  }
  return undefined
}
