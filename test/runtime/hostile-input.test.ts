// Hostile input against a real storage domain: hand-written raw HTTP requests (malformed XML, DTDs
// and entity attacks, PIs, nesting and element floods, wrong envelopes and operations, schema
// violations, oversize bodies, broken MTOM, path escapes through "..", absolute paths and symlinks,
// stolen, closed and forged handles, unknown mustUnderstand headers). Each case checks the HTTP
// status, the SOAP version of the fault envelope, its SOAP fault code and the StorageFault code.
// After the corpus the domain must still serve a normal round trip, its root must hold only what
// the legitimate calls created, and the canary files outside the root must be untouched.
// Responses are read with the saxes-based reference parser, independent of soap-runtime/xml.ts.
//
// test/security/security-hostile.test.ts runs this same corpus over HTTPS against a domain that demands
// authentication (METAOS_HOSTILE_TRANSPORT=https-auth): every message then carries a WS-Security
// UsernameToken of a user named after its Caller, so "another caller" is another identity.
import t, { type Test } from 'tap'
import { request as httpRequest, type IncomingHttpHeaders, type RequestOptions } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { startTestDomain as startPlainDomain, type TestDomain } from '../helpers/domain.js'
import { parseXml as refParseXml, type XmlElement } from '../helpers/reference-xml.js'
import type { StorageDomainOptions } from '../../backend-storage/storage-domain.js'
import { buildSecurityHeader } from '../../soap-runtime/ws-security.js'
import { initCa, issueDomainCertificate } from '../../security/pki.js'
import { loadDomainSecurity } from '../../security/domain-security.js'
import { tempDir } from '../helpers/temp-dir.js'

type V = '1.1' | '1.2'
const S = 'urn:metaos:storage:v1'
const METAOS = 'urn:metaos:v1'
const SOAP_NS: Record<V, string> = { '1.1': 'http://schemas.xmlsoap.org/soap/envelope/', '1.2': 'http://www.w3.org/2003/05/soap-envelope' }
const SENDER: Record<V, string> = { '1.1': 'Client', '1.2': 'Sender' }
const XOP = 'http://www.w3.org/2004/08/xop/include'
const REQUEST_TIMEOUT_MS = 4000

// ---------------------------------------------------------------- building and sending messages

const SECURE = process.env.METAOS_HOSTILE_TRANSPORT === 'https-auth'
const CALLERS = ['', 'urn:uuid:A', 'urn:uuid:B', 'URN:UUID:A', 'urn:uuid:final']
/** The user a Caller stands for in the https-auth run ('' = no Caller header). */
const userOf = (caller: string): string => `u-${createHash('sha256').update(caller).digest('hex').slice(0, 16)}`
let tlsCa: Buffer | undefined

// The file's root test: what serves every test of the file is removed when it ends.
const suite = t
let pki: Promise<{ dir: string, cert: { certPath: string, keyPath: string } }> | undefined

async function startTestDomain (t: Test, options: Partial<StorageDomainOptions> = {}): Promise<TestDomain> {
  if (!SECURE) return await startPlainDomain(t, options)
  // One CA and one domain certificate for every domain of the run.
  const { dir, cert } = await (pki ??= (async () => {
    const dir = tempDir(suite, 'metaos-hostile-tls-')
    await initCa(join(dir, 'pki'))
    const cert = await issueDomainCertificate(join(dir, 'pki'), { name: 'hostile' })
    tlsCa = readFileSync(join(dir, 'pki', 'ca.crt'))
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ identities: CALLERS.map((c) => ({ name: userOf(c), password: `password-${userOf(c)}`, paths: ['*'] })) }), { mode: 0o600 })
    return { dir, cert }
  })())
  const security = loadDomainSecurity({ tlsCert: cert.certPath, tlsKey: cert.keyPath, auth: join(dir, 'policy.json') })
  const d = await startPlainDomain(t, { ...options, listen: ['https://127.0.0.1:0'], security })
  t.ok(d.http.startsWith('https://'), 'the corpus goes over HTTPS, authenticated')
  return d
}

function envelope (v: V, bodyXml: string, headerXml?: string): string {
  if (SECURE) {
    // A UsernameToken of the user its Caller stands for (the default user without one).
    const caller = headerXml === undefined ? '' : /<Caller xmlns="urn:metaos:v1">([^<]*)<\/Caller>/.exec(headerXml)?.[1] ?? ''
    const user = userOf(caller)
    headerXml = (headerXml ?? '') + buildSecurityHeader({ username: user, password: `password-${user}` }, SOAP_NS[v])
  }
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP_NS[v]}">` +
    (headerXml === undefined ? '' : `<s:Header>${headerXml}</s:Header>`) +
    `<s:Body>${bodyXml}</s:Body></s:Envelope>`
}

function request (o: RequestOptions, cb: Parameters<typeof httpRequest>[1]): ReturnType<typeof httpRequest> {
  return SECURE ? httpsRequest({ ...o, ca: tlsCa }, cb) : httpRequest(o, cb)
}

/** `<Name xmlns="urn:metaos:storage:v1">inner</Name>` */
function op (name: string, inner = ''): string {
  return `<${name} xmlns="${S}">${inner}</${name}>`
}

function callerHeader (caller: string): string {
  return `<Caller xmlns="${METAOS}">${caller}</Caller>`
}

function contentTypeFor (v: V, action: string): string {
  return v === '1.1' ? 'text/xml; charset=utf-8' : `application/soap+xml; charset=utf-8; action="${S}/${action}"`
}

interface Reply { readonly status: number, readonly headers: IncomingHttpHeaders, readonly body: Buffer, readonly text: string }

interface PostOptions {
  readonly version?: V
  /** SOAPAction / action parameter (operation name). */
  readonly action?: string
  /** Overrides the Content-Type derived from the version. */
  readonly contentType?: string
  /** Send with Transfer-Encoding: chunked (no Content-Length). */
  readonly chunked?: boolean
  readonly timeoutMs?: number
}

const transcript: string[] = [] // every response body, to look for leaked canary content

function post (url: string, body: string | Buffer, o: PostOptions = {}): Promise<Reply> {
  const v = o.version ?? '1.1'
  const action = o.action ?? 'Unknown'
  const u = new URL(url)
  const buf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body
  const headers: Record<string, string> = { 'Content-Type': o.contentType ?? contentTypeFor(v, action) }
  if (v === '1.1') headers.SOAPAction = `"${S}/${action}"`
  if (o.chunked !== true) headers['Content-Length'] = String(buf.length)
  return new Promise<Reply>((resolve, reject) => {
    let settled = false
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); reject(e) } })
      res.on('end', () => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        const b = Buffer.concat(chunks)
        const text = b.toString('utf8')
        transcript.push(text)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text })
      })
    })
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      req.destroy()
      reject(new Error(`no answer within ${o.timeoutMs ?? REQUEST_TIMEOUT_MS} ms`))
    }, o.timeoutMs ?? REQUEST_TIMEOUT_MS)
    // The server may answer (413) and close before the whole body is written: a write error after
    // the response does not matter.
    req.on('error', (e) => { if (!settled) { settled = true; clearTimeout(timer); reject(e) } })
    if (o.chunked === true) {
      for (let i = 0; i < buf.length; i += 16 * 1024) req.write(buf.subarray(i, i + 16 * 1024))
      req.end()
    } else {
      req.end(buf)
    }
  })
}

function get (url: string, headers: Record<string, string>): Promise<Reply> {
  const u = new URL(url)
  return new Promise<Reply>((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: 'GET', headers, agent: false, setHost: false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => { chunks.push(c) })
      res.on('end', () => { const b = Buffer.concat(chunks); resolve({ status: res.statusCode ?? 0, headers: res.headers, body: b, text: b.toString('utf8') }) })
      res.on('error', reject)
    })
    req.setTimeout(REQUEST_TIMEOUT_MS, () => { req.destroy(new Error('no answer')) })
    req.on('error', reject)
    req.end()
  })
}

/** Sends one operation in an envelope of version `v`, with an optional Caller header. */
async function call (d: TestDomain, v: V, name: string, inner: string, caller?: string): Promise<Reply> {
  return await post(d.http, envelope(v, op(name, inner), caller === undefined ? undefined : callerHeader(caller)), { version: v, action: name })
}

// ---------------------------------------------------------------- reading replies

function child (el: XmlElement, local: string, ns?: string): XmlElement | undefined {
  return el.children.find((c) => c.local === local && (ns === undefined || c.ns === ns))
}

interface FaultInfo {
  readonly version: V
  /** Fault code as written (faultcode / Code/Value text), e.g. "s:Client". */
  readonly faultcodeText: string
  /** Its namespace (resolved prefix) and local part. */
  readonly faultcodeNs: string | undefined
  readonly faultcodeLocal: string
  readonly code: string | undefined
  readonly message: string | undefined
}

function versionOf (env: XmlElement): V | undefined {
  return env.ns === SOAP_NS['1.1'] ? '1.1' : env.ns === SOAP_NS['1.2'] ? '1.2' : undefined
}

function readFaultInfo (text: string): FaultInfo {
  const env = refParseXml(text)
  const version = versionOf(env)
  if (env.local !== 'Envelope' || version === undefined) throw new Error(`reply is not a SOAP envelope: ${text.slice(0, 200)}`)
  const body = child(env, 'Body', env.ns)
  const fault = body?.children[0]
  if (fault === undefined || fault.local !== 'Fault' || fault.ns !== env.ns) throw new Error(`reply holds no Fault: ${text.slice(0, 300)}`)
  let codeEl: XmlElement | undefined
  let detail: XmlElement | undefined
  if (version === '1.1') {
    codeEl = child(fault, 'faultcode', '')
    detail = child(fault, 'detail', '')
  } else {
    codeEl = child(child(fault, 'Code', env.ns) ?? fault, 'Value', env.ns)
    detail = child(fault, 'Detail', env.ns)
  }
  const faultcodeText = (codeEl?.text ?? '').trim()
  const colon = faultcodeText.indexOf(':')
  const faultcodeNs = colon < 0 ? undefined : codeEl?.nsScope[faultcodeText.slice(0, colon)]
  const sf = detail === undefined ? undefined : child(detail, 'StorageFault', S)
  return {
    version,
    faultcodeText,
    faultcodeNs,
    faultcodeLocal: colon < 0 ? faultcodeText : faultcodeText.slice(colon + 1),
    code: sf === undefined ? undefined : child(sf, 'code', S)?.text,
    message: sf === undefined ? undefined : child(sf, 'message', S)?.text,
  }
}

interface Expect {
  /** SOAP version of the fault envelope. */
  readonly version: V
  /** StorageFault code. */
  readonly code: string
  readonly status?: number
  /** SOAP fault code local part; default Client (1.1) / Sender (1.2). */
  readonly soap?: 'VersionMismatch' | 'MustUnderstand'
}

function expectFault (t: Test, r: Reply, e: Expect, what = ''): FaultInfo | undefined {
  const label = what === '' ? '' : `${what}: `
  t.equal(r.status, e.status ?? 500, `${label}HTTP ${e.status ?? 500}`)
  const ct = String(r.headers['content-type'] ?? '')
  t.match(ct, e.version === '1.1' ? /^text\/xml/ : /^application\/soap\+xml/, `${label}Content-Type of a SOAP ${e.version} fault`)
  let f: FaultInfo
  try {
    f = readFaultInfo(r.text)
  } catch (err) {
    t.fail(`${label}${(err as Error).message}`)
    return undefined
  }
  t.equal(f.version, e.version, `${label}fault envelope is SOAP ${e.version}`)
  const soapLocal = e.soap ?? SENDER[e.version]
  t.ok(f.faultcodeText.endsWith(soapLocal), `${label}SOAP fault code ${f.faultcodeText} ends with ${soapLocal}`)
  t.equal(f.faultcodeLocal, soapLocal, `${label}SOAP fault code local part is ${soapLocal}`)
  t.equal(f.faultcodeNs, SOAP_NS[e.version], `${label}SOAP fault code is in the envelope namespace`)
  t.equal(f.code, e.code, `${label}StorageFault code ${e.code} (message: ${f.message ?? '-'})`)
  return f
}

/** The single element in the Body of a 200 response. */
function okBody (t: Test, r: Reply, what = ''): XmlElement | undefined {
  if (r.status !== 200) {
    let info = r.text.slice(0, 300)
    try { const f = readFaultInfo(r.text); info = `${f.code ?? f.faultcodeText}: ${f.message ?? ''}` } catch { /* not a fault */ }
    t.fail(`${what === '' ? '' : what + ': '}expected 200, got ${r.status} (${info})`)
    return undefined
  }
  const env = refParseXml(r.text)
  return child(env, 'Body', env.ns)?.children[0]
}

function field (el: XmlElement | undefined, name: string): string | undefined {
  return el === undefined ? undefined : child(el, name, S)?.text
}

// ---------------------------------------------------------------- fixtures

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
const CANARY_TEXT = 'METAOS-CANARY-5b1f0c9e: this file lives outside the root and must never be read, changed or deleted\n'
const SECRET_TEXT = 'METAOS-SECRET-a7d2e4f1: outside directory content\n'

interface Fixture {
  readonly d: TestDomain
  readonly outside: string
  readonly canary: string
  readonly outsideDir: string
  readonly secret: string
  /** Entries the root holds before the corpus runs (the symlinks). */
  readonly initialRoot: readonly string[]
  /** Files the legitimate calls of the corpus create. */
  readonly created: Set<string>
  readonly canarySha: string
  readonly secretSha: string
  readonly canaryMtime: number
}

function setup (d: TestDomain): Fixture {
  const outside = dirname(d.root)
  const canary = join(outside, 'outside.txt')
  writeFileSync(canary, CANARY_TEXT)
  const outsideDir = join(outside, 'outside-dir')
  mkdirSync(outsideDir)
  const secret = join(outsideDir, 'secret.txt')
  writeFileSync(secret, SECRET_TEXT)
  symlinkSync(canary, join(d.root, 'link-file')) // absolute target
  symlinkSync('../outside.txt', join(d.root, 'link-rel')) // relative target
  symlinkSync(outsideDir, join(d.root, 'link-dir')) // a directory outside
  symlinkSync(join(outside, 'created-by-attack.txt'), join(d.root, 'link-dangling')) // target does not exist
  mkdirSync(join(d.root, 'sub'))
  symlinkSync('../../outside.txt', join(d.root, 'sub', 'link-up')) // climbs two levels
  return {
    d,
    outside,
    canary,
    outsideDir,
    secret,
    initialRoot: readdirSync(d.root).sort(),
    created: new Set(),
    canarySha: sha256(readFileSync(canary)),
    secretSha: sha256(readFileSync(secret)),
    canaryMtime: statSync(canary).mtimeMs,
  }
}

function checkOutsideIntact (t: Test, fx: Fixture, when: string): void {
  const c = readFileSync(fx.canary)
  t.equal(c.toString('utf8'), CANARY_TEXT, `${when}: canary content unchanged`)
  t.equal(sha256(c), fx.canarySha, `${when}: canary SHA-256 unchanged`)
  t.equal(statSync(fx.canary).mtimeMs, fx.canaryMtime, `${when}: canary mtime unchanged`)
  t.equal(sha256(readFileSync(fx.secret)), fx.secretSha, `${when}: outside-dir/secret.txt SHA-256 unchanged`)
  t.same(readdirSync(fx.outsideDir).sort(), ['secret.txt'], `${when}: nothing created in outside-dir`)
  t.same(readdirSync(fx.outside).filter((n) => n !== 'bus.sock').sort(), ['outside-dir', 'outside.txt', 'root'], `${when}: nothing created next to the root`)
  for (const l of ['link-file', 'link-rel', 'link-dir', 'link-dangling', 'sub/link-up']) {
    t.ok(lstatSync(join(fx.d.root, l)).isSymbolicLink(), `${when}: symlink ${l} still there`)
  }
}

/** Opens a file as `caller` and returns the handle (a legitimate call). */
async function openHandle (t: Test, fx: Fixture, v: V, path: string, mode: string, access: string, caller?: string): Promise<string> {
  const r = await call(fx.d, v, 'Open', `<path>${path}</path><mode>${mode}</mode><access>${access}</access><share>None</share>`, caller)
  const h = field(okBody(t, r, `Open ${path}`), 'handle')
  if (mode !== 'Open') fx.created.add(path)
  if (h === undefined) throw new Error(`Open ${path} failed: ${r.text.slice(0, 300)}`)
  return h
}

async function closeHandle (t: Test, fx: Fixture, v: V, handle: string, caller?: string): Promise<void> {
  okBody(t, await call(fx.d, v, 'Close', `<handle>${handle}</handle>`, caller), 'Close')
}

// ---------------------------------------------------------------- the corpus

t.test('hostile input corpus against a real domain', async (t) => {
  const d = await startTestDomain(t)
  const fx = setup(d)
  const both: V[] = ['1.1', '1.2']

  t.test('malformed XML → MALFORMED_MESSAGE', async (t) => {
    const full = (v: V): string => envelope(v, op('GetDomainInfo'))
    const cases: Array<{ name: string, body: (v: V) => string | Buffer }> = [
      { name: 'empty body', body: () => '' },
      { name: 'only whitespace', body: () => ' \r\n\t ' },
      { name: 'only an XML declaration', body: () => '<?xml version="1.0" encoding="utf-8"?>' },
      { name: 'unclosed Envelope', body: (v) => full(v).replace('</s:Envelope>', '') },
      { name: 'unclosed operation element', body: (v) => envelope(v, `<Open xmlns="${S}"><path>a</path>`) },
      { name: 'truncated in the middle of a tag', body: (v) => full(v).slice(0, full(v).length - 7) },
      { name: 'truncated inside an attribute value', body: (v) => `<s:Envelope xmlns:s="${SOAP_NS[v]}` },
      { name: 'mismatched closing tag', body: (v) => envelope(v, `<GetDomainInfo xmlns="${S}"></GetDomainInfo2>`) },
      { name: 'mismatched prefixes', body: (v) => full(v).replace('</s:Body>', '</t:Body>') },
      { name: 'interleaved elements', body: (v) => envelope(v, `<Delete xmlns="${S}"><path>a</Delete></path>`) },
      { name: 'bare & in text', body: (v) => envelope(v, op('Delete', '<path>a & b</path>')) },
      { name: 'bare & in an attribute', body: (v) => envelope(v, `<Delete xmlns="${S}" x="a&b"><path>a</path></Delete>`) },
      { name: '< in an attribute value', body: (v) => envelope(v, `<Delete xmlns="${S}" x="a<b"><path>a</path></Delete>`) },
      { name: 'undefined entity', body: (v) => envelope(v, op('Delete', '<path>&nbsp;</path>')) },
      { name: 'undefined entity named like an Object.prototype member (&toString;)', body: (v) => envelope(v, op('Open', '<path>&toString;</path><mode>Open</mode><access>Read</access><share>None</share>')) },
      { name: 'undefined entity &constructor; in an attribute', body: (v) => envelope(v, `<GetDomainInfo xmlns="${S}" a="&constructor;"/>`) },
      { name: 'unbound element prefix', body: (v) => envelope(v, '<x:GetDomainInfo/>') },
      { name: 'unbound prefix named like an Object.prototype member (toString:)', body: (v) => envelope(v, '<toString:GetDomainInfo/>') },
      { name: 'unquoted attribute', body: (v) => `<s:Envelope xmlns:s=${SOAP_NS[v]}><s:Body>${op('GetDomainInfo')}</s:Body></s:Envelope>` },
      { name: 'repeated attribute', body: (v) => envelope(v, `<GetDomainInfo xmlns="${S}" a="1" a="2"/>`) },
      { name: 'two root elements', body: (v) => full(v) + full(v).replace(/^<\?xml[^>]*>/, '') },
      { name: 'text after the root', body: (v) => full(v) + 'trailing garbage' },
      { name: 'text before the root', body: (v) => 'leading garbage' + full(v) },
      { name: 'garbage text', body: () => 'this is not XML at all {"json": true}' },
      { name: 'garbage bytes (not UTF-8)', body: () => Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 151 + 7) & 0xff)) },
      // Not well-formed (XML 1.0 §4.3.3: an encoding error is fatal), not a file name with U+FFFD in it.
      { name: 'invalid UTF-8 in a path', body: (v) => Buffer.concat([Buffer.from(envelope(v, op('Open', '<path>ab@@@@.txt</path><mode>Open</mode><access>Read</access><share>None</share>')).split('@@@@')[0]!), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), Buffer.from('.txt</path><mode>Open</mode><access>Read</access><share>None</share></Open></s:Body></s:Envelope>')]) },
      { name: 'UTF-16LE body', body: (v) => Buffer.from(envelope(v, op('GetDomainInfo')).replace('utf-8', 'utf-16'), 'utf16le') },
      { name: 'encoding="ISO-8859-1" declaration', body: (v) => full(v).replace('encoding="utf-8"', 'encoding="ISO-8859-1"') },
      { name: 'encoding="UTF-16" declaration', body: (v) => full(v).replace('encoding="utf-8"', 'encoding="UTF-16"') },
      { name: 'encoding="Shift_JIS" declaration', body: (v) => full(v).replace('encoding="utf-8"', "encoding='Shift_JIS'") },
      { name: 'malformed XML declaration', body: (v) => full(v).replace('version="1.0"', 'version=1.0') },
      { name: 'XML declaration after whitespace', body: (v) => '  ' + full(v) },
      { name: 'literal NUL byte', body: (v) => envelope(v, op('Delete', '<path>a\u0000b</path>')) },
      { name: 'control character U+0001', body: (v) => envelope(v, op('Delete', '<path>a\u0001b</path>')) },
      { name: 'character reference to NUL (&#0;)', body: (v) => envelope(v, op('Delete', '<path>a&#0;b</path>')) },
      { name: 'character reference to NUL (&#x0;) in a path of Open', body: (v) => envelope(v, op('Open', '<path>outside.txt&#x0;.png</path><mode>Open</mode><access>Read</access><share>None</share>')) },
      { name: 'character reference to U+FFFE', body: (v) => envelope(v, op('Delete', '<path>&#xFFFE;</path>')) },
      { name: 'character reference to a surrogate', body: (v) => envelope(v, op('Delete', '<path>&#xD800;</path>')) },
      { name: 'character reference beyond U+10FFFF', body: (v) => envelope(v, op('Delete', '<path>&#x110000;</path>')) },
      { name: 'unterminated comment', body: (v) => envelope(v, op('GetDomainInfo', '<!-- no end')) },
      { name: '-- inside a comment', body: (v) => envelope(v, op('GetDomainInfo', '<!-- a -- b -->')) },
      { name: 'unterminated CDATA', body: (v) => envelope(v, op('Delete', '<path><![CDATA[abc</path>')) },
      { name: ']]> in text', body: (v) => envelope(v, op('Delete', '<path>a]]>b</path>')) },
      { name: 'too many attributes (300)', body: (v) => envelope(v, `<GetDomainInfo xmlns="${S}"${Array.from({ length: 300 }, (_, i) => ` a${i}="x"`).join('')}/>`) },
    ]
    for (const c of cases) {
      for (const v of both) {
        const r = await post(d.http, c.body(v), { version: v, action: 'GetDomainInfo' })
        expectFault(t, r, { version: v, code: 'MALFORMED_MESSAGE' }, `${c.name} (SOAP ${v})`)
      }
    }
  })

  t.test('DTDs, entity expansion and XXE → MALFORMED_MESSAGE, nothing leaks', async (t) => {
    const openBody = (path: string): string => op('Open', `<path>${path}</path><mode>Open</mode><access>Read</access><share>None</share>`)
    const withDoctype = (v: V, doctype: string, path: string): string =>
      `<?xml version="1.0" encoding="utf-8"?>${doctype}<s:Envelope xmlns:s="${SOAP_NS[v]}"><s:Body>${openBody(path)}</s:Body></s:Envelope>`
    const laughs = '<!DOCTYPE s:Envelope [<!ENTITY lol "lol">' +
      Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') + ']>'
    const cases: Array<{ name: string, doctype: string, path: string }> = [
      { name: 'XXE file:///etc/passwd', doctype: '<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', path: '&xxe;' },
      { name: 'XXE on the canary outside the root', doctype: `<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file://${fx.canary}">]>`, path: '&xxe;' },
      { name: 'XXE with a relative system id', doctype: '<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "../outside.txt">]>', path: '&xxe;' },
      { name: 'parameter entity (external)', doctype: `<!DOCTYPE s:Envelope [<!ENTITY % p SYSTEM "file://${fx.canary}"> %p;]>`, path: 'a' },
      { name: 'external DTD subset', doctype: '<!DOCTYPE s:Envelope SYSTEM "http://127.0.0.1:9/evil.dtd">', path: 'a' },
      { name: 'internal entity', doctype: '<!DOCTYPE s:Envelope [<!ENTITY e "inside.txt">]>', path: '&e;' },
      { name: 'billion laughs', doctype: laughs, path: '&lol9;' },
      { name: 'quadratic blowup', doctype: `<!DOCTYPE s:Envelope [<!ENTITY a "${'x'.repeat(10_000)}">]>`, path: '&a;'.repeat(2000) },
      { name: 'lowercase doctype', doctype: '<!doctype s:Envelope>', path: 'a' },
    ]
    for (const c of cases) {
      for (const v of both) {
        const r = await post(d.http, withDoctype(v, c.doctype, c.path), { version: v, action: 'Open' })
        expectFault(t, r, { version: v, code: 'MALFORMED_MESSAGE' }, `${c.name} (SOAP ${v})`)
        t.notMatch(r.text, /root:x?:0:0|METAOS-CANARY|METAOS-SECRET|lollollol/, `${c.name} (SOAP ${v}): no file content in the reply`)
      }
    }
    // A DOCTYPE (or an ENTITY declaration) inside the body.
    for (const v of both) {
      expectFault(t, await post(d.http, envelope(v, `<!DOCTYPE x [<!ENTITY e "a">]>${openBody('&e;')}`), { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `DOCTYPE inside Body (SOAP ${v})`)
      expectFault(t, await post(d.http, envelope(v, `<!ENTITY e "a">${openBody('a')}`), { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `ENTITY declaration inside Body (SOAP ${v})`)
    }
  })

  t.test('processing instructions → MALFORMED_MESSAGE', async (t) => {
    for (const v of both) {
      const full = envelope(v, op('GetDomainInfo'))
      const cases: Array<[string, string]> = [
        ['PI before the root', full.replace('?>', '?><?xml-stylesheet type="text/xsl" href="http://127.0.0.1:9/x.xsl"?>')],
        ['PI inside the Body', envelope(v, `<?php system('id'); ?>${op('GetDomainInfo')}`)],
        ['PI inside the operation', envelope(v, op('GetDomainInfo', '<?target data?>'))],
        ['PI after the root', full + '<?trailer?>'],
        ['second XML declaration', full.replace('?>', '?><?xml version="1.0"?>')],
        ['XML declaration inside the root', envelope(v, `<?xml version="1.0"?>${op('GetDomainInfo')}`)],
      ]
      for (const [name, body] of cases) expectFault(t, await post(d.http, body, { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `${name} (SOAP ${v})`)
    }
  })

  t.test('nesting and element floods → MALFORMED_MESSAGE', async (t) => {
    for (const v of both) {
      const deep = envelope(v, op('GetDomainInfo', '<a>'.repeat(10_000) + '</a>'.repeat(10_000)))
      expectFault(t, await post(d.http, deep, { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `10000 nested elements (SOAP ${v})`)
      const deepUnclosed = envelope(v, op('GetDomainInfo', '<a>'.repeat(10_000)))
      expectFault(t, await post(d.http, deepUnclosed, { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `10000 unclosed nested elements (SOAP ${v})`)
      const deepSelfClosing = envelope(v, op('GetDomainInfo', '<a>'.repeat(100) + '<b/>' + '</a>'.repeat(100)))
      expectFault(t, await post(d.http, deepSelfClosing, { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `100 nested elements (SOAP ${v})`)
    }
    // Default maxElements is 100 000: 100 001 siblings exceed it before any schema check.
    const many = envelope('1.1', op('GetDomainInfo', '<x/>'.repeat(100_001)))
    expectFault(t, await post(d.http, many, { version: '1.1' }), { version: '1.1', code: 'MALFORMED_MESSAGE' }, '100001 elements (SOAP 1.1)')
    const many12 = envelope('1.2', op('GetDomainInfo', '<x></x>'.repeat(100_001)))
    expectFault(t, await post(d.http, many12, { version: '1.2' }), { version: '1.2', code: 'MALFORMED_MESSAGE' }, '100001 elements (SOAP 1.2)')
  })

  t.test('not a SOAP envelope', async (t) => {
    for (const v of both) {
      const body = op('GetDomainInfo')
      const vm = (ns: string): string => `<s:Envelope xmlns:s="${ns}"><s:Body>${body}</s:Body></s:Envelope>`
      for (const [name, xml] of [
        ['wrong envelope namespace', vm('http://example.com/not-soap')],
        ['SOAP namespace without trailing slash', vm('http://schemas.xmlsoap.org/soap/envelope')],
        ['Envelope in no namespace', `<Envelope><Body>${body}</Body></Envelope>`],
      ] as const) {
        const f = expectFault(t, await post(d.http, xml, { version: v }), { version: v, code: 'MALFORMED_MESSAGE', soap: 'VersionMismatch' }, `${name} (SOAP ${v})`)
        t.ok(f?.faultcodeText.endsWith('VersionMismatch'), `${name} (SOAP ${v}): faultcode text ends with VersionMismatch`)
      }
      const ns = SOAP_NS[v]
      for (const [name, xml] of [
        ['root is not Envelope', `<s:Body xmlns:s="${ns}">${body}</s:Body>`],
        ['no Body', `<s:Envelope xmlns:s="${ns}"><s:Header/></s:Envelope>`],
        ['empty Body', `<s:Envelope xmlns:s="${ns}"><s:Body/></s:Envelope>`],
        ['two operations in Body', envelope(v, body + body)],
        ['Header after Body', `<s:Envelope xmlns:s="${ns}"><s:Body>${body}</s:Body><s:Header/></s:Envelope>`],
        ['two Bodies', `<s:Envelope xmlns:s="${ns}"><s:Body>${body}</s:Body><s:Body>${body}</s:Body></s:Envelope>`],
        ['foreign element in Envelope', `<s:Envelope xmlns:s="${ns}"><x:Junk xmlns:x="urn:x"/><s:Body>${body}</s:Body></s:Envelope>`],
      ] as const) {
        expectFault(t, await post(d.http, xml, { version: v }), { version: v, code: 'MALFORMED_MESSAGE' }, `${name} (SOAP ${v})`)
      }
    }
    // Once the envelope is read, the fault follows its version, whatever the Content-Type said.
    const r = await post(d.http, envelope('1.2', op('Format')), { version: '1.1' })
    expectFault(t, r, { version: '1.2', code: 'MALFORMED_MESSAGE' }, 'SOAP 1.2 envelope sent as text/xml')
  })

  t.test('unknown operations → MALFORMED_MESSAGE', async (t) => {
    for (const v of both) {
      for (const [name, body] of [
        ['unknown operation', `<Format xmlns="${S}"><path>.</path></Format>`],
        ['operation in a wrong namespace', `<Open xmlns="urn:metaos:storage:v2"><path>a</path><mode>Open</mode><access>Read</access><share>None</share></Open>`],
        ['operation in the metaos namespace', `<Open xmlns="${METAOS}"><path>a</path><mode>Open</mode><access>Read</access><share>None</share></Open>`],
        ['operation in no namespace', '<Open><path>a</path><mode>Open</mode><access>Read</access><share>None</share></Open>'],
        ['operation name in the wrong case', op('open', '<path>a</path><mode>Open</mode><access>Read</access><share>None</share>')],
        ['a response element as request', op('OpenResponse', '<handle>x</handle><length>0</length><position>0</position>')],
        ['the fault element as request', op('StorageFault', '<code>IO_ERROR</code><message>x</message>')],
        ['an Object.prototype member name', op('constructor')],
        ['__proto__', op('__proto__')],
      ] as const) {
        expectFault(t, await post(d.http, envelope(v, body), { version: v, action: 'Open' }), { version: v, code: 'MALFORMED_MESSAGE' }, `${name} (SOAP ${v})`)
      }
    }
  })

  t.test('schema violations → INVALID_ARGUMENT', async (t) => {
    const open = '<path>x.txt</path><mode>Open</mode><access>Read</access><share>None</share>'
    const cases: Array<[string, string, string]> = [
      ['Open', 'missing element (share)', '<path>x.txt</path><mode>Open</mode><access>Read</access>'],
      ['Open', 'all elements missing', ''],
      ['Open', 'extra element', open + '<extra>1</extra>'],
      ['Open', 'extra element in another namespace', open + '<x:path xmlns:x="urn:x">y</x:path>'],
      ['Open', 'element in no namespace', '<path xmlns="">x.txt</path><mode>Open</mode><access>Read</access><share>None</share>'],
      ['Open', 'repeated element', '<path>x.txt</path>' + open],
      ['Open', 'text mixed into the operation', 'junk' + open],
      ['Open', 'element inside a simple value', '<path><b>x</b></path><mode>Open</mode><access>Read</access><share>None</share>'],
      ['Open', 'bad enum (lowercase mode)', '<path>x.txt</path><mode>open</mode><access>Read</access><share>None</share>'],
      ['Open', 'bad enum (empty access)', '<path>x.txt</path><mode>Open</mode><access/><share>None</share>'],
      ['Open', 'bad enum (numeric share)', '<path>x.txt</path><mode>Open</mode><access>Read</access><share>0</share>'],
      ['Open', 'Object.prototype member as enum value', '<path>x.txt</path><mode>constructor</mode><access>Read</access><share>None</share>'],
      ['Open', 'mode/access pair .NET refuses (Create + Read)', '<path>x.txt</path><mode>Create</mode><access>Read</access><share>None</share>'],
      ['Read', 'count="abc"', '<handle>h</handle><count>abc</count>'],
      ['Read', 'count empty', '<handle>h</handle><count></count>'],
      ['Read', 'count 2^31', '<handle>h</handle><count>2147483648</count>'],
      ['Read', 'count 2^40', '<handle>h</handle><count>1099511627776</count>'],
      ['Read', 'count with exponent', '<handle>h</handle><count>1e3</count>'],
      ['Read', 'count hexadecimal', '<handle>h</handle><count>0x10</count>'],
      ['Read', 'count fractional', '<handle>h</handle><count>1.5</count>'],
      ['Read', 'count with a non-ASCII digit', '<handle>h</handle><count>١٢</count>'],
      ['Seek', 'offset beyond 2^53', '<handle>h</handle><offset>9007199254740993</offset><origin>Begin</origin>'],
      ['Seek', 'offset of 30 digits', '<handle>h</handle><offset>999999999999999999999999999999</offset><origin>Begin</origin>'],
      ['Seek', 'bad enum origin', '<handle>h</handle><offset>0</offset><origin>Middle</origin>'],
      ['SetLength', 'length beyond -2^53', '<handle>h</handle><length>-9007199254740993</length>'],
      ['Flush', 'bad boolean "yes"', '<handle>h</handle><flushToDisk>yes</flushToDisk>'],
      ['Flush', 'bad boolean "TRUE"', '<handle>h</handle><flushToDisk>TRUE</flushToDisk>'],
      ['Flush', 'bad boolean empty', '<handle>h</handle><flushToDisk/>'],
      ['Write', 'invalid base64 characters', '<handle>h</handle><data>!!!!</data>'],
      ['Write', 'base64 of bad length', '<handle>h</handle><data>abc</data>'],
      ['Write', 'base64 with padding in the middle', '<handle>h</handle><data>ab==cd==</data>'],
      ['Write', 'base64 with three = signs', '<handle>h</handle><data>a===</data>'],
      ['Write', 'base64url alphabet', '<handle>h</handle><data>ab-_</data>'],
      ['Write', 'element inside data', '<handle>h</handle><data><x>AAAA</x></data>'],
      ['Write', 'xop:Include in the wrong namespace', '<handle>h</handle><data><xop:Include xmlns:xop="urn:not-xop" href="cid:x"/></data>'],
      ['Delete', 'missing path', ''],
      ['GetFileInfo', 'two paths', '<path>a</path><path>b</path>'],
      ['Batch', 'unknown operation inside Batch', `<op><Format xmlns="${S}"/></op>`],
      ['Batch', 'two operations in one op', `<op>${op('GetDomainInfo')}${op('GetDomainInfo')}</op>`],
      ['GetDomainInfo', 'child element in an empty request', '<x/>'],
    ]
    for (const [name, what, inner] of cases) {
      for (const v of both) {
        expectFault(t, await call(d, v, name, inner), { version: v, code: 'INVALID_ARGUMENT' }, `${name}: ${what} (SOAP ${v})`)
      }
    }
  })

  t.test('values checked by the engine (real handle)', async (t) => {
    for (const v of both) {
      const path = `values-${v}.bin`
      const h = await openHandle(t, fx, v, path, 'CreateNew', 'ReadWrite')
      okBody(t, await call(d, v, 'Write', `<handle>${h}</handle><data>AAECAw==</data>`), 'Write 4 bytes')
      expectFault(t, await call(d, v, 'Read', `<handle>${h}</handle><count>-1</count>`), { version: v, code: 'INVALID_ARGUMENT' }, `negative count (SOAP ${v})`)
      expectFault(t, await call(d, v, 'Read', `<handle>${h}</handle><count>-2147483648</count>`), { version: v, code: 'INVALID_ARGUMENT' }, `count -2^31 (SOAP ${v})`)
      expectFault(t, await call(d, v, 'Read', `<handle>${h}</handle><count>2000000000</count>`), { version: v, code: 'MESSAGE_TOO_LARGE' }, `count 2000000000 (SOAP ${v})`)
      expectFault(t, await call(d, v, 'Read', `<handle>${h}</handle><count>2147483647</count>`), { version: v, code: 'MESSAGE_TOO_LARGE' }, `count 2^31-1 (SOAP ${v})`)
      expectFault(t, await call(d, v, 'Seek', `<handle>${h}</handle><offset>-1</offset><origin>Begin</origin>`), { version: v, code: 'INVALID_ARGUMENT' }, `seek before the start (SOAP ${v})`)
      expectFault(t, await call(d, v, 'Seek', `<handle>${h}</handle><offset>9007199254740991</offset><origin>End</origin>`), { version: v, code: 'INVALID_ARGUMENT' }, `seek beyond 2^53 (SOAP ${v})`)
      expectFault(t, await call(d, v, 'SetLength', `<handle>${h}</handle><length>-1</length>`), { version: v, code: 'INVALID_ARGUMENT' }, `negative length (SOAP ${v})`)
      const len = okBody(t, await call(d, v, 'GetLength', `<handle>${h}</handle>`), 'GetLength')
      t.equal(field(len, 'length'), '4', 'the file is unchanged by the refused calls')
      await closeHandle(t, fx, v, h)
    }
  })

  t.test('message size limit → 413 MESSAGE_TOO_LARGE', async (t) => {
    const small = await startTestDomain(t, { limits: { maxMessageBytes: 65536 } })
    const big = (v: V): string => envelope(v, op('Write', `<handle>h</handle><data>${'A'.repeat(100 * 1024)}</data>`))
    for (const v of both) {
      expectFault(t, await post(small.http, big(v), { version: v, action: 'Write' }), { version: v, code: 'MESSAGE_TOO_LARGE', status: 413 }, `100 KB with Content-Length (SOAP ${v})`)
      expectFault(t, await post(small.http, big(v), { version: v, action: 'Write', chunked: true }), { version: v, code: 'MESSAGE_TOO_LARGE', status: 413 }, `100 KB chunked (SOAP ${v})`)
      expectFault(t, await post(small.http, Buffer.alloc(1024 * 1024, 0x41), { version: v, action: 'Write', chunked: true }), { version: v, code: 'MESSAGE_TOO_LARGE', status: 413 }, `1 MB of garbage chunked (SOAP ${v})`)
      // Under the limit the same domain still works.
      const info = okBody(t, await post(small.http, envelope(v, op('GetDomainInfo')), { version: v, action: 'GetDomainInfo' }), `GetDomainInfo after 413 (SOAP ${v})`)
      t.equal(info?.local, 'GetDomainInfoResponse', `the small domain still serves (SOAP ${v})`)
    }
    // Batch beyond maxBatchOps (1024).
    for (const v of both) {
      const ops = `<op>${op('GetDomainInfo')}</op>`.repeat(1025)
      expectFault(t, await call(d, v, 'Batch', ops), { version: v, code: 'MESSAGE_TOO_LARGE' }, `Batch of 1025 operations (SOAP ${v})`)
    }
  })

  t.test('paths outside the root → PATH_OUTSIDE_ROOT, outside files untouched', async (t) => {
    const escaping = [
      '../outside.txt', './../outside.txt', 'sub/../../outside.txt', 'a/b/../../../outside.txt', '..', '../', '../root/../outside.txt',
      '../outside-dir/secret.txt', '&#46;&#46;/outside.txt', '<![CDATA[../outside.txt]]>',
      fx.canary, '/etc/passwd', '//etc/passwd', '/', 'C:\\Windows\\win.ini', 'C:/x.txt',
      'link-file', 'link-rel', 'link-dir/secret.txt', 'sub/link-up', 'link-dir/new-file.txt',
    ]
    const modes: Array<[string, string]> = [['Open', 'Read'], ['OpenOrCreate', 'ReadWrite'], ['Create', 'Write'], ['Truncate', 'Write'], ['Append', 'Write'], ['CreateNew', 'ReadWrite']]
    let i = 0
    for (const path of escaping) {
      for (const [mode, access] of modes) {
        const v: V = i++ % 2 === 0 ? '1.1' : '1.2'
        const r = await call(d, v, 'Open', `<path>${path}</path><mode>${mode}</mode><access>${access}</access><share>ReadWrite</share>`)
        expectFault(t, r, { version: v, code: 'PATH_OUTSIDE_ROOT' }, `Open ${path} ${mode}/${access} (SOAP ${v})`)
      }
    }
    for (const path of escaping) {
      for (const v of both) {
        expectFault(t, await call(d, v, 'Delete', `<path>${path}</path>`), { version: v, code: 'PATH_OUTSIDE_ROOT' }, `Delete ${path} (SOAP ${v})`)
        expectFault(t, await call(d, v, 'GetFileInfo', `<path>${path}</path>`), { version: v, code: 'PATH_OUTSIDE_ROOT' }, `GetFileInfo ${path} (SOAP ${v})`)
      }
    }
    for (const path of ['..', '../', '../outside-dir', '/', '/etc', fx.outsideDir, 'link-dir', 'link-dir/', 'sub/../..']) {
      for (const v of both) {
        expectFault(t, await call(d, v, 'ListDirectory', `<path>${path}</path>`), { version: v, code: 'PATH_OUTSIDE_ROOT' }, `ListDirectory ${path} (SOAP ${v})`)
      }
    }
    // A dangling symlink whose target is outside: creating through it must create nothing outside.
    // Any refusal is acceptable here; which code the domain gives is reported as a comment.
    for (const [mode, access] of modes) {
      const r = await call(d, '1.1', 'Open', `<path>link-dangling</path><mode>${mode}</mode><access>${access}</access><share>None</share>`)
      const f = expectFaultOneOf(t, r, '1.1', ['PATH_OUTSIDE_ROOT', 'ACCESS_DENIED', 'FILE_NOT_FOUND'], `Open link-dangling ${mode}/${access}`)
      t.comment(`Open link-dangling ${mode}/${access} → ${f ?? '?'}`)
    }
    const del = await call(d, '1.2', 'Delete', '<path>link-dangling</path>')
    expectFaultOneOf(t, del, '1.2', ['PATH_OUTSIDE_ROOT', 'FILE_NOT_FOUND'], 'Delete link-dangling')
    // Inside Batch the same refusals come back as per-operation faults.
    for (const v of both) {
      const ops = ['../outside.txt', 'link-file', fx.canary].map((p) => `<op>${op('Delete', `<path>${p}</path>`)}</op><op>${op('Open', `<path>${p}</path><mode>Create</mode><access>Write</access><share>None</share>`)}</op>`).join('')
      const body = okBody(t, await call(d, v, 'Batch', ops), 'Batch of escapes')
      const results = body?.children.filter((c) => c.local === 'result') ?? []
      t.equal(results.length, 6, `Batch answers each operation (SOAP ${v})`)
      for (const res of results) {
        const sf = res.children[0]
        t.equal(sf?.local, 'StorageFault', `Batch result is a fault (SOAP ${v})`)
        t.equal(sf === undefined ? undefined : field(sf, 'code'), 'PATH_OUTSIDE_ROOT', `Batch result code (SOAP ${v})`)
      }
    }
    checkOutsideIntact(t, fx, 'after the path corpus')
  })

  t.test('NUL bytes in paths', async (t) => {
    // A NUL cannot reach the path policy over SOAP: XML 1.0 has no way to carry U+0000 (neither
    // literally nor as &#0;), so the parser refuses the message: MALFORMED_MESSAGE, not the
    // INVALID_ARGUMENT the path policy would give (that one is reachable only in-process).
    for (const v of both) {
      for (const [what, path] of [['literal NUL', '../outside.txt\u0000'], ['&#0;', 'link-file&#0;.txt'], ['&#x00;', 'ok.txt&#x00;'], ['&#00000;', 'ok.txt&#00000;']] as const) {
        for (const name of ['Open', 'Delete', 'GetFileInfo', 'ListDirectory']) {
          const inner = name === 'Open' ? `<path>${path}</path><mode>OpenOrCreate</mode><access>ReadWrite</access><share>None</share>` : `<path>${path}</path>`
          expectFault(t, await call(d, v, name, inner), { version: v, code: 'MALFORMED_MESSAGE' }, `${name} with ${what} in the path (SOAP ${v})`)
        }
      }
    }
    checkOutsideIntact(t, fx, 'after the NUL corpus')
  })

  t.test('handles: foreign, anonymous, closed and forged → INVALID_HANDLE', async (t) => {
    const A = 'urn:uuid:A'
    const B = 'urn:uuid:B'
    for (const v of both) {
      const path = `handle-${v}.txt`
      const h = await openHandle(t, fx, v, path, 'CreateNew', 'ReadWrite', A)
      okBody(t, await call(d, v, 'Write', `<handle>${h}</handle><data>aGVsbG8=</data>`, A), 'A writes')
      const uses: Array<[string, string]> = [
        ['Read', `<handle>${h}</handle><count>5</count>`],
        ['Write', `<handle>${h}</handle><data>eHh4eA==</data>`],
        ['Seek', `<handle>${h}</handle><offset>0</offset><origin>Begin</origin>`],
        ['Flush', `<handle>${h}</handle><flushToDisk>true</flushToDisk>`],
        ['SetLength', `<handle>${h}</handle><length>0</length>`],
        ['GetLength', `<handle>${h}</handle>`],
        ['Close', `<handle>${h}</handle>`],
      ]
      for (const [name, inner] of uses) {
        expectFault(t, await call(d, v, name, inner, B), { version: v, code: 'INVALID_HANDLE' }, `${name} with caller B on A's handle (SOAP ${v})`)
        expectFault(t, await call(d, v, name, inner), { version: v, code: 'INVALID_HANDLE' }, `${name} without Caller on A's handle (SOAP ${v})`)
        expectFault(t, await call(d, v, name, inner, A.toUpperCase()), { version: v, code: 'INVALID_HANDLE' }, `${name} with caller URN:UUID:A (SOAP ${v})`)
      }
      // A's handle survived the attempts: position and content unchanged.
      const len = okBody(t, await call(d, v, 'GetLength', `<handle>${h}</handle>`, A), 'A GetLength')
      t.equal(field(len, 'length'), '5', `A's file untouched by B (SOAP ${v})`)
      okBody(t, await call(d, v, 'Seek', `<handle>${h}</handle><offset>0</offset><origin>Begin</origin>`, A), 'A seeks')
      const rd = okBody(t, await call(d, v, 'Read', `<handle>${h}</handle><count>100</count>`, A), 'A reads')
      t.equal(Buffer.from(field(rd, 'data') ?? '', 'base64').toString(), 'hello', `A reads its bytes (SOAP ${v})`)
      await closeHandle(t, fx, v, h, A)
      for (const [name, inner] of uses) {
        expectFault(t, await call(d, v, name, inner, A), { version: v, code: 'INVALID_HANDLE' }, `${name} on a closed handle (SOAP ${v})`)
      }
      // An anonymous caller's handle is not usable by a named caller either.
      const anon = await openHandle(t, fx, v, path, 'Open', 'Read')
      expectFault(t, await call(d, v, 'Read', `<handle>${anon}</handle><count>1</count>`, A), { version: v, code: 'INVALID_HANDLE' }, `named caller on an anonymous handle (SOAP ${v})`)
      await closeHandle(t, fx, v, anon)
    }
    const forged = [
      'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', 'Zm9yZ2VkLWhhbmRsZS0xMjM0NTY3ODkwYWJj', '', ' ', '0', '1', '-1', '..', '../outside.txt',
      'x'.repeat(5000), 'constructor', '__proto__', 'toString', 'hasOwnProperty',
    ]
    for (const hv of forged) {
      for (const v of both) {
        expectFault(t, await call(d, v, 'Read', `<handle>${hv}</handle><count>1</count>`), { version: v, code: 'INVALID_HANDLE' }, `forged handle "${hv.slice(0, 40)}" (SOAP ${v})`)
        expectFault(t, await call(d, v, 'Close', `<handle>${hv}</handle>`, A), { version: v, code: 'INVALID_HANDLE' }, `Close forged handle "${hv.slice(0, 40)}" (SOAP ${v})`)
      }
    }
  })

  t.test('mustUnderstand headers', async (t) => {
    for (const v of both) {
      const mu = v === '1.1' ? '1' : 'true'
      const ns = SOAP_NS[v]
      const unknown = `<x:Security xmlns:x="urn:evil:security" xmlns:s="${ns}" s:mustUnderstand="${mu}">token</x:Security>`
      const r = await post(d.http, envelope(v, op('GetDomainInfo'), unknown), { version: v })
      const f = expectFault(t, r, { version: v, code: 'MALFORMED_MESSAGE', soap: 'MustUnderstand' }, `unknown mustUnderstand header (SOAP ${v})`)
      t.ok(f?.faultcodeText.endsWith('MustUnderstand'), `faultcode text ends with MustUnderstand (SOAP ${v})`)
      const r1 = await post(d.http, envelope(v, op('GetDomainInfo'), `<x:H xmlns:x="urn:x" xmlns:s="${ns}" s:mustUnderstand="1"/>`), { version: v })
      expectFault(t, r1, { version: v, code: 'MALFORMED_MESSAGE', soap: 'MustUnderstand' }, `mustUnderstand="1" (SOAP ${v})`)
      // An unknown header in the WS-Addressing namespace is not understood either.
      const r2 = await post(d.http, envelope(v, op('GetDomainInfo'), `<a:Evil xmlns:a="http://www.w3.org/2005/08/addressing" xmlns:s="${ns}" s:mustUnderstand="${mu}"/>`), { version: v })
      expectFault(t, r2, { version: v, code: 'MALFORMED_MESSAGE', soap: 'MustUnderstand' }, `unknown wsa header with mustUnderstand (SOAP ${v})`)
      // Not to be understood, or understood: served.
      okBody(t, await post(d.http, envelope(v, op('GetDomainInfo'), `<x:H xmlns:x="urn:x" xmlns:s="${ns}" s:mustUnderstand="0"/>`), { version: v }), `mustUnderstand="0" (SOAP ${v})`)
      okBody(t, await post(d.http, envelope(v, op('GetDomainInfo'), `<x:H xmlns:x="urn:x" mustUnderstand="1"/>`), { version: v }), `unqualified mustUnderstand is not the SOAP attribute (SOAP ${v})`)
      okBody(t, await post(d.http, envelope(v, op('GetDomainInfo'), `<Caller xmlns="${METAOS}" xmlns:s="${ns}" s:mustUnderstand="${mu}">urn:uuid:A</Caller>`), { version: v }), `Caller with mustUnderstand (SOAP ${v})`)
    }
  })

  t.test('?wsdl with a hostile Host header stays well-formed', async (t) => {
    const host = `127.0.0.1:1"/><injected a="&amp;]]>`
    const r = await get(`${d.http}?wsdl`, { Host: host })
    t.equal(r.status, 200, 'WSDL served')
    let defs: XmlElement | undefined
    try { defs = refParseXml(r.text) } catch (e) { t.fail(`the WSDL is not well-formed: ${(e as Error).message}`) }
    const found: string[] = []
    const walk = (el: XmlElement): void => {
      if (el.local === 'injected') t.fail('the Host header injected an element')
      if (el.local === 'address' && el.attrs.location !== undefined) found.push(el.attrs.location)
      el.children.forEach(walk)
    }
    if (defs !== undefined) walk(defs)
    t.ok(found.length > 0, 'soap:address elements present')
    for (const loc of found) t.equal(loc, `${SECURE ? 'https' : 'http'}://${host}/storage`, 'the address is the Host header, as text')
  })

  t.test('broken MTOM packages → MALFORMED_MESSAGE', async (t) => {
    const boundary = 'MIME_boundary_test'
    const h = await openHandle(t, fx, '1.1', 'mtom.bin', 'CreateNew', 'Write')
    const writeXml = (v: V, href: string): string => envelope(v, op('Write', `<handle>${h}</handle><data><xop:Include xmlns:xop="${XOP}" href="${href}"/></data>`))
    const pkg = (v: V, xml: string, parts: Array<[string, Buffer]>, b = boundary, rootType = `application/xop+xml; charset=utf-8; type="${v === '1.1' ? 'text/xml' : 'application/soap+xml'}"`): Buffer => {
      const chunks: Buffer[] = [Buffer.from(`--${b}\r\nContent-ID: <root@test>\r\nContent-Type: ${rootType}\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${xml}`)]
      for (const [id, data] of parts) chunks.push(Buffer.from(`\r\n--${b}\r\nContent-ID: <${id}>\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n`), data)
      chunks.push(Buffer.from(`\r\n--${b}--\r\n`))
      return Buffer.concat(chunks)
    }
    const ctFor = (v: V, b = boundary): string => `multipart/related; type="application/xop+xml"; start="<root@test>"; start-info="${v === '1.1' ? 'text/xml' : 'application/soap+xml'}"; boundary="${b}"`
    const payload = Buffer.from('MTOM payload \u0000\u00ff bytes')
    for (const v of both) {
      const good = pkg(v, writeXml(v, 'cid:part1@test'), [['part1@test', payload]])
      const cases: Array<[string, Buffer, string]> = [
        ['boundary parameter not in the body', good, ctFor(v, 'some-other-boundary')],
        ['no boundary parameter', good, ctFor(v).replace(/; boundary="[^"]*"/, '')],
        ['empty boundary', good, ctFor(v, '')],
        ['boundary of 300 characters', good, ctFor(v, 'b'.repeat(300))],
        ['no closing delimiter', good.subarray(0, good.length - `\r\n--${boundary}--\r\n`.length - 10), ctFor(v)],
        ['part without header end', Buffer.from(`--${boundary}\r\nContent-ID: <root@test>\r\n`), ctFor(v)],
        ['start part missing', pkg(v, writeXml(v, 'cid:part1@test'), [['part1@test', payload]]), ctFor(v).replace('<root@test>', '<nowhere@test>')],
        ['root part not application/xop+xml', pkg(v, writeXml(v, 'cid:part1@test'), [['part1@test', payload]], boundary, 'application/octet-stream'), ctFor(v)],
        ['unsupported Content-Transfer-Encoding', Buffer.from(good.toString('latin1').replace('Content-Transfer-Encoding: binary', 'Content-Transfer-Encoding: quoted-printable'), 'latin1'), ctFor(v)],
        ['xop:Include pointing to a missing part', pkg(v, writeXml(v, 'cid:missing@test'), [['part1@test', payload]]), ctFor(v)],
        ['xop:Include without href', pkg(v, envelope(v, op('Write', `<handle>${h}</handle><data><xop:Include xmlns:xop="${XOP}"/></data>`)), [['part1@test', payload]]), ctFor(v)],
        ['xop:Include with a malformed percent-encoding', pkg(v, writeXml(v, 'cid:%E0%A4%A'), [['part1@test', payload]]), ctFor(v)],
        ['root part not well-formed', pkg(v, writeXml(v, 'cid:part1@test').replace('</s:Envelope>', ''), [['part1@test', payload]]), ctFor(v)],
        ['root part with a DTD', pkg(v, writeXml(v, 'cid:part1@test').replace('?>', `?><!DOCTYPE x [<!ENTITY e SYSTEM "file://${fx.canary}">]>`), [['part1@test', payload]]), ctFor(v)],
        ['plain XML sent as multipart/related', Buffer.from(envelope(v, op('GetDomainInfo'))), ctFor(v)],
      ]
      for (const [name, body, ct] of cases) {
        expectFault(t, await post(d.http, body, { version: v, contentType: ct }), { version: v, code: 'MALFORMED_MESSAGE' }, `${name} (SOAP ${v})`)
      }
      // The well-formed package works: the broken ones failed for what they break.
      const w = okBody(t, await post(d.http, good, { version: v, contentType: ctFor(v) }), `valid MTOM Write (SOAP ${v})`)
      t.equal(field(w, 'written'), String(payload.length), `valid MTOM Write writes the part (SOAP ${v})`)
    }
    await closeHandle(t, fx, '1.1', h)
    t.same(readFileSync(join(d.root, 'mtom.bin')), Buffer.concat([payload, payload]), 'only the valid MTOM writes reached the file')
  })

  t.test('after the corpus the domain still serves and nothing leaked', async (t) => {
    const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 37 + 11) & 0xff))
    for (const v of both) {
      const path = `final-${v}.bin`
      const h = await openHandle(t, fx, v, path, 'CreateNew', 'ReadWrite', 'urn:uuid:final')
      const w = okBody(t, await call(d, v, 'Write', `<handle>${h}</handle><data>${bytes.toString('base64')}</data>`, 'urn:uuid:final'), 'Write')
      t.equal(field(w, 'written'), '1000', `Write reports 1000 bytes (SOAP ${v})`)
      t.equal(field(w, 'position'), '1000', `position 1000 (SOAP ${v})`)
      okBody(t, await call(d, v, 'Seek', `<handle>${h}</handle><offset>0</offset><origin>Begin</origin>`, 'urn:uuid:final'), 'Seek')
      const r = okBody(t, await call(d, v, 'Read', `<handle>${h}</handle><count>4096</count>`, 'urn:uuid:final'), 'Read')
      t.same(Buffer.from(field(r, 'data') ?? '', 'base64'), bytes, `Read returns the bytes written (SOAP ${v})`)
      t.equal(field(r, 'eof'), 'true', `eof (SOAP ${v})`)
      await closeHandle(t, fx, v, h, 'urn:uuid:final')
      t.same(readFileSync(join(d.root, path)), bytes, `the file on disk holds the bytes (SOAP ${v})`)
    }
    const expected = [...new Set([...fx.initialRoot, ...fx.created])].sort()
    t.same(readdirSync(d.root).sort(), expected, 'the root holds only the symlinks and what the legitimate calls created')
    t.same(readdirSync(join(d.root, 'sub')), ['link-up'], 'root/sub unchanged')
    const ls = okBody(t, await call(d, '1.2', 'ListDirectory', '<path></path>'), 'ListDirectory')
    t.same(ls?.children.map((e) => field(e, 'name')).sort(), expected, 'ListDirectory agrees')
    checkOutsideIntact(t, fx, 'after the whole corpus')
    const leaked = transcript.filter((s) => s.includes('METAOS-CANARY') || s.includes('METAOS-SECRET') || /root:x?:0:0:/.test(s))
    t.equal(leaked.length, 0, `no response of ${transcript.length} carries outside file content`)
    t.equal(d.domain.engine.openHandles, 0, 'no handle left open')
  })

  t.test('fault messages quoting input that cannot be written back as XML', async (t) => {
    // Runs last: today these requests make #sendFault throw inside #dispatch's catch, an unhandled
    // rejection that ends this test process (and would end a domain process). Error messages quote a prefix of the offending value (slice(0, 40)); cutting a surrogate pair
    // leaves a lone surrogate, which escapeXml refuses. The fault must still be sent. The three
    // requests run at once so a hang costs one timeout, not three.
    const emoji = '\u{1F600}'
    const cases: Array<[string, V, string, string, string]> = [
      ['xsd:int value whose 40th character is half of a surrogate pair', '1.1', 'Read', `<handle>h</handle><count>${'a'.repeat(39)}${emoji}</count>`, 'INVALID_ARGUMENT'],
      ['enum value whose 40th character is half of a surrogate pair', '1.2', 'Open', `<path>x</path><mode>${'M'.repeat(39)}${emoji}</mode><access>Read</access><share>None</share>`, 'INVALID_ARGUMENT'],
      ['xop:Include href naming U+FFFF', '1.1', 'Write', `<handle>h</handle><data><xop:Include xmlns:xop="${XOP}" href="cid:%EF%BF%BF"/></data>`, 'MALFORMED_MESSAGE'],
    ]
    const replies = await Promise.allSettled(cases.map(async ([, v, name, inner]) => await call(d, v, name, inner)))
    cases.forEach(([what, v, , , code], i) => {
      const r = replies[i]!
      if (r.status === 'rejected') t.fail(`${what} (SOAP ${v}): ${(r.reason as Error).message}`)
      else expectFault(t, r.value, { version: v, code }, `${what} (SOAP ${v})`)
    })
    const info = okBody(t, await post(d.http, envelope('1.1', op('GetDomainInfo')), { action: 'GetDomainInfo' }), 'GetDomainInfo afterwards')
    t.equal(info?.local, 'GetDomainInfoResponse', 'the domain still serves')
  })
})

function expectFaultOneOf (t: Test, r: Reply, v: V, codes: string[], what: string): string | undefined {
  t.equal(r.status, 500, `${what}: HTTP 500`)
  let f: FaultInfo
  try { f = readFaultInfo(r.text) } catch (e) { t.fail(`${what}: ${(e as Error).message}`); return undefined }
  t.equal(f.version, v, `${what}: SOAP ${v}`)
  t.ok(f.code !== undefined && codes.includes(f.code), `${what}: code ${f.code ?? '-'} is one of ${codes.join(', ')}`)
  return f.code
}
