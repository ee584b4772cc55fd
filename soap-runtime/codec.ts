// Compiled codecs: turns a ServiceDescriptor into one encoder and one decoder per element, built
// once when a client or service host is created (never per call). Encoders write qualified
// elements under a default namespace; base64 fields become XOP includes when the caller asks for
// MTOM and the block is large enough. Decoders validate against the schema and throw
// INVALID_ARGUMENT with the path of the offending element.
import { MetaosError } from './errors.js'
import { XOP_NS } from './envelope.js'
import { escapeXml, type XmlElement } from './xml.js'
import type { FieldDescriptor, FieldType, ServiceDescriptor } from './descriptor.js'

export interface EncodeContext {
  /** When set, base64 fields of at least `mtomThreshold` bytes are sent as attachments here. */
  attachments?: Map<string, Buffer>
  mtomThreshold?: number
}

export interface DecodeContext {
  readonly attachments?: ReadonlyMap<string, Buffer>
}

type Encoder = (value: unknown, ctx: EncodeContext) => string
type Decoder = (el: XmlElement, ctx: DecodeContext, path: string) => unknown

export interface ElementCodec {
  /** `<Name xmlns="ns">…</Name>` */
  encode: (value: unknown, ctx?: EncodeContext) => string
  /** `<Name>…</Name>` with no namespace declaration, for use inside an element of the same namespace. */
  encodeInner: (value: unknown, ctx: EncodeContext) => string
  decode: (el: XmlElement, ctx?: DecodeContext) => unknown
}

const INT_RE = /^[+-]?\d+$/
/** A character base64 never has; '=' is then checked to be the one or two last (an anchored `^[…]*={0,2}$` costs ~7x more on MiB texts). */
const BASE64_BAD = /[^A-Za-z0-9+/=]/
const BASE64_WS = /[\t\n\r ]/g
let cidCounter = 0

/** '=' only as the last one or two characters. */
function paddedAtEnd (t: string): boolean {
  const eq = t.indexOf('=')
  return eq === -1 || eq >= t.length - 2 && (eq === t.length - 1 || t.charCodeAt(eq + 1) === 61)
}

function bad (path: string, why: string): MetaosError {
  return new MetaosError('INVALID_ARGUMENT', `${path}: ${why}`)
}

function leafText (el: XmlElement, path: string): string {
  if (el.children.length > 0) throw bad(path, `unexpected element ${el.children[0]!.local} inside a simple value`)
  return el.text
}

const SIMPLE_DECODERS: Record<string, Decoder> = {
  string: (el, _ctx, path) => leafText(el, path),
  int: (el, _ctx, path) => {
    const t = leafText(el, path).trim()
    if (!INT_RE.test(t)) throw bad(path, `"${t.slice(0, 40)}" is not an xsd:int`)
    const n = Number(t)
    if (n < -2147483648 || n > 2147483647) throw bad(path, `${t.slice(0, 40)} is outside xsd:int`)
    return n
  },
  long: (el, _ctx, path) => {
    const t = leafText(el, path).trim()
    if (!INT_RE.test(t)) throw bad(path, `"${t.slice(0, 40)}" is not an xsd:long`)
    const n = Number(t)
    if (!Number.isSafeInteger(n)) throw bad(path, `${t.slice(0, 40)} is beyond ±2^53, the largest offset metaos handles`)
    return n
  },
  double: (el, _ctx, path) => {
    const t = leafText(el, path).trim()
    if (t === 'INF') return Infinity
    if (t === '-INF') return -Infinity
    if (t === 'NaN') return NaN
    const n = Number(t)
    if (t === '' || !Number.isFinite(n)) throw bad(path, `"${t.slice(0, 40)}" is not an xsd:double`)
    return n
  },
  boolean: (el, _ctx, path) => {
    const t = leafText(el, path).trim()
    if (t === 'true' || t === '1') return true
    if (t === 'false' || t === '0') return false
    throw bad(path, `"${t.slice(0, 40)}" is not an xsd:boolean`)
  },
  dateTime: (el, _ctx, path) => {
    const t = leafText(el, path).trim()
    const d = new Date(t)
    if (!/^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(t) || Number.isNaN(d.getTime())) throw bad(path, `"${t.slice(0, 40)}" is not an xsd:dateTime`)
    return d
  },
  base64: (el, ctx, path) => {
    if (el.bin !== undefined) return el.bin // binary XML: the bytes as they came, no base64
    if (el.children.length === 1) {
      const inc = el.children[0]!
      if (inc.ns !== XOP_NS || inc.local !== 'Include') throw bad(path, `unexpected element ${inc.local} in binary data`)
      const href = inc.attrs.href ?? ''
      let id: string
      try {
        id = decodeURIComponent(href.replace(/^cid:/i, ''))
      } catch {
        throw new MetaosError('MALFORMED_MESSAGE', `${path}: xop:Include href is not a valid cid: URL`)
      }
      const data = ctx.attachments?.get(id)
      if (data === undefined) throw new MetaosError('MALFORMED_MESSAGE', `${path}: xop:Include refers to a missing part <${id.slice(0, 80)}>`)
      return data
    }
    let t = leafText(el, path)
    if (BASE64_WS.test(t)) t = t.replace(BASE64_WS, '')
    BASE64_WS.lastIndex = 0
    if (t.length % 4 !== 0 || BASE64_BAD.test(t) || !paddedAtEnd(t)) throw bad(path, 'invalid base64')
    return Buffer.from(t, 'base64')
  },
}

function simpleEncoder (name: string): (v: unknown, ctx: EncodeContext, tag: string) => string {
  switch (name) {
    case 'string': return (v, _c, tag) => `<${tag}>${escapeXml(String(v))}</${tag}>`
    case 'int': case 'long': return (v, _c, tag) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(tag, `${String(v)} is not an integer`)
      return `<${tag}>${v}</${tag}>`
    }
    case 'double': return (v, _c, tag) => {
      const n = Number(v)
      return `<${tag}>${Number.isNaN(n) ? 'NaN' : n === Infinity ? 'INF' : n === -Infinity ? '-INF' : String(n)}</${tag}>`
    }
    case 'boolean': return (v, _c, tag) => `<${tag}>${v === true ? 'true' : 'false'}</${tag}>`
    case 'dateTime': return (v, _c, tag) => `<${tag}>${(v instanceof Date ? v : new Date(String(v))).toISOString()}</${tag}>`
    case 'base64': return (v, ctx, tag) => {
      const buf = v as Uint8Array
      if (!(buf instanceof Uint8Array)) throw bad(tag, 'binary data must be a Buffer or Uint8Array')
      if (ctx.attachments !== undefined && buf.length >= (ctx.mtomThreshold ?? 0)) {
        const id = `${(cidCounter = (cidCounter + 1) % 1e9)}.${ctx.attachments.size}@metaos`
        ctx.attachments.set(id, Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length))
        return `<${tag}><xop:Include xmlns:xop="${XOP_NS}" href="cid:${id}"/></${tag}>`
      }
      return `<${tag}>${(Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length)).toString('base64')}</${tag}>`
    }
  }
  throw new Error(`unknown simple type ${name}`)
}

/** What a descriptor's codecs share while they are compiled: its namespace, and the codecs by name (complex and choice values refer to them). */
interface Compiled {
  readonly ns: string
  readonly contentEncoders: Map<string, Encoder>
  readonly contentDecoders: Map<string, Decoder>
  readonly elementCodecs: Map<string, ElementCodec>
}

// The factories below run once per descriptor; each closure they return captures only what its
// calls read (the maps themselves, not `c`), so a call does what it did before they were split out.

function valueEncoder (t: FieldType, c: Compiled): (v: unknown, ctx: EncodeContext, tag: string) => string {
  switch (t.kind) {
    case 'simple': return simpleEncoder(t.name)
    case 'enum': return (v, _c, tag) => {
      if (!t.values.includes(v as string)) throw bad(tag, `"${String(v)}" is not one of ${t.values.join(', ')}`)
      return `<${tag}>${v as string}</${tag}>`
    }
    case 'complex': {
      const contentEncoders = c.contentEncoders
      return (v, ctx, tag) => `<${tag}>${contentEncoders.get(t.name)!(v, ctx)}</${tag}>`
    }
    case 'choice': {
      const elementCodecs = c.elementCodecs
      return (v, ctx, tag) => {
        const keys = Object.keys(v as object)
        if (keys.length !== 1 || !t.elements.includes(keys[0]!)) throw bad(tag, `must hold exactly one of ${t.elements.join(', ')}`)
        return `<${tag}>${elementCodecs.get(keys[0]!)!.encodeInner(((v as Record<string, unknown>)[keys[0]!]), ctx)}</${tag}>`
      }
    }
  }
}

function valueDecoder (t: FieldType, c: Compiled): Decoder {
  switch (t.kind) {
    case 'simple': return SIMPLE_DECODERS[t.name]!
    case 'enum': return (el, _ctx, path) => {
      const s = leafText(el, path).trim()
      if (!t.values.includes(s)) throw bad(path, `"${s.slice(0, 40)}" is not one of ${t.values.join(', ')}`)
      return s
    }
    case 'complex': {
      const contentDecoders = c.contentDecoders
      return (el, ctx, path) => contentDecoders.get(t.name)!(el, ctx, path)
    }
    case 'choice': {
      const { ns, elementCodecs } = c
      return (el, ctx, path) => {
        if (el.children.length !== 1) throw bad(path, `must hold exactly one of ${t.elements.join(', ')}`)
        const ch = el.children[0]!
        if (ch.ns !== ns || !t.elements.includes(ch.local)) throw bad(path, `{${ch.ns}}${ch.local} is not one of ${t.elements.join(', ')}`)
        return { [ch.local]: elementCodecs.get(ch.local)!.decode(ch, ctx) }
      }
    }
  }
}

/** The encoder of a complex type's content: each field in order, a required one present. */
function contentEncoder (fields: readonly FieldDescriptor[], c: Compiled): Encoder {
  const encs = fields.map((f) => ({ f, enc: valueEncoder(f.type, c) }))
  return (v, ctx) => {
    const o = (v ?? {}) as Record<string, unknown>
    let s = ''
    for (const { f, enc: e } of encs) {
      const x = o[f.name]
      if (x === undefined || x === null) {
        if (!f.optional && !f.repeated) throw bad(f.name, 'is required')
        continue
      }
      if (f.repeated) for (const item of x as unknown[]) s += e(item, ctx, f.name)
      else s += e(x, ctx, f.name)
    }
    return s
  }
}

/** The decoder of a complex type's content: only its fields, each at most once unless repeated, a required one present. */
function contentDecoder (fields: readonly FieldDescriptor[], c: Compiled): Decoder {
  const ns = c.ns
  const index = new Map(fields.map((f, i) => [f.name, i]))
  const decs = fields.map((f) => valueDecoder(f.type, c))
  return (el, ctx, path) => {
    if (el.text.trim() !== '' && fields.length > 0) throw bad(path, 'unexpected text')
    const out: Record<string, unknown> = {}
    for (const f of fields) if (f.repeated) out[f.name] = []
    for (const ch of el.children) {
      const i = ch.ns === ns ? index.get(ch.local) : undefined
      if (i === undefined) throw bad(path, `unexpected element {${ch.ns}}${ch.local}`)
      const f = fields[i]!
      const v = decs[i]!(ch, ctx, `${path}/${ch.local}`)
      if (f.repeated) (out[f.name] as unknown[]).push(v)
      else if (f.name in out) throw bad(path, `${ch.local} appears more than once`)
      else out[f.name] = v
    }
    for (const f of fields) if (!f.optional && !f.repeated && !(f.name in out)) throw bad(path, `missing ${f.name}`)
    return out
  }
}

/** The codec of the element `name` of type `t`. For an element whose type is complex, the value is its content object; else a simple value. */
function elementCodec (name: string, t: FieldType, c: Compiled): ElementCodec {
  const ns = c.ns
  const inner = valueEncoder(t, c)
  const dec = valueDecoder(t, c)
  return {
    encode: (v, ctx = {}) => {
      const s = inner(v, ctx, name) // "<Name>…</Name>"
      return `<${name} xmlns="${ns}">` + s.slice(name.length + 2)
    },
    encodeInner: (v: unknown, ctx: EncodeContext): string => inner(v, ctx, name),
    decode: (el, ctx = {}) => {
      if (el.ns !== ns || el.local !== name) throw bad(name, `expected {${ns}}${name}, got {${el.ns}}${el.local}`)
      return dec(el, ctx, name)
    },
  }
}

/** Compiles every type and element of a descriptor. */
export function compileCodecs (d: ServiceDescriptor): Map<string, ElementCodec> {
  const c: Compiled = { ns: d.namespace, contentEncoders: new Map(), contentDecoders: new Map(), elementCodecs: new Map() }
  for (const [name, fields] of Object.entries(d.types)) {
    c.contentEncoders.set(name, contentEncoder(fields, c))
    c.contentDecoders.set(name, contentDecoder(fields, c))
  }
  for (const [name, t] of Object.entries(d.elements)) c.elementCodecs.set(name, elementCodec(name, t, c))
  return c.elementCodecs
}
