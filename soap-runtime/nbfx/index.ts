// Binary XML for SOAP: [MC-NBFX] records, the [MC-NBFS] static dictionary and [MC-NBFSE] session
// strings, as WCF's NetTcpBinding sends them (application/soap+msbinsession1) and its sessionless
// binary encoder (application/soap+msbin1). Pure codecs, no sockets: a framing transport (MC-NMF)
// encodes each outgoing envelope with encodeEnvelope and reads each incoming one with
// decodeEnvelope, then hands the tree to envelope.ts's readEnvelope and the compiled codecs of
// codec.ts, as the text path does after parseXml. One NbfxWriterSession per direction of a
// connection on the sending side, one NbfxReaderSession on the receiving side.
//
//   const codecs = compileBinaryCodecs(descriptor)                  // once per client or host
//   const out = new NbfxWriterSession(); const inn = new NbfxReaderSession()   // per connection
//   const { chunks, length } = encodeEnvelope({ action, messageId, replyTo: WSA_ANONYMOUS, to,
//     headers: [{ ns: METAOS_NS, local: 'Caller', value: caller }],
//     body: { element: 'Write', value: { handle, data } } }, codecs, out)
//   const env = readEnvelope(decodeEnvelope(received, inn, limits), understood) // env.body: XmlElement
//   entry.output.decode(env.body)        // a base64 field decodes to the received bytes, no base64
export { compileBinaryCodecs, type BinaryCodecs } from './binary-codec.js'
export { decodeEnvelope, readBinaryXml } from './document.js'
export { encodeEnvelope, WSA_ANONYMOUS, BINARY_CONTENT_TYPE, BINARY_SESSION_CONTENT_TYPE, type BinaryBody, type BinaryFault, type BinaryHeader, type OutboundEnvelope } from './envelope-writer.js'
export { BytesElement } from './reader.js'
export { NbfxReaderSession, NbfxWriterSession, DEFAULT_READER_SESSION_LIMITS, DEFAULT_WRITER_SESSION_LIMITS, type SessionLimits } from './session.js'
export { STATIC_STRINGS } from './static-dictionary.js'
export { NbfxWriter, type EncodedMessage } from './writer.js'
