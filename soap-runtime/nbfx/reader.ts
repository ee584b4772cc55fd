// Reads an [MC-NBFX] binary XML document into the element tree soap-runtime/xml.ts builds from
// text (XmlElement: namespaces resolved, attributes in Clark notation, text joined), so the envelope
// reader and the compiled codecs take it unchanged. Typed text records become the text .NET's
// XmlConvert writes for them (text-values.ts); an element whose whole content is Bytes records
// becomes a BytesElement carrying the bytes themselves (`bin`, a slice of the input: no copy, no
// base64), its `text` their base64 only if someone asks. Strict and bounded like the text parser:
// depth and element counts, 256 attributes, lengths within the message, dictionary ids that exist,
// valid UTF-8, no character XML 1.0 forbids; anything else is MALFORMED_MESSAGE.
import { NO_ATTRIBUTES, ScopeCache, type XmlElement, type XmlLimits } from '../xml.js'
import { R, FIRST_ATTRIBUTE, LAST_ATTRIBUTE, LETTERS, recordName } from './records.js'
import { malformed, type Cursor } from './cursor.js'
import { readTextValue, isTextRecord } from './text-reader.js'

const MAX_ATTRIBUTES = 256
const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/'
/** The scope of the root element: only xml is bound. */
export const ROOT_SCOPE: Readonly<Record<string, string>> = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { xml: XML_NS }))

/** An element whose content is bytes only (Bytes8/16/32Text records): `bin` holds them; `text` is their base64, made on first read. */
export class BytesElement implements XmlElement {
  readonly ns: string
  readonly local: string
  readonly attrs: Record<string, string>
  readonly children: XmlElement[] = []
  readonly nsScope: Readonly<Record<string, string>>
  readonly bin: Buffer
  #text: string | undefined
  constructor (el: XmlElement, bin: Buffer) {
    this.ns = el.ns
    this.local = el.local
    this.attrs = el.attrs
    this.nsScope = el.nsScope
    this.bin = bin
  }

  get text (): string { return (this.#text ??= this.bin.toString('base64')) }
  set text (v: string) { this.#text = v }
}

interface RawAttr { prefix: string, local: string, value: string }

/** The element record of type `t` (just read): prefix and local name into `out`. */
function elementName (c: Cursor, t: number, out: { prefix: string, local: string }): void {
  if (t >= R.PrefixElementA) { out.prefix = LETTERS[t - R.PrefixElementA]!; out.local = c.name(); return }
  if (t >= R.PrefixDictionaryElementA) { out.prefix = LETTERS[t - R.PrefixDictionaryElementA]!; out.local = c.dictionaryName(); return }
  switch (t) {
    case R.ShortElement: out.prefix = ''; out.local = c.name(); return
    case R.Element: out.prefix = c.name(); out.local = c.name(); return
    case R.ShortDictionaryElement: out.prefix = ''; out.local = c.dictionaryName(); return
    default: out.prefix = c.name(); out.local = c.dictionaryName() // DictionaryElement
  }
}

/** An attribute's value: one text record (not a WithEndElement one). */
function attributeValue (c: Cursor): string {
  const t = c.u8()
  if (!isTextRecord(t) || (t & 1) === 1) throw malformed(`${recordName(t)} where an attribute value belongs (offset ${c.pos - 1})`)
  const v = readTextValue(c, t)
  return typeof v === 'string' ? v : v.toString('base64')
}

/** The attribute records after an element record; namespace declarations go into `decls` (prefix, namespace pairs). */
function attributes (c: Cursor, raw: RawAttr[], decls: string[]): void {
  while (c.pos < c.end) {
    const t = c.buf[c.pos]!
    if (t < FIRST_ATTRIBUTE || t > LAST_ATTRIBUTE) return
    c.pos++
    if (raw.length + decls.length / 2 >= MAX_ATTRIBUTES) throw malformed(`more than ${MAX_ATTRIBUTES} attributes`)
    if (t >= R.PrefixAttributeA) { raw.push({ prefix: LETTERS[t - R.PrefixAttributeA]!, local: c.name(), value: attributeValue(c) }); continue }
    if (t >= R.PrefixDictionaryAttributeA) { raw.push({ prefix: LETTERS[t - R.PrefixDictionaryAttributeA]!, local: c.dictionaryName(), value: attributeValue(c) }); continue }
    switch (t) {
      case R.ShortAttribute: raw.push({ prefix: '', local: c.name(), value: attributeValue(c) }); break
      case R.Attribute: { const prefix = c.name(); raw.push({ prefix, local: c.name(), value: attributeValue(c) }); break }
      case R.ShortDictionaryAttribute: raw.push({ prefix: '', local: c.dictionaryName(), value: attributeValue(c) }); break
      case R.DictionaryAttribute: { const prefix = c.name(); raw.push({ prefix, local: c.dictionaryName(), value: attributeValue(c) }); break }
      case R.ShortXmlnsAttribute: decls.push('', c.string()); break
      case R.XmlnsAttribute: { const prefix = c.name(); decls.push(prefix, c.string()); break }
      case R.ShortDictionaryXmlnsAttribute: decls.push('', c.dictionary()); break
      default: { const prefix = c.name(); decls.push(prefix, c.dictionary()) } // DictionaryXmlnsAttribute
    }
  }
}

/** A new scope: `parent`'s plus the declarations (prefix, namespace pairs), checked. */
function newScope (decls: readonly string[], n: number, parent: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  const scope = Object.create(parent) as Record<string, string>
  for (let i = 0; i < n; i += 2) {
    const prefix = decls[i]!
    const ns = decls[i + 1]!
    if (prefix === 'xmlns' || (prefix === 'xml') !== (ns === XML_NS) || ns === XMLNS_NS) throw malformed(`reserved namespace binding of "${prefix}" to "${ns.slice(0, 60)}"`)
    if (prefix !== '' && ns === '') throw malformed(`prefix ${prefix} cannot be bound to the empty namespace`)
    if (Object.prototype.hasOwnProperty.call(scope, prefix)) throw malformed(`prefix "${prefix}" declared twice on one element`)
    // Defined, not assigned: the parent is frozen, and assigning a name it binds would throw (its property is read-only).
    Object.defineProperty(scope, prefix, { value: ns, enumerable: true })
  }
  return Object.freeze(scope)
}

/** Scopes made before, from this reader's root (xml.ts's ScopeCache: bounded, frozen, shared), at most 64 per parent. */
const scopes = new ScopeCache(ROOT_SCOPE, 64)

/** The namespace scope of an element: its parent's, plus its `n / 2` declarations (a new scope only if it has some). */
function scopeOf (decls: readonly string[], n: number, parent: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  if (n === 0) return parent
  let key = decls[0]! + '\u0000' + decls[1]!
  for (let i = 2; i < n; i++) key += '\u0000' + decls[i]!
  const found = scopes.find(parent, key)
  if (found !== undefined) return found
  const scope = newScope(decls, n, parent)
  scopes.keep(parent, key, scope)
  return scope
}

/**
 * Attribute maps made before, by their names and values: the same headers carry the same attributes
 * in every message (s:mustUnderstand="1"), so the map is found, not built — a prototype-less object
 * filled key by key is the slowest part of reading an element. Frozen, so sharing is safe; bounded,
 * for a peer whose attribute values are all new (then maps are built as before).
 */
const ATTRIBUTE_MAPS = new Map<string, Record<string, string>>()
const ATTRIBUTE_MAPS_MAX = 256
const KEYS: string[] = []

/** An element's attributes by `{ns}local` (Clark notation), their prefixes resolved in `scope`; MALFORMED_MESSAGE for an unbound prefix or a repeated name. */
function attributeMap (raw: readonly RawAttr[], scope: Readonly<Record<string, string>>, local: string): Record<string, string> {
  const keys = KEYS
  keys.length = 0
  let id = ''
  for (const a of raw) {
    let key = a.local
    if (a.prefix !== '') {
      const ans = scope[a.prefix]
      if (ans === undefined) throw malformed(`unbound prefix "${a.prefix}" on attribute ${a.local}`)
      key = `{${ans}}${a.local}`
    }
    if (keys.includes(key)) throw malformed(`attribute ${key} repeated on element ${local}`)
    keys.push(key)
    id += key + '\u0000' + a.value + '\u0000'
  }
  const known = ATTRIBUTE_MAPS.get(id)
  if (known !== undefined) return known
  const attrs = Object.create(null) as Record<string, string>
  for (let i = 0; i < raw.length; i++) attrs[keys[i]!] = raw[i]!.value
  Object.freeze(attrs)
  if (ATTRIBUTE_MAPS.size < ATTRIBUTE_MAPS_MAX && id.length <= 1024) ATTRIBUTE_MAPS.set(id, attrs)
  return attrs
}

// Scratch space of startElement (it is never re-entered): no arrays made per element.
const nameOut = { prefix: '', local: '' }
const RAW: RawAttr[] = []
const DECLS: string[] = []

/** The start of an element: its record `t` (just read) and attributes, as an XmlElement with no content yet. */
export function startElement (c: Cursor, t: number, parentScope: Readonly<Record<string, string>>): XmlElement {
  elementName(c, t, nameOut)
  const { prefix, local } = nameOut
  const raw = RAW
  const decls = DECLS
  if (raw.length > 0) raw.length = 0
  if (decls.length > 0) decls.length = 0
  attributes(c, raw, decls)
  const scope = scopeOf(decls, decls.length, parentScope)
  const ns = scope[prefix]
  if (ns === undefined && prefix !== '') throw malformed(`unbound prefix "${prefix}" on element ${local}`)
  const attrs = raw.length === 0 ? NO_ATTRIBUTES : attributeMap(raw, scope, local)
  return { ns: ns ?? '', local, attrs, children: [], text: '', nsScope: scope }
}
