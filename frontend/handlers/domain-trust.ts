// Trusted discovery: a frontend uses a discovered domain only once the domain has proven who it
// is. WS-Discovery messages are unauthenticated datagrams, so an announcement is a claim: the
// proof is a TLS handshake with one of its https XAddrs whose certificate chains to the
// configured CA and names the announced EPR (a `urn:uuid:` URI in its subjectAltName, put there
// by `metaos pki issue-domain`), followed by a GetDomainInfo that answers with that EPR. A bus
// XAddr is used only after that, and only when its socket file belongs to this user or root (a
// socket file is owned by whoever bound it, and the domain makes it 0600). What the PMT records
// of the domain (volume, hosting, kernel) comes from the proven GetDomainInfo, not from scopes.
// A Bye is a claim too: it is believed only when the domain no longer answers as itself.
// Owns the checks and their counters; the intelligent frontend decides what to do with them.
import { lstatSync, readFileSync } from 'node:fs'
import { connect, type PeerCertificate } from 'node:tls'
import type { DiscoveredTarget } from '../../discovery/client.js'
import { parseEndpoint } from '../../soap-runtime/endpoint.js'
import { certificateUris } from '../../soap-runtime/http-transport.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { UsernameCredentials } from '../../soap-runtime/ws-security.js'
import type { GetDomainInfoResponse } from '../../wsdl/generated/storage-service.js'
import { FRONTEND_CALLER, createStorageProxy, type StorageProxyOptions } from './storage-proxy.js'
import type { StorageHandler } from './storage-handler.js'

export interface TrustOptions {
  /** CA (PEM) every domain's certificate must chain to. */
  readonly ca: string | Buffer
  /** Client certificate and key (PEM) for domains that ask for one (mutual TLS). */
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  /** UsernameToken credentials for domains that take passwords. */
  readonly credentials?: UsernameCredentials
  /** How long a proof (or a liveness check after a Bye) may take (default 3000 ms). */
  readonly verifyTimeoutMs?: number
  /** The file the performance module probes; inside a path this identity may use (default: the module's). */
  readonly probePath?: string
  /** How often a proven domain is asked to answer as itself (default 3000 ms); two misses retire it. */
  readonly recheckMs?: number
}

export interface ProvenDomain {
  readonly endpoint: string
  readonly handler: StorageHandler
  readonly info: GetDomainInfoResponse
}

export interface TrustCounters {
  /** Announcements (Hello, ProbeMatch, ResolveMatch) whose domain proved its identity. */
  verified: number
  /** Announcements refused: no https XAddr, a certificate of another CA, another EPR, a domain that answered as another. */
  rejected: number
  /** Byes (or expiries) for a domain that still answered as itself: ignored. */
  forgedByes: number
  /** The last reasons, newest last (at most 20). */
  readonly reasons: string[]
}

/** Reads METAOS_TRUST_CA, METAOS_CLIENT_CERT/KEY, METAOS_USERNAME/PASSWORD: the trust of the process-wide frontend; undefined without a CA. */
export function trustFromEnvironment (env: NodeJS.ProcessEnv = process.env): TrustOptions | undefined {
  const ca = env.METAOS_TRUST_CA
  if (ca === undefined || ca === '') return undefined
  const read = (f: string, what: string): Buffer => {
    try { return readFileSync(f) } catch (e) { throw new MetaosError('FILE_NOT_FOUND', `${what} ${f}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`) }
  }
  return {
    ca: read(ca, 'METAOS_TRUST_CA'),
    ...(env.METAOS_CLIENT_CERT === undefined ? {} : { cert: read(env.METAOS_CLIENT_CERT, 'METAOS_CLIENT_CERT'), key: read(env.METAOS_CLIENT_KEY ?? '', 'METAOS_CLIENT_KEY') }),
    ...(env.METAOS_USERNAME === undefined ? {} : { credentials: { username: env.METAOS_USERNAME, password: env.METAOS_PASSWORD ?? '' } }),
    ...(env.METAOS_PROBE_PATH === undefined ? {} : { probePath: env.METAOS_PROBE_PATH }),
  }
}

export class DomainTrust {
  readonly #o: TrustOptions
  readonly counters: TrustCounters = { verified: 0, rejected: 0, forgedByes: 0, reasons: [] }

  constructor (o: TrustOptions) { this.#o = o }

  get probePath (): string | undefined { return this.#o.probePath }

  /** Proxy options that hold a connection to exactly this EPR: the CA, the EPR in the certificate, the credentials. */
  proxyOptions (epr: string): StorageProxyOptions {
    return {
      tls: { ca: this.#o.ca, expectUri: epr, ...(this.#o.cert === undefined ? {} : { cert: this.#o.cert, key: this.#o.key }) },
      ...(this.#o.credentials === undefined ? {} : { credentials: this.#o.credentials }),
      timeoutMs: 30_000,
      caller: FRONTEND_CALLER,
    }
  }

  /** Counts an announcement refused without a proof attempt (e.g. too many being proven at once). */
  refuse (t: DiscoveredTarget, why: string): void { this.#reject(t, why) }

  #reject (t: DiscoveredTarget, why: string): undefined {
    this.counters.rejected++
    this.counters.reasons.push(`${t.epr} from ${t.from}: ${why}`)
    if (this.counters.reasons.length > 20) this.counters.reasons.shift()
    return undefined
  }

  async #info (h: StorageHandler): Promise<GetDomainInfoResponse> {
    const ms = this.#o.verifyTimeoutMs ?? 3000
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        h.invoke('GetDomainInfo', {}).then((r) => r.output),
        new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', `no answer within ${ms} ms`)) }, ms) }),
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  /** The proven domain behind an announcement (its best proven endpoint), or undefined (counted, with the reason). */
  async verify (t: DiscoveredTarget): Promise<ProvenDomain | undefined> {
    const https = t.xaddrs.filter((x) => x.startsWith('https://')).slice(0, 4)
    if (https.length === 0) return this.#reject(t, 'announces no https endpoint, so it cannot prove its identity')
    const epr = t.epr.toLowerCase()
    let proven: ProvenDomain | undefined
    let why = ''
    for (const x of https) {
      const h = createStorageProxy(x, this.proxyOptions(epr))
      try {
        const info = await this.#info(h)
        if (info.domainId.toLowerCase() !== epr) throw new MetaosError('UNAUTHORIZED', `answered as ${info.domainId}`)
        proven = { endpoint: x, handler: h, info }
        break
      } catch (e) {
        why = `${x}: ${(e as MetaosError).code ?? ''} ${(e as Error).message}`
        await h.close()
      }
    }
    if (proven === undefined) return this.#reject(t, why)
    // The bus, when it is on this machine and bound by this user or root, and answers as the same domain.
    for (const x of t.xaddrs.filter((a) => a.startsWith('http+unix://'))) {
      const path = parseEndpoint(x).socketPath!
      let ok = false
      try {
        const st = lstatSync(path)
        ok = st.isSocket() && (st.uid === process.getuid?.() || st.uid === 0)
      } catch { /* not here */ }
      if (!ok) continue
      const h = createStorageProxy(x, { ...(this.#o.credentials === undefined ? {} : { credentials: this.#o.credentials }), timeoutMs: 30_000, caller: FRONTEND_CALLER })
      try {
        const info = await this.#info(h)
        if (info.domainId.toLowerCase() === epr) {
          await proven.handler.close()
          proven = { endpoint: x, handler: h, info }
          break
        }
      } catch { /* the https endpoint stays */ }
      await h.close()
    }
    this.counters.verified++
    return proven
  }

  /** True when the domain answers as itself now. */
  async answers (epr: string, handler: StorageHandler): Promise<boolean> {
    try {
      return (await this.#info(handler)).domainId.toLowerCase() === epr.toLowerCase()
    } catch {
      return false // draining (DOMAIN_DRAINING), gone, or silent
    }
  }

  /** After a Bye: true (counted) when the domain still answers as itself — the Bye was forged. */
  async stillAnswers (epr: string, handler: StorageHandler): Promise<boolean> {
    const alive = await this.answers(epr, handler)
    if (alive) this.counters.forgedByes++
    return alive
  }
}

/**
 * The TLS half of a proof, for any kind of domain: a handshake with an https XAddr whose
 * certificate chains to `ca`, matches the host and names `epr`. Resolves to the reason it failed,
 * or undefined when it holds. Sends nothing after the handshake.
 */
export async function proveByTls (xaddr: string, epr: string, ca: string | Buffer, timeoutMs = 3000): Promise<string | undefined> {
  const ep = parseEndpoint(xaddr)
  if (ep.protocol !== 'https') return `${xaddr} is not an https endpoint`
  return await new Promise((resolve) => {
    const socket = connect({ host: ep.host, port: ep.port, ca, ...(/^[\d.:]+$/.test(ep.host!) ? {} : { servername: ep.host }), timeout: timeoutMs }, () => {
      const cert: PeerCertificate = socket.getPeerCertificate()
      socket.destroy()
      resolve(certificateUris(cert).map((u) => u.toLowerCase()).includes(epr.toLowerCase()) ? undefined : `the certificate names ${certificateUris(cert).join(', ') || 'no URI'}, not ${epr}`)
    })
    socket.once('timeout', () => { socket.destroy(); resolve(`no TLS handshake within ${timeoutMs} ms`) })
    socket.once('error', (e: NodeJS.ErrnoException) => { resolve(`${e.code ?? 'error'}: ${e.message}`) })
  })
}
