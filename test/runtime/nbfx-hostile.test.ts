// Hostile binary XML against the reader of soap-runtime/nbfx/: dictionary ids out of range (static
// and session), unknown record types, every truncation of a real message, lengths and counts over
// what the message holds or the session's quota, deep nesting, element, attribute and array floods,
// broken UTF-8 and characters XML forbids, broken namespaces, and 3000 seeded mutants. Each is a
// MetaosError MALFORMED_MESSAGE (never another error, never a crash), found before anything of the
// claimed size is allocated. What the framing transports add on top (a domain that keeps serving
// other sessions) is tested with them.
import t, { type Test } from 'tap'
import { compileBinaryCodecs, decodeEnvelope, encodeEnvelope, NbfxReaderSession, NbfxWriterSession, WSA_ANONYMOUS } from '../../soap-runtime/nbfx/index.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { StorageServiceDescriptor as D } from '../../wsdl/generated/storage-service.js'
import { prng } from '../helpers/prng.js'

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
/** <r>…</r>: ShortElement "r", then `body`. */
const doc = (body: string): Buffer => hex(`40 01 72 ${body}`)
const codecs = compileBinaryCodecs(D)

/** Decoding `buf` fails with MALFORMED_MESSAGE (matching `why`); with `table`, as a session message. */
function refused (t: Test, name: string, buf: Buffer, why: RegExp, o: { table?: boolean, session?: NbfxReaderSession, limits?: { maxDepth: number, maxElements: number } } = {}): void {
  const session = o.session ?? (o.table === true ? new NbfxReaderSession() : undefined)
  try {
    decodeEnvelope(buf, session, o.limits)
    t.fail(`${name}: accepted`)
  } catch (e) {
    t.ok(e instanceof MetaosError && e.code === 'MALFORMED_MESSAGE', `${name}: MALFORMED_MESSAGE`, { error: String(e) })
    t.match((e as Error).message, why, `${name}: ${(e as Error).message.slice(0, 120)}`)
  }
}

t.test('dictionary ids that do not exist', async (t) => {
  refused(t, 'a static id past 0x3CC', hex('42 ce 07 01'), /static dictionary id 0x3ce is out of range/)
  refused(t, 'a huge static id', hex('42 fe ff ff ff 07 01'), /static dictionary id 0x7ffffffe is out of range/)
  refused(t, 'a session id outside a session', hex('42 01 01'), /session dictionary id 1 outside a session/)
  refused(t, 'a session id the session never defined', hex('00 42 03 01'), /session dictionary id 3 is not defined/, { table: true })
  refused(t, 'a dictionary text id out of range', doc('ab ce 07'), /out of range/)
  refused(t, 'a dictionary xmlns id out of range', hex('40 01 72 0a d0 07 01'), /out of range/)
})

t.test('record types that do not exist, or not where they are', async (t) => {
  for (const type of [0x00, 0x78, 0x7f, 0xbe, 0xff]) {
    refused(t, `0x${type.toString(16)} as the root`, Buffer.from([type]), /before the root element/)
    refused(t, `0x${type.toString(16)} in content`, doc(type.toString(16).padStart(2, '0')), /is not a record of element content/)
    refused(t, `0x${type.toString(16)} as an attribute value`, hex(`40 01 72 04 01 61 ${type.toString(16).padStart(2, '0')}`), /where an attribute value belongs/)
  }
  refused(t, 'an attribute record in content', doc('98 01 61 04 01 61 98 01 62 01'), /is not a record of element content/)
  refused(t, 'a WithEndElement text as an attribute value', hex('40 01 72 04 01 61 99 01 62 01'), /where an attribute value belongs/)
  refused(t, 'EndListText outside a list', doc('a6'), /outside a list/)
  refused(t, 'a list in a list', doc('a4 a4 a6 a6 01'), /inside a list/)
  refused(t, 'an EndElement before any element', hex('01'), /before the root element/)
  refused(t, 'text after the root', hex('40 01 72 01 98 01 61'), /content after the root element/)
  refused(t, 'a second root', hex('40 01 72 01 40 01 73 01'), /content after the root element/)
  refused(t, 'an empty document', Buffer.alloc(0), /empty document/)
  refused(t, 'only a comment', hex('02 01 78'), /empty document/)
  refused(t, 'an Array of a record no Array holds', doc('03 40 01 69 01 99 02 01 78 01'), /is not a value type an Array may hold/)
  refused(t, 'an Array whose element has content', doc('03 40 01 69 98 01 78 01 8d 01 00 00 00 00 01'), /not empty/)
})

t.test('every truncation of a real session message', async (t) => {
  const wire = Buffer.concat(encodeEnvelope({
    action: 'urn:metaos:storage:v1/Write', messageId: 'urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e', replyTo: WSA_ANONYMOUS, to: 'net.tcp://h:1/storage',
    headers: [{ ns: 'urn:metaos:v1', local: 'Caller', value: 'urn:uuid:A' }], body: { element: 'Write', value: { handle: 'h:1', data: Buffer.alloc(300, 1) } },
  }, codecs, new NbfxWriterSession()).chunks)
  t.ok(decodeEnvelope(wire, new NbfxReaderSession()), 'the whole message reads')
  let all = true
  for (let n = 0; n < wire.length; n++) {
    try {
      decodeEnvelope(wire.subarray(0, n), new NbfxReaderSession())
      all = false
      t.fail(`cut at ${n}: accepted`)
    } catch (e) {
      if (!(e instanceof MetaosError && e.code === 'MALFORMED_MESSAGE')) { all = false; t.fail(`cut at ${n}: ${String(e)}`) }
    }
  }
  t.ok(all, `each of the ${wire.length} truncations is MALFORMED_MESSAGE`)
})

t.test('lengths and counts over what the message holds or the quota allows', async (t) => {
  refused(t, 'Chars32 claiming 2 GiB', doc('9d ff ff ff 7f 61'), /truncated Chars/)
  refused(t, 'Chars32 of a negative length', doc('9d ff ff ff ff'), /negative Chars length/)
  refused(t, 'Bytes32 claiming 2 GiB', doc('a3 ff ff ff 7f 00'), /truncated Bytes/)
  refused(t, 'Bytes32 of a negative length', doc('a3 00 00 00 80'), /negative Bytes length/)
  refused(t, 'a name claiming 2 GiB', hex('40 ff ff ff ff 07 61'), /truncated string/)
  refused(t, 'an MB32 of six bytes', hex('42 80 80 80 80 80 00'), /over/)
  refused(t, 'an MB32 past 2^31', hex('42 ff ff ff ff 0f'), /over 2\^31/)
  refused(t, 'a string table claiming 2 GiB', hex('ff ff ff ff 07 01'), /string table of 2147483647 bytes/, { table: true })
  refused(t, 'a string running past its table', hex('02 05 61 40 01 72 01'), /runs past it/, { table: true })
  const big = new NbfxReaderSession({ maxBytes: 100 })
  const sixty = (c: number): Buffer => Buffer.concat([Buffer.from([61, 60]), Buffer.alloc(60, c), hex('40 01 72 01')]) // a table of one 60-byte string
  t.ok(decodeEnvelope(sixty(0x61), big), '61 bytes of session strings are within a quota of 100')
  refused(t, 'a table that passes the session\'s byte quota', sixty(0x62), /would pass 100 bytes/, { session: big })
  const few = new NbfxReaderSession({ maxStrings: 3 })
  refused(t, 'a table that passes the session\'s string quota', hex('08 01 61 01 62 01 63 01 64 40 01 72 01'), /would pass 3 strings/, { session: few })
  refused(t, 'an Array of 2^31-1 items', doc('03 40 01 69 01 b5 ff ff ff ff 07 01'), /runs past the message/)
  const items = 100_001
  refused(t, 'an Array of more items than elements allowed', Buffer.concat([doc('03 40 01 69 01 b5'), hex('a1 8d 06'), Buffer.alloc(items, 1), hex('01')]), /more than 100000 elements/)
  refused(t, 'a DateTime past 9999', doc('97 ff ff ff ff ff ff ff 7f'), /DateTime record out of range/)
  refused(t, 'a QName prefix past z', doc('bd 1a 02'), /QName prefix index 26/)
  refused(t, 'UnicodeChars of an odd length', doc('b7 03 61 00 62'), /odd length/)
})

t.test('nesting and floods', async (t) => {
  const deep = Buffer.concat([Buffer.alloc(10_000 * 3).fill(hex('40 01 61')), Buffer.alloc(10_000, 1)])
  refused(t, '10,000 nested elements', deep, /nesting deeper than 64/)
  refused(t, 'nesting past a lower limit', Buffer.concat([Buffer.alloc(10 * 3).fill(hex('40 01 61')), Buffer.alloc(10, 1)]), /nesting deeper than 5/, { limits: { maxDepth: 5, maxElements: 1000 } })
  const flood = Buffer.concat([hex('40 01 72'), Buffer.alloc(200_000 * 4).fill(hex('40 01 61 01')), hex('01')])
  refused(t, '200,000 sibling elements', flood, /more than 100000 elements/)
  const attrs = Buffer.concat([hex('40 01 72'), ...Array.from({ length: 300 }, (_, i) => hex(`04 03 61 ${(0x30 + Math.floor(i / 10) % 10).toString(16)} ${(0x30 + i % 10).toString(16)} 80`)), hex('01')])
  refused(t, '300 attributes', attrs, /more than 256 attributes/)
})

t.test('characters and names XML does not allow, broken namespaces', async (t) => {
  refused(t, 'invalid UTF-8 in text', doc('99 02 c3 28'), /not valid UTF-8/)
  refused(t, 'invalid UTF-8 in a name', hex('40 02 c3 28 01'), /not valid UTF-8/)
  refused(t, 'U+0001 in text', doc('99 01 01'), /U\+0001 is not allowed/)
  refused(t, 'U+FFFF in text', doc('99 03 ef bf bf'), /U\+FFFF is not allowed/)
  refused(t, 'an unpaired surrogate in UnicodeChars', doc('b7 02 00 d8'), /U\+D800 is not allowed/)
  refused(t, 'an empty name', hex('40 00 01'), /is not a name/)
  refused(t, 'a name with a space', hex('40 03 61 20 62 01'), /is not a name/)
  refused(t, 'a name with a colon', hex('40 03 61 3a 62 01'), /is not a name/)
  refused(t, 'a URI as an element name (static id 0x04)', hex('42 04 01'), /is not a name/)
  refused(t, 'an unbound prefix', hex('5e 01 72 01'), /unbound prefix "a"/)
  refused(t, 'an unbound attribute prefix', hex('40 01 72 26 01 78 80 01'), /unbound prefix "a" on attribute/)
  refused(t, 'a repeated attribute', hex('40 01 72 04 01 61 80 04 01 61 82 01'), /repeated/)
  refused(t, 'xmlns bound as a prefix', hex('40 01 72 09 05 78 6d 6c 6e 73 01 61 01'), /reserved namespace binding/)
  refused(t, 'xml bound to another namespace', hex('40 01 72 09 03 78 6d 6c 01 61 01'), /reserved namespace binding/)
  refused(t, 'a prefix bound to the empty namespace', hex('40 01 72 09 01 70 00 01'), /cannot be bound to the empty namespace/)
  refused(t, 'a prefix declared twice on one element', hex('40 01 72 09 01 70 01 61 09 01 70 01 62 01'), /declared twice/)
  refused(t, 'a session string with U+0000', hex('02 01 00 42 01 01'), /U\+0000 is not allowed/, { table: true })
})

t.test('3000 seeded mutants of real messages: each reads, or is MALFORMED_MESSAGE', async (t) => {
  const w = new NbfxWriterSession()
  const seeds = [
    Buffer.concat(encodeEnvelope({ action: 'urn:x/Write', messageId: 'urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e', body: { element: 'Write', value: { handle: 'h', data: Buffer.alloc(40, 7) } } }, codecs, w).chunks),
    Buffer.concat(encodeEnvelope({ relatesTo: 'urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e', body: { element: 'GetFileInfoResponse', value: { exists: true, isDirectory: false, length: 5e9, lastWriteTime: new Date(0) } } }, codecs, new NbfxWriterSession()).chunks),
    Buffer.concat(encodeEnvelope({ body: { fault: { code: 'IO_ERROR', message: 'm', detail: { element: 'StorageFault', value: { code: 'IO_ERROR', message: 'm' } } } } }, codecs, new NbfxWriterSession()).chunks),
    hex('00 40 01 72 03 40 01 69 01 8d 02 07 00 00 00 f9 ff ff ff a4 88 01 86 a6 af 00 00 00 00 00 00 00 00 01'),
  ]
  const rnd = prng(0x6e626678)
  const pick = (n: number): number => Math.floor(rnd() * n)
  const mutate = (b: Buffer): Buffer => {
    const m = Buffer.from(b)
    const kind = pick(4)
    if (kind === 0) { for (let i = 0, n = 1 + pick(4); i < n; i++) m[pick(m.length)] = pick(256); return m }
    if (kind === 1) { const at = pick(m.length); return Buffer.concat([m.subarray(0, at), Buffer.from([pick(256)]), m.subarray(at)]) }
    if (kind === 2) { const at = pick(m.length); return Buffer.concat([m.subarray(0, at), m.subarray(at + 1 + pick(8))]) }
    const at = pick(m.length)
    m[at] = [0x00, 0x7f, 0xff, 0x80][pick(4)]!
    return m
  }
  let read = 0
  let refusedCount = 0
  const other: string[] = []
  for (let i = 0; i < 3000; i++) {
    const m = mutate(seeds[pick(seeds.length)]!)
    try {
      decodeEnvelope(m, new NbfxReaderSession())
      read++
    } catch (e) {
      if (e instanceof MetaosError && e.code === 'MALFORMED_MESSAGE') refusedCount++
      else other.push(`${m.toString('hex')}: ${String(e)}`)
    }
  }
  t.same(other.slice(0, 5), [], 'no mutant raised anything but MALFORMED_MESSAGE')
  t.equal(read + refusedCount, 3000, `${read} read, ${refusedCount} refused`)
})
