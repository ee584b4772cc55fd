// The cursor over one binary XML document being read: bounds-checked reads of bytes, MB32
// integers, strings, names and dictionary strings (static [MC-NBFS] ids even, session [MC-NBFSE]
// ids odd). Every failure is a MALFORMED_MESSAGE naming what was wrong.
import { MetaosError } from '../errors.js'
import { readMb32, utf8, type NbfxReaderSession } from './session.js'
import { STATIC_STRINGS } from './static-dictionary.js'

// An NCName, a little stricter than XML's (no characters beyond the BMP).
const NCNAME = /^[A-Za-z_\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u02FF\u0370-\u037D\u037F-\u1FFF\u200C\u200D\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD][-.0-9A-Za-z_\u00B7\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u037D\u037F-\u1FFF\u200C\u200D\u203F\u2040\u2070-\u218F\u2C00-\u2FEF\u3001-\uD7FF\uF900-\uFDCF\uFDF0-\uFFFD]*$/

export function malformed (message: string): MetaosError {
  return new MetaosError('MALFORMED_MESSAGE', `binary XML: ${message}`)
}

/** The state of one document being read: the input and a cursor over it. */
export class Cursor {
  readonly buf: Buffer
  pos: number
  readonly end: number
  readonly session: NbfxReaderSession | undefined
  constructor (buf: Buffer, pos: number, end: number, session: NbfxReaderSession | undefined) {
    this.buf = buf
    this.pos = pos
    this.end = end
    this.session = session
  }

  need (n: number, what: string): void {
    if (n > this.end - this.pos) throw malformed(`truncated ${what} at offset ${this.pos}`)
  }

  u8 (): number {
    if (this.pos >= this.end) throw malformed('truncated record')
    return this.buf[this.pos++]!
  }

  mb32 (): number {
    const v = readMb32(this.buf, this.pos, this.end)
    this.pos = readMb32.next
    return v
  }

  /** An MB32-length-prefixed UTF-8 string. */
  string (): string {
    const n = this.mb32()
    this.need(n, 'string')
    const s = utf8(this.buf, this.pos, this.pos + n)
    this.pos += n
    return s
  }

  /** A DictionaryString: even ids from the static dictionary, odd ones from the session's. */
  dictionary (): string {
    const id = this.mb32()
    if ((id & 1) === 0) {
      const s = STATIC_STRINGS[id >>> 1]
      if (s === undefined) throw malformed(`static dictionary id 0x${id.toString(16)} is out of range (the last is 0x${((STATIC_STRINGS.length - 1) * 2).toString(16)})`)
      return s
    }
    if (this.session === undefined) throw malformed(`session dictionary id ${id} outside a session`)
    return this.session.lookup(id)
  }

  name (): string {
    const s = this.string()
    if (!NCNAME.test(s)) throw malformed(`"${s.slice(0, 40)}" is not a name`)
    return s
  }

  dictionaryName (): string {
    const s = this.dictionary()
    if (!NCNAME.test(s)) throw malformed(`"${s.slice(0, 40)}" is not a name`)
    return s
  }
}

