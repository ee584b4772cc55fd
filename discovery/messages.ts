// WS-Discovery messages of both versions: builds Hello, Bye, Probe, ProbeMatches, Resolve,
// ResolveMatches and the MatchingRuleNotSupported fault as SOAP 1.2 envelopes, and parses any of
// them whatever the prefixes (with the runtime's strict XML parser and tight limits). Tolerates a
// UTF-8 BOM and Types written in Clark notation (`{ns}Local`, as Mono's WCF sends them).
import { randomUUID } from 'node:crypto'
import { MetaosError } from '../soap-runtime/errors.js'
import { escapeXml, parseXml, resolveQName, type XmlElement } from '../soap-runtime/xml.js'
import { SOAP12_NS, VERSIONS, versionOfNamespace, type WsdVersion } from './protocol.js'

export interface AppSequence { readonly instanceId: number, readonly sequenceId?: string, readonly messageNumber: number }

/** What a target service says of itself (Hello, ProbeMatch, ResolveMatch; Bye carries the EPR). */
export interface TargetInfo {
  readonly epr: string
  /** QNames in Clark notation, e.g. `{urn:metaos:v1}StorageDomain`. */
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  readonly xaddrs: readonly string[]
  readonly metadataVersion: number
}

export type Action = 'Hello' | 'Bye' | 'Probe' | 'ProbeMatches' | 'Resolve' | 'ResolveMatches' | 'Fault'

export interface DiscoveryMessage {
  readonly version: WsdVersion
  readonly action: Action
  readonly messageId: string
  readonly relatesTo?: string
  readonly to?: string
  readonly replyTo?: string
  readonly appSequence?: AppSequence
  /** Hello, Bye: one; ProbeMatches, ResolveMatches: any number. */
  readonly targets: readonly TargetInfo[]
  /** Probe. */
  readonly types?: readonly string[]
  readonly scopes?: readonly string[]
  readonly matchBy?: string
  /** Resolve. */
  readonly epr?: string
  /** Fault: the subcode, e.g. `{…}MatchingRuleNotSupported`. */
  readonly faultSubcode?: string
}

const LIMITS = { maxDepth: 16, maxElements: 2000 }
const ACTIONS: readonly Action[] = ['Hello', 'Bye', 'Probe', 'ProbeMatches', 'Resolve', 'ResolveMatches']

function bad (why: string): MetaosError { return new MetaosError('MALFORMED_MESSAGE', `WS-Discovery: ${why}`) }
const kid = (el: XmlElement, ns: string, local: string): XmlElement | undefined => el.children.find((c) => c.ns === ns && c.local === local)
const list = (s: string | undefined): string[] => (s ?? '').split(/[ \t\r\n]+/).filter((x) => x !== '')

function readTarget (el: XmlElement, v: WsdVersion): TargetInfo {
  const { wsd, wsa } = VERSIONS[v]
  const epr = kid(kid(el, wsa, 'EndpointReference') ?? el, wsa, 'Address')?.text.trim()
  if (epr === undefined || epr === '') throw bad(`${el.local} without an EndpointReference/Address`)
  const typesEl = kid(el, wsd, 'Types')
  const scopesEl = kid(el, wsd, 'Scopes')
  const mv = kid(el, wsd, 'MetadataVersion')?.text.trim()
  const metadataVersion = mv === undefined ? 0 : Number(mv)
  if (!Number.isSafeInteger(metadataVersion) || metadataVersion < 0) throw bad('MetadataVersion is not a non-negative integer')
  return {
    epr,
    types: typesEl === undefined ? [] : list(typesEl.text).map((q) => resolveQName(typesEl, q)),
    scopes: list(scopesEl?.text),
    xaddrs: list(kid(el, wsd, 'XAddrs')?.text),
    metadataVersion,
  }
}

/** Parses one datagram. Throws MALFORMED_MESSAGE for anything that is not a WS-Discovery message. */
export function parseDiscovery (data: Buffer): DiscoveryMessage {
  let text = data.toString('utf8')
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
  const env = parseXml(text, LIMITS)
  if (env.local !== 'Envelope' || (env.ns !== SOAP12_NS && env.ns !== 'http://schemas.xmlsoap.org/soap/envelope/')) throw bad('not a SOAP envelope')
  const header = kid(env, env.ns, 'Header')
  const body = kid(env, env.ns, 'Body')?.children[0]
  if (header === undefined || body === undefined) throw bad('no Header or no Body')
  let version: WsdVersion | undefined = versionOfNamespace(body.ns)
  let action: Action | undefined
  let faultSubcode: string | undefined
  if (version === undefined && body.local === 'Fault' && body.ns === env.ns) {
    const sub = kid(kid(kid(body, env.ns, 'Code') ?? body, env.ns, 'Subcode') ?? body, env.ns, 'Value')
    faultSubcode = sub === undefined ? undefined : resolveQName(sub, sub.text)
    const subNs = faultSubcode?.startsWith('{') === true ? faultSubcode.slice(1, faultSubcode.indexOf('}')) : ''
    version = versionOfNamespace(subNs)
    action = 'Fault'
  } else if (version !== undefined) {
    if (!ACTIONS.includes(body.local as Action)) throw bad(`unknown body element ${body.local}`)
    action = body.local as Action
  }
  if (version === undefined || action === undefined) throw bad(`body element {${body.ns}}${body.local} is not WS-Discovery`)
  const { wsd, wsa } = VERSIONS[version]
  const h = (local: string): string | undefined => kid(header, wsa, local)?.text.trim()
  const messageId = h('MessageID')
  if (messageId === undefined || messageId === '') throw bad('no MessageID')
  if (action !== 'Fault') {
    const act = h('Action')
    if (act !== undefined && act !== `${wsd}/${action}`) throw bad(`Action ${act.slice(0, 100)} does not match the body ${action}`)
  }
  const seqEl = kid(header, wsd, 'AppSequence')
  let appSequence: AppSequence | undefined
  if (seqEl !== undefined) {
    const instanceId = Number(seqEl.attrs.InstanceId)
    const messageNumber = Number(seqEl.attrs.MessageNumber)
    if (!Number.isSafeInteger(instanceId) || instanceId < 0 || !Number.isSafeInteger(messageNumber) || messageNumber < 0) throw bad('AppSequence needs non-negative InstanceId and MessageNumber')
    appSequence = seqEl.attrs.SequenceId === undefined ? { instanceId, messageNumber } : { instanceId, messageNumber, sequenceId: seqEl.attrs.SequenceId }
  }
  const replyTo = kid(kid(header, wsa, 'ReplyTo') ?? header, wsa, 'Address')?.text.trim()
  const base = {
    version,
    action,
    messageId,
    ...(h('RelatesTo') === undefined ? {} : { relatesTo: h('RelatesTo')! }),
    ...(h('To') === undefined ? {} : { to: h('To')! }),
    ...(replyTo === undefined || kid(header, wsa, 'ReplyTo') === undefined ? {} : { replyTo }),
    ...(appSequence === undefined ? {} : { appSequence }),
    ...(faultSubcode === undefined ? {} : { faultSubcode }),
  }
  switch (action) {
    case 'Hello': case 'Bye':
      return { ...base, targets: [readTarget(body, version)] }
    case 'ProbeMatches': case 'ResolveMatches': {
      const one = action === 'ProbeMatches' ? 'ProbeMatch' : 'ResolveMatch'
      return { ...base, targets: body.children.filter((c) => c.ns === wsd && c.local === one).map((c) => readTarget(c, version)) }
    }
    case 'Probe': {
      const typesEl = kid(body, wsd, 'Types')
      const scopesEl = kid(body, wsd, 'Scopes')
      const matchBy = scopesEl?.attrs.MatchBy?.trim()
      return {
        ...base,
        targets: [],
        types: typesEl === undefined ? [] : list(typesEl.text).map((q) => resolveQName(typesEl, q)),
        scopes: list(scopesEl?.text),
        ...(matchBy === undefined || matchBy === '' ? {} : { matchBy }),
      }
    }
    case 'Resolve': {
      const epr = kid(kid(body, wsa, 'EndpointReference') ?? body, wsa, 'Address')?.text.trim()
      if (epr === undefined || epr === '') throw bad('Resolve without an EndpointReference')
      return { ...base, targets: [], epr }
    }
    case 'Fault':
      return { ...base, targets: [] }
  }
}

// ---------------------------------------------------------------- building

export function newMessageId (): string { return `urn:uuid:${randomUUID()}` }

/**
 * The AppSequence of one sender. InstanceId must grow at every restart, even one within the same
 * second: tenths of a second since 2024 fit the 32 bits WS-Discovery allows until 2037.
 * MessageNumber grows by one per message.
 */
export class AppSequencer {
  readonly instanceId = Math.floor((Date.now() - Date.UTC(2024, 0, 1)) / 100) % 4294967296
  #messageNumber = 0
  next (): AppSequence { return { instanceId: this.instanceId, messageNumber: ++this.#messageNumber } }
}

/** A reply or announcement of a sender with an AppSequence. */
export function sequenced (seq: AppSequencer, version: WsdVersion, action: Envelope['action'], b: Body, to: string, relatesTo?: string): Buffer {
  return buildEnvelope({ version, action, messageId: newMessageId(), to, ...(relatesTo === undefined ? {} : { relatesTo }), appSequence: seq.next(), body: b })
}

/** A body element ready to send, declaring the prefixes its QNames use. */
export type Body = string

const WELL_KNOWN_PREFIXES: Readonly<Record<string, string>> = {
  'urn:metaos:v1': 'm',
  // wsdd 0.7 compares the Types text with the literal "wsdp:Device", namespaces ignored.
  'http://schemas.xmlsoap.org/ws/2006/02/devprof': 'wsdp',
}

/**
 * `<d:Types>` whose prefixes are declared on the body's element, not on Types itself: nmap 7.93
 * reads Types with a regex that only matches a start tag without attributes, and Mono drops the
 * declarations of Envelope and Body when it buffers a message.
 */
function typesXml (types: readonly string[], ns: Record<string, string>): string {
  if (types.length === 0) return ''
  const names = types.map((t) => {
    const m = /^\{([^}]*)\}(.+)$/.exec(t)
    if (m === null) return escapeXml(t)
    const uri = m[1]!
    let prefix = Object.keys(ns).find((p) => ns[p] === uri)
    if (prefix === undefined) {
      const wk = WELL_KNOWN_PREFIXES[uri]
      prefix = wk !== undefined && ns[wk] === undefined ? wk : `t${Object.keys(ns).length}`
      ns[prefix] = uri
    }
    return `${prefix}:${m[2]!}`
  })
  return `<d:Types>${names.join(' ')}</d:Types>`
}

function targetXml (t: TargetInfo, ns: Record<string, string>): string {
  return `<a:EndpointReference><a:Address>${escapeXml(t.epr)}</a:Address></a:EndpointReference>` +
    typesXml(t.types, ns) +
    (t.scopes.length === 0 ? '' : `<d:Scopes>${t.scopes.map(escapeXml).join(' ')}</d:Scopes>`) +
    (t.xaddrs.length === 0 ? '' : `<d:XAddrs>${t.xaddrs.map(escapeXml).join(' ')}</d:XAddrs>`) +
    `<d:MetadataVersion>${t.metadataVersion}</d:MetadataVersion>`
}

export interface Envelope {
  readonly version: WsdVersion
  readonly action: Exclude<Action, 'Fault'> | 'fault'
  readonly messageId: string
  readonly to: string
  readonly relatesTo?: string
  readonly appSequence?: AppSequence
  readonly body: Body
}

export function buildEnvelope (e: Envelope): Buffer {
  const { wsd, wsa } = VERSIONS[e.version]
  const seq = e.appSequence === undefined
    ? ''
    : `<d:AppSequence InstanceId="${e.appSequence.instanceId}"${e.appSequence.sequenceId === undefined ? '' : ` SequenceId="${escapeXml(e.appSequence.sequenceId)}"`} MessageNumber="${e.appSequence.messageNumber}"/>`
  return Buffer.from('<?xml version="1.0" encoding="utf-8"?>' +
    `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${wsa}" xmlns:d="${wsd}"><s:Header>` +
    `<a:Action>${wsd}/${e.action}</a:Action><a:MessageID>${escapeXml(e.messageId)}</a:MessageID>` +
    (e.relatesTo === undefined ? '' : `<a:RelatesTo>${escapeXml(e.relatesTo)}</a:RelatesTo>`) +
    `<a:To>${escapeXml(e.to)}</a:To>${seq}</s:Header><s:Body>${e.body}</s:Body></s:Envelope>`, 'utf8')
}

/** Builds a body element and declares on it the prefixes its Types use. */
function withNs (f: (ns: Record<string, string>) => string): Body {
  const ns: Record<string, string> = {}
  const xml = f(ns)
  const decls = Object.entries(ns).map(([p, uri]) => ` xmlns:${p}="${escapeXml(uri)}"`).join('')
  return decls === '' ? xml : xml.replace(/^<([\w:]+)/, `<$1${decls}`)
}

export const body = {
  hello: (_v: WsdVersion, t: TargetInfo): Body => withNs((ns) => `<d:Hello>${targetXml(t, ns)}</d:Hello>`),
  bye: (_v: WsdVersion, t: TargetInfo): Body => withNs((ns) => `<d:Bye>${targetXml(t, ns)}</d:Bye>`),
  probe: (types: readonly string[], scopes: readonly string[], matchBy?: string): Body => withNs((ns) =>
    `<d:Probe>${typesXml(types, ns)}${scopes.length === 0 ? '' : `<d:Scopes${matchBy === undefined ? '' : ` MatchBy="${escapeXml(matchBy)}"`}>${scopes.map(escapeXml).join(' ')}</d:Scopes>`}</d:Probe>`),
  probeMatches: (_v: WsdVersion, ts: readonly TargetInfo[]): Body => withNs((ns) => `<d:ProbeMatches>${ts.map((t) => `<d:ProbeMatch>${targetXml(t, ns)}</d:ProbeMatch>`).join('')}</d:ProbeMatches>`),
  resolve: (epr: string): Body => withNs(() => `<d:Resolve><a:EndpointReference><a:Address>${escapeXml(epr)}</a:Address></a:EndpointReference></d:Resolve>`),
  resolveMatches: (_v: WsdVersion, ts: readonly TargetInfo[]): Body => withNs((ns) => `<d:ResolveMatches>${ts.map((t) => `<d:ResolveMatch>${targetXml(t, ns)}</d:ResolveMatch>`).join('')}</d:ResolveMatches>`),
  matchingRuleNotSupported: (v: WsdVersion): Body => withNs(() =>
    '<s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>d:MatchingRuleNotSupported</s:Value></s:Subcode></s:Code>' +
    '<s:Reason><s:Text xml:lang="en">the matching rule specified is not supported</s:Text></s:Reason>' +
    `<s:Detail><d:SupportedMatchingRules>${VERSIONS[v].matchRules.join(' ')}</d:SupportedMatchingRules></s:Detail></s:Fault>`),
}
