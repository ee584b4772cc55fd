// The client side of a discovery proxy (managed mode) over SOAP/HTTP and HTTPS: one message out,
// its answer back (askProxy), and a target service's announcements to a proxy on another host
// (ProxyAnnouncer: Hello at start and periodically, Bye at the end), each over https with the
// domain's own certificate as client certificate (mutual TLS) and the proxy verified against a CA.
// A proxy that refuses a message answers a SOAP fault whose detail carries a metaos error code
// (UNAUTHORIZED): it becomes a MetaosError with that code here.
import type { Logger } from 'pino'
import { buildFaultBody, faultStatus, faultToError, readFault } from '../soap-runtime/envelope.js'
import { MetaosError, type ErrorCode } from '../soap-runtime/errors.js'
import { createHttpTransport, type ClientTls } from '../soap-runtime/http-transport.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { escapeXml, parseXml } from '../soap-runtime/xml.js'
import { AppSequencer, body, newMessageId, parseDiscovery, sequenced, type DiscoveryMessage, type TargetInfo } from './messages.js'
import { METAOS_TYPES_NS, SOAP12_NS, VERSIONS, type WsdVersion } from './protocol.js'

export type { ClientTls }

/** The detail element of a proxy's refusals: `<DiscoveryFault xmlns="urn:metaos:v1"><code>…</code><message>…</message>`. */
export const DISCOVERY_FAULT = `{${METAOS_TYPES_NS}}DiscoveryFault`
/** The path a proxy answers on. */
export const DISCOVERY_PATH = '/discovery'
const MAX_ANSWER = 32 * 1024 * 1024

/** A SOAP 1.2 fault envelope for a refused discovery message (`relatesTo` its MessageID), and its HTTP status. */
export function proxyFault (v: WsdVersion, code: ErrorCode, message: string, relatesTo?: string): { status: number, body: Buffer } {
  const { wsa } = VERSIONS[v]
  const detail = `<DiscoveryFault xmlns="${METAOS_TYPES_NS}"><code>${code}</code><message>${escapeXml(message)}</message></DiscoveryFault>`
  const action = v === '1.1' ? `${wsa}/soap/fault` : `${wsa}/fault`
  const xml = '<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${wsa}"><s:Header><a:Action>${action}</a:Action>` +
    `<a:MessageID>${newMessageId()}</a:MessageID>${relatesTo === undefined ? '' : `<a:RelatesTo>${escapeXml(relatesTo)}</a:RelatesTo>`}` +
    `</s:Header><s:Body>${buildFaultBody('1.2', { code, message, detailXml: detail })}</s:Body></s:Envelope>`
  return { status: faultStatus(), body: Buffer.from(xml, 'utf8') }
}

/** The typed error a proxy's fault answer stands for, or undefined when the body is no SOAP fault. */
function faultOf (data: Buffer): MetaosError | undefined {
  try {
    const env = parseXml(data.toString('utf8'), { maxDepth: 16, maxElements: 200 })
    const fault = env.children.find((c) => c.local === 'Body')?.children.find((c) => c.local === 'Fault')
    return fault === undefined ? undefined : faultToError(readFault(fault, DISCOVERY_FAULT), DISCOVERY_FAULT)
  } catch { return undefined }
}

/**
 * Sends one message to a proxy (an `http://` or `https://` XAddr) and parses its answer: undefined
 * for 202 (nothing to say), the proxy's fault as a MetaosError (UNAUTHORIZED…), PROTOCOL_ERROR for
 * anything else. Over https the proxy's certificate must chain to `tls.ca`; `tls.cert`/`key` are
 * presented as the client certificate.
 */
export async function askProxy (xaddr: string, message: Buffer, timeoutMs: number, tls?: ClientTls): Promise<DiscoveryMessage | undefined> {
  const transport = createHttpTransport(xaddr, DISCOVERY_PATH, { maxSockets: 1, maxResponseBytes: MAX_ANSWER, ...(tls === undefined ? {} : { tls }) })
  try {
    const res = await transport.send({ chunks: [message], length: message.length, headers: { 'Content-Type': 'application/soap+xml; charset=utf-8' }, timeoutMs })
    if (res.status === 202) return undefined
    if (res.status === 200) return parseDiscovery(res.body)
    throw faultOf(res.body) ?? new MetaosError('PROTOCOL_ERROR', `discovery proxy ${xaddr} answered HTTP ${res.status}`)
  } finally {
    await transport.close()
  }
}

export interface ProxyAnnouncerOptions {
  /** The proxy's endpoint, `https://HOST:PORT/discovery` (or `http://` on a trusted network). */
  readonly proxy: string
  /** The CA the proxy's certificate must chain to, and this domain's certificate and key (it names the EPR). */
  readonly tls?: ClientTls
  /** What is announced: the EPR, Types, Scopes, XAddrs; MetadataVersion starts from the InstanceId. */
  readonly target: Omit<TargetInfo, 'metadataVersion'>
  /** Hello again this often (ms, default 10 000): the proxy forgets a target that stops saying Hello. */
  readonly intervalMs?: number
  readonly timeoutMs?: number
  readonly logger?: Logger
}

/**
 * Announces one target service to a discovery proxy over HTTP(S): Hello now and every interval (a
 * proxy on another host hears no multicast, and forgets what stops announcing), Bye at stop.
 * Failures are logged and counted, never thrown: the domain serves whether or not the proxy is up.
 */
export class ProxyAnnouncer {
  readonly #o: ProxyAnnouncerOptions
  readonly #log: Logger
  readonly #seq = new AppSequencer()
  #timer: NodeJS.Timeout | undefined
  #pending: Promise<unknown> = Promise.resolve()
  /** Hellos the proxy took, and messages it refused (a fault) or that did not reach it. */
  readonly counters = { accepted: 0, refused: 0, failed: 0, lastError: '' }

  constructor (o: ProxyAnnouncerOptions) {
    this.#o = o
    this.#log = o.logger ?? silentLogger
  }

  get #info (): TargetInfo { return { ...this.#o.target, metadataVersion: this.#seq.instanceId } }

  async #send (action: 'Hello' | 'Bye'): Promise<boolean> {
    const v: WsdVersion = '1.1'
    const msg = sequenced(this.#seq, v, action, action === 'Hello' ? body.hello(v, this.#info) : body.bye(v, this.#info), VERSIONS[v].multicastTo)
    try {
      await askProxy(this.#o.proxy, msg, this.#o.timeoutMs ?? 5000, this.#o.tls)
      if (action === 'Hello') this.counters.accepted++
      return true
    } catch (e) {
      const err = e as MetaosError
      if (err.code === 'UNAUTHORIZED') this.counters.refused++
      else this.counters.failed++
      this.counters.lastError = `${err.code ?? 'error'}: ${err.message}`
      this.#log[err.code === 'UNAUTHORIZED' ? 'error' : 'warn']({ proxy: this.#o.proxy, epr: this.#o.target.epr, code: err.code, err: err.message }, `discovery proxy did not take the ${action}`)
      return false
    }
  }

  /** The first Hello (its outcome: true when the proxy took it), then one every interval. */
  async start (): Promise<boolean> {
    const ok = await this.#send('Hello')
    if (ok) this.#log.info({ proxy: this.#o.proxy, epr: this.#o.target.epr }, 'announced to the discovery proxy (Hello)')
    this.#timer = setInterval(() => { this.#pending = this.#send('Hello') }, this.#o.intervalMs ?? 10_000)
    this.#timer.unref()
    return ok
  }

  /** No more Hellos; then Bye (true when the proxy took it). */
  async stop (): Promise<boolean> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    await this.#pending
    const ok = await this.#send('Bye')
    if (ok) this.#log.info({ proxy: this.#o.proxy, epr: this.#o.target.epr }, 'withdrawn from the discovery proxy (Bye)')
    return ok
  }
}
