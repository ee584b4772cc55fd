// Binary XML (soap-runtime/nbfx/): the [MC-NBFS] static dictionary, the records WCF's binary
// encoder writes for a SOAP 1.2 + WS-Addressing envelope, round trips of the storage contract's
// messages through encodeEnvelope → decodeEnvelope → readEnvelope → the compiled text-path decoders
// (bytes as raw Bytes records, never base64, not copied), [MC-NBFSE] session strings across
// messages and their quota, and every text record type read from hand-built bytes. Interop with
// .NET's own reader and writer (Mono) is test/interop/nbfx-mono.test.ts; hostile input is
// test/runtime/nbfx-hostile.test.ts.
import t from 'tap'
import { createHash } from 'node:crypto'
import {
  compileBinaryCodecs, decodeEnvelope, encodeEnvelope, NbfxReaderSession, NbfxWriterSession, STATIC_STRINGS, WSA_ANONYMOUS,
  type OutboundEnvelope,
} from '../../soap-runtime/nbfx/index.js'
import { compileCodecs } from '../../soap-runtime/codec.js'
import { faultToError, readEnvelope, readFault } from '../../soap-runtime/envelope.js'
import { parseXml, type XmlElement } from '../../soap-runtime/xml.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { StorageServiceDescriptor as D } from '../../wsdl/generated/storage-service.js'

const bin = compileBinaryCodecs(D)
const text = compileCodecs(D)
const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex')
const join = (m: { chunks: Buffer[], length: number }): Buffer => Buffer.concat(m.chunks, m.length)
const norm = (e: XmlElement): unknown => ({ n: `{${e.ns}}${e.local}`, a: Object.entries(e.attrs).sort(), t: e.text, c: e.children.map(norm) })
const ID = 'urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e'
const request = (data: Buffer, extra: Partial<OutboundEnvelope> = {}): OutboundEnvelope => ({
  action: 'urn:metaos:storage:v1/Write', messageId: ID, replyTo: WSA_ANONYMOUS, to: 'net.tcp://127.0.0.1:9/storage',
  headers: [{ ns: 'urn:metaos:v1', local: 'Caller', value: 'urn:uuid:A' }], body: { element: 'Write', value: { handle: 'h:1', data } }, ...extra,
})

t.test('the MC-NBFS static dictionary: 487 strings, ids 0x000-0x3CC', async (t) => {
  t.equal(STATIC_STRINGS.length, 487)
  const at = (id: number): string | undefined => STATIC_STRINGS[id / 2]
  t.equal(at(0x00), 'mustUnderstand')
  t.equal(at(0x02), 'Envelope')
  t.equal(at(0x04), 'http://www.w3.org/2003/05/soap-envelope')
  t.equal(at(0x06), 'http://www.w3.org/2005/08/addressing')
  t.equal(at(0x0a), 'Action')
  t.equal(at(0x14), WSA_ANONYMOUS)
  t.equal(at(0x1a), 'MessageID')
  t.equal(at(0x2a), 'Address')
  t.equal(at(0xa2), '', 'the empty string has an id')
  t.equal(at(0x1a8), ' http://schemas.xmlsoap.org/ws/2005/02/trust/tlsnego', 'the leading space .NET has')
  t.equal(at(0x3c2), 'http://schemas.xmlsoap.org/soap/envelope/')
  t.equal(at(0x3cc), 'detail')
  // The table as transcribed from .NET Framework's System.ServiceModel and checked against a second
  // decompilation and against Mono (test/interop/nbfx-mono.test.ts): any edit changes this digest.
  t.equal(createHash('sha256').update(STATIC_STRINGS.join('\n')).digest('hex').slice(0, 16), 'a4130e3d066fd09a')
})

t.test('the envelope opens with the records WCF writes, SOAP and WS-Addressing names by their static ids', async (t) => {
  const m = join(encodeEnvelope(request(Buffer.from('hello')), bin))
  // <s:Envelope xmlns:s=(0x04) xmlns:a=(0x06)><s:Header><a:Action s:mustUnderstand="1">
  t.same(m.subarray(0, 17), hex('56 02 0b 01 73 04 0b 01 61 06 56 08 44 0a 1e 00 82'), 'as .NET\'s XmlBinaryWriter (and Mono\'s session encoder) write it')
  t.ok(m.includes(hex('44 1a ad 5b ad 8f 0f cb d9 9f 46 a1 65 70 86 77 28 95 0e')), 'MessageID as a UniqueIdTextWithEndElement record')
  t.ok(m.includes(hex('44 2c 44 2a ab 14 01')), 'ReplyTo/Address as DictionaryText 0x14 (anonymous)')
  t.ok(m.includes(hex('9f 05 68 65 6c 6c 6f')), 'the data as Bytes8TextWithEndElement: the raw bytes')
})

for (const size of [0, 5, 512, 65536, 1 << 20]) {
  t.test(`a Write of ${size} bytes: raw bytes both ways, no base64, no copy of a large block`, async (t) => {
    const data = Buffer.alloc(size)
    for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff
    const m = encodeEnvelope(request(data), bin, new NbfxWriterSession())
    if (size >= 4096) t.ok(m.chunks.includes(data), 'the caller\'s buffer is one of the chunks (not copied)')
    const wire = join(m)
    t.equal(wire.length, m.length)
    if (size > 0) t.ok(wire.includes(data), 'the bytes go as they are')
    if (size >= 3) t.notOk(wire.includes(Buffer.from(data.toString('base64').slice(0, 40))), 'not as base64')
    const env = readEnvelope(decodeEnvelope(wire, new NbfxReaderSession()), new Set())
    t.equal(env.version, '1.2')
    t.same(env.addressing, { ns: 'http://www.w3.org/2005/08/addressing', action: 'urn:metaos:storage:v1/Write', messageId: ID, to: 'net.tcp://127.0.0.1:9/storage' })
    const dataEl = env.body.children[1]!
    t.equal(dataEl.bin?.buffer, wire.buffer, 'the decoded bytes are a slice of the received buffer')
    const out = text.get('Write')!.decode(env.body) as { handle: string, data: Buffer }
    t.equal(out.handle, 'h:1')
    t.ok(Buffer.isBuffer(out.data) && out.data.equals(data), 'the text-path decoder returns the bytes')
    t.equal(dataEl.text, data.toString('base64'), 'and the infoset\'s text is still their base64')
  })
}

t.test('every simple type of the contract round-trips through the text-path decoders', async (t) => {
  const when = new Date('2021-02-03T04:05:06.789Z')
  for (const length of [0, 1, -1, 127, -128, 300, -70000, 2 ** 31, -(2 ** 40), Number.MAX_SAFE_INTEGER]) {
    const value = { exists: true, isDirectory: false, length, lastWriteTime: when }
    const env = readEnvelope(decodeEnvelope(join(encodeEnvelope({ body: { element: 'GetFileInfoResponse', value } }, bin))), new Set())
    t.same(text.get('GetFileInfoResponse')!.decode(env.body), value, `length ${length}`)
  }
  const open = { path: 'dir/ünï <&> 世界 😀', mode: 'OpenOrCreate', access: 'ReadWrite', share: 'Read' }
  const env = readEnvelope(decodeEnvelope(join(encodeEnvelope({ body: { element: 'Open', value: open } }, bin))), new Set())
  t.same(text.get('Open')!.decode(env.body), open, 'strings and enumerations')
  const batch = { op: [{ Write: { handle: 'h', data: Buffer.from([1, 2, 3]) } }, { Flush: { handle: 'h', flushToDisk: true } }] }
  const b = readEnvelope(decodeEnvelope(join(encodeEnvelope({ body: { element: 'Batch', value: batch } }, bin))), new Set())
  t.same(text.get('Batch')!.decode(b.body), batch, 'choices and repeated fields')
})

t.test('values the contract refuses are refused before anything is written', async (t) => {
  const ws = new NbfxWriterSession()
  t.throws(() => encodeEnvelope({ body: { element: 'Write', value: { handle: 'h' } } }, bin, ws), { code: 'INVALID_ARGUMENT', message: /data: is required/ })
  t.throws(() => encodeEnvelope({ body: { element: 'Open', value: { path: 'a', mode: 'Nope', access: 'Read', share: 'Read' } } }, bin, ws), { code: 'INVALID_ARGUMENT' })
  t.throws(() => encodeEnvelope({ body: { element: 'Seek', value: { handle: 'h', offset: 1.5, origin: 'Begin' } } }, bin, ws), { code: 'INVALID_ARGUMENT' })
  t.throws(() => encodeEnvelope({ body: { element: 'Delete', value: { path: 'a\u0001' } } }, bin, ws), { code: 'INVALID_ARGUMENT' })
  t.equal(ws.size, 0, 'the failed messages added nothing to the session')
})

t.test('session strings: sent once in a string table, then named by odd ids', async (t) => {
  const ws = new NbfxWriterSession()
  const rs = new NbfxReaderSession()
  const first = join(encodeEnvelope(request(Buffer.from('a')), bin, ws))
  const second = join(encodeEnvelope(request(Buffer.from('b')), bin, ws))
  t.ok(first[0]! > 0, 'the first message opens with a string table')
  t.ok(first.includes(Buffer.from('urn:metaos:storage:v1')), 'holding the service\'s namespace')
  t.equal(second[0], 0, 'the second one with an empty table')
  t.notOk(second.includes(Buffer.from('urn:metaos:storage:v1')), 'and names the namespace by its id')
  t.ok(second.length < first.length / 2, `${second.length} bytes instead of ${first.length}`)
  t.same(norm(decodeEnvelope(first, rs)), norm(decodeEnvelope(join(encodeEnvelope(request(Buffer.from('a')), bin)))), 'the same infoset as a sessionless message')
  decodeEnvelope(second, rs)
  t.ok(rs.strings.includes('urn:metaos:storage:v1'))
  t.throws(() => decodeEnvelope(second, new NbfxReaderSession()), { code: 'MALFORMED_MESSAGE', message: /session dictionary id \d+ is not defined/ }, 'a reader that missed the first message cannot read the second')
})

t.test('the writer\'s session quota (WCF\'s default 2048 bytes): past it, strings go inline', async (t) => {
  const ws = new NbfxWriterSession({ maxBytes: 40 })
  const rs = new NbfxReaderSession()
  for (let i = 0; i < 3; i++) {
    const m = join(encodeEnvelope(request(Buffer.from([i])), bin, ws))
    const env = readEnvelope(decodeEnvelope(m, rs), new Set())
    t.same((text.get('Write')!.decode(env.body) as { data: Buffer }).data, Buffer.from([i]))
  }
  t.ok(rs.strings.join('').length <= 40, `${rs.strings.length} strings in the session`)
})

t.test('faults, in SOAP 1.2 and 1.1, read back into the typed error', async (t) => {
  for (const version of ['1.2', '1.1'] as const) {
    const m = encodeEnvelope({
      version, relatesTo: ID, action: 'http://www.w3.org/2005/08/addressing/soap/fault',
      body: { fault: { code: 'FILE_NOT_FOUND', message: 'no <such> file\u0000', detail: { element: 'StorageFault', value: { code: 'FILE_NOT_FOUND', message: 'no <such> file' } } } },
    }, bin)
    const env = readEnvelope(decodeEnvelope(join(m)), new Set())
    t.equal(env.version, version)
    t.equal(env.body.local, 'Fault')
    const f = readFault(env.body, '{urn:metaos:storage:v1}StorageFault')
    t.equal(f.reason, 'no <such> file?', 'the reason, with what XML cannot carry replaced')
    const err = faultToError(f, '{urn:metaos:storage:v1}StorageFault')
    t.ok(err instanceof MetaosError)
    t.equal(err.code, 'FILE_NOT_FOUND')
    t.equal(err.faultCode, `{${version === '1.2' ? 'http://www.w3.org/2003/05/soap-envelope' : 'http://schemas.xmlsoap.org/soap/envelope/'}}${version === '1.2' ? 'Sender' : 'Client'}`)
  }
})

t.test('any element tree can be the body: written and read back with the same infoset', async (t) => {
  const x = parseXml('<r xmlns="urn:a" xmlns:p="urn:p" p:at="1" plain="x&lt;"><c>t</c><p:d xml:lang="en"/><e xmlns="">u</e></r>')
  const env = readEnvelope(decodeEnvelope(join(encodeEnvelope({ body: { tree: x } }, undefined))), new Set())
  t.same(norm(env.body), norm(x))
})

t.test('the text parser is unchanged: its elements carry no bytes', async (t) => {
  const el = parseXml('<a><b>aGVsbG8=</b></a>')
  t.notOk('bin' in el.children[0]!, 'no bin property on a parsed element')
  t.same(text.get('Write')!.decode(parseXml('<Write xmlns="urn:metaos:storage:v1"><handle>h</handle><data>aGVsbG8=</data></Write>')), { handle: 'h', data: Buffer.from('hello') })
})

// Hand-built documents: <r>RECORD</r> as ShortElement "r", the text record (WithEndElement).
const doc = (record: string): Buffer => hex(`40 01 72 ${record}`)
const textOf = (record: string): string => decodeEnvelope(doc(record)).text
const EPOCH_TICKS = 621355968000000000n
const le64 = (v: bigint): string => { const b = Buffer.alloc(8); b.writeBigUInt64LE(v); return b.toString('hex') }

t.test('every text record type reads as the text .NET\'s XmlConvert writes for it', async (t) => {
  const cases: Array<[string, string, string]> = [
    ['ZeroTextWithEndElement', '81', '0'],
    ['OneTextWithEndElement', '83', '1'],
    ['FalseTextWithEndElement', '85', 'false'],
    ['TrueTextWithEndElement', '87', 'true'],
    ['Int8Text', '89 fb', '-5'],
    ['Int16Text', '8b 2c 01', '300'],
    ['Int32Text', '8d 90 ee fe ff', '-70000'],
    ['Int64Text', '8f 00 f2 05 2a 01 00 00 00', '5000000000'],
    ['UInt64Text', 'b3 ff ff ff ff ff ff ff ff', '18446744073709551615'],
    ['FloatText', '91 00 00 c0 3f', '1.5'],
    ['FloatText (0.1f)', '91 cd cc cc 3d', '0.1'],
    ['DoubleText', '93 9a 99 99 99 99 99 b9 3f', '0.1'],
    ['DoubleText (-INF)', '93 00 00 00 00 00 00 f0 ff', '-INF'],
    ['DoubleText (NaN)', '93 00 00 00 00 00 00 f8 7f', 'NaN'],
    ['DecimalText (-123.4500)', '95 00 00 04 80 00 00 00 00 44 d6 12 00 00 00 00 00', '-123.4500'],
    ['DateTimeText (UTC)', `97 ${le64(BigInt(Date.UTC(2020, 0, 2, 3, 4, 5, 123)) * 10000n + 4567n + EPOCH_TICKS | (1n << 62n))}`, '2020-01-02T03:04:05.1234567Z'],
    ['DateTimeText (unspecified)', `97 ${le64(BigInt(Date.UTC(1999, 11, 31, 23, 59, 59)) * 10000n + EPOCH_TICKS)}`, '1999-12-31T23:59:59'],
    ['DateTimeText (0001-01-01)', '97 00 00 00 00 00 00 00 40', '0001-01-01T00:00:00Z'],
    ['TimeSpanText', `af ${le64(937845000000n)}`, 'P1DT2H3M4.5S'],
    ['TimeSpanText (negative)', `af ${le64((1n << 64n) - 54000000000n)}`, '-PT1H30M'],
    ['TimeSpanText (zero)', 'af 00 00 00 00 00 00 00 00', 'PT0S'],
    ['UuidText', 'b1 5b ad 8f 0f cb d9 9f 46 a1 65 70 86 77 28 95 0e', '0f8fad5b-d9cb-469f-a165-70867728950e'],
    ['UniqueIdText', 'ad 5b ad 8f 0f cb d9 9f 46 a1 65 70 86 77 28 95 0e', ID],
    ['BoolText', 'b5 01', 'true'],
    ['Chars8Text', '99 03 61 62 63', 'abc'],
    ['Chars16Text', '9b 03 00 61 62 63', 'abc'],
    ['Chars32Text', '9d 03 00 00 00 61 62 63', 'abc'],
    ['UnicodeChars8Text', 'b7 04 61 00 16 4e', 'a世'],
    ['EmptyTextWithEndElement', 'a9', ''],
    ['DictionaryText (static 0x02)', 'ab 02', 'Envelope'],
    ['QNameDictionaryText', 'bd 12 02', 's:Envelope'],
    ['a list', 'a5 8c 01 00 00 00 86 98 01 78 a6', '1 true x'],
    ['Bytes16Text', 'a1 02 00 68 69', 'aGk='],
    ['Bytes32Text', 'a3 02 00 00 00 68 69', 'aGk='],
    ['text, then the EndElement record', '98 01 61 01', 'a'],
    ['two text records', '98 01 61 99 01 62', 'ab'],
    ['a comment inside', '98 01 61 02 01 78 99 01 62', 'ab'],
  ]
  for (const [name, record, want] of cases) t.equal(textOf(record), want, name)
  const bytes = decodeEnvelope(doc('9e 02 68 69 9f 01 21'))
  t.same(bytes.bin, Buffer.from('hi!'), 'Bytes records in a row are one block')
  const mixed = decodeEnvelope(doc('9e 01 61 03 40 01 69 01 8d 01 07 00 00 00 01'))
  t.equal(mixed.bin, undefined, 'bytes beside elements are no block of bytes')
  t.equal(mixed.text, 'YQ==', 'but text (base64)')
  t.equal(mixed.children[0]?.text, '7')
  const texted = decodeEnvelope(doc('9e 01 61 99 01 62'))
  t.same([texted.bin, texted.text], [undefined, 'YQ==b'], 'bytes, then chars: text')
})

t.test('element, attribute and namespace records of every form', async (t) => {
  // <a:r xmlns:a="urn:a" xmlns="urn:d" a:x="1" y="2" b:z="3" xmlns:b="urn:b"><c/><Envelope/></a:r>, spelled with each record kind
  const d = hex([
    '5e 01 72', // PrefixElementA "r"
    '09 01 61 05 75 72 6e 3a 61', // XmlnsAttribute a="urn:a"
    '08 05 75 72 6e 3a 64', // ShortXmlnsAttribute "urn:d"
    '26 01 78 98 01 31', // PrefixAttributeA x="1"
    '04 01 79 98 01 32', // ShortAttribute y="2"
    '05 01 62 01 7a 98 01 33', // Attribute b:z="3"
    '09 01 62 05 75 72 6e 3a 62', // XmlnsAttribute b="urn:b"
    '40 01 63 01', // <c/>
    '42 02 01', // ShortDictionaryElement Envelope (0x02)
    '41 01 62 01 65 01', // Element b:e
    '43 01 61 02 01', // DictionaryElement a:Envelope
    '03 40 01 69 01 8d 02 07 00 00 00 f9 ff ff ff', // Array of 2 <i> Int32: 7, -7
    '01',
  ].join(' '))
  const r = decodeEnvelope(d)
  t.equal(r.ns, 'urn:a')
  t.same({ ...r.attrs }, { '{urn:a}x': '1', y: '2', '{urn:b}z': '3' })
  t.same(r.children.map((c) => `{${c.ns}}${c.local}=${c.text}`), ['{urn:d}c=', '{urn:d}Envelope=', '{urn:b}e=', '{urn:a}Envelope=', '{urn:d}i=7', '{urn:d}i=-7'])
})
