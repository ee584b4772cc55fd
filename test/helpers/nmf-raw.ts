// Test helper: a raw [MC-NMF] peer on a net.uds or net.tcp endpoint. It writes whatever bytes a
// test gives (well-formed records or not) and reads back what the domain sends, record by record,
// until the socket closes — for the framing tests and the hostile framing corpus.
import { connect, type Socket } from 'node:net'
import { parseEndpoint } from '../../soap-runtime/endpoint.js'
import { compileBinaryCodecs, encodeEnvelope, type NbfxWriterSession } from '../../soap-runtime/nbfx/index.js'
import { duplexPreamble, envelopeHeader, RecordReader, RecordType, type FrameRecord } from '../../soap-runtime/nmf/records.js'
import { StorageServiceDescriptor } from '../../wsdl/generated/storage-service.js'

export interface RawSession {
  readonly socket: Socket
  /** Writes bytes as they are (errors of a socket the domain closed are swallowed). */
  send: (bytes: Buffer | number[]) => void
  /** The next record the domain sent, `closed` when the socket closed first, `timeout` after `ms`. */
  next: (ms?: number) => Promise<FrameRecord | 'closed' | 'timeout'>
  /** Resolves when the socket has closed. */
  readonly closed: Promise<void>
  /** Octets the domain sent that were not read as records (after an error of the reader). */
  readonly garbage: () => number
}

export async function rawSession (endpoint: string): Promise<RawSession> {
  const ep = parseEndpoint(endpoint)
  const socket = ep.protocol === 'net.uds' ? connect(ep.socketPath!) : connect({ host: ep.host!, port: ep.port! })
  socket.on('error', () => {})
  await new Promise<void>((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const reader = new RecordReader({ maxEnvelopeBytes: 64 << 20 })
  const queue: FrameRecord[] = []
  let waiting: (() => void) | undefined
  let ended = false
  let garbage = 0
  socket.on('data', (c: Buffer) => {
    reader.push(c)
    try { for (let r = reader.next(); r !== undefined; r = reader.next()) queue.push(r) } catch { garbage += reader.buffered }
    waiting?.()
  })
  const closed = new Promise<void>((resolve) => { socket.once('close', () => { ended = true; waiting?.(); resolve() }) })
  return {
    socket,
    send: (bytes) => { if (!socket.destroyed) socket.write(Buffer.from(bytes)) },
    next: async (ms = 5000) => {
      const deadline = Date.now() + ms
      for (;;) {
        const r = queue.shift()
        if (r !== undefined) return r
        if (ended) return 'closed'
        const left = deadline - Date.now()
        if (left <= 0) return 'timeout'
        await new Promise<void>((resolve) => { waiting = resolve; setTimeout(resolve, left) })
        waiting = undefined
      }
    },
    closed,
    garbage: () => garbage,
  }
}

/** The preamble of a duplex session in SOAP 1.2 text to `via`. */
export function textPreamble (via: string): Buffer {
  return duplexPreamble(via, Buffer.of(RecordType.KnownEncoding, 0x03))
}

const S = 'urn:metaos:storage:v1'
/** A SOAP 1.2 storage request with WS-Addressing, as a Sized Envelope record. */
export function storageCall (operation: string, messageId: string, to: string, bodyXml = ''): Buffer {
  const xml = Buffer.from(`<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>` +
    `<a:Action s:mustUnderstand="1">${S}/${operation}</a:Action><a:MessageID>${messageId}</a:MessageID><a:To s:mustUnderstand="1">${to}</a:To>` +
    `</s:Header><s:Body><${operation} xmlns="${S}">${bodyXml}</${operation}></s:Body></s:Envelope>`)
  return Buffer.concat([envelopeHeader(xml.length), xml])
}

/** The fault name of a Fault record's URI. */
export function faultName (r: FrameRecord | string): string | undefined {
  return typeof r !== 'string' && r.type === RecordType.Fault ? r.text.replace('http://schemas.microsoft.com/ws/2006/05/framing/faults/', '') : undefined
}

/** The preamble of a duplex session in the binary session encoding (0x08, NetTcpBinding's) to `via`. */
export function binaryPreamble (via: string): Buffer {
  return duplexPreamble(via, Buffer.of(RecordType.KnownEncoding, 0x08))
}

/** A storage request as a binary envelope of a session (its strings join `session`), as a Sized Envelope record. */
export function binaryStorageCall (operation: string, value: unknown, messageId: string, to: string, session: NbfxWriterSession): Buffer {
  const m = encodeEnvelope({ action: `${S}/${operation}`, messageId, to, body: { element: operation, value } }, compileBinaryCodecs(StorageServiceDescriptor), session)
  return Buffer.concat([envelopeHeader(m.length), ...m.chunks])
}
