// Binary XML interop with .NET's own reader and writer as Mono 6.8 ships them
// (System.Runtime.Serialization's XmlDictionaryReader/Writer.CreateBinaryReader/Writer, and the
// static dictionary of Mono's System.ServiceModel), through test/interop/nbfx/NbfxPeer.cs compiled
// with mcs at test time:
// - the [MC-NBFS] table of soap-runtime/nbfx/ against Mono's, id by id (Mono's known differences listed);
// - our bytes → Mono: a session of requests, a response and a fault written by encodeEnvelope, read
//   by .NET's reader (string tables into an XmlBinaryReaderSession), give the infoset we decode;
// - Mono's bytes → ours: SOAP 1.2 + WS-Addressing Write requests written by WCF's Message through
//   .NET's binary writer (bytes via WriteBase64, names from a session dictionary), and a document of
//   every typed record, decode to the infoset .NET reads from them, and the Write's data to the bytes.
import t from 'tap'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import {
  compileBinaryCodecs, decodeEnvelope, encodeEnvelope, NbfxReaderSession, NbfxWriterSession, STATIC_STRINGS, WSA_ANONYMOUS,
  type OutboundEnvelope,
} from '../../soap-runtime/nbfx/index.js'
import { compileCodecs } from '../../soap-runtime/codec.js'
import { readEnvelope } from '../../soap-runtime/envelope.js'
import { parseXml as refParseXml, type XmlElement } from '../helpers/reference-xml.js'
import { monoTools, parseLines, runPeer } from '../helpers/run-peer.js'
import { tempDir } from '../helpers/temp-dir.js'
import { StorageServiceDescriptor as D } from '../../wsdl/generated/storage-service.js'

const here = dirname(fileURLToPath(import.meta.url))
const source = [resolve(here, 'nbfx/NbfxPeer.cs'), resolve(here, '../../../test/interop/nbfx/NbfxPeer.cs')].find((f) => existsSync(f))
const norm = (e: XmlElement): unknown => ({ n: `{${e.ns}}${e.local}`, a: Object.entries(e.attrs).sort(), t: e.text, c: e.children.map(norm) })
const pattern = (n: number): Buffer => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = (i * 31 + 7) & 0xff; return b }
const LARGE_XML = { maxDepth: 64, maxElements: 100_000 }

/** Where Mono's static dictionary differs from .NET's (and so from ours): the writer avoids these ids. */
const MONO_DIFFERENCES: Record<number, [string, string]> = {
  0x1a8: [' http://schemas.xmlsoap.org/ws/2005/02/trust/tlsnego', 'http://schemas.xmlsoap.org/ws/2005/02/trust/tlsnego'],
  0x3c4: ['actor', 'Actor'],
  0x3c6: ['faultcode', 'Faultcode'],
  0x3c8: ['faultstring', 'Faultstring'],
  0x3ca: ['faultactor', 'Faultactor'],
}

const { mcs, mono, assemblyDir, missing } = monoTools()
if (mcs === undefined || mono === undefined) {
  t.plan(0, missing)
} else {
  const dir = tempDir(t, 'metaos-nbfx-mono-')
  const exe = join(dir, 'NbfxPeer.exe')
  const peer = async (...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> => await runPeer(mono, [exe, ...args], { cwd: dir, timeout: 120_000 })

  t.before(async () => {
    t.ok(source, 'test/interop/nbfx/NbfxPeer.cs found')
    const refs = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir!, a)}`)
    const cc = await runPeer(mcs, ['-nologo', `-out:${exe}`, ...refs, source!], { cwd: dir, timeout: 120_000 })
    t.equal(cc.code, 0, 'mcs compiles the peer', { output: cc.output })
  })

  t.test('the static dictionary is Mono\'s, id by id, but for Mono\'s known differences', async (t) => {
    const r = await peer('dict')
    t.equal(r.code, 0, r.stderr)
    const monoStrings = r.stdout.split('\n').filter((l) => l !== '').map((l) => { const i = l.indexOf('\t'); return [Number(l.slice(0, i)), l.slice(i + 1).replace(/\r$/, '')] as const })
    t.equal(monoStrings.length, 486, 'Mono has 486 strings (no 0x3CC "detail")')
    t.equal(STATIC_STRINGS.length, 487, 'we have .NET\'s 487')
    const differ: Record<number, [string, string]> = {}
    for (const [id, s] of monoStrings) if (STATIC_STRINGS[id / 2] !== s) differ[id] = [STATIC_STRINGS[id / 2]!, s]
    t.same(differ, MONO_DIFFERENCES, 'the only differences are Mono\'s known ones')
  })

  t.test('our bytes → .NET\'s reader: the same infoset, a session of five messages', async (t) => {
    const codecs = compileBinaryCodecs(D)
    const ws = new NbfxWriterSession()
    const id = (n: number): string => `urn:uuid:${n}f8fad5b-d9cb-469f-a165-70867728950e`
    const messages: OutboundEnvelope[] = [
      { action: 'urn:metaos:storage:v1/Write', messageId: id(0), replyTo: WSA_ANONYMOUS, to: 'net.tcp://127.0.0.1:9/storage', headers: [{ ns: 'urn:metaos:v1', local: 'Caller', value: 'urn:uuid:A' }], body: { element: 'Write', value: { handle: 'h:1', data: Buffer.from('hello') } } },
      { action: 'urn:metaos:storage:v1/Write', messageId: id(1), replyTo: WSA_ANONYMOUS, body: { element: 'Write', value: { handle: 'h:1', data: pattern(100_000) } } },
      { action: 'urn:metaos:storage:v1/GetFileInfoResponse', relatesTo: id(1), headers: [{ ns: 'urn:metaos:storage:v1', local: 'ServiceTiming', value: 1234 }], body: { element: 'GetFileInfoResponse', value: { exists: true, isDirectory: false, length: 5_000_000_000, lastWriteTime: new Date('2020-01-02T03:04:05.123Z') } } },
      { action: 'http://www.w3.org/2005/08/addressing/soap/fault', relatesTo: id(2), body: { fault: { code: 'FILE_NOT_FOUND', message: 'no <such> file', detail: { element: 'StorageFault', value: { code: 'FILE_NOT_FOUND', message: 'no <such> file' } } } } },
      // SOAP 1.1: faultcode, faultstring and detail are among the ids Mono's dictionary has otherwise; written inline, Mono reads them right.
      { version: '1.1', body: { fault: { code: 'ACCESS_DENIED', message: 'denied', detail: { element: 'StorageFault', value: { code: 'ACCESS_DENIED', message: 'denied' } } } } },
    ]
    const files: string[] = []
    const ours: XmlElement[] = []
    const rs = new NbfxReaderSession()
    messages.forEach((m, i) => {
      const wire = Buffer.concat(encodeEnvelope(m, codecs, ws).chunks)
      files.push(join(dir, `ours-${i}.bin`))
      writeFileSync(files[i]!, wire)
      ours.push(decodeEnvelope(wire, rs))
    })
    const r = await peer('read', 'session', ...files)
    t.equal(r.code, 0, 'Mono read every message', { stdout: r.stdout.slice(0, 2000), stderr: r.stderr.slice(0, 2000) })
    const xmls = r.stdout.split('\n').filter((l) => l.startsWith('xml=')).map((l) => Buffer.from(l.slice(4), 'base64').toString('utf8'))
    t.equal(xmls.length, messages.length)
    xmls.forEach((xml, i) => t.same(norm(refParseXml(xml, LARGE_XML)), norm(ours[i]!), `message ${i}: .NET reads what we read`))
    t.match(xmls[0], /<data>aGVsbG8=<\/data>/, 'the Write\'s bytes, as .NET renders them')
    t.match(xmls[0], /<a:MessageID>urn:uuid:0f8fad5b-d9cb-469f-a165-70867728950e<\/a:MessageID>/)
    t.ok(xmls[1]!.includes(`<data>${pattern(100_000).toString('base64')}</data>`), '100,000 bytes intact')
    t.match(xmls[2], /<length>5000000000<\/length><lastWriteTime>2020-01-02T03:04:05.123Z<\/lastWriteTime>/, 'long and dateTime as .NET writes them')
    t.match(xmls[3], /<s:Value>s:Sender<\/s:Value>.*<code>FILE_NOT_FOUND<\/code>/, 'the fault')
    t.match(xmls[4], /<s:Envelope xmlns:s="http:\/\/schemas.xmlsoap.org\/soap\/envelope\/"><s:Body><s:Fault><faultcode>s:Client<\/faultcode><faultstring>denied<\/faultstring><detail>/, 'the SOAP 1.1 fault, its names in lower case')
  })

  t.test('.NET\'s bytes → ours: WCF Messages and every typed record, the infoset .NET reads', async (t) => {
    const r = await peer('write', 'session', dir)
    t.equal(r.code, 0, 'Mono wrote its messages', { stdout: r.stdout.slice(0, 2000), stderr: r.stderr.slice(0, 2000) })
    const rs = new NbfxReaderSession()
    const text = compileCodecs(D)
    for (const [name, data] of [['request-1', Buffer.from('hello')], ['request-2', pattern(100_000)], ['typed', undefined]] as const) {
      const wire = readFileSync(join(dir, `${name}.bin`))
      const root = decodeEnvelope(wire, rs)
      const want = refParseXml(readFileSync(join(dir, `${name}.xml`), 'utf8'), LARGE_XML)
      t.same(norm(root), norm(want), `${name}: we read what .NET reads`)
      if (data === undefined) continue
      const env = readEnvelope(root, new Set())
      t.equal(env.addressing?.action, 'urn:metaos:storage:v1/Write')
      const write = text.get('Write')!.decode(env.body) as { handle: string, data: Buffer }
      t.ok(write.data.equals(data), `${name}: the Write's ${data.length} bytes`)
      t.ok(env.body.children[1]!.bin !== undefined, 'carried as raw bytes')
    }
    t.ok(rs.strings.includes('urn:metaos:storage:v1'), 'names came as session strings')
    const out = parseLines(r.stdout)
    t.equal(out.error, undefined)
  })
}
