// The SOAP runtime as peers see it on the wire: any prefixes, default namespaces, comments, CDATA
// and whitespace; SOAP 1.1 and 1.2 answered in kind; WS-Addressing RelatesTo; MTOM/XOP in both
// directions; Batch; the ServiceTiming header. Raw HTTP against a real domain.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseXml, type XmlElement } from '../../soap-runtime/xml.js'
import { buildMultipartRelated, parseMultipartRelated, isMultipartRelated } from '../../soap-runtime/mtom.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { startTestDomain } from '../helpers/domain.js'

const S11 = 'http://schemas.xmlsoap.org/soap/envelope/'
const S12 = 'http://www.w3.org/2003/05/soap-envelope'
const NS = 'urn:metaos:storage:v1'
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

async function post (url: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number, type: string, body: Buffer }> {
  const res = await fetch(url, { method: 'POST', body, headers })
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: Buffer.from(await res.arrayBuffer()) }
}

const child = (el: XmlElement, local: string): XmlElement => {
  const c = el.children.find((x) => x.local === local)
  if (c === undefined) throw new Error(`no ${local} in ${el.local}`)
  return c
}
const bodyOf = (xml: string): XmlElement => child(parseXml(xml), 'Body').children[0]!

t.test('wire compatibility', async (t) => {
  const d = await startTestDomain(t)
  const h11 = (op: string): Record<string, string> => ({ 'Content-Type': 'text/xml; charset=utf-8', SOAPAction: `"urn:metaos:storage:v1/${op}"` })
  const h12 = { 'Content-Type': 'application/soap+xml; charset=utf-8' }

  await t.test('odd prefixes, default namespaces, comments, CDATA and whitespace', async (t) => {
    const xml = `<?xml version='1.0' encoding='UTF-8'?>
<!-- a comment before the envelope -->
<ENV:Envelope xmlns:ENV="${S11}" xmlns:q1="${NS}">
  <ENV:Header/>
  <ENV:Body>
    <!-- inside the body -->
    <q1:Open>
      <q1:path><![CDATA[cdata]]>-file.txt</q1:path>
      <mode xmlns="${NS}">CreateNew</mode>
      <q1:access> ReadWrite </q1:access>
      <x:share xmlns:x="${NS}">None</x:share>
    </q1:Open>
  </ENV:Body>
</ENV:Envelope>`
    const r = await post(d.http, xml, h11('Open'))
    t.equal(r.status, 200, r.body.toString())
    const body = bodyOf(r.body.toString())
    t.equal(body.local, 'OpenResponse')
    t.equal(body.ns, NS)
    t.match(child(body, 'handle').text, /^[\w-]{32}$/, '192-bit handle, base64url')
    t.ok(readFileSync(join(d.root, 'cdata-file.txt')), 'the file exists under the CDATA-joined name')
  })

  await t.test('SOAP 1.2 is answered in 1.2, with WS-Addressing RelatesTo and ServiceTiming', async (t) => {
    const xml = `<s:Envelope xmlns:s="${S12}" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>` +
      '<a:Action s:mustUnderstand="1">urn:metaos:storage:v1/GetFileInfo</a:Action><a:MessageID>urn:uuid:11111111-2222-3333-4444-555555555555</a:MessageID>' +
      `<a:To s:mustUnderstand="1">${d.http}</a:To></s:Header><s:Body><GetFileInfo xmlns="${NS}"><path>cdata-file.txt</path></GetFileInfo></s:Body></s:Envelope>`
    const r = await post(d.http, xml, h12)
    t.equal(r.status, 200)
    t.match(r.type, /^application\/soap\+xml/)
    const env = parseXml(r.body.toString())
    t.equal(env.ns, S12)
    const header = child(env, 'Header')
    t.equal(child(header, 'RelatesTo').text, 'urn:uuid:11111111-2222-3333-4444-555555555555')
    t.equal(child(header, 'Action').text, 'urn:metaos:storage:v1/GetFileInfoResponse')
    t.match(child(header, 'ServiceTiming').text, /^\d+$/)
    const body = child(env, 'Body').children[0]!
    t.equal(child(body, 'exists').text, 'true')
    t.equal(child(body, 'isDirectory').text, 'false')
    t.equal(child(body, 'length').text, '0')
  })

  await t.test('faults match the request version and carry StorageFault', async (t) => {
    for (const [v, ns, headers, code] of [['1.1', S11, h11('Open'), 'Client'], ['1.2', S12, h12, 'Sender']] as const) {
      const r = await post(d.http, `<e:Envelope xmlns:e="${ns}"><e:Body><Open xmlns="${NS}"><path>nope</path><mode>Open</mode><access>Read</access><share>Read</share></Open></e:Body></e:Envelope>`, headers)
      t.equal(r.status, 500, `SOAP ${v}: HTTP 500 (what WCF reads faults from)`)
      const fault = bodyOf(r.body.toString())
      t.equal(fault.ns, ns)
      t.equal(fault.local, 'Fault')
      const text = r.body.toString()
      t.match(text, new RegExp(`>s:${code}<`))
      t.match(text, /<StorageFault xmlns="urn:metaos:storage:v1"><code>FILE_NOT_FOUND<\/code>/)
    }
  })

  await t.test('MTOM in and out', async (t) => {
    const proxy = createStorageProxy(d.http, { mtomThreshold: 1 })
    t.teardown(proxy.close)
    const data = randomBytes(200_000)
    const { output: o } = await proxy.invoke('Open', { path: 'mtom.bin', mode: 'Create', access: 'ReadWrite', share: 'None' })
    const w = await proxy.invoke('Write', { handle: o.handle, data })
    t.equal(w.output.written, data.length)
    t.equal(sha(readFileSync(join(d.root, 'mtom.bin'))), sha(data), 'an MTOM Write lands byte for byte')
    // A plain-XML request that accepts multipart gets an MTOM reply with the bytes as an attachment.
    await proxy.invoke('Seek', { handle: o.handle, offset: 0, origin: 'Begin' })
    const raw = await post(d.http, `<s:Envelope xmlns:s="${S11}"><s:Header><Caller xmlns="urn:metaos:v1">${'x'}</Caller></s:Header><s:Body><Read xmlns="${NS}"><handle>${o.handle}</handle><count>10</count></Read></s:Body></s:Envelope>`, { ...h11('Read'), Accept: 'text/xml, multipart/related' })
    t.equal(raw.status, 500, 'someone else\'s handle (another Caller) is refused')
    t.match(raw.body.toString(), /INVALID_HANDLE/)
    const r = await proxy.invoke('Read', { handle: o.handle, count: data.length })
    t.equal(sha(r.output.data), sha(data), 'an MTOM Read returns the bytes')
    await proxy.invoke('Close', { handle: o.handle })
  })

  await t.test('MTOM packages round-trip through the codec', async (t) => {
    const att = new Map([['a@x', randomBytes(5000)], ['b@x', Buffer.from('\r\n--not-the-boundary\r\n')]])
    const pkg = buildMultipartRelated('<root/>', 'text/xml', att)
    t.ok(isMultipartRelated(pkg.contentType))
    const parsed = parseMultipartRelated(Buffer.concat(pkg.chunks), pkg.contentType)
    t.equal(parsed.rootXml, '<root/>')
    t.same(parsed.attachments.get('a@x'), att.get('a@x'))
    t.same(parsed.attachments.get('b@x'), att.get('b@x'))
  })

  await t.test('Batch: results and faults in order, in one round trip', async (t) => {
    const proxy = createStorageProxy(d.bus)
    t.teardown(proxy.close)
    const { output: o } = await proxy.invoke('Open', { path: 'batch.bin', mode: 'Create', access: 'ReadWrite', share: 'None' })
    const r = await proxy.invoke('Batch', {
      op: [
        { Write: { handle: o.handle, data: Buffer.from('hello ') } },
        { Write: { handle: o.handle, data: Buffer.from('world') } },
        { Read: { handle: 'not-a-handle', count: 1 } },
        { GetLength: { handle: o.handle } },
        { Close: { handle: o.handle } },
      ],
    })
    const res = r.output.result
    t.equal(res.length, 5)
    t.same(res[0], { WriteResponse: { written: 6, position: 6 } })
    t.same(res[1], { WriteResponse: { written: 5, position: 11 } })
    t.equal((res[2] as { StorageFault: { code: string } }).StorageFault.code, 'INVALID_HANDLE')
    t.same(res[3], { GetLengthResponse: { length: 11 } })
    t.same(res[4], { CloseResponse: {} })
    t.equal(readFileSync(join(d.root, 'batch.bin'), 'utf8'), 'hello world')
  })

  await t.test('ListDirectory and GetDomainInfo', async (t) => {
    const proxy = createStorageProxy(d.http, { soapVersion: '1.2' })
    t.teardown(proxy.close)
    const l = await proxy.invoke('ListDirectory', { path: '' })
    const names = l.output.entry.map((e) => e.name)
    t.ok(names.includes('batch.bin') && names.includes('mtom.bin'))
    t.same(names, [...names].sort(), 'sorted by name')
    t.equal(l.output.entry.find((e) => e.name === 'batch.bin')?.length, 11)
    const i = await proxy.invoke('GetDomainInfo', {})
    t.equal(i.output.domainId, d.domain.epr)
    t.equal(i.output.hosting, 'process')
    t.same(i.output.transports.transport, d.domain.endpoints)
    t.ok(i.serviceMicros !== undefined && i.serviceMicros >= 0)
  })

  await t.test('GET ?wsdl serves the contract with the address it was asked on', async (t) => {
    const res = await fetch(`${d.http}?wsdl`)
    const text = await res.text()
    t.match(text, `<soap:address location="${d.http}"/>`)
    t.match(text, `<soap12:address location="${d.http}"/>`)
    const other = await fetch(d.http.replace('/storage', '/nothing'))
    t.equal(other.status, 404)
  })
})
