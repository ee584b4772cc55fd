// MTOM/XOP packaging (multipart/related): splits a received package into its root XML part and
// its binary attachments (zero-copy slices), and builds one from a root part and attachments.
// Knows nothing of SOAP operations; the codec decides which bytes travel as attachments.
import { randomBytes } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import { MetaosError } from './errors.js'

export interface MimePackage {
  readonly rootXml: string
  readonly attachments: ReadonlyMap<string, Buffer>
}

function broken (why: string): MetaosError {
  return new MetaosError('MALFORMED_MESSAGE', `broken MTOM package: ${why}`)
}

/** Reads a parameter of a MIME header value (`type="…"`, `boundary=…`), case-insensitively. */
export function mimeParam (header: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*(?:"((?:[^"\\\\]|\\\\.)*)"|([^;\\s]+))`, 'i')
  const m = re.exec(header)
  if (m === null) return undefined
  return m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]
}

export function isMultipartRelated (contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*multipart\/related\s*(;|$)/i.test(contentType)
}

const CRLF2 = Buffer.from('\r\n\r\n')

function stripAngles (id: string): string {
  const t = id.trim()
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t
}

export function parseMultipartRelated (body: Buffer, contentType: string): MimePackage {
  const boundary = mimeParam(contentType, 'boundary')
  if (boundary === undefined || boundary.length === 0 || boundary.length > 200) throw broken('no usable boundary parameter')
  const start = mimeParam(contentType, 'start')
  const delim = Buffer.from(`--${boundary}`)
  let pos = body.indexOf(delim)
  if (pos < 0) throw broken('boundary not found')
  const parts: { id: string | undefined, type: string, encoding: string, content: Buffer }[] = []
  for (;;) {
    pos += delim.length
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break // closing delimiter "--boundary--"
    const headStart = body.indexOf('\r\n', pos)
    if (headStart < 0) throw broken('truncated part')
    const headEnd = body.indexOf(CRLF2, headStart)
    if (headEnd < 0) throw broken('part without header end')
    const headers = body.toString('latin1', headStart + 2, headEnd).split('\r\n')
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), headEnd + 4)
    if (next < 0) throw broken('part without closing boundary')
    let id: string | undefined
    let type = ''
    let encoding = 'binary'
    for (const h of headers) {
      const i = h.indexOf(':')
      if (i < 0) continue
      const name = h.slice(0, i).trim().toLowerCase()
      const value = h.slice(i + 1).trim()
      if (name === 'content-id') id = stripAngles(value)
      else if (name === 'content-type') type = value
      else if (name === 'content-transfer-encoding') encoding = value.toLowerCase()
    }
    let content = body.subarray(headEnd + 4, next)
    if (encoding === 'base64') content = Buffer.from(content.toString('latin1'), 'base64')
    else if (encoding !== 'binary' && encoding !== '8bit' && encoding !== '7bit') throw broken(`unsupported Content-Transfer-Encoding ${encoding}`)
    parts.push({ id, type, encoding, content })
    if (parts.length > 10_000) throw broken('too many parts')
    pos = next + 2
  }
  if (parts.length === 0) throw broken('no parts')
  const rootId = start === undefined ? undefined : stripAngles(start)
  const root = rootId === undefined ? parts[0]! : parts.find((p) => p.id === rootId)
  if (root === undefined) throw broken(`start part <${rootId}> not found`)
  if (!/^\s*application\/xop\+xml/i.test(root.type)) throw broken(`root part is ${root.type || 'untyped'}, not application/xop+xml`)
  const attachments = new Map<string, Buffer>()
  for (const p of parts) if (p !== root && p.id !== undefined) attachments.set(p.id, p.content)
  if (!isUtf8(root.content)) throw broken('the root part is not valid UTF-8')
  return { rootXml: root.content.toString('utf8'), attachments }
}

export interface BuiltPackage {
  readonly contentType: string
  readonly chunks: Buffer[]
  readonly length: number
}

/** Builds an MTOM package: `soapType` is the SOAP media type (text/xml or application/soap+xml). */
// A boundary must not occur in the content: a per-process random part makes that as unlikely as a
// fresh random boundary would, and a counter keeps boundaries distinct without a syscall per message.
const BOUNDARY_PREFIX = `uuid:${randomBytes(12).toString('hex')}-`
let boundaryCounter = 0

export function buildMultipartRelated (rootXml: string, soapType: string, attachments: ReadonlyMap<string, Buffer>, action?: string): BuiltPackage {
  const boundary = BOUNDARY_PREFIX + (boundaryCounter = (boundaryCounter + 1) % 1e12).toString(36)
  const rootId = 'root.message@metaos'
  const typeParam = action === undefined || soapType === 'text/xml' ? soapType : `${soapType}; action=\\"${action}\\"`
  const chunks: Buffer[] = [
    Buffer.from(`--${boundary}\r\nContent-ID: <${rootId}>\r\nContent-Transfer-Encoding: 8bit\r\n` +
      `Content-Type: application/xop+xml; charset=utf-8; type="${typeParam}"\r\n\r\n`),
    Buffer.from(rootXml, 'utf8'),
  ]
  for (const [id, data] of attachments) {
    chunks.push(Buffer.from(`\r\n--${boundary}\r\nContent-ID: <${id}>\r\nContent-Transfer-Encoding: binary\r\nContent-Type: application/octet-stream\r\n\r\n`), data)
  }
  chunks.push(Buffer.from(`\r\n--${boundary}--\r\n`))
  let length = 0
  for (const c of chunks) length += c.length
  const contentType = `multipart/related; type="application/xop+xml"; start="<${rootId}>"; start-info="${soapType}"; boundary="${boundary}"` +
    (action !== undefined && soapType !== 'text/xml' ? `; action="${action}"` : '')
  return { contentType, chunks, length }
}
