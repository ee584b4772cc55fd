// .NET Message Framing ([MC-NMF] §2.2): the records of a session and their bytes. A session opens
// with a preamble (Version 1.0, Mode, Via, an envelope encoding, optional upgrade requests, Preamble
// End), the receiver answers Preamble Ack (or a Fault record), then both sides send Sized Envelope
// records until one sends End. Variable-sized records carry their size as a multi-byte int31: 7 bits
// per octet, least significant group first, the high bit set on every octet but the last; at most
// five octets, a value from 1 to 2^31-1 (§2.2.2, and the EncodedSize rule of §3.1.1.2).
// The reader here is incremental (bytes arrive as the socket gives them) and refuses, before any
// payload is held, a size over its quota. Knows no socket and no SOAP.
import { isUtf8 } from 'node:buffer'

export const RecordType = {
  Version: 0x00,
  Mode: 0x01,
  Via: 0x02,
  KnownEncoding: 0x03,
  ExtensibleEncoding: 0x04,
  UnsizedEnvelope: 0x05,
  SizedEnvelope: 0x06,
  End: 0x07,
  Fault: 0x08,
  UpgradeRequest: 0x09,
  UpgradeResponse: 0x0a,
  PreambleAck: 0x0b,
  PreambleEnd: 0x0c,
} as const

export const Mode = { SingletonUnsized: 0x01, Duplex: 0x02, Simplex: 0x03, SingletonSized: 0x04 } as const

/** Known Encoding record values (§2.2.3.4.1). */
export const KnownEncoding = {
  Soap11Utf8: 0x00,
  Soap11Utf16: 0x01,
  Soap11UnicodeLE: 0x02,
  Soap12Utf8: 0x03,
  Soap12Utf16: 0x04,
  Soap12UnicodeLE: 0x05,
  Soap12Mtom: 0x06,
  Soap12Binary: 0x07,
  Soap12BinarySession: 0x08,
} as const

/** The namespace of the framing faults (§2.2.5). */
export const FAULT_NS = 'http://schemas.microsoft.com/ws/2006/05/framing/faults/'

/** The fault names of §2.2.5 this implementation sends. */
export type FramingFault =
  | 'ContentTypeInvalid' | 'ContentTypeTooLong' | 'EndpointAccessDenied' | 'EndpointNotFound' | 'EndpointUnavailable' | 'InvalidRecordSequence'
  | 'MaxMessageSizeExceededFault' | 'ServerTooBusy' | 'ServiceActivationFailed' | 'UnsupportedMode' | 'UnsupportedVersion'
  | 'UpgradeInvalid' | 'ViaTooLong'

/** A framing error: the session ends with a Fault record naming `fault` (the message is for logs). */
export class FramingError extends Error {
  readonly fault: FramingFault
  constructor (fault: FramingFault, message: string) {
    super(message)
    this.name = 'FramingError'
    this.fault = fault
  }
}

type T = typeof RecordType
export type FrameRecord =
  | { readonly type: T['Version'], readonly major: number, readonly minor: number }
  | { readonly type: T['Mode'], readonly value: number }
  | { readonly type: T['KnownEncoding'], readonly value: number }
  | { readonly type: T['Via'], readonly text: string }
  | { readonly type: T['ExtensibleEncoding'], readonly text: string }
  | { readonly type: T['Fault'], readonly text: string }
  | { readonly type: T['UpgradeRequest'], readonly text: string }
  | { readonly type: T['SizedEnvelope'], readonly payload: Buffer }
  | { readonly type: T['End'] | T['UpgradeResponse'] | T['PreambleAck'] | T['PreambleEnd'] }

/** The largest size each variable-sized record may declare. */
export interface RecordQuotas {
  readonly maxEnvelopeBytes: number
  /** Via (WCF's MaxViaSize is 2048). */
  readonly maxViaBytes?: number
  /** Extensible encoding content type (WCF's MaxContentTypeSize is 256). */
  readonly maxContentTypeBytes?: number
}

const MAX_INT31 = 0x7fffffff
/** Fault strings and upgrade protocol names: WCF reads at most 256 octets of a fault. */
const MAX_SHORT_STRING = 256

/** The octets of `n` as a multi-byte int31 (§2.2.2). */
export function encodeSize (n: number): Buffer {
  if (!Number.isInteger(n) || n < 0 || n > MAX_INT31) throw new RangeError(`${n} is not a record size (0 to 2^31-1)`)
  const out = Buffer.allocUnsafe(sizeOfSize(n))
  writeSize(out, 0, n)
  return out
}

/** How many octets `n` takes as a multi-byte int31. */
export function sizeOfSize (n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5
}

/** Writes `n` at `at`; returns the offset after it. */
export function writeSize (buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) { buf[at++] = (n & 0x7f) | 0x80; n >>>= 7 }
  buf[at++] = n
  return at
}

/** A record whose data is a size-prefixed UTF-8 string (Via, Extensible Encoding, Fault, Upgrade Request). */
export function stringRecord (type: number, text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8')
  const out = Buffer.allocUnsafe(1 + sizeOfSize(bytes.length) + bytes.length)
  out[0] = type
  bytes.copy(out, writeSize(out, 1, bytes.length))
  return out
}

/** The Fault record for `fault` (its full URI). */
export function faultRecord (fault: FramingFault): Buffer {
  return stringRecord(RecordType.Fault, FAULT_NS + fault)
}

/** A duplex session's preamble: Version 1.0, Mode Duplex, Via, the encoding record, then (unless `end` is false: upgrades come first) Preamble End. */
export function duplexPreamble (via: string, encodingRecord: Buffer, end = true): Buffer {
  return Buffer.concat([Buffer.of(RecordType.Version, 1, 0, RecordType.Mode, Mode.Duplex), stringRecord(RecordType.Via, via), encodingRecord, ...(end ? [Buffer.of(RecordType.PreambleEnd)] : [])])
}

/** The type octet and size of a Sized Envelope record of `size` payload octets. */
export function envelopeHeader (size: number): Buffer {
  const out = Buffer.allocUnsafe(1 + sizeOfSize(size))
  out[0] = RecordType.SizedEnvelope
  writeSize(out, 1, size)
  return out
}

export const END_RECORD = Buffer.of(RecordType.End)
export const UPGRADE_RESPONSE_RECORD = Buffer.of(RecordType.UpgradeResponse)
export const PREAMBLE_ACK_RECORD = Buffer.of(RecordType.PreambleAck)

const FIXED_SIZE: Record<number, number> = {
  [RecordType.Version]: 3,
  [RecordType.Mode]: 2,
  [RecordType.KnownEncoding]: 2,
  [RecordType.End]: 1,
  [RecordType.UpgradeResponse]: 1,
  [RecordType.PreambleAck]: 1,
  [RecordType.PreambleEnd]: 1,
}

/**
 * Reads records from a byte stream as it arrives: `push` the socket's chunks, then take `next()`
 * until it returns undefined (a record is not complete yet). Throws a FramingError on an unknown
 * record type, a malformed size, or a size over its quota — as soon as the size is read, before
 * its payload arrives, so a hostile size costs nothing. `buffered` is what it holds.
 */
export class RecordReader {
  readonly #q: RecordQuotas
  #chunks: Buffer[] = []
  /** Offset of the first unread octet in the first chunk. */
  #head = 0
  #length = 0

  constructor (quotas: RecordQuotas) {
    this.#q = quotas
  }

  /** Octets received and not yet returned as records. */
  get buffered (): number { return this.#length }

  push (chunk: Buffer): void {
    if (chunk.length === 0) return
    this.#chunks.push(chunk)
    this.#length += chunk.length
  }

  /** The next complete record, or undefined. */
  next (): FrameRecord | undefined {
    if (this.#length === 0) return undefined
    const type = this.#peek(0)
    const fixed = FIXED_SIZE[type]
    if (fixed !== undefined) {
      if (this.#length < fixed) return undefined
      const a = fixed > 1 ? this.#peek(1) : 0
      const b = fixed > 2 ? this.#peek(2) : 0
      this.#skip(fixed)
      if (type === RecordType.Version) return { type, major: a, minor: b }
      if (type === RecordType.Mode || type === RecordType.KnownEncoding) return { type, value: a } as FrameRecord
      return { type } as FrameRecord
    }
    const limit = this.#limitOf(type)
    const size = this.#size()
    if (size === undefined) return undefined
    if (size.value > limit.max) throw new FramingError(limit.fault, `a record of type 0x${type.toString(16)} declares ${size.value} octets, over the limit of ${limit.max}`)
    if (this.#length < 1 + size.octets + size.value) return undefined
    this.#skip(1 + size.octets)
    const payload = this.#take(size.value)
    if (type === RecordType.SizedEnvelope) return { type, payload }
    return { type, text: utf8(payload, type) } as FrameRecord
  }

  #limitOf (type: number): { max: number, fault: FramingFault } {
    switch (type) {
      case RecordType.SizedEnvelope: return { max: this.#q.maxEnvelopeBytes, fault: 'MaxMessageSizeExceededFault' }
      case RecordType.Via: return { max: this.#q.maxViaBytes ?? 2048, fault: 'ViaTooLong' }
      case RecordType.ExtensibleEncoding: return { max: this.#q.maxContentTypeBytes ?? 256, fault: 'ContentTypeTooLong' }
      case RecordType.Fault: case RecordType.UpgradeRequest: return { max: MAX_SHORT_STRING, fault: 'InvalidRecordSequence' }
      case RecordType.UnsizedEnvelope: throw new FramingError('InvalidRecordSequence', 'an Unsized Envelope record (singleton mode) on a duplex session')
      default: throw new FramingError('InvalidRecordSequence', `unknown record type 0x${type.toString(16).padStart(2, '0')}`)
    }
  }

  /** The size after the type octet: its value and how many octets it took, or undefined if not all here yet. */
  #size (): { value: number, octets: number } | undefined {
    let value = 0
    for (let i = 0; i < 5; i++) {
      if (1 + i >= this.#length) return undefined
      const b = this.#peek(1 + i)
      value += (b & 0x7f) * 2 ** (7 * i)
      if ((b & 0x80) === 0) {
        if (b === 0 && i > 0) throw new FramingError('InvalidRecordSequence', 'a record size is not in its shortest form')
        if (value === 0) throw new FramingError('InvalidRecordSequence', 'a record declares a size of 0')
        // Five octets hold 35 bits: a value past 2^31-1 is no int31 — and past any quota.
        if (value > MAX_INT31) throw new FramingError('MaxMessageSizeExceededFault', `a record size of ${value} octets is past 2^31-1`)
        return { value, octets: i + 1 }
      }
    }
    throw new FramingError('InvalidRecordSequence', 'a record size runs past five octets')
  }

  #peek (i: number): number {
    let at = this.#head + i
    for (const c of this.#chunks) {
      if (at < c.length) return c[at]!
      at -= c.length
    }
    throw new RangeError('peek past the data')
  }

  #skip (n: number): void {
    this.#length -= n
    while (n > 0) {
      const c = this.#chunks[0]!
      const left = c.length - this.#head
      if (n < left) { this.#head += n; return }
      n -= left
      this.#chunks.shift()
      this.#head = 0
    }
  }

  /** `n` octets: a view of the first chunk when it holds them all, else one copy. */
  #take (n: number): Buffer {
    const first = this.#chunks[0]!
    if (first.length - this.#head >= n) {
      const out = first.subarray(this.#head, this.#head + n)
      this.#skip(n)
      return out
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const c = this.#chunks[0]!
      const m = Math.min(n - filled, c.length - this.#head)
      c.copy(out, filled, this.#head, this.#head + m)
      filled += m
      this.#skip(m)
    }
    return out
  }
}

function utf8 (b: Buffer, type: number): string {
  if (!isUtf8(b)) throw new FramingError('InvalidRecordSequence', `a record of type 0x${type.toString(16)} is not valid UTF-8`)
  return b.toString('utf8')
}
