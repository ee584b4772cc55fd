// The [MC-NBFSE] session dictionary: on a binary session (NetTcpBinding's application/soap+msbinsession1)
// each message starts with a string table (MB32 byte size, then MB32-length-prefixed UTF-8 strings)
// whose strings join the session's dictionary with the next ids (0, 1, 2…); records then name them
// by the odd DictionaryString id 2n+1 for the rest of the session. One writer session per direction
// of a connection on the sending side, one reader session on the receiving side. Bounded: a writer
// stops adding strings past its quota (it writes them inline instead); a reader refuses a table
// that would pass its own (MALFORMED_MESSAGE).
import { MetaosError } from '../errors.js'
import { BAD_CHAR } from '../xml.js'
import { mb32Size } from './records.js'

export interface SessionLimits {
  /** Strings the session dictionary may hold. */
  readonly maxStrings: number
  /** Their total size as sent (each string's UTF-8 bytes plus its MB32 length). */
  readonly maxBytes: number
}

/**
 * WCF's BinaryMessageEncodingBindingElement.MaxSessionSize is 2048 bytes on both sides by default:
 * a writer that sends more than that is refused by a WCF peer with default settings.
 */
export const DEFAULT_WRITER_SESSION_LIMITS: SessionLimits = { maxStrings: 2048, maxBytes: 2048 }
/** What a reader accepts: generous enough for any WCF peer's raised quota, bounded per session. */
export const DEFAULT_READER_SESSION_LIMITS: SessionLimits = { maxStrings: 4096, maxBytes: 64 * 1024 }

function malformed (message: string): MetaosError {
  return new MetaosError('MALFORMED_MESSAGE', `binary XML: ${message}`)
}

/** The strings this side has sent on a session, and those it adds in the message being written. */
export class NbfxWriterSession {
  readonly limits: SessionLimits
  readonly #ids = new Map<string, number>()
  #count = 0
  #bytes = 0
  #pending: string[] = []

  constructor (limits: Partial<SessionLimits> = {}) {
    this.limits = { ...DEFAULT_WRITER_SESSION_LIMITS, ...limits }
  }

  /** The odd id of `s` (known to the peer, or added to this message's table); -1 when the quota is spent (write it inline). */
  id (s: string): number {
    const known = this.#ids.get(s)
    if (known !== undefined) return known
    const len = Buffer.byteLength(s)
    const size = len + mb32Size(len)
    if (this.#count >= this.limits.maxStrings || this.#bytes + size > this.limits.maxBytes) return -1
    const id = this.#count * 2 + 1
    this.#count++
    this.#bytes += size
    this.#ids.set(s, id)
    this.#pending.push(s)
    return id
  }

  /** The strings added since the last call, in id order: this message's string table. */
  takeTable (): string[] {
    const t = this.#pending
    if (t.length > 0) this.#pending = []
    return t
  }

  /** Forgets the strings added since the last takeTable (the message that added them was never sent). */
  rollback (): void {
    for (const s of this.#pending) {
      this.#ids.delete(s)
      this.#count--
      this.#bytes -= Buffer.byteLength(s) + mb32Size(Buffer.byteLength(s))
    }
    this.#pending = []
  }

  get size (): number { return this.#count }
}

/** Reads an MB32 at `pos` of `buf` (before `end`); returns the value, the position after it in `readMb32.next`. */
export function readMb32 (buf: Buffer, pos: number, end: number): number {
  let v = 0
  for (let i = 0; i < 5; i++) {
    if (pos >= end) throw malformed('truncated multi-byte integer')
    const b = buf[pos++]!
    if (i === 4 && b > 0x07) throw malformed('multi-byte integer over 2^31')
    v |= (b & 0x7f) << (7 * i)
    if ((b & 0x80) === 0) { readMb32.next = pos; return v >>> 0 }
  }
  throw malformed('multi-byte integer over 5 bytes')
}
readMb32.next = 0

/** The strings the peer has sent on a session. */
export class NbfxReaderSession {
  readonly limits: SessionLimits
  readonly strings: string[] = []
  #bytes = 0

  constructor (limits: Partial<SessionLimits> = {}) {
    this.limits = { ...DEFAULT_READER_SESSION_LIMITS, ...limits }
  }

  /**
   * Reads the string table at `pos` and adds its strings; returns the position after it. They stay
   * even if the rest of the message is refused: the sender counts them as sent.
   */
  readTable (buf: Buffer, pos: number, end: number): number {
    const size = readMb32(buf, pos, end)
    pos = readMb32.next
    if (size > end - pos) throw malformed(`string table of ${size} bytes in a message of ${end - pos} more`)
    if (this.#bytes + size > this.limits.maxBytes) throw malformed(`the session's strings would pass ${this.limits.maxBytes} bytes`)
    const tableEnd = pos + size
    while (pos < tableEnd) {
      const len = readMb32(buf, pos, tableEnd)
      pos = readMb32.next
      if (len > tableEnd - pos) throw malformed('a string of the string table runs past it')
      if (this.strings.length >= this.limits.maxStrings) throw malformed(`the session's dictionary would pass ${this.limits.maxStrings} strings`)
      this.strings.push(utf8(buf, pos, pos + len))
      pos += len
    }
    this.#bytes += size
    return pos
  }

  /** The string of odd id `id`. */
  lookup (id: number): string {
    const s = this.strings[(id - 1) >>> 1]
    if (s === undefined) throw malformed(`session dictionary id ${id} is not defined (the session has ${this.strings.length} strings)`)
    return s
  }
}

/** Refuses a string holding a character XML 1.0 cannot carry. */
export function checkChars (s: string): string {
  const bad = BAD_CHAR.exec(s)
  if (bad !== null) throw malformed(`character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')} is not allowed in XML`)
  return s
}

/** Strict UTF-8 decoding: refuses invalid sequences (XML 1.0 §4.3.3) instead of reading U+FFFD, and characters XML forbids. */
export function utf8 (buf: Buffer, start: number, end: number): string {
  const s = buf.toString('utf8', start, end)
  if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(buf.subarray(start, end))) throw malformed('a string is not valid UTF-8')
  return checkChars(s)
}
