// Writes [MC-NBFX] records into buffers: elements, attributes and xmlns declarations by the
// shortest record the name allows (a one-letter prefix has its own record types; a name in the
// [MC-NBFS] static dictionary or the session's [MC-NBFSE] dictionary goes as its id), and text as
// the typed record its value fits (Zero/One/Int8…Int64, Bool, Double, DateTime, UniqueId, Chars,
// Bytes) with the "WithEndElement" form when it is the whole content. Bytes of at least
// ZERO_COPY_BYTES are not copied: the caller's buffer becomes one of the output chunks.
import { R, letterOf } from './records.js'
import { STATIC_IDS } from './static-dictionary.js'
import type { NbfxWriterSession } from './session.js'
import { dateTimeBits, writeGuid } from './text-values.js'

export const ZERO_COPY_BYTES = 4096

/** A binary message ready for a transport: its chunks in order and their total size. */
export interface EncodedMessage {
  readonly chunks: Buffer[]
  readonly length: number
}

export class NbfxWriter {
  readonly session: NbfxWriterSession | undefined
  #buf: Buffer
  #pos = 0
  #chunks: Buffer[] = []
  #length = 0
  /** Where the first chunk starts: 1 when a byte is kept for an empty string table. */
  #start: number

  /** `session` set: a message of a binary session, opening with its string table. */
  constructor (session?: NbfxWriterSession, initialBytes = 1024) {
    this.session = session
    this.#buf = Buffer.allocUnsafe(initialBytes)
    this.#start = session === undefined ? 0 : 1
    this.#pos = this.#start
  }

  /** The dictionary id of a name or namespace: static (even), session (odd), or -1 (write it inline). */
  id (s: string): number {
    const st = STATIC_IDS.get(s)
    if (st !== undefined) return st
    return this.session === undefined ? -1 : this.session.id(s)
  }

  #room (n: number): void {
    if (this.#pos + n <= this.#buf.length) return
    this.#flush()
    if (this.#buf.length - this.#pos < n) {
      this.#buf = Buffer.allocUnsafe(Math.max(n, this.#buf.length * 2, 1024))
      this.#pos = 0
    }
  }

  /** Moves what is written so far into the chunks; the rest of the buffer stays in use. */
  #flush (): void {
    if (this.#pos === 0) return
    this.#chunks.push(this.#buf.subarray(0, this.#pos))
    this.#length += this.#pos
    this.#buf = this.#buf.subarray(this.#pos)
    this.#pos = 0
  }

  byte (b: number): void {
    this.#room(1)
    this.#buf[this.#pos++] = b
  }

  mb32 (n: number): void {
    this.#room(5)
    const buf = this.#buf
    while (n >= 0x80) {
      buf[this.#pos++] = (n & 0x7f) | 0x80
      n >>>= 7
    }
    buf[this.#pos++] = n
  }

  /** Writes `s` as UTF-8 at `at` (room for 3 bytes per character is there); returns the bytes written. Short ASCII strings without a call into C++. */
  #utf8 (s: string, at: number): number {
    const buf = this.#buf
    const n = s.length
    if (n <= 32) {
      let i = 0
      for (; i < n; i++) {
        const c = s.charCodeAt(i)
        if (c >= 0x80) break
        buf[at + i] = c
      }
      if (i === n) return n
    }
    return buf.write(s, at, 'utf8')
  }

  /** An MB32-length-prefixed UTF-8 string. */
  string (s: string): void {
    if (s.length < 43) { // at most 126 bytes: a one-byte length
      this.#room(1 + s.length * 3)
      const n = this.#utf8(s, this.#pos + 1)
      this.#buf[this.#pos] = n
      this.#pos += 1 + n
      return
    }
    const n = Buffer.byteLength(s)
    this.mb32(n)
    this.#room(n)
    this.#pos += this.#buf.write(s, this.#pos, 'utf8')
  }

  /** A name (or namespace) by its dictionary id (record `dictType`), else inline (record `inlineType`). */
  #nameRecord (dictType: number, inlineType: number, name: string): void {
    const id = this.id(name)
    if (id >= 0) { this.byte(dictType); this.mb32(id) } else { this.byte(inlineType); this.string(name) }
  }

  startElement (prefix: string, local: string): void {
    if (prefix === '') return this.#nameRecord(R.ShortDictionaryElement, R.ShortElement, local)
    const l = letterOf(prefix)
    if (l >= 0) return this.#nameRecord(R.PrefixDictionaryElementA + l, R.PrefixElementA + l, local)
    const id = this.id(local)
    this.byte(id >= 0 ? R.DictionaryElement : R.Element)
    this.string(prefix)
    if (id >= 0) this.mb32(id)
    else this.string(local)
  }

  /** An attribute's name; its value follows as one text record (never the WithEndElement form). */
  attributeName (prefix: string, local: string): void {
    if (prefix === '') return this.#nameRecord(R.ShortDictionaryAttribute, R.ShortAttribute, local)
    const l = letterOf(prefix)
    if (l >= 0) return this.#nameRecord(R.PrefixDictionaryAttributeA + l, R.PrefixAttributeA + l, local)
    const id = this.id(local)
    this.byte(id >= 0 ? R.DictionaryAttribute : R.Attribute)
    this.string(prefix)
    if (id >= 0) this.mb32(id)
    else this.string(local)
  }

  xmlns (prefix: string, ns: string): void {
    if (prefix === '') return this.#nameRecord(R.ShortDictionaryXmlnsAttribute, R.ShortXmlnsAttribute, ns)
    const id = this.id(ns)
    this.byte(id >= 0 ? R.DictionaryXmlnsAttribute : R.XmlnsAttribute)
    this.string(prefix)
    if (id >= 0) this.mb32(id)
    else this.string(ns)
  }

  endElement (): void {
    this.byte(R.EndElement)
  }

  /** Text as Chars8/16/32 (UTF-8), or EmptyText. `end`: the element ends with it. */
  text (s: string, end: boolean): void {
    const e = end ? 1 : 0
    if (s === '') return this.byte(R.EmptyText | e)
    if (s.length <= 85) { // at most 255 bytes
      this.#room(2 + s.length * 3)
      const n = this.#utf8(s, this.#pos + 2)
      this.#buf[this.#pos] = R.Chars8Text | e
      this.#buf[this.#pos + 1] = n
      this.#pos += 2 + n
      return
    }
    const n = Buffer.byteLength(s)
    this.#room(5 + n)
    const buf = this.#buf
    if (n < 0x100) { buf[this.#pos++] = R.Chars8Text | e; buf[this.#pos++] = n } else if (n < 0x10000) {
      buf[this.#pos++] = R.Chars16Text | e
      buf.writeUInt16LE(n, this.#pos)
      this.#pos += 2
    } else {
      buf[this.#pos++] = R.Chars32Text | e
      buf.writeInt32LE(n, this.#pos)
      this.#pos += 4
    }
    this.#pos += buf.write(s, this.#pos, 'utf8')
  }

  /** Text that names a dictionary string when it is one (a namespace, an Action URI), else Chars. */
  dictionaryText (s: string, end: boolean): void {
    const id = this.id(s)
    if (id < 0) return this.text(s, end)
    this.byte(R.DictionaryText | (end ? 1 : 0))
    this.mb32(id)
  }

  /** An integer (safe, as metaos's int and long are) by the smallest record that holds it. */
  integer (n: number, end: boolean): void {
    const e = end ? 1 : 0
    if (n === 0) return this.byte(R.ZeroText | e)
    if (n === 1) return this.byte(R.OneText | e)
    this.#room(9)
    const buf = this.#buf
    if (n >= -128 && n <= 127) { buf[this.#pos++] = R.Int8Text | e; buf.writeInt8(n, this.#pos); this.#pos += 1 } else if (n >= -32768 && n <= 32767) {
      buf[this.#pos++] = R.Int16Text | e; buf.writeInt16LE(n, this.#pos); this.#pos += 2
    } else if (n >= -2147483648 && n <= 2147483647) {
      buf[this.#pos++] = R.Int32Text | e; buf.writeInt32LE(n, this.#pos); this.#pos += 4
    } else {
      buf[this.#pos++] = R.Int64Text | e; buf.writeBigInt64LE(BigInt(n), this.#pos); this.#pos += 8
    }
  }

  bool (b: boolean, end: boolean): void {
    this.byte((b ? R.TrueText : R.FalseText) | (end ? 1 : 0))
  }

  /** A double: an integer record when it is a safe integer, else DoubleText (NaN, ±INF included). */
  double (n: number, end: boolean): void {
    if (Number.isSafeInteger(n) && !Object.is(n, -0)) return this.integer(n, end)
    this.#room(9)
    this.#buf[this.#pos++] = R.DoubleText | (end ? 1 : 0)
    this.#buf.writeDoubleLE(n, this.#pos)
    this.#pos += 8
  }

  /** A dateTime in UTC (DateTimeText, kind UTC). */
  dateTime (d: Date, end: boolean): void {
    this.#room(9)
    this.#buf[this.#pos++] = R.DateTimeText | (end ? 1 : 0)
    this.#buf.writeBigUInt64LE(dateTimeBits(d), this.#pos)
    this.#pos += 8
  }

  /** A urn:uuid:… id (lower-case) as UniqueIdText (16 bytes), anything else as text. */
  uniqueId (s: string, end: boolean): void {
    if (s.length === 45 && s.startsWith('urn:uuid:')) {
      this.#room(17)
      if (writeGuid(s.slice(9), this.#buf, this.#pos + 1)) {
        this.#buf[this.#pos] = R.UniqueIdText | (end ? 1 : 0)
        this.#pos += 17
        return
      }
    }
    this.text(s, end)
  }

  /** Raw bytes: Bytes8/16/32Text. A large block is not copied: it becomes a chunk of the output. */
  bytes (data: Uint8Array, end: boolean): void {
    const n = data.length
    const e = end ? 1 : 0
    this.#room(5)
    const buf = this.#buf
    if (n < 0x100) { buf[this.#pos++] = R.Bytes8Text | e; buf[this.#pos++] = n } else if (n < 0x10000) {
      buf[this.#pos++] = R.Bytes16Text | e; buf.writeUInt16LE(n, this.#pos); this.#pos += 2
    } else {
      buf[this.#pos++] = R.Bytes32Text | e; buf.writeInt32LE(n, this.#pos); this.#pos += 4
    }
    if (n >= ZERO_COPY_BYTES) {
      this.#flush()
      this.#chunks.push(Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, n))
      this.#length += n
      return
    }
    this.#room(n)
    this.#buf.set(data, this.#pos)
    this.#pos += n
  }

  /**
   * The message: its chunks and size. On a session it opens with the string table of the strings
   * this message added (an empty table is the one byte kept for it at the start).
   */
  finish (): EncodedMessage {
    this.#flush()
    const chunks = this.#chunks
    let length = this.#length
    if (this.session !== undefined) {
      const table = this.session.takeTable()
      if (table.length === 0) chunks[0]![0] = 0
      else {
        chunks[0] = chunks[0]!.subarray(1)
        length -= 1
        const t = stringTable(table)
        chunks.unshift(t)
        length += t.length
      }
    }
    return { chunks, length }
  }
}

/** An [MC-NBFSE] string table: MB32 size, then each string MB32-length-prefixed. */
export function stringTable (strings: readonly string[]): Buffer {
  const w = new NbfxWriter(undefined, 64)
  for (const s of strings) w.string(s)
  const body = w.finish()
  const inner = Buffer.concat(body.chunks, body.length)
  const head = new NbfxWriter(undefined, 8)
  head.mb32(inner.length)
  const h = head.finish()
  return Buffer.concat([...h.chunks, inner])
}
