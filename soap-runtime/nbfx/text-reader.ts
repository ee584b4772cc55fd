// The payload of an [MC-NBFX] text record as the text it stands for, or, for Bytes8/16/32Text,
// the bytes themselves (a slice of the input). Lists (StartListText … EndListText) read as their
// items joined by single spaces. Lengths are checked against what is left of the message.
import { R, FIRST_TEXT, LAST_TEXT, LETTERS, recordName } from './records.js'
import { checkChars, utf8 } from './session.js'
import { formatDateTime, formatDecimal, formatDouble, formatFloat, formatGuid, formatTimeSpan } from './text-values.js'
import { malformed, type Cursor } from './cursor.js'

export function isTextRecord (t: number): boolean {
  return t >= FIRST_TEXT && t <= LAST_TEXT
}

/** A length-prefixed run of `n` bytes (Chars, Bytes, UnicodeChars): where it starts; the cursor moves past it. */
function run (c: Cursor, n: number, what: string): number {
  if (n < 0) throw malformed(`negative ${what} length at offset ${c.pos}`)
  c.need(n, what)
  const at = c.pos
  c.pos += n
  return at
}

function len16 (c: Cursor): number {
  c.need(2, 'length')
  const n = c.buf.readUInt16LE(c.pos)
  c.pos += 2
  return n
}

function len32 (c: Cursor): number {
  c.need(4, 'length')
  const n = c.buf.readInt32LE(c.pos)
  c.pos += 4
  return n
}

function fixed (c: Cursor, n: number, t: number): number {
  if (n > c.end - c.pos) throw malformed(`truncated ${recordName(t)} at offset ${c.pos}`)
  const at = c.pos
  c.pos += n
  return at
}

function unicode (c: Cursor, n: number): string {
  if ((n & 1) === 1) throw malformed('UnicodeChars record of an odd length')
  const at = run(c, n, 'UnicodeChars')
  return checkChars(c.buf.toString('utf16le', at, at + n))
}

function chars (c: Cursor, n: number): string {
  const at = run(c, n, 'Chars')
  return utf8(c.buf, at, at + n)
}

function bytes (c: Cursor, n: number): Buffer {
  const at = run(c, n, 'Bytes')
  return c.buf.subarray(at, at + n)
}

/** The value of the text record of type `t` (just read; either form, with or without EndElement). */
export function readTextValue (c: Cursor, t: number): string | Buffer {
  const buf = c.buf
  switch (t & ~1) {
    case R.ZeroText: return '0'
    case R.OneText: return '1'
    case R.FalseText: return 'false'
    case R.TrueText: return 'true'
    case R.Int8Text: return String(buf.readInt8(fixed(c, 1, t)))
    case R.Int16Text: return String(buf.readInt16LE(fixed(c, 2, t)))
    case R.Int32Text: return String(buf.readInt32LE(fixed(c, 4, t)))
    case R.Int64Text: return String(buf.readBigInt64LE(fixed(c, 8, t)))
    case R.UInt64Text: return String(buf.readBigUInt64LE(fixed(c, 8, t)))
    case R.FloatText: return formatFloat(buf.readFloatLE(fixed(c, 4, t)))
    case R.DoubleText: return formatDouble(buf.readDoubleLE(fixed(c, 8, t)))
    case R.DecimalText: return formatDecimal(buf, fixed(c, 16, t))
    case R.DateTimeText: return formatDateTime(buf, fixed(c, 8, t))
    case R.TimeSpanText: return formatTimeSpan(buf, fixed(c, 8, t))
    case R.UuidText: return formatGuid(buf, fixed(c, 16, t))
    case R.UniqueIdText: return 'urn:uuid:' + formatGuid(buf, fixed(c, 16, t))
    case R.BoolText: return buf[fixed(c, 1, t)] === 0 ? 'false' : 'true'
    case R.Chars8Text: return chars(c, buf[fixed(c, 1, t)]!)
    case R.Chars16Text: return chars(c, len16(c))
    case R.Chars32Text: return chars(c, len32(c))
    case R.Bytes8Text: return bytes(c, buf[fixed(c, 1, t)]!)
    case R.Bytes16Text: return bytes(c, len16(c))
    case R.Bytes32Text: return bytes(c, len32(c))
    case R.UnicodeChars8Text: return unicode(c, buf[fixed(c, 1, t)]!)
    case R.UnicodeChars16Text: return unicode(c, len16(c))
    case R.UnicodeChars32Text: return unicode(c, len32(c))
    case R.EmptyText: return ''
    case R.DictionaryText: return c.dictionary()
    case R.QNameDictionaryText: {
      const p = buf[fixed(c, 1, t)]!
      if (p >= 26) throw malformed(`QName prefix index ${p} (a-z is 0-25)`)
      return `${LETTERS[p]!}:${c.dictionary()}`
    }
    case R.StartListText: return list(c)
    default: throw malformed(`${recordName(t)} outside a list`) // EndListText
  }
}

/** The items of a list, up to its EndListText, joined by spaces (a list holds no list). */
function list (c: Cursor): string {
  let out = ''
  let first = true
  for (;;) {
    const t = c.u8()
    if (t === R.EndListText) return out
    if (!isTextRecord(t) || (t & 1) === 1 || t === R.StartListText) throw malformed(`${recordName(t)} inside a list (offset ${c.pos - 1})`)
    const v = readTextValue(c, t)
    out += (first ? '' : ' ') + (typeof v === 'string' ? v : v.toString('base64'))
    first = false
  }
}
