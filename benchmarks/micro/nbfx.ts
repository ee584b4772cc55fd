// What encoding and decoding one Write request costs in the binary encoding of net.tcp/net.uds
// (soap-runtime/nbfx/: MC-NBFX records, static and session dictionaries, data as raw bytes) against
// today's text encodings: SOAP with the data inline as base64, and MTOM (the storage client's
// default from 1 KiB on). Encode: from the request's values to the bytes a transport sends (the
// compiled codecs, the envelope, the MTOM package). Decode: from the received bytes to the values
// (the envelope read, then the compiled decoder, which hands back the data as a Buffer).
//
//   npm run build && node dist/benchmarks/micro/nbfx.js [--rounds N] [--ms MS]
import { parseArgs } from 'node:util'
import { compileCodecs } from '../../soap-runtime/codec.js'
import { buildEnvelope, METAOS_NS, parseEnvelope, readEnvelope, WSA10_NS } from '../../soap-runtime/envelope.js'
import { buildMultipartRelated, parseMultipartRelated } from '../../soap-runtime/mtom.js'
import { compileBinaryCodecs, decodeEnvelope, encodeEnvelope, NbfxReaderSession, NbfxWriterSession, WSA_ANONYMOUS } from '../../soap-runtime/nbfx/index.js'
import { DEFAULT_XML_LIMITS } from '../../soap-runtime/xml.js'
import { StorageServiceDescriptor } from '../../wsdl/generated/storage-service.js'
import { fmt, header, table, timeEach, type Candidate } from './measure.js'

const { values } = parseArgs({ options: { rounds: { type: 'string' }, ms: { type: 'string' } } })
const rounds = Number(values.rounds ?? 7)
const ms = Number(values.ms ?? 300)

const text = compileCodecs(StorageServiceDescriptor)
const bin = compileBinaryCodecs(StorageServiceDescriptor)
const writeCodec = text.get('Write')!
const ACTION = 'urn:metaos:storage:v1/Write'
const caller = 'urn:uuid:6a1c3b52-35c4-4b0e-9a4d-0d3f6a0e5c11'
const TO = 'net.uds:/run/metaos/storage.sock'
const ID = 'urn:uuid:6a1c3b52-35c4-4b0e-9a4d-0d3f6a0e5c11'
// The same headers in both encodings: WS-Addressing 1.0 as WCF sends it (net.tcp's text encoding
// carries it too), and metaos's Caller.
const headerXml = `<a:Action s:mustUnderstand="1" xmlns:a="${WSA10_NS}">${ACTION}</a:Action><a:MessageID xmlns:a="${WSA10_NS}">${ID}</a:MessageID>` +
  `<a:ReplyTo xmlns:a="${WSA10_NS}"><a:Address>${WSA_ANONYMOUS}</a:Address></a:ReplyTo><a:To s:mustUnderstand="1" xmlns:a="${WSA10_NS}">${TO}</a:To>` +
  `<Caller xmlns="${METAOS_NS}">${caller}</Caller>`
const understood = new Set<string>()

function input (bytes: number): { handle: string, data: Buffer } {
  const data = Buffer.alloc(bytes)
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + 7) & 0xff
  return { handle: 'h:0123456789abcdef', data }
}

/** The text envelope, data inline as base64: one buffer. */
function encodeBase64 (v: { handle: string, data: Buffer }): Buffer {
  return Buffer.from(buildEnvelope('1.2', headerXml, writeCodec.encode(v, {})), 'utf8')
}

/** The text envelope as an MTOM package: the data as an attachment. */
function encodeMtom (v: { handle: string, data: Buffer }): { chunks: Buffer[], contentType: string } {
  const attachments = new Map<string, Buffer>()
  const xml = buildEnvelope('1.2', headerXml, writeCodec.encode(v, { attachments, mtomThreshold: 0 }))
  const pkg = buildMultipartRelated(xml, 'application/soap+xml', attachments, ACTION)
  return { chunks: pkg.chunks, contentType: pkg.contentType }
}

/** The binary envelope on a session (its string table empty after the first message), with the same headers. */
function encodeBinary (v: { handle: string, data: Buffer }, session: NbfxWriterSession): { chunks: Buffer[], length: number } {
  return encodeEnvelope({
    action: ACTION, messageId: ID, replyTo: WSA_ANONYMOUS, to: TO,
    headers: [{ ns: METAOS_NS, local: 'Caller', value: caller }], body: { element: 'Write', value: v },
  }, bin, session)
}

function rows (bytes: number): string[][] {
  const v = input(bytes)
  const wSession = new NbfxWriterSession()
  const rSession = new NbfxReaderSession()
  const b64 = encodeBase64(v)
  const mtom = encodeMtom(v)
  const mtomBody = Buffer.concat(mtom.chunks)
  decodeEnvelope(Buffer.concat(encodeBinary(v, wSession).chunks), rSession) // the session's first message carries its strings
  const binary = Buffer.concat(encodeBinary(v, wSession).chunks)
  const limits = DEFAULT_XML_LIMITS
  const encoders: Candidate[] = [
    { name: 'text, base64', run: () => encodeBase64(v) },
    { name: 'text, MTOM', run: () => encodeMtom(v) },
    { name: 'binary (nbfx)', run: () => encodeBinary(v, wSession) },
  ]
  const decoders: Candidate[] = [
    { name: 'text, base64', run: () => writeCodec.decode(parseEnvelope(b64.toString('utf8'), limits, understood).body) },
    { name: 'text, MTOM', run: () => { const p = parseMultipartRelated(mtomBody, mtom.contentType); return writeCodec.decode(parseEnvelope(p.rootXml, limits, understood).body, { attachments: p.attachments }) } },
    { name: 'binary (nbfx)', run: () => writeCodec.decode(readEnvelope(decodeEnvelope(binary, rSession, limits), understood).body) },
  ]
  const enc = timeEach(encoders, { rounds, ms })
  const dec = timeEach(decoders, { rounds, ms })
  const size = { 'text, base64': b64.length, 'text, MTOM': mtomBody.length, 'binary (nbfx)': binary.length } as Record<string, number>
  const base = (enc.get('text, base64')! + dec.get('text, base64')!)
  return encoders.map(({ name }) => {
    const total = enc.get(name)! + dec.get(name)!
    return [bytes >= 1024 ? `${bytes / 1024} KiB` : `${bytes} B`, name, String(size[name]), fmt(enc.get(name)!), fmt(dec.get(name)!), `${(base / total).toFixed(2)}x`]
  })
}

const all = [512, 64 * 1024, 1024 * 1024].flatMap(rows)
process.stdout.write(header('nbfx') + `a Write request encoded and decoded; median µs of ${rounds} interleaved rounds of ${ms} ms\n\n`)
process.stdout.write(table(['Write', 'encoding', 'bytes', 'encode µs', 'decode µs', 'encode+decode vs text, base64'], all))
