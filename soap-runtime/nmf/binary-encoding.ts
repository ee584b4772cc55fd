// The binary envelope encodings of a framed session: [MC-NBFX] records with the [MC-NBFS] static
// dictionary, and — NetTcpBinding's default, Known Encoding 0x08, application/soap+msbinsession1 —
// the [MC-NBFSE] session strings, one dictionary per direction of the session (the reader's for
// what the peer sent, the writer's for what this side sent). Envelopes are read into the element
// tree the dispatcher and the client read, and written from values by the descriptor's compiled
// binary codecs (soap-runtime/nbfx/): Write's and Read's bytes travel as raw Bytes records, never
// base64 and never XML text. Registered with the framed encodings when this module loads (the
// listener and the client transport import it).
import type { ServiceDescriptor } from '../descriptor.js'
import { compileBinaryCodecs, type BinaryCodecs } from '../nbfx/binary-codec.js'
import { decodeEnvelope } from '../nbfx/document.js'
import { BINARY_CONTENT_TYPE, BINARY_SESSION_CONTENT_TYPE, encodeEnvelope } from '../nbfx/envelope-writer.js'
import { NbfxReaderSession, NbfxWriterSession } from '../nbfx/session.js'
import { registerEncoding, type FramedEncoding, type TreeEncodingSession } from './encoding.js'
import { KnownEncoding } from './records.js'

const compiled = new WeakMap<ServiceDescriptor, BinaryCodecs>()
/** The binary codecs of a descriptor, compiled once per process. */
export function binaryCodecsFor (d: ServiceDescriptor): BinaryCodecs {
  let c = compiled.get(d)
  if (c === undefined) compiled.set(d, c = compileBinaryCodecs(d))
  return c
}

function binarySession (withStrings: boolean): TreeEncodingSession {
  const reader = withStrings ? new NbfxReaderSession() : undefined
  const writer = withStrings ? new NbfxWriterSession() : undefined
  return {
    tree: true,
    read: (payload, limits) => decodeEnvelope(payload, reader, limits),
    write: (env, descriptor) => encodeEnvelope(env, binaryCodecsFor(descriptor), writer),
  }
}

/** NetTcpBinding's encoding: binary XML with session strings. */
export const SOAP12_BINARY_SESSION: FramedEncoding = {
  name: 'binary',
  known: KnownEncoding.Soap12BinarySession,
  contentType: BINARY_SESSION_CONTENT_TYPE,
  session: () => binarySession(true),
}

/** Binary XML without session strings (a BinaryMessageEncoding on a sessionless channel shape). */
export const SOAP12_BINARY: FramedEncoding = {
  name: 'binary-sessionless',
  known: KnownEncoding.Soap12Binary,
  contentType: BINARY_CONTENT_TYPE,
  session: () => binarySession(false),
}

registerEncoding(SOAP12_BINARY_SESSION)
registerEncoding(SOAP12_BINARY)

