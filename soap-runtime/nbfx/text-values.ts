// The typed text records of [MC-NBFX] as the XML text they stand for (what .NET's XmlConvert
// writes for them, which is what a text envelope would carry), and the reverse for the writer:
// numbers, dateTime (ticks since 0001-01-01 plus a kind), TimeSpan (xsd:duration), decimal, Guid and
// UniqueId (urn:uuid:…). Pure functions on buffers.
import { MetaosError } from '../errors.js'

/** Ticks (100 ns) from 0001-01-01T00:00:00 to 1970-01-01T00:00:00. */
const EPOCH_TICKS = 621355968000000000n
const TICKS_PER_MS = 10000n
/** DateTime.MaxValue.Ticks (9999-12-31T23:59:59.9999999). */
const MAX_TICKS = 3155378975999999999n

/** A float or double as XML Schema writes it: INF, -INF, NaN, else the shortest round-trip form. */
export function formatDouble (n: number): string {
  if (Number.isNaN(n)) return 'NaN'
  if (n === Infinity) return 'INF'
  if (n === -Infinity) return '-INF'
  if (Object.is(n, -0)) return '-0'
  return String(n).replace('e', 'E')
}

/** A 32-bit float: the shortest decimal that reads back as the same float. */
export function formatFloat (f: number): string {
  if (!Number.isFinite(f) || f === 0) return formatDouble(f)
  for (let p = 1; p <= 9; p++) {
    const s = f.toPrecision(p)
    if (Math.fround(Number(s)) === f) return formatDouble(Number(s))
  }
  return formatDouble(f)
}

/** DateTimeText: 62 bits of ticks and 2 bits of kind (0 unspecified, 1 UTC, 2 local), little-endian. */
export function formatDateTime (buf: Buffer, pos: number): string {
  const raw = buf.readBigUInt64LE(pos)
  const kind = Number(raw >> 62n)
  const ticks = raw & 0x3fffffffffffffffn
  if (ticks > MAX_TICKS || kind === 3) throw new MetaosError('MALFORMED_MESSAGE', 'binary XML: a DateTime record out of range')
  const rel = ticks - EPOCH_TICKS
  let ms = rel / TICKS_PER_MS
  let rest = rel % TICKS_PER_MS
  if (rest < 0n) { rest += TICKS_PER_MS; ms -= 1n }
  const iso = new Date(Number(ms)).toISOString() // yyyy-mm-ddThh:mm:ss.sssZ
  const fraction = (iso.slice(20, 23) + String(rest).padStart(4, '0')).replace(/0+$/, '')
  return iso.slice(0, 19) + (fraction === '' ? '' : `.${fraction}`) + (kind === 1 ? 'Z' : '')
}

/** The DateTimeText value of a Date (kind UTC), as an unsigned 64-bit integer. */
export function dateTimeBits (d: Date): bigint {
  const ms = d.getTime()
  if (!Number.isFinite(ms)) throw new RangeError('invalid Date')
  const ticks = BigInt(ms) * TICKS_PER_MS + EPOCH_TICKS
  if (ticks < 0n || ticks > 0x3fffffffffffffffn) throw new RangeError('Date outside the range of .NET DateTime')
  return ticks | (1n << 62n)
}

/** TimeSpanText: signed ticks, as xsd:duration the way XmlConvert writes a TimeSpan (P1DT2H3M4.5S, PT0S). */
export function formatTimeSpan (buf: Buffer, pos: number): string {
  let t = buf.readBigInt64LE(pos)
  const neg = t < 0n
  if (neg) t = -t
  const days = t / 864000000000n
  t %= 864000000000n
  const h = t / 36000000000n
  t %= 36000000000n
  const m = t / 600000000n
  t %= 600000000n
  const s = t / 10000000n
  const frac = (t % 10000000n).toString().padStart(7, '0').replace(/0+$/, '')
  let out = (neg ? '-P' : 'P') + (days > 0n ? `${days}D` : '')
  if (h > 0n || m > 0n || s > 0n || frac !== '') {
    out += 'T' + (h > 0n ? `${h}H` : '') + (m > 0n ? `${m}M` : '') + (s > 0n || frac !== '' ? `${s}${frac === '' ? '' : `.${frac}`}S` : '')
  } else if (days === 0n) out += 'T0S'
  return out
}

/** DecimalText: .NET's in-memory System.Decimal (flags with scale and sign, then hi32, lo32, mid32). */
export function formatDecimal (buf: Buffer, pos: number): string {
  const scale = buf[pos + 2]!
  const negative = (buf[pos + 3]! & 0x80) !== 0
  const hi = BigInt(buf.readUInt32LE(pos + 4))
  const lo = BigInt(buf.readUInt32LE(pos + 8))
  const mid = BigInt(buf.readUInt32LE(pos + 12))
  const digits = ((hi << 64n) | (mid << 32n) | lo).toString()
  let s = digits
  if (scale > 0) {
    const padded = digits.padStart(scale + 1, '0')
    s = `${padded.slice(0, padded.length - scale)}.${padded.slice(padded.length - scale)}`
  }
  return negative && digits !== '0' ? `-${s}` : s
}

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
/** Byte order of a .NET Guid's 16 bytes in its text form: Data1 (LE), Data2 (LE), Data3 (LE), Data4. */
const GUID_ORDER = [3, 2, 1, 0, -1, 5, 4, -1, 7, 6, -1, 8, 9, -1, 10, 11, 12, 13, 14, 15]

/** UuidText / UniqueIdText bytes as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx. */
export function formatGuid (buf: Buffer, pos: number): string {
  let s = ''
  for (const i of GUID_ORDER) s += i < 0 ? '-' : HEX[buf[pos + i]!]!
  return s
}

/** The value of a lower-case hex digit (already matched by GUID_RE). */
function nibble (c: number): number {
  return c <= 0x39 ? c - 0x30 : c - 0x57
}

// Lower-case only: the reader writes lower case, so an upper-case id would not read back as sent.
const GUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** The 16 bytes of a Guid in (lower-case) text form, written at `pos` of `buf`; false (nothing written) when `s` is no such Guid. */
export function writeGuid (s: string, buf: Buffer, pos: number): boolean {
  if (s.length !== 36 || !GUID_RE.test(s)) return false
  let j = 0
  for (const i of GUID_ORDER) {
    if (i < 0) { j++; continue }
    buf[pos + i] = (nibble(s.charCodeAt(j)) << 4) | nibble(s.charCodeAt(j + 1))
    j += 2
  }
  return true
}
