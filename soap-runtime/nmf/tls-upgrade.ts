// TLS over net.tcp: the [MC-NMF] stream upgrade `application/ssl-tls` (§2.2.3.5). In the preamble,
// after the encoding record, the initiator sends an Upgrade Request naming it; the receiver answers
// Upgrade Response, and from the next octet on the stream is a TLS connection (what WCF's
// SslStreamSecurityBindingElement does: a plain TLS handshake, no framing of its own); the preamble
// ends inside it. Here: the two ends of that switch, with the host's certificate (and client CA,
// CRL) on one side and the client's CA, certificate and pinned EPR on the other — the same TLS
// settings as https (TLS 1.2 and later).
import type { Socket } from 'node:net'
import { connect as tlsConnect, checkServerIdentity, createSecureContext, TLSSocket } from 'node:tls'
import type { HostTls } from '../host-types.js'
import { certificateUris, type ClientTls } from '../http-transport.js'

/** The upgrade protocol name of TLS (§2.2.3.5). */
export const SSL_TLS = 'application/ssl-tls'

/** The server's side: `raw` becomes a TLS connection (its handshake runs as bytes arrive). */
export function acceptTls (raw: Socket, tls: HostTls): TLSSocket {
  const secureContext = createSecureContext({
    cert: tls.cert, key: tls.key, minVersion: 'TLSv1.2',
    ...(tls.clientCa === undefined ? {} : { ca: tls.clientCa }),
    ...(tls.crl === undefined ? {} : { crl: tls.crl }),
  })
  // The client CA's verdict is read by the authenticator (as for https), not enforced by TLS.
  return new TLSSocket(raw, { isServer: true, secureContext, ...(tls.clientCa === undefined ? {} : { requestCert: true, rejectUnauthorized: false }) })
}

/** The client's side: resolves once the handshake is done and the domain's certificate is verified. */
export async function connectTls (raw: Socket, host: string, tls: ClientTls, timeoutMs: number): Promise<TLSSocket> {
  return await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({
      socket: raw,
      servername: /^[\d.]+$|:/.test(host) ? undefined : host,
      minVersion: 'TLSv1.2',
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
      checkServerIdentity: (name, cert) => {
        const e = checkServerIdentity(host, cert)
        if (e !== undefined) return e
        if (tls.expectUri !== undefined && !certificateUris(cert).includes(tls.expectUri)) {
          return Object.assign(new Error(`the certificate of ${name} does not name ${tls.expectUri} (it names ${certificateUris(cert).join(', ') || 'no URI'})`), { code: 'ERR_TLS_IDENTITY_MISMATCH' })
        }
        return undefined
      },
    })
    const timer = setTimeout(() => { s.destroy(Object.assign(new Error(`the TLS handshake did not finish within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })) }, timeoutMs)
    s.once('secureConnect', () => { clearTimeout(timer); resolve(s) })
    s.once('error', (e) => { clearTimeout(timer); reject(e) })
  })
}
