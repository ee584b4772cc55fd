// XML for the SOAP runtime: parses a message into a small namespace-resolved element tree, and
// escapes text for the encoders. Written by hand for speed (docs/dependencies.md, measured by
// benchmarks/micro/xml-parsers.ts: saxes, the strict parser we used first, checks characters one by
// one and takes ~9 times as long on a large Write; this parser scans with indexOf and native
// regexes). Strict where
// SOAP needs it: well-formed XML 1.0 with namespaces, UTF-8 only, no DTD (so no entity but the
// five predefined ones and character references), no processing instructions, bounded depth,
// element and attribute counts. test/runtime/xml-parser.test.ts checks it against saxes on a corpus and on
// mutated documents. Knows nothing of SOAP.
import { MetaosError } from './errors.js'

export interface XmlElement {
  readonly ns: string
  readonly local: string
  /** Attributes by `{ns}local` (Clark notation; no namespace → just `local`). xmlns declarations excluded. */
  readonly attrs: Record<string, string>
  readonly children: XmlElement[]
  /** Concatenated character data (text and CDATA) directly inside this element. */
  text: string
  /** In-scope prefix → namespace bindings, kept for QName-valued content (faultcode, Types). */
  readonly nsScope: Readonly<Record<string, string>>
  /**
   * Binary XML only (soap-runtime/nbfx/): the element's content was raw bytes (Bytes records), here
   * as they came, and `text` is their base64. The text parser never sets it.
   */
  readonly bin?: Buffer
}

export interface XmlLimits {
  maxDepth: number
  maxElements: number
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxDepth: 64, maxElements: 100_000 }
const MAX_ATTRIBUTES = 256

const XML_NS = 'http://www.w3.org/XML/1998/namespace'
const XMLNS_NS = 'http://www.w3.org/2000/xmlns/'
// Scopes and attribute maps have no prototype: a name like "toString", "constructor" or
// "__proto__" is then only what the document binds, never an Object.prototype member. A child's
// scope inherits its parent's (prototype chain) instead of copying it, so declarations cost
// O(declarations) and not O(elements × bindings in scope).
const ROOT_SCOPE: Readonly<Record<string, string>> = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { xml: XML_NS }))

/** A character XML 1.0 (5th ed.) cannot carry: C0 controls but tab/LF/CR, U+FFFE/U+FFFF, unpaired surrogates (the binary reader and writer refuse the same). */
export const BAD_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/ // eslint-disable-line no-control-regex
const NAME_START = 'A-Za-z_\\u00C0-\\u00D6\\u00D8-\\u00F6\\u00F8-\\u02FF\\u0370-\\u037D\\u037F-\\u1FFF\\u200C\\u200D\\u2070-\\u218F\\u2C00-\\u2FEF\\u3001-\\uD7FF\\uF900-\\uFDCF\\uFDF0-\\uFFFD\\uD800-\\uDBFF\\uDC00-\\uDFFF'
const NAME_CHAR = `${NAME_START}\\-.0-9\\u00B7\\u0300-\\u036F\\u203F-\\u2040`
/** A QName (NCName, optionally prefixed by NCName:), matched at a position (sticky). */
const QNAME = new RegExp(`[${NAME_START}][${NAME_CHAR}]*(?::[${NAME_START}][${NAME_CHAR}]*)?`, 'y')
const WS = /[ \t\r\n]*/y
const XML_DECL = /<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.[0-9]+\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/y
const ENTITY = /&(?:#x0*([0-9A-Fa-f]{1,6})|#0*([0-9]{1,7})|([A-Za-z_:][\w.:-]*));/y
const PREDEFINED: Readonly<Record<string, string>> = Object.freeze(Object.assign(Object.create(null) as Record<string, string>, { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }))

function malformed (message: string): MetaosError {
  return new MetaosError('MALFORMED_MESSAGE', message)
}

function decodeEntities (s: string, where: number): string {
  let out = ''
  let last = 0
  let i: number
  while ((i = s.indexOf('&', last)) >= 0) {
    ENTITY.lastIndex = i
    const m = ENTITY.exec(s)
    if (m === null) throw malformed(`"&" that starts no entity reference near offset ${where}`)
    const [, hex, dec, name] = m
    let v: string
    if (name !== undefined) {
      const p = PREDEFINED[name]
      if (p === undefined) throw malformed(`undefined entity &${name.slice(0, 40)}; near offset ${where}`)
      v = p
    } else {
      const cp = hex !== undefined ? parseInt(hex, 16) : Number(dec)
      if (!(cp === 0x9 || cp === 0xa || cp === 0xd || (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff))) {
        throw malformed(`character reference to a character XML forbids near offset ${where}`)
      }
      v = String.fromCodePoint(cp)
    }
    out += s.slice(last, i) + v
    last = ENTITY.lastIndex
  }
  return out + s.slice(last)
}

interface RawAttr { readonly qname: string, readonly value: string }

// The parser is the function parseXml and the functions below it, each taking the input and a
// position and returning the position after what it read: no closure or state object is made per
// document (parseXml runs on every SOAP message).

/** Refuses characters XML forbids and a declaration naming another encoding than UTF-8; returns the position after the declaration. */
function prolog (input: string): number {
  const bad = BAD_CHAR.exec(input)
  if (bad !== null) throw malformed(`character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML (offset ${bad.index})`)
  XML_DECL.lastIndex = 0
  if (!(input.startsWith('<?xml') && /[ \t\r\n]/.test(input.charAt(5)))) return 0
  const m = XML_DECL.exec(input)
  if (m === null) throw malformed('malformed XML declaration')
  const enc = m[3]?.toLowerCase()
  if (enc !== undefined && enc !== 'utf-8' && enc !== 'utf8' && enc !== 'us-ascii') throw malformed(`encoding "${m[3]}" is not accepted; send UTF-8`)
  return XML_DECL.lastIndex
}

/** Skips white space and comments outside the root element (refusing a DTD or a processing instruction). */
function skipMisc (input: string, pos: number): number {
  for (;;) {
    WS.lastIndex = pos
    WS.exec(input)
    pos = WS.lastIndex
    if (input.startsWith('<!--', pos)) { pos = comment(input, pos); continue }
    if (input.startsWith('<!DOCTYPE', pos) || input.startsWith('<!doctype', pos)) throw malformed('DTDs are not accepted (DOCTYPE found)')
    if (input.startsWith('<?', pos)) throw malformed('processing instructions are not accepted')
    return pos
  }
}

/** The comment starting at `at` ("<!--"); returns the position after its "-->". */
function comment (input: string, at: number): number {
  const end = input.indexOf('-->', at + 4)
  if (end < 0) throw malformed(`unterminated comment at offset ${at}`)
  const dd = input.indexOf('--', at + 4)
  // end === at + 4 is the empty comment <!---->, whose "-" before "-->" belongs to "<!--".
  if (dd < end || (end > at + 4 && input.charCodeAt(end - 1) === 0x2d)) throw malformed(`"--" inside a comment at offset ${at}`)
  return end + 3
}

/** Appends character data `s` (found at offset `at`) to an element's text. */
function appendText (top: XmlElement, s: string, at: number): void {
  if (s.includes(']]>')) throw malformed(`"]]>" in text at offset ${at}`)
  // Line ends are normalized before references are expanded, so &#13; survives as CR.
  let t = s.includes('\r') ? s.replace(/\r\n?/g, '\n') : s
  if (t.includes('&')) t = decodeEntities(t, at)
  top.text = top.text === '' ? t : top.text + t
}

/** The markup starting "<!" at `pos`: a comment, or a CDATA section appended to `top`'s text. */
function markup (input: string, pos: number, top: XmlElement | undefined): number {
  if (input.startsWith('<!--', pos)) return comment(input, pos)
  if (input.startsWith('<![CDATA[', pos)) {
    if (top === undefined) throw malformed('CDATA outside the root element')
    const end = input.indexOf(']]>', pos + 9)
    if (end < 0) throw malformed(`unterminated CDATA section at offset ${pos}`)
    let t = input.slice(pos + 9, end)
    if (t.includes('\r')) t = t.replace(/\r\n?/g, '\n')
    top.text += t
    return end + 3
  }
  if (input.startsWith('<!DOCTYPE', pos)) throw malformed('DTDs are not accepted (DOCTYPE found)')
  throw malformed(`unexpected markup at offset ${pos}`)
}

/** The closing tag at `pos` ("</"), which must close `expected`; returns the position after it. */
function closingTag (input: string, pos: number, expected: string | undefined): number {
  QNAME.lastIndex = pos + 2
  const m = QNAME.exec(input)
  if (m === null || m[0] !== expected) throw malformed(`closing tag at offset ${pos} does not match <${expected ?? '?'}>`)
  WS.lastIndex = QNAME.lastIndex
  WS.exec(input)
  if (input.charCodeAt(WS.lastIndex) !== 0x3e) throw malformed(`malformed closing tag at offset ${pos}`)
  return WS.lastIndex + 1
}

/**
 * The attributes of the start tag <qname (at `pos`) from `p` (right after its name) into `raw`;
 * returns the position after the tag's ">" or "/>". The tag closed itself when the character two
 * before that position is "/" (no attribute value, name or white space can end with "/" and then ">").
 */
function attributes (input: string, pos: number, qname: string, p: number, raw: RawAttr[]): number {
  for (;;) {
    WS.lastIndex = p
    WS.exec(input)
    const sawWs = WS.lastIndex > p
    p = WS.lastIndex
    const ch = input.charCodeAt(p)
    if (ch === 0x3e) return p + 1
    if (ch === 0x2f && input.charCodeAt(p + 1) === 0x3e) return p + 2
    if (!sawWs) throw malformed(`malformed start tag <${qname}> at offset ${pos}`)
    QNAME.lastIndex = p
    const an = QNAME.exec(input)
    if (an === null) throw malformed(`malformed attribute in <${qname}> at offset ${p}`)
    WS.lastIndex = QNAME.lastIndex
    WS.exec(input)
    p = WS.lastIndex
    if (input.charCodeAt(p) !== 0x3d) throw malformed(`attribute ${an[0]} without "=" at offset ${p}`)
    WS.lastIndex = p + 1
    WS.exec(input)
    p = WS.lastIndex
    const q = input.charCodeAt(p)
    if (q !== 0x22 && q !== 0x27) throw malformed(`attribute ${an[0]} value is not quoted at offset ${p}`)
    const close = input.indexOf(q === 0x22 ? '"' : "'", p + 1)
    if (close < 0) throw malformed(`unterminated attribute value at offset ${p}`)
    let v = input.slice(p + 1, close)
    if (v.includes('<')) throw malformed(`"<" in an attribute value at offset ${p}`)
    // Attribute-value normalization (XML 1.0 §3.3.3): line ends, then each white space char, become a space; character references survive.
    if (/[\t\n\r]/.test(v)) v = v.replace(/\r\n?/g, '\n').replace(/[\t\n]/g, ' ')
    if (v.includes('&')) v = decodeEntities(v, p)
    for (const r of raw) if (r.qname === an[0]) throw malformed(`attribute ${an[0]} repeated in <${qname}>`)
    raw.push({ qname: an[0], value: v })
    if (raw.length > MAX_ATTRIBUTES) throw malformed(`more than ${MAX_ATTRIBUTES} attributes in <${qname}>`)
    p = close + 1
  }
}

type Scope = Readonly<Record<string, string>>
const SCOPE_CACHE_MAX = 256
const SCOPE_KEY_MAX = 256

/**
 * Namespace scopes already derived, by parent scope and declarations (a key the reader makes of
 * them): most documents a service reads declare the same namespaces at the same places, so an
 * element's scope is found rather than built (building it was the largest part of reading a small
 * envelope), and not checked again (only a scope that passed the checks is kept). The cache is a
 * tree from its root: only the root's and kept scopes' children are kept, at most SCOPE_CACHE_MAX
 * in all (and `perParent` per parent), each from declarations of at most SCOPE_KEY_MAX
 * characters; kept scopes are frozen, shared by the documents. Anything else is built as before.
 * The text parser here and the binary reader (nbfx/reader.ts) each keep one from their root.
 */
export class ScopeCache {
  readonly #children = new WeakMap<object, Map<string, Scope>>()
  readonly #perParent: number
  #kept = 0

  constructor (root: Scope, perParent = SCOPE_CACHE_MAX) {
    this.#children.set(root, new Map())
    this.#perParent = perParent
  }

  find (parent: Scope, key: string): Scope | undefined { return this.#children.get(parent)?.get(key) }

  keep (parent: Scope, key: string, scope: Scope): void {
    const siblings = this.#children.get(parent)
    if (siblings === undefined || this.#kept >= SCOPE_CACHE_MAX || siblings.size >= this.#perParent || key.length > SCOPE_KEY_MAX) return
    Object.freeze(scope)
    siblings.set(key, scope)
    if (!this.#children.has(scope)) this.#children.set(scope, new Map())
    this.#kept++
  }
}

const scopes = new ScopeCache(ROOT_SCOPE)

/** The namespace scope of an element: its parent's, plus the element's xmlns declarations (a new scope only if it has some). */
function scopeOf (raw: readonly RawAttr[], parentScope: Readonly<Record<string, string>>): Readonly<Record<string, string>> {
  let key: string | undefined
  for (const r of raw) {
    if (r.qname === 'xmlns' || r.qname.startsWith('xmlns:')) key = (key ?? '') + r.qname + '\u0000' + r.value + '\u0000'
  }
  if (key === undefined) return parentScope
  const hit = scopes.find(parentScope, key)
  if (hit !== undefined) return hit
  let scope = parentScope
  let derived = false
  for (const r of raw) {
    let prefix: string | undefined
    if (r.qname === 'xmlns') prefix = ''
    else if (r.qname.startsWith('xmlns:')) prefix = r.qname.slice(6)
    if (prefix === undefined) continue
    if (prefix === 'xmlns' || (prefix === 'xml') !== (r.value === XML_NS) || r.value === XMLNS_NS) throw malformed(`reserved namespace binding ${r.qname}="${r.value.slice(0, 60)}"`)
    if (prefix !== '' && r.value === '') throw malformed(`prefix ${prefix} cannot be bound to the empty namespace`)
    if (prefix === 'xml') continue // already bound, to the only namespace it may have
    // A copy without a prototype (no inherited names: a prefix "constructor" stays unbound), not
    // Object.create(parent): making every scope a prototype cost V8 a prototype map per element.
    if (!derived) { scope = Object.assign(Object.create(null) as Record<string, string>, scope); derived = true }
    ;(scope as Record<string, string>)[prefix] = r.value
  }
  scopes.keep(parentScope, key, scope)
  return scope
}

/** The attributes of every element that has none (most of a SOAP message's): one frozen object, not a dictionary each. */
export const NO_ATTRIBUTES: Record<string, string> = Object.freeze(Object.create(null) as Record<string, string>)

/** The element <qname> with attributes `raw`, its namespaces resolved in `scope`. */
function element (qname: string, raw: readonly RawAttr[], scope: Readonly<Record<string, string>>): XmlElement {
  const colon = qname.indexOf(':')
  const prefix = colon < 0 ? '' : qname.slice(0, colon)
  const ns = scope[prefix]
  if (ns === undefined && prefix !== '') throw malformed(`unbound prefix "${prefix}" in <${qname}>`)
  let attrs = NO_ATTRIBUTES
  for (const r of raw) {
    if (r.qname === 'xmlns' || r.qname.startsWith('xmlns:')) continue
    if (attrs === NO_ATTRIBUTES) attrs = Object.create(null) as Record<string, string>
    const ac = r.qname.indexOf(':')
    let key = r.qname
    if (ac >= 0) {
      const ans = scope[r.qname.slice(0, ac)]
      if (ans === undefined) throw malformed(`unbound prefix in attribute ${r.qname}`)
      key = `{${ans}}${r.qname.slice(ac + 1)}`
    }
    if (key in attrs) throw malformed(`attribute ${key} repeated in <${qname}>`)
    attrs[key] = r.value
  }
  return { ns: ns ?? '', local: colon < 0 ? qname : qname.slice(colon + 1), attrs, children: [], text: '', nsScope: scope }
}

/** Parses a whole document. Throws MetaosError MALFORMED_MESSAGE on anything not well-formed or over a limit. */
export function parseXml (input: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const len = input.length
  let pos = skipMisc(input, prolog(input))
  const stack: XmlElement[] = []
  const qnames: string[] = []
  let root: XmlElement | undefined
  let count = 0
  if (input.charCodeAt(pos) !== 0x3c) throw malformed(pos >= len ? 'empty document' : `text before the root element at offset ${pos}`)

  while (pos < len) {
    if (stack.length === 0 && root !== undefined) {
      pos = skipMisc(input, pos)
      if (pos < len) throw malformed(`content after the root element at offset ${pos}`)
      break
    }
    const lt = input.indexOf('<', pos)
    if (lt < 0) throw malformed(`unclosed element <${qnames[qnames.length - 1] ?? ''}>`)
    if (lt > pos) {
      if (stack.length === 0) throw malformed(`text outside the root element at offset ${pos}`)
      appendText(stack[stack.length - 1]!, input.slice(pos, lt), pos)
    }
    pos = lt
    const c = input.charCodeAt(pos + 1)
    if (c === 0x2f) { // </name>
      pos = closingTag(input, pos, qnames[qnames.length - 1])
      stack.pop()
      qnames.pop()
      continue
    }
    if (c === 0x21) { pos = markup(input, pos, stack[stack.length - 1]); continue } // <!-- or <![CDATA[
    if (c === 0x3f) throw malformed('processing instructions are not accepted')
    // Start tag.
    QNAME.lastIndex = pos + 1
    const nm = QNAME.exec(input)
    if (nm === null) throw malformed(`malformed start tag at offset ${pos}`)
    const qname = nm[0]
    const raw: RawAttr[] = []
    const end = attributes(input, pos, qname, QNAME.lastIndex, raw)
    if (++count > limits.maxElements) throw malformed(`more than ${limits.maxElements} elements`)
    if (stack.length >= limits.maxDepth) throw malformed(`nesting deeper than ${limits.maxDepth}`)
    if (stack.length === 0 && root !== undefined) throw malformed('more than one root element')
    const parent = stack[stack.length - 1]
    const el = element(qname, raw, scopeOf(raw, parent?.nsScope ?? ROOT_SCOPE))
    if (parent !== undefined) parent.children.push(el)
    else root = el
    if (input.charCodeAt(end - 2) !== 0x2f) { stack.push(el); qnames.push(qname) } // not self-closing
    pos = end
  }
  if (stack.length > 0) throw malformed(`unclosed element <${qnames[qnames.length - 1]}>`)
  if (root === undefined) throw malformed('empty document')
  return root
}

const ESC = /[&<>"\r]/g
const NEEDS_ESC = /[&<>"\r]/
const ESC_MAP: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\r': '&#13;' }
const BAD_CHARS = new RegExp(BAD_CHAR.source, 'g')
/** Replaces what XML 1.0 cannot carry with "?": for messages that quote caller input (a slice of it can end in half a surrogate pair). */
export function toXmlSafeText (s: string): string {
  return BAD_CHAR.test(s) ? s.replace(BAD_CHARS, '?') : s
}

/** `s`, refused (INVALID_ARGUMENT) when it holds a character XML 1.0 cannot carry: what a writer, text or binary, checks of a string it is given. */
export function xmlText (s: string): string {
  if (BAD_CHAR.test(s)) throw new MetaosError('INVALID_ARGUMENT', 'string contains a character XML 1.0 cannot carry')
  return s
}

/** Escapes text or attribute content. Refuses characters XML 1.0 cannot carry. */
export function escapeXml (s: string): string {
  xmlText(s)
  return NEEDS_ESC.test(s) ? s.replace(ESC, (c) => ESC_MAP[c]!) : s
}

/** Resolves a QName value (`p:Local`) against an element's in-scope namespaces; returns Clark notation. */
export function resolveQName (el: XmlElement, value: string): string {
  const v = value.trim()
  if (v.startsWith('{')) return v
  const i = v.indexOf(':')
  if (i < 0) return el.nsScope[''] ? `{${el.nsScope['']}}${v}` : v
  const ns = el.nsScope[v.slice(0, i)]
  return ns === undefined ? v : `{${ns}}${v.slice(i + 1)}`
}
