// [MC-NMF] records (soap-runtime/nmf/records.ts): the multi-byte int31 sizes at every boundary of
// §2.2.2, the reader fed one octet at a time and in one piece, the refusals (size 0, a size not in
// its shortest form, past five octets, past 2^31-1, over a quota, an unknown record type, a Via that
// is not UTF-8), and the correlation of a reply with its call by the first RelatesTo element.
import t from 'tap'
import {
  duplexPreamble, encodeSize, envelopeHeader, faultRecord, FramingError, RecordReader, RecordType, stringRecord,
} from '../../soap-runtime/nmf/records.js'
import { firstElementText } from '../../soap-runtime/nmf/encoding.js'

t.test('sizes are multi-byte int31 (§2.2.2)', async (t) => {
  const cases: Array<[number, number[]]> = [
    [1, [0x01]], [0x7f, [0x7f]], [0x80, [0x80, 0x01]], [0x3fff, [0xff, 0x7f]], [0x4000, [0x80, 0x80, 0x01]],
    [0x1fffff, [0xff, 0xff, 0x7f]], [0x200000, [0x80, 0x80, 0x80, 0x01]], [0x0fffffff, [0xff, 0xff, 0xff, 0x7f]],
    [0x10000000, [0x80, 0x80, 0x80, 0x80, 0x01]], [0x7fffffff, [0xff, 0xff, 0xff, 0xff, 0x07]],
  ]
  for (const [n, octets] of cases) t.same([...encodeSize(n)], octets, `${n} is ${octets.map((o) => o.toString(16)).join(' ')}`)
  t.throws(() => encodeSize(2 ** 31), RangeError, '2^31 is no int31')
  t.throws(() => encodeSize(-1), RangeError)
})

t.test('the reader takes records split anywhere', async (t) => {
  const payload = Buffer.alloc(20_000, 0x61)
  const stream = Buffer.concat([
    duplexPreamble('net.tcp://h:1/storage', Buffer.of(RecordType.KnownEncoding, 0x03)),
    envelopeHeader(payload.length), payload, envelopeHeader(3), Buffer.from('abc'), Buffer.of(RecordType.End),
  ])
  for (const step of [1, 7, stream.length]) {
    const r = new RecordReader({ maxEnvelopeBytes: 1 << 20 })
    const got: unknown[] = []
    for (let i = 0; i < stream.length; i += step) {
      r.push(stream.subarray(i, i + step))
      for (let rec = r.next(); rec !== undefined; rec = r.next()) got.push(rec.type === RecordType.SizedEnvelope ? { type: rec.type, length: rec.payload.length, first: rec.payload[0] } : rec)
    }
    t.same(got, [
      { type: 0, major: 1, minor: 0 }, { type: 1, value: 2 }, { type: 2, text: 'net.tcp://h:1/storage' }, { type: 3, value: 3 }, { type: 0x0c },
      { type: 6, length: 20_000, first: 0x61 }, { type: 6, length: 3, first: 0x61 }, { type: 7 },
    ], `fed ${step} octet(s) at a time`)
    t.equal(r.buffered, 0, 'nothing left over')
  }
})

function refusal (bytes: number[] | Buffer, quota = 1024): FramingError | undefined {
  const r = new RecordReader({ maxEnvelopeBytes: quota })
  r.push(Buffer.from(bytes))
  try { while (r.next() !== undefined) { /* read on */ } } catch (e) { return e as FramingError }
  return undefined
}

t.test('hostile sizes and types are refused before any payload', async (t) => {
  t.equal(refusal([0x06, 0x00])?.fault, 'InvalidRecordSequence', 'a size of 0')
  t.equal(refusal([0x06, 0x81, 0x00])?.fault, 'InvalidRecordSequence', 'a size not in its shortest form')
  t.equal(refusal([0x06, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01])?.fault, 'InvalidRecordSequence', 'a size past five octets')
  t.equal(refusal([0x06, 0x80, 0x80, 0x80, 0x80, 0x08])?.fault, 'MaxMessageSizeExceededFault', 'a 2^31 size prefix')
  t.equal(refusal([0x06, 0xff, 0xff, 0xff, 0xff, 0x07])?.fault, 'MaxMessageSizeExceededFault', '2^31-1 declared, nothing sent: refused on its size alone')
  t.equal(refusal([...envelopeHeader(200 * 1024 * 1024)], 64 * 1024 * 1024)?.fault, 'MaxMessageSizeExceededFault', 'a 200 MB envelope over a 64 MiB quota')
  t.equal(refusal([...stringRecord(RecordType.Via, 'x'.repeat(3000))].slice(0, 4))?.fault, 'ViaTooLong', 'a Via over 2048 octets, refused on its size')
  t.equal(refusal([...stringRecord(RecordType.ExtensibleEncoding, 'x'.repeat(300))])?.fault, 'ContentTypeTooLong')
  t.equal(refusal([0x42])?.fault, 'InvalidRecordSequence', 'an unknown record type')
  t.equal(refusal([0x05, 0x01, 0x61, 0x00])?.fault, 'InvalidRecordSequence', 'an unsized envelope (singleton mode)')
  t.equal(refusal([RecordType.Via, 0x02, 0xc3, 0x28])?.fault, 'InvalidRecordSequence', 'a Via that is not UTF-8')
  t.equal(refusal([0x06, 0x05, 0x61]), undefined, 'a truncated record is no error: it waits for the rest')
})

t.test('fault records carry the [MC-NMF] fault URI', async (t) => {
  const r = new RecordReader({ maxEnvelopeBytes: 1 })
  r.push(faultRecord('EndpointNotFound'))
  t.same(r.next(), { type: RecordType.Fault, text: 'http://schemas.microsoft.com/ws/2006/05/framing/faults/EndpointNotFound' })
})

t.test('a reply finds its call by the first RelatesTo element, whatever its prefix', async (t) => {
  const reply = (h: string, body = ''): Buffer => Buffer.from(`<s:Envelope xmlns:s="x"><s:Header>${h}</s:Header><s:Body>${body}</s:Body></s:Envelope>`)
  t.equal(firstElementText(reply('<a:RelatesTo xmlns:a="w">urn:uuid:1</a:RelatesTo>'), 'RelatesTo'), 'urn:uuid:1')
  t.equal(firstElementText(reply('<RelatesTo xmlns="w" RelationshipType="r"> urn:uuid:2 </RelatesTo>'), 'RelatesTo'), 'urn:uuid:2')
  t.equal(firstElementText(reply('<a:NotRelatesTo>x</a:NotRelatesTo><a:RelatesTo>urn:uuid:3</a:RelatesTo>'), 'RelatesTo'), 'urn:uuid:3', 'a longer name that ends the same is not it')
  t.equal(firstElementText(reply('', '<data>&lt;a:RelatesTo&gt;urn:uuid:9</data>'), 'RelatesTo'), undefined, 'escaped text in the body is not a header')
  t.equal(firstElementText(reply('<a:RelatesTo/>'), 'RelatesTo'), undefined, 'an empty element says nothing')
})
