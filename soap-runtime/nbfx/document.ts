// Reads a whole [MC-NBFX] document: one root element (comments around it are skipped), its
// elements, text records (each "WithEndElement" one closing its element), EndElement records and
// Array records (an element repeated with one fixed-size value each), into the XmlElement tree.
// Depth and element counts obey the same XmlLimits as the text parser.
import { DEFAULT_XML_LIMITS, type XmlElement, type XmlLimits } from '../xml.js'
import { Cursor, malformed } from './cursor.js'
import { R, FIRST_ELEMENT, LAST_ELEMENT, recordName } from './records.js'
import { BytesElement, ROOT_SCOPE, startElement } from './reader.js'
import { isTextRecord, readTextValue } from './text-reader.js'
import type { NbfxReaderSession } from './session.js'

/** Appends a text value to the element on top: bytes wait in `pending` while they are all its content. */
function appendText (el: XmlElement, pending: Buffer[] | undefined, v: string | Buffer): Buffer[] | undefined {
  if (typeof v !== 'string') {
    if (el.text === '' && el.children.length === 0) {
      if (pending === undefined) return [v]
      pending.push(v)
      return pending
    }
    el.text += v.toString('base64')
    return pending
  }
  if (v === '') return pending
  if (pending !== undefined) el.text += joined(pending).toString('base64')
  el.text += v
  return undefined
}

function joined (parts: Buffer[]): Buffer {
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
}

/** Item sizes of the value records an Array may hold (the WithEndElement forms). */
const ARRAY_ITEM: Readonly<Record<number, number>> = {
  [R.Int16Text | 1]: 2,
  [R.Int32Text | 1]: 4,
  [R.Int64Text | 1]: 8,
  [R.FloatText | 1]: 4,
  [R.DoubleText | 1]: 8,
  [R.DecimalText | 1]: 16,
  [R.DateTimeText | 1]: 8,
  [R.TimeSpanText | 1]: 8,
  [R.UuidText | 1]: 16,
  [R.BoolText | 1]: 1,
}

/**
 * An Array record (its 0x03 just read) inside `parent`: an element record with attributes, an
 * EndElement, the item record type, an MB32 count, then the items. Adds `count` elements; returns
 * the new element count.
 */
function readArray (c: Cursor, parent: XmlElement, count: number, limits: XmlLimits): number {
  const t = c.u8()
  if (t < FIRST_ELEMENT || t > LAST_ELEMENT) throw malformed(`${recordName(t)} where an Array's element belongs`)
  const proto = startElement(c, t, parent.nsScope)
  if (c.u8() !== R.EndElement) throw malformed('an Array\'s element is not empty')
  const type = c.u8()
  const size = ARRAY_ITEM[type]
  if (size === undefined) throw malformed(`${recordName(type)} is not a value type an Array may hold`)
  const n = c.mb32()
  if (n > (c.end - c.pos) / size) throw malformed(`an Array of ${n} items of ${size} bytes runs past the message`)
  if (count + n > limits.maxElements) throw malformed(`more than ${limits.maxElements} elements`)
  for (let i = 0; i < n; i++) {
    const at = c.pos
    const v = readTextValue(c, type)
    if (c.pos !== at + size) throw malformed('an Array item of the wrong size')
    parent.children.push({ ns: proto.ns, local: proto.local, attrs: proto.attrs, children: [], text: v as string, nsScope: proto.nsScope })
  }
  return count + n
}

/** Skips comments from the cursor on; returns the next record type without reading it (-1 at the end). */
function skipComments (c: Cursor): number {
  while (c.pos < c.end) {
    const t = c.buf[c.pos]!
    if (t !== R.Comment) return t
    c.pos++
    c.string()
  }
  return -1
}

/** Reads the document in `buf` from `start` to `end`. Throws MetaosError MALFORMED_MESSAGE on anything not well-formed or over a limit. */
export function readBinaryXml (buf: Buffer, start: number, end: number, session?: NbfxReaderSession, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const c = new Cursor(buf, start, end, session)
  const first = skipComments(c)
  if (first < 0) throw malformed('empty document')
  if (first < FIRST_ELEMENT || first > LAST_ELEMENT) throw malformed(`${recordName(first)} before the root element`)
  const stack: XmlElement[] = []
  const pending: Array<Buffer[] | undefined> = []
  let root: XmlElement | undefined
  let count = 0
  while (root === undefined) {
    const t = c.u8()
    const top = stack[stack.length - 1]
    if (t >= FIRST_ELEMENT && t <= LAST_ELEMENT) {
      if (++count > limits.maxElements) throw malformed(`more than ${limits.maxElements} elements`)
      if (stack.length >= limits.maxDepth) throw malformed(`nesting deeper than ${limits.maxDepth}`)
      const el = startElement(c, t, top?.nsScope ?? ROOT_SCOPE)
      if (top !== undefined) {
        const bytes = pending[stack.length - 1]
        if (bytes !== undefined) { top.text += joined(bytes).toString('base64'); pending[stack.length - 1] = undefined }
        top.children.push(el)
      }
      stack.push(el)
      pending.push(undefined)
      continue
    }
    if (top === undefined) throw malformed(`${recordName(t)} outside the root element`) // only after the root's first record
    if (isTextRecord(t)) {
      pending[stack.length - 1] = appendText(top, pending[stack.length - 1], readTextValue(c, t))
      if ((t & 1) === 0) continue
    } else if (t === R.Comment) {
      c.string()
      continue
    } else if (t === R.Array) {
      count = readArray(c, top, count, limits)
      continue
    } else if (t !== R.EndElement) throw malformed(`${recordName(t)} is not a record of element content (offset ${c.pos - 1})`)
    // The element on top ends.
    const bytes = pending.pop()
    let el = stack.pop()!
    if (bytes !== undefined && el.children.length > 0) el.text += joined(bytes).toString('base64') // bytes, then an Array
    else if (bytes !== undefined) {
      el = new BytesElement(el, joined(bytes))
      const parent = stack[stack.length - 1]
      if (parent !== undefined) parent.children[parent.children.length - 1] = el
    }
    if (stack.length === 0) root = el
  }
  if (skipComments(c) >= 0) throw malformed(`content after the root element (offset ${c.pos})`)
  return root
}

/**
 * Reads one binary SOAP message into its element tree (the Envelope). `session` set: a message of a
 * binary session, whose string table comes first and joins the session's dictionary.
 */
export function decodeEnvelope (buf: Buffer, session?: NbfxReaderSession, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const start = session === undefined ? 0 : session.readTable(buf, 0, buf.length)
  return readBinaryXml(buf, start, buf.length, session, limits)
}
