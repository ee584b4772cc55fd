import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

// WS-Discovery, protocol level (DESIGN.md §4, issue #3): the MatchBy rules of both versions, the
// parser against what real peers write (odd prefixes, default namespaces, a BOM, Clark-notation
// Types) and against hostile input, build→parse round trips, and a TargetService on the wire,
// spoken to with hand-written datagrams on raw sockets: ProbeMatches/ResolveMatches in the version
// asked, the MatchingRuleNotSupported fault, Hello/Bye with their SOAP-over-UDP repeats and
// AppSequence, MetadataVersion, and drop counters under garbage, bombs and floods.
// Runs in a network namespace of its own (test/helpers/netns.ts): nothing leaves the machine.
import t, { type Test } from 'tap'
import { randomBytes, randomUUID } from 'node:crypto'
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { setTimeout as sleep } from 'node:timers/promises'
import { MetaosError } from '../../soap-runtime/errors.js'
import { body, buildEnvelope, parseDiscovery, type DiscoveryMessage, type TargetInfo } from '../../discovery/messages.js'
import { DISCOVERY_PORT, METAOS_TYPES_NS, MULTICAST_V4, SOAP12_NS, TIMING, VERSIONS, type WsdVersion } from '../../discovery/protocol.js'
import { matchScopes } from '../../discovery/scope-match.js'
import { TargetService } from '../../discovery/target-service.js'
import { NETWORK_DOMAIN_TYPE, STORAGE_DOMAIN_TYPE } from '../../discovery/storage-announcement.js'

const W11 = VERSIONS['1.1']
const W05 = VERSIONS['2005']
const R3986 = W11.defaultMatchBy
const R2396 = W05.defaultMatchBy
const UUID_URN = /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
/** nmap 7.93's wsdd-discover needs a prefixed MessageID in urn:uuid: form. */
const PREFIXED_MESSAGE_ID = /<[A-Za-z_][\w.-]*:MessageID>urn:uuid:[0-9a-f-]{36}<\/[A-Za-z_][\w.-]*:MessageID>/
/** Longest a multicast request waits for its answer: APP_MAX_DELAY, plus slack. */
const ANSWER_WAIT_MS = TIMING.APP_MAX_DELAY + 500

const id = (): string => `urn:uuid:${randomUUID()}`

function throwsMalformed (t: Test, data: string | Buffer, what: string): void {
  let err: unknown
  try { parseDiscovery(typeof data === 'string' ? Buffer.from(data, 'utf8') : data) } catch (e) { err = e }
  t.ok(err instanceof MetaosError && err.code === 'MALFORMED_MESSAGE', `${what} → MALFORMED_MESSAGE${err instanceof Error ? ` (${err.message.slice(0, 80)})` : ' (did not throw)'}`)
}

// ---------------------------------------------------------------- scope matching

t.test('scope matching (matchScopes)', async (t) => {
  await t.test('rfc3986 and rfc2396: segment-wise prefix', async (t) => {
    for (const rule of [R3986, R2396]) {
      const m = (p: string | string[], s: string | string[]): unknown => matchScopes(rule, typeof p === 'string' ? [p] : p, typeof s === 'string' ? [s] : s)
      const r = rule.slice(rule.lastIndexOf('/') + 1)
      t.equal(m('metaos://volume/a', 'metaos://volume/a'), true, `${r}: equal`)
      t.equal(m('metaos://volume', 'metaos://volume/a'), true, `${r}: shorter path is a prefix`)
      t.equal(m('metaos://kernel/linux', 'metaos://kernel/linux/6.1.0-18-amd64'), true, `${r}: two of three segments`)
      t.equal(m('metaos://volume/a', 'metaos://volume/ab'), false, `${r}: /a is not a prefix of /ab (segments, not characters)`)
      t.equal(m('metaos://volume/ab', 'metaos://volume/a'), false, `${r}: longer probe does not match`)
      t.equal(m('metaos://volume/a/b', 'metaos://volume/a'), false, `${r}: more segments than the target`)
      t.equal(m('METAOS://VOLUME/a', 'metaos://volume/a'), true, `${r}: scheme and authority case-insensitive`)
      t.equal(m('metaos://Volume/a', 'MetaOS://vOLUME/a/b'), true, `${r}: both sides case-folded`)
      t.equal(m('metaos://volume/A', 'metaos://volume/a'), false, `${r}: path segments case-sensitive`)
      t.equal(m('metaos://volume/a/', 'metaos://volume/a'), true, `${r}: trailing slash on the probe`)
      t.equal(m('metaos://volume/a', 'metaos://volume/a/'), true, `${r}: trailing slash on the target`)
      t.equal(m('metaos://volume/a/', 'metaos://volume/a/b'), true, `${r}: trailing slash prefix`)
      t.equal(m('metaos://volume/my%2Dvol', 'metaos://volume/my-vol'), true, `${r}: percent-encoding normalized`)
      t.equal(m('metaos://volume/%41', 'metaos://volume/A'), true, `${r}: %41 = A`)
      t.equal(m('metaos://volume/a%2Fb', 'metaos://volume/a/b'), false, `${r}: an encoded slash is not a segment separator`)
      t.equal(m('metaos://volume/%zz', 'metaos://volume/%zz'), false, `${r}: broken percent-encoding never matches`)
      t.equal(m('metaos://volume/a/../b', 'metaos://volume/b'), false, `${r}: ".." in the probe refused`)
      t.equal(m('metaos://volume/a/..', 'metaos://volume/a/../x'), false, `${r}: ".." on both sides refused`)
      t.equal(m('metaos://volume', 'metaos://volume/x/../y'), false, `${r}: ".." in the target refused`)
      t.equal(m('metaos://volume/./a', 'metaos://volume/a'), false, `${r}: "." refused`)
      t.equal(m('metaos://zone/a', 'metaos://volume/a'), false, `${r}: other authority`)
      t.equal(m('http://volume/a', 'metaos://volume/a'), false, `${r}: other scheme`)
      t.equal(m('not a uri', 'metaos://volume/a'), false, `${r}: not a URI`)
      t.equal(m(['metaos://volume/a', 'metaos://zone/z'], ['metaos://zone/z/1', 'metaos://volume/a']), true, `${r}: every probe scope matched by some target scope`)
      t.equal(m(['metaos://volume/a', 'metaos://zone/z'], ['metaos://volume/a']), false, `${r}: one probe scope unmatched → no match`)
      t.equal(m([], ['metaos://volume/a']), true, `${r}: no probe scopes match anything`)
      t.equal(m('metaos://volume/a', []), false, `${r}: a target without scopes does not match a scope`)
    }
  })

  await t.test('strcmp0', async (t) => {
    for (const rule of [`${W11.wsd}/strcmp0`, `${W05.wsd}/strcmp0`]) {
      t.equal(matchScopes(rule, ['metaos://volume/a'], ['metaos://volume/a']), true, 'identical')
      t.equal(matchScopes(rule, ['metaos://volume/a'], ['METAOS://volume/a']), false, 'case-sensitive everywhere')
      t.equal(matchScopes(rule, ['metaos://volume'], ['metaos://volume/a']), false, 'no prefixes')
      t.equal(matchScopes(rule, ['metaos://volume/a/'], ['metaos://volume/a']), false, 'no normalization')
    }
  })

  await t.test('uuid', async (t) => {
    const u = '3f2504e0-4f89-11d3-9a0c-0305e82c3301'
    for (const rule of [`${W11.wsd}/uuid`, `${W05.wsd}/uuid`]) {
      t.equal(matchScopes(rule, [`urn:uuid:${u}`], [`urn:uuid:${u}`]), true, 'same')
      t.equal(matchScopes(rule, [`urn:uuid:${u.toUpperCase()}`], [`urn:uuid:${u}`]), true, 'case-insensitive')
      t.equal(matchScopes(rule, [`uuid:${u}`], [`urn:uuid:${u}`]), true, 'uuid: vs urn:uuid:')
      t.equal(matchScopes(rule, [u], [`uuid:${u.toUpperCase()}`]), true, 'bare vs uuid:')
      t.equal(matchScopes(rule, [`urn:uuid:${u}`], ['urn:uuid:3f2504e0-4f89-11d3-9a0c-0305e82c3302']), false, 'different uuid')
      t.equal(matchScopes(rule, ['urn:uuid:nope'], ['urn:uuid:nope']), false, 'not a uuid: no match even if equal')
    }
  })

  await t.test('ldap', async (t) => {
    for (const rule of [`${W11.wsd}/ldap`, `${W05.wsd}/ldap`]) {
      const target = ['ldap://ldap.example.com/cn=storage1,ou=Eng,o=Acme']
      t.equal(matchScopes(rule, ['ldap://ldap.example.com/o=acme'], target), true, 'rightmost RDN prefix')
      t.equal(matchScopes(rule, ['ldap://LDAP.example.com/OU=eng, O=ACME'], target), true, 'RDN prefix, case-insensitive, spaces')
      t.equal(matchScopes(rule, ['ldap://ldap.example.com/cn=storage1,ou=eng,o=acme'], target), true, 'whole DN')
      t.equal(matchScopes(rule, ['ldap://ldap.example.com/ou=sales,o=acme'], target), false, 'other OU')
      t.equal(matchScopes(rule, ['ldap://ldap.example.com/cn=storage1'], target), false, 'leftmost RDN is not a prefix')
      t.equal(matchScopes(rule, ['ldap://other.example.com/o=acme'], target), false, 'other host')
      t.equal(matchScopes(rule, ['ldap://ldap.example.com/x=1,cn=storage1,ou=eng,o=acme'], target), false, 'longer than the target')
    }
  })

  await t.test('none (1.1 only)', async (t) => {
    t.equal(matchScopes(`${W11.wsd}/none`, [], []), true, 'a target without scopes')
    t.equal(matchScopes(`${W11.wsd}/none`, [], ['metaos://volume/a']), false, 'a target with scopes')
    t.equal(matchScopes(`${W05.wsd}/none`, [], []), 'unsupported', 'not a rule of 2005/04')
  })

  await t.test('unknown rules', async (t) => {
    t.equal(matchScopes('http://example.com/fancy', ['metaos://volume/a'], ['metaos://volume/a']), 'unsupported')
    t.equal(matchScopes(`${W11.wsd}/regex`, ['metaos://volume/a'], ['metaos://volume/a']), 'unsupported')
    t.equal(matchScopes(`${W05.wsd}/rfc3986x`, ['metaos://volume/a'], ['metaos://volume/a']), 'unsupported')
    t.equal(matchScopes('', [], []), 'unsupported')
  })
})

// ---------------------------------------------------------------- messages

const EPR = 'urn:uuid:11111111-2222-4333-8444-555555555555'

t.test('messages: parsing what peers write', async (t) => {
  await t.test('odd prefixes and default namespaces (1.1 Hello)', async (t) => {
    const xml = `<x:Envelope xmlns:x="${SOAP12_NS}"><x:Header>` +
      `<y:Action xmlns:y="${W11.wsa}">${W11.wsd}/Hello</y:Action><MessageID xmlns="${W11.wsa}">urn:uuid:aaaaaaaa-0000-4000-8000-000000000001</MessageID>` +
      `<y:To xmlns:y="${W11.wsa}">${W11.multicastTo}</y:To>` +
      `<z:AppSequence xmlns:z="${W11.wsd}" InstanceId="7" SequenceId="urn:uuid:5eq" MessageNumber="3"/></x:Header>` +
      `<x:Body><Hello xmlns="${W11.wsd}"><EndpointReference xmlns="${W11.wsa}"><Address> ${EPR} </Address></EndpointReference>` +
      `<Types xmlns:q="${METAOS_TYPES_NS}">q:StorageDomain</Types><Scopes>metaos://volume/a\n\t metaos://zone/z</Scopes>` +
      '<XAddrs>http://127.0.0.1:1/storage http+unix://%2Ftmp%2Fs.sock/storage</XAddrs><MetadataVersion>4</MetadataVersion></Hello></x:Body></x:Envelope>'
    const m = parseDiscovery(Buffer.from(xml))
    t.equal(m.version, '1.1')
    t.equal(m.action, 'Hello')
    t.equal(m.messageId, 'urn:uuid:aaaaaaaa-0000-4000-8000-000000000001')
    t.equal(m.to, W11.multicastTo)
    t.same(m.appSequence, { instanceId: 7, messageNumber: 3, sequenceId: 'urn:uuid:5eq' })
    t.same(m.targets, [{ epr: EPR, types: [STORAGE_DOMAIN_TYPE], scopes: ['metaos://volume/a', 'metaos://zone/z'], xaddrs: ['http://127.0.0.1:1/storage', 'http+unix://%2Ftmp%2Fs.sock/storage'], metadataVersion: 4 }])
  })

  await t.test('2005/04 Probe, nmap style, Types with a prefix declared on the Envelope', async (t) => {
    const xml = `<soap:Envelope xmlns:soap="${SOAP12_NS}" xmlns:wsa="${W05.wsa}" xmlns:wsd="${W05.wsd}" xmlns:mo="${METAOS_TYPES_NS}">` +
      `<soap:Header><wsa:To>${W05.multicastTo}</wsa:To><wsa:Action>${W05.wsd}/Probe</wsa:Action><wsa:MessageID>urn:uuid:bbbbbbbb-0000-4000-8000-000000000002</wsa:MessageID>` +
      `<wsa:ReplyTo><wsa:Address>${W05.anonymous}</wsa:Address></wsa:ReplyTo></soap:Header>` +
      '<soap:Body><wsd:Probe><wsd:Types>mo:StorageDomain mo:NetworkDomain</wsd:Types><wsd:Scopes MatchBy=" ' + R2396 + ' ">metaos://volume/a</wsd:Scopes></wsd:Probe></soap:Body></soap:Envelope>'
    const m = parseDiscovery(Buffer.from(xml))
    t.equal(m.version, '2005')
    t.equal(m.action, 'Probe')
    t.equal(m.replyTo, W05.anonymous)
    t.same(m.types, [STORAGE_DOMAIN_TYPE, NETWORK_DOMAIN_TYPE])
    t.same(m.scopes, ['metaos://volume/a'])
    t.equal(m.matchBy, R2396)
  })

  await t.test('WCF/Mono style: UTF-8 BOM, default-namespace Probe, Types in Clark notation', async (t) => {
    const xml = `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${W11.wsa}"><s:Header>` +
      `<a:Action s:mustUnderstand="1">${W11.wsd}/Probe</a:Action><a:MessageID>urn:uuid:cccccccc-0000-4000-8000-000000000003</a:MessageID>` +
      `<a:ReplyTo><a:Address>${W11.anonymous}</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">${W11.multicastTo}</a:To></s:Header>` +
      `<s:Body><Probe xmlns="${W11.wsd}"><Types>{${METAOS_TYPES_NS}}StorageDomain</Types>` +
      '<Duration xmlns="http://schemas.microsoft.com/ws/2008/06/discovery">PT20S</Duration></Probe></s:Body></s:Envelope>'
    const m = parseDiscovery(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(xml)]))
    t.equal(m.version, '1.1')
    t.equal(m.action, 'Probe')
    t.same(m.types, [STORAGE_DOMAIN_TYPE], 'Clark notation kept as is')
    t.same(m.scopes, [])
    t.equal(m.matchBy, undefined)
  })

  await t.test('prefixed QNames, whatever the prefix; unprefixed ones take the default namespace', async (t) => {
    const probe = (typesEl: string, envNs = ''): DiscoveryMessage => parseDiscovery(Buffer.from(
      `<e:Envelope xmlns:e="${SOAP12_NS}" xmlns:w="${W11.wsa}" xmlns:d="${W11.wsd}"${envNs}><e:Header><w:MessageID>${id()}</w:MessageID></e:Header>` +
      `<e:Body><d:Probe>${typesEl}</d:Probe></e:Body></e:Envelope>`))
    t.same(probe(`<d:Types xmlns:p9="${METAOS_TYPES_NS}">p9:StorageDomain</d:Types>`).types, [STORAGE_DOMAIN_TYPE])
    t.same(probe('<d:Types>StorageDomain</d:Types>', ` xmlns="${METAOS_TYPES_NS}"`).types, [STORAGE_DOMAIN_TYPE])
    t.same(probe('<d:Types xmlns:m="urn:metaos:v2">m:StorageDomain</d:Types>').types, ['{urn:metaos:v2}StorageDomain'])
    t.notSame(probe('<d:Types xmlns:m="urn:metaos:v2">m:StorageDomain</d:Types>').types, [STORAGE_DOMAIN_TYPE], 'same local name, other namespace: another type')
  })

  await t.test('the MatchingRuleNotSupported fault', async (t) => {
    const xml = `<env:Envelope xmlns:env="${SOAP12_NS}" xmlns:wsa="${W11.wsa}"><env:Header><wsa:Action>${W11.wsd}/fault</wsa:Action>` +
      '<wsa:MessageID>urn:uuid:dddddddd-0000-4000-8000-000000000004</wsa:MessageID><wsa:RelatesTo>urn:uuid:dddddddd-0000-4000-8000-000000000005</wsa:RelatesTo></env:Header>' +
      `<env:Body><env:Fault><env:Code><env:Value>env:Sender</env:Value><env:Subcode><env:Value xmlns:dd="${W11.wsd}">dd:MatchingRuleNotSupported</env:Value></env:Subcode></env:Code>` +
      '<env:Reason><env:Text xml:lang="en">no</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>'
    const m = parseDiscovery(Buffer.from(xml))
    t.equal(m.action, 'Fault')
    t.equal(m.version, '1.1')
    t.equal(m.relatesTo, 'urn:uuid:dddddddd-0000-4000-8000-000000000005')
    t.equal(m.faultSubcode, `{${W11.wsd}}MatchingRuleNotSupported`)
  })
})

t.test('messages: build → parse round trips, both versions', async (t) => {
  const target: TargetInfo = {
    epr: EPR,
    types: [STORAGE_DOMAIN_TYPE, '{urn:other}Thing'],
    scopes: ['metaos://volume/a', 'metaos://zone/z&y'],
    xaddrs: ['http://127.0.0.1:8080/storage', 'http+unix://%2Frun%2Fm.sock/storage'],
    metadataVersion: 9,
  }
  const other: TargetInfo = { epr: 'urn:uuid:99999999-2222-4333-8444-555555555555', types: [NETWORK_DOMAIN_TYPE], scopes: [], xaddrs: [], metadataVersion: 0 }
  for (const v of ['1.1', '2005'] as const) {
    await t.test(v, async (t) => {
      const V = VERSIONS[v]
      const seq = { instanceId: 4294967295, messageNumber: 12 }
      const rt = (action: Parameters<typeof buildEnvelope>[0]['action'], b: string, extra: { relatesTo?: string, to?: string } = {}): DiscoveryMessage => {
        const messageId = id()
        const data = buildEnvelope({ version: v, action, messageId, to: extra.to ?? V.multicastTo, ...(extra.relatesTo === undefined ? {} : { relatesTo: extra.relatesTo }), appSequence: seq, body: b })
        const text = data.toString('utf8')
        t.match(text, PREFIXED_MESSAGE_ID, `${action}: prefixed urn:uuid MessageID`)
        t.ok(text.includes(`xmlns:d="${V.wsd}"`) && text.includes(`xmlns:a="${V.wsa}"`), `${action}: namespaces of ${v}`)
        t.notOk(text.includes(VERSIONS[v === '1.1' ? '2005' : '1.1'].wsd), `${action}: no namespace of the other version`)
        const m = parseDiscovery(data)
        t.equal(m.version, v)
        t.equal(m.messageId, messageId)
        t.same(m.appSequence, seq)
        t.equal(m.to, extra.to ?? V.multicastTo)
        t.equal(m.relatesTo, extra.relatesTo)
        return m
      }
      let m = rt('Hello', body.hello(v, target))
      t.equal(m.action, 'Hello')
      t.same(m.targets, [target])
      m = rt('Bye', body.bye(v, other))
      t.equal(m.action, 'Bye')
      t.same(m.targets, [other])
      m = rt('Probe', body.probe([STORAGE_DOMAIN_TYPE, '{urn:other}Thing'], ['metaos://volume/a b'.replace(' ', '%20'), 'metaos://zone/z'], `${V.wsd}/strcmp0`))
      t.equal(m.action, 'Probe')
      t.same(m.types, [STORAGE_DOMAIN_TYPE, '{urn:other}Thing'])
      t.same(m.scopes, ['metaos://volume/a%20b', 'metaos://zone/z'])
      t.equal(m.matchBy, `${V.wsd}/strcmp0`)
      m = rt('Probe', body.probe([], []))
      t.same([m.types, m.scopes, m.matchBy], [[], [], undefined], 'an empty Probe')
      const rel = id()
      m = rt('ProbeMatches', body.probeMatches(v, [target, other]), { relatesTo: rel, to: V.anonymous })
      t.equal(m.action, 'ProbeMatches')
      t.same(m.targets, [target, other])
      m = rt('ProbeMatches', body.probeMatches(v, []), { relatesTo: rel, to: V.anonymous })
      t.same(m.targets, [], 'no matches')
      m = rt('Resolve', body.resolve(EPR))
      t.equal(m.action, 'Resolve')
      t.equal(m.epr, EPR)
      m = rt('ResolveMatches', body.resolveMatches(v, [target]), { relatesTo: rel, to: V.anonymous })
      t.equal(m.action, 'ResolveMatches')
      t.same(m.targets, [target])
      m = rt('fault', body.matchingRuleNotSupported(v), { relatesTo: rel, to: V.anonymous })
      t.equal(m.action, 'Fault')
      t.equal(m.faultSubcode, `{${V.wsd}}MatchingRuleNotSupported`)
    })
  }
})

t.test('messages: malformed and hostile input → MALFORMED_MESSAGE', async (t) => {
  const env = (header: string, b: string, v: WsdVersion = '1.1'): string =>
    `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${VERSIONS[v].wsa}" xmlns:d="${VERSIONS[v].wsd}"><s:Header>${header}</s:Header><s:Body>${b}</s:Body></s:Envelope>`
  const mid = `<a:MessageID>${id()}</a:MessageID>`
  const ok = env(mid, '<d:Probe/>')
  t.equal(parseDiscovery(Buffer.from(ok)).action, 'Probe', 'the control message parses')
  throwsMalformed(t, '', 'an empty datagram')
  throwsMalformed(t, randomBytes(512), 'random bytes')
  throwsMalformed(t, 'hello world', 'text')
  throwsMalformed(t, ok.slice(0, -10), 'a truncated envelope')
  throwsMalformed(t, '<?xml version="1.0"?><!DOCTYPE s:Envelope [<!ENTITY x "urn:uuid:1">]>' + env('<a:MessageID>&x;</a:MessageID>', '<d:Probe/>'), 'a DTD with an entity')
  const lol = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') + ']>'
  throwsMalformed(t, lol + env(mid, '<d:Probe><d:Scopes>&lol9;</d:Scopes></d:Probe>'), 'billion laughs')
  throwsMalformed(t, env(mid, `<d:Probe>${'<d:x>'.repeat(20)}${'</d:x>'.repeat(20)}</d:Probe>`), 'nesting 20 deep')
  throwsMalformed(t, env(mid, `<d:Probe>${'<x>'.repeat(1000)}${'</x>'.repeat(1000)}</d:Probe>`), 'nesting 1000 deep')
  throwsMalformed(t, env(mid, `<d:Probe>${'<x/>'.repeat(3000)}</d:Probe>`), '3000 sibling elements')
  throwsMalformed(t, env(`<a:Action>${W11.wsd}/Probe</a:Action>`, '<d:Probe/>'), 'no MessageID')
  throwsMalformed(t, env('<a:MessageID>  </a:MessageID>', '<d:Probe/>'), 'an empty MessageID')
  throwsMalformed(t, env(`<a:MessageID xmlns:a="${W05.wsa}">${id()}</a:MessageID>`, '<d:Probe/>'), 'a MessageID of the other WS-Addressing')
  throwsMalformed(t, env(`<a:Action>${W11.wsd}/Hello</a:Action>${mid}`, '<d:Probe/>'), 'Action Hello, body Probe')
  throwsMalformed(t, env(`<a:Action>${W05.wsd}/Probe</a:Action>${mid}`, '<d:Probe/>'), 'Action of the other version')
  throwsMalformed(t, env(mid, '<x:GetStatus xmlns:x="urn:example"/>'), 'a non-WS-Discovery body')
  throwsMalformed(t, env(mid, '<d:Unknown/>'), 'an unknown WS-Discovery element')
  throwsMalformed(t, env(mid, ''), 'an empty Body')
  throwsMalformed(t, `<s:Envelope xmlns:s="${SOAP12_NS}"><s:Body><d:Probe xmlns:d="${W11.wsd}"/></s:Body></s:Envelope>`, 'no Header')
  throwsMalformed(t, `<Envelope xmlns="urn:not-soap"><Header/><Body><d:Probe xmlns:d="${W11.wsd}"/></Body></Envelope>`, 'not a SOAP envelope')
  throwsMalformed(t, env(mid, `<d:Hello><d:Types>x</d:Types></d:Hello>`), 'a Hello without an EPR')
  throwsMalformed(t, env(mid, `<d:Hello><a:EndpointReference><a:Address>${EPR}</a:Address></a:EndpointReference><d:MetadataVersion>-1</d:MetadataVersion></d:Hello>`), 'a negative MetadataVersion')
  throwsMalformed(t, env(mid, `<d:Hello><a:EndpointReference><a:Address>${EPR}</a:Address></a:EndpointReference><d:MetadataVersion>1e400</d:MetadataVersion></d:Hello>`), 'an infinite MetadataVersion')
  throwsMalformed(t, env(mid, '<d:Resolve/>'), 'a Resolve without an EPR')
  throwsMalformed(t, env(`${mid}<d:AppSequence InstanceId="x" MessageNumber="1"/>`, '<d:Probe/>'), 'a non-numeric InstanceId')
  throwsMalformed(t, env(`${mid}<d:AppSequence InstanceId="1"/>`, '<d:Probe/>'), 'an AppSequence without MessageNumber')
  throwsMalformed(t, env(mid, '<s:Fault><s:Code><s:Value>s:Sender</s:Value></s:Code></s:Fault>'), 'a fault without a WS-Discovery subcode')
  throwsMalformed(t, Buffer.concat([Buffer.from(env(mid, '<d:Probe><d:Scopes>metaos://')), Buffer.from([0xc3, 0x28]), Buffer.from('</d:Scopes></d:Probe>')]), 'invalid UTF-8')
  throwsMalformed(t, '<?xml version="1.0" encoding="UTF-16"?>' + ok, 'a UTF-16 declaration')
})

// ---------------------------------------------------------------- on the wire

interface Rx { readonly data: Buffer, readonly text: string, readonly msg: DiscoveryMessage | undefined, readonly from: RemoteInfo, readonly at: number }

interface Raw {
  readonly sock: Socket
  readonly got: Rx[]
  send: (data: Buffer | string, address?: string, port?: number) => Promise<void>
  close: () => Promise<void>
}

/** A plain dgram socket on 127.0.0.1 multicast: bound to `port` (0 = ephemeral), in the group if `join`. */
async function rawSocket (t: Test, o: { port?: number, join?: boolean } = {}): Promise<Raw> {
  const sock = createSocket({ type: 'udp4', reuseAddr: true })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(o.port ?? 0, () => { sock.off('error', reject); resolve() }) })
  sock.setMulticastInterface('127.0.0.1')
  sock.setMulticastTTL(1)
  sock.setMulticastLoopback(true)
  if (o.join === true) sock.addMembership(MULTICAST_V4, '127.0.0.1')
  const got: Rx[] = []
  sock.on('message', (data, from) => {
    let msg: DiscoveryMessage | undefined
    try { msg = parseDiscovery(data) } catch { msg = undefined }
    got.push({ data, text: data.toString('utf8'), msg, from, at: Date.now() })
  })
  let closed = false
  const close = async (): Promise<void> => { if (!closed) { closed = true; await new Promise<void>((resolve) => { sock.close(() => { resolve() }) }) } }
  t.teardown(close)
  return {
    sock,
    got,
    send: async (data, address = MULTICAST_V4, port = DISCOVERY_PORT) => { await new Promise<void>((resolve, reject) => { sock.send(data, port, address, (e) => { if (e === null) resolve(); else reject(e) }) }) },
    close,
  }
}

/** A Probe as nmap writes it (2005/04) or as WCF does (1.1): `inner` goes inside the Probe element. */
function probeXml (v: WsdVersion, messageId: string, inner: string, extraNs = ''): string {
  if (v === '2005') {
    return `<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="${SOAP12_NS}" xmlns:wsa="${W05.wsa}" xmlns:wsd="${W05.wsd}"${extraNs}>` +
      `<soap:Header><wsa:To>${W05.multicastTo}</wsa:To><wsa:Action>${W05.wsd}/Probe</wsa:Action><wsa:MessageID>${messageId}</wsa:MessageID></soap:Header>` +
      `<soap:Body><wsd:Probe>${inner}</wsd:Probe></soap:Body></soap:Envelope>`
  }
  return `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${W11.wsa}"${extraNs}><s:Header>` +
    `<a:Action s:mustUnderstand="1">${W11.wsd}/Probe</a:Action><a:MessageID>${messageId}</a:MessageID>` +
    `<a:ReplyTo><a:Address>${W11.anonymous}</a:Address></a:ReplyTo><a:To s:mustUnderstand="1">${W11.multicastTo}</a:To></s:Header>` +
    `<s:Body><Probe xmlns="${W11.wsd}">${inner}<Duration xmlns="http://schemas.microsoft.com/ws/2008/06/discovery">PT20S</Duration></Probe></s:Body></s:Envelope>`
}

/** Types and Scopes elements for `probeXml` (the wsd namespace written out on each, prefix `q`). */
function probeInner (v: WsdVersion, o: { types?: string, typesNs?: string, scopes?: string, matchBy?: string }): string {
  const wsd = VERSIONS[v].wsd
  return (o.types === undefined ? '' : `<q:Types xmlns:q="${wsd}"${o.typesNs ?? ''}>${o.types}</q:Types>`) +
    (o.scopes === undefined ? '' : `<q:Scopes xmlns:q="${wsd}"${o.matchBy === undefined ? '' : ` MatchBy="${o.matchBy}"`}>${o.scopes}</q:Scopes>`)
}

function resolveXml (v: WsdVersion, messageId: string, epr: string): string {
  const V = VERSIONS[v]
  return `<S:Envelope xmlns:S="${SOAP12_NS}" xmlns:A="${V.wsa}" xmlns:D="${V.wsd}"><S:Header><A:Action>${V.wsd}/Resolve</A:Action>` +
    `<A:MessageID>${messageId}</A:MessageID><A:To>${V.multicastTo}</A:To></S:Header>` +
    `<S:Body><D:Resolve><A:EndpointReference><A:Address>${epr}</A:Address></A:EndpointReference></D:Resolve></S:Body></S:Envelope>`
}

const answersTo = (raw: Raw, requestId: string): Rx[] => raw.got.filter((r) => r.msg?.relatesTo === requestId)

/** Checks a reply datagram for what nmap, WCF and wsdd need: the version asked, prefixed urn:uuid MessageID, RelatesTo, AppSequence. */
function checkReply (t: Test, r: Rx, v: WsdVersion, requestId: string, action: 'ProbeMatches' | 'ResolveMatches' | 'fault'): void {
  const V = VERSIONS[v]
  const O = VERSIONS[v === '1.1' ? '2005' : '1.1']
  t.ok(r.text.includes(`"${V.wsd}"`) && r.text.includes(`"${V.wsa}"`), `${v} ${action}: namespaces of the version asked`)
  t.notOk(r.text.includes(O.wsd) || r.text.includes(`"${O.wsa}"`), `${v} ${action}: none of the other version`)
  t.match(r.text, PREFIXED_MESSAGE_ID, `${v} ${action}: prefixed urn:uuid MessageID`)
  t.match(r.text, new RegExp(`<[\\w.-]+:Action>${V.wsd.replace(/[./]/g, '\\$&')}/${action}</[\\w.-]+:Action>`), `${v} ${action}: Action`)
  t.match(r.text, /<[\w.-]+:AppSequence [^>]*InstanceId="\d+"[^>]*MessageNumber="\d+"/, `${v} ${action}: AppSequence with InstanceId and MessageNumber`)
  const m = r.msg!
  t.equal(m.version, v)
  t.equal(m.relatesTo, requestId, `${v} ${action}: RelatesTo is the request's MessageID`)
  t.match(m.messageId, UUID_URN)
  t.not(m.messageId, requestId)
  t.equal(m.to, V.anonymous, `${v} ${action}: To anonymous`)
  t.ok(m.appSequence !== undefined && m.appSequence.instanceId <= 4294967295 && m.appSequence.messageNumber > 0)
}

t.test('a TargetService on the wire', async (t) => {
  const epr = `urn:uuid:${randomUUID()}`
  const scopes = ['metaos://volume/a', 'metaos://zone/eu-1', 'metaos://hosting/process', 'ldap://dir.example/ou=eng,o=acme', `urn:uuid:${randomUUID()}`]
  const xaddrs = ['http://127.0.0.1:9/storage']
  const target = new TargetService({ epr, types: [STORAGE_DOMAIN_TYPE], scopes, xaddrs, interfaces: ['lo'] })
  await target.start()
  t.teardown(async () => { await target.stop() })
  await sleep(TIMING.UDP_UPPER_DELAY) // let the Hello repeats pass
  t.ok(Number.isSafeInteger(target.info.metadataVersion) && target.info.metadataVersion >= 1 && target.info.metadataVersion <= 4294967295, 'MetadataVersion: a positive 32-bit integer')

  await t.test('Probes in both versions: answers in the version asked; Types as QNames; Scopes by rule', async (t) => {
    const raw = await rawSocket(t)
    const m = '{urn:metaos:v1}'
    const cases: Array<{ name: string, v: WsdVersion, inner: string, extraNs?: string, answer: boolean }> = []
    for (const v of ['1.1', '2005'] as const) {
      const D = VERSIONS[v].wsd
      cases.push(
        { name: `${v}: empty Probe`, v, inner: '', answer: true },
        { name: `${v}: Types, prefix on Types`, v, inner: probeInner(v, { types: 'zz:StorageDomain', typesNs: ` xmlns:zz="${METAOS_TYPES_NS}"` }), answer: true },
        { name: `${v}: Types, prefix on the Envelope`, v, inner: probeInner(v, { types: 'mo:StorageDomain' }), extraNs: ` xmlns:mo="${METAOS_TYPES_NS}"`, answer: true },
        { name: `${v}: Types, unprefixed in a default namespace`, v, inner: probeInner(v, { types: 'StorageDomain', typesNs: ` xmlns="${METAOS_TYPES_NS}"` }), answer: true },
        { name: `${v}: Types in Clark notation (Mono)`, v, inner: probeInner(v, { types: `${m}StorageDomain` }), answer: true },
        { name: `${v}: Types and Scopes (default rule)`, v, inner: probeInner(v, { types: `${m}StorageDomain`, scopes: 'metaos://volume/a METAOS://ZONE/eu-1/' }), answer: true },
        { name: `${v}: Scopes prefix metaos://hosting`, v, inner: probeInner(v, { scopes: 'metaos://hosting' }), answer: true },
        { name: `${v}: Scopes strcmp0`, v, inner: probeInner(v, { scopes: 'metaos://zone/eu-1', matchBy: `${D}/strcmp0` }), answer: true },
        { name: `${v}: Scopes ldap`, v, inner: probeInner(v, { scopes: 'ldap://DIR.example/o=Acme', matchBy: `${D}/ldap` }), answer: true },
        { name: `${v}: Scopes uuid`, v, inner: probeInner(v, { scopes: `uuid:${scopes[4]!.slice('urn:uuid:'.length).toUpperCase()}`, matchBy: `${D}/uuid` }), answer: true },
        // no answer:
        { name: `${v}: other type`, v, inner: probeInner(v, { types: 'zz:NetworkDomain', typesNs: ` xmlns:zz="${METAOS_TYPES_NS}"` }), answer: false },
        { name: `${v}: same local name, other namespace`, v, inner: probeInner(v, { types: 'zz:StorageDomain', typesNs: ' xmlns:zz="urn:metaos:v2"' }), answer: false },
        { name: `${v}: one type matching, one not`, v, inner: probeInner(v, { types: 'zz:StorageDomain zz:NetworkDomain', typesNs: ` xmlns:zz="${METAOS_TYPES_NS}"` }), answer: false },
        { name: `${v}: other volume (/ab vs /a)`, v, inner: probeInner(v, { scopes: 'metaos://volume/ab' }), answer: false },
        { name: `${v}: one scope unmatched`, v, inner: probeInner(v, { scopes: 'metaos://volume/a metaos://zone/us' }), answer: false },
        { name: `${v}: strcmp0 on a prefix`, v, inner: probeInner(v, { scopes: 'metaos://zone', matchBy: `${D}/strcmp0` }), answer: false },
      )
    }
    cases.push({ name: '1.1: MatchBy none on a target with scopes', v: '1.1', inner: probeInner('1.1', { scopes: '', matchBy: `${W11.wsd}/none` }), answer: false })
    const ids = cases.map(() => id())
    for (const [i, c] of cases.entries()) await raw.send(probeXml(c.v, ids[i]!, c.inner, c.extraNs ?? ''))
    await sleep(ANSWER_WAIT_MS)
    for (const [i, c] of cases.entries()) {
      const answers = answersTo(raw, ids[i]!)
      if (!c.answer) { t.equal(answers.length, 0, `${c.name}: no answer within ${ANSWER_WAIT_MS} ms`); continue }
      t.ok(answers.length >= 1, `${c.name}: answered`)
      if (answers.length === 0) continue
      t.equal(new Set(answers.map((a) => a.msg!.messageId)).size, 1, `${c.name}: one answer (${answers.length} datagram(s), repeats share a MessageID)`)
      const a = answers[0]!
      t.equal(a.msg!.action, 'ProbeMatches')
      t.same(a.msg!.targets, [{ epr, types: [STORAGE_DOMAIN_TYPE], scopes, xaddrs, metadataVersion: target.info.metadataVersion }], `${c.name}: the target's metadata`)
      if (i === 0 || i === cases.findIndex((x) => x.v === '2005')) checkReply(t, a, c.v, ids[i]!, 'ProbeMatches')
      t.equal(a.from.address, '127.0.0.1')
    }
    const perAnswer = cases.flatMap((c, i) => c.answer ? [answersTo(raw, ids[i]!).length] : [])
    t.comment(`datagrams per unicast ProbeMatches: ${[...new Set(perAnswer)].sort().join(', ')} (expected ${1 + TIMING.UNICAST_UDP_REPEAT}: 1 + UNICAST_UDP_REPEAT), over ${perAnswer.length} answers`)
    t.ok(perAnswer.every((n) => n === 1 + TIMING.UNICAST_UDP_REPEAT), 'each answer sent 1 + UNICAST_UDP_REPEAT times')
    const numbers = raw.got.filter((r) => r.msg?.action === 'ProbeMatches').map((r) => r.msg!.appSequence!)
    t.equal(new Set(numbers.map((s) => s.instanceId)).size, 1, 'one InstanceId')
    t.equal(new Set(numbers.map((s) => s.messageNumber)).size, new Set(raw.got.filter((r) => r.msg?.action === 'ProbeMatches').map((r) => r.msg!.messageId)).size, 'one MessageNumber per answer')
  })

  await t.test('unknown MatchBy: the 1.1 fault; silence in 2005/04', async (t) => {
    const raw = await rawSocket(t)
    const id11 = id()
    const id05 = id()
    await raw.send(probeXml('1.1', id11, probeInner('1.1', { scopes: 'metaos://volume/a', matchBy: 'http://example.com/regex' })))
    await raw.send(probeXml('2005', id05, probeInner('2005', { scopes: 'metaos://volume/a', matchBy: 'http://example.com/regex' })))
    await sleep(ANSWER_WAIT_MS)
    const f = answersTo(raw, id11)
    t.ok(f.length >= 1, '1.1: answered')
    if (f.length > 0) {
      const r = f[0]!
      t.equal(r.msg!.action, 'Fault')
      t.equal(r.msg!.faultSubcode, `{${W11.wsd}}MatchingRuleNotSupported`, 'subcode MatchingRuleNotSupported')
      checkReply(t, r, '1.1', id11, 'fault')
      t.match(r.text, /<[\w.-]+:Value>[\w.-]+:Sender<\/[\w.-]+:Value>/, 'Code Sender')
      const supported = /<([\w.-]+:)?SupportedMatchingRules>([^<]*)</.exec(r.text)?.[2]?.split(/\s+/).filter((x) => x !== '')
      t.same(supported?.sort(), [...W11.matchRules].sort(), 'Detail: SupportedMatchingRules lists the 1.1 rules')
    }
    t.equal(answersTo(raw, id05).length, 0, '2005/04: no answer')
  })

  await t.test('Resolve by EPR, both versions', async (t) => {
    const raw = await rawSocket(t)
    const ids = { '1.1': id(), 2005: id() }
    const miss = { '1.1': id(), 2005: id() }
    for (const v of ['1.1', '2005'] as const) {
      await raw.send(resolveXml(v, ids[v], epr))
      await raw.send(resolveXml(v, miss[v], `urn:uuid:${randomUUID()}`))
    }
    await sleep(ANSWER_WAIT_MS)
    for (const v of ['1.1', '2005'] as const) {
      const a = answersTo(raw, ids[v])
      t.ok(a.length >= 1, `${v}: ResolveMatches`)
      if (a.length > 0) {
        t.equal(a[0]!.msg!.action, 'ResolveMatches')
        t.same(a[0]!.msg!.targets.map((x) => [x.epr, x.xaddrs]), [[epr, xaddrs]], `${v}: EPR and XAddrs`)
        checkReply(t, a[0]!, v, ids[v], 'ResolveMatches')
      }
      t.equal(answersTo(raw, miss[v]).length, 0, `${v}: another EPR → no answer`)
    }
  })

  await t.test('update(): MetadataVersion grows, a new Hello tells it, Probes see it', async (t) => {
    const cap = await rawSocket(t, { port: DISCOVERY_PORT, join: true })
    const before = target.info.metadataVersion
    target.update(['http://127.0.0.1:10/storage'])
    t.equal(target.info.metadataVersion, before + 1)
    await sleep(TIMING.UDP_UPPER_DELAY + 100)
    const hellos = cap.got.filter((r) => r.msg?.action === 'Hello' && r.msg.targets[0]?.epr === epr)
    t.same(new Set(hellos.map((r) => r.msg!.version)), new Set(['1.1', '2005']), 'Hello in both versions')
    t.ok(hellos.every((r) => r.msg!.targets[0]!.metadataVersion === before + 1 && r.msg!.targets[0]!.xaddrs[0] === 'http://127.0.0.1:10/storage'), 'with the new MetadataVersion and XAddrs')
    const raw = await rawSocket(t)
    const pid = id()
    await raw.send(probeXml('2005', pid, ''))
    await sleep(ANSWER_WAIT_MS)
    t.equal(answersTo(raw, pid)[0]?.msg?.targets[0]?.metadataVersion, before + 1, 'ProbeMatches carry it')
    target.update(xaddrs)
    await sleep(TIMING.UDP_UPPER_DELAY)
  })

  await t.test('duplicate MessageIDs are dropped', async (t) => {
    const raw = await rawSocket(t)
    const pid = id()
    const data = Buffer.from(probeXml('1.1', pid, ''))
    const dup0 = target.udp.stats.dropped.duplicate
    await raw.send(data)
    await sleep(20)
    await raw.send(data)
    await sleep(20)
    await raw.send(data)
    await sleep(ANSWER_WAIT_MS)
    t.equal(target.udp.stats.dropped.duplicate - dup0, 2, 'stats.dropped.duplicate counts the two copies')
    const answers = answersTo(raw, pid)
    t.equal(new Set(answers.map((a) => a.msg!.messageId)).size, 1, `answered once (${answers.length} datagram(s) with one MessageID)`)
  })

  await t.test('hostile datagrams are dropped and counted; the service still answers', async (t) => {
    const raw = await rawSocket(t)
    const s = target.udp.stats
    const malformed0 = s.dropped.malformed
    const received0 = s.received
    const wrap = (b: string, pre = ''): string => pre + `<s:Envelope xmlns:s="${SOAP12_NS}" xmlns:a="${W11.wsa}" xmlns:d="${W11.wsd}"><s:Header><a:MessageID>${id()}</a:MessageID></s:Header><s:Body>${b}</s:Body></s:Envelope>`
    const lol = '<!DOCTYPE lolz [<!ENTITY lol "lol">' + Array.from({ length: 9 }, (_, i) => `<!ENTITY lol${i + 1} "${`&lol${i === 0 ? '' : i};`.repeat(10)}">`).join('') + ']>'
    const hostile: Array<[string, Buffer]> = [
      ['garbage', randomBytes(300)],
      ['60 KB junk', Buffer.from('<'.repeat(10) + 'x'.repeat(60 * 1024))],
      ['60 KB of valid-looking XML', Buffer.from(wrap(`<d:Probe><d:Scopes>${'metaos://volume/a '.repeat(2000)}</d:Scopes><d:X>${'<y/>'.repeat(2500)}</d:X></d:Probe>`))],
      ['DTD bomb (billion laughs)', Buffer.from(wrap('<d:Probe><d:Scopes>&lol9;</d:Scopes></d:Probe>', lol))],
      ['external entity', Buffer.from(wrap('<d:Probe><d:Scopes>&xxe;</d:Scopes></d:Probe>', '<!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'))],
      ['1000-deep nesting', Buffer.from(wrap(`<d:Probe>${'<d:x>'.repeat(1000)}${'</d:x>'.repeat(1000)}</d:Probe>`))],
      ['no MessageID', Buffer.from(`<s:Envelope xmlns:s="${SOAP12_NS}"><s:Header/><s:Body><d:Probe xmlns:d="${W11.wsd}"/></s:Body></s:Envelope>`)],
      ['not WS-Discovery', Buffer.from(wrap('<x:Ping xmlns:x="urn:example"/>'))],
      ['empty', Buffer.alloc(0)],
    ]
    for (const [, data] of hostile) { await raw.send(data); await sleep(10) }
    await sleep(100)
    t.equal(s.received - received0, hostile.length, `all ${hostile.length} hostile datagrams received`)
    t.equal(s.dropped.malformed - malformed0, hostile.length, 'all counted in stats.dropped.malformed')
    t.comment(`hostile datagrams: ${hostile.map(([n]) => n).join(', ')} → dropped.malformed +${s.dropped.malformed - malformed0}`)

    // A flood: 5000 matching Probes, each with its own MessageID, as fast as the socket sends.
    const flood = await rawSocket(t)
    const received1 = s.received
    const droppedAnswers0 = target.droppedAnswers
    const started = Date.now()
    const sends: Array<Promise<void>> = []
    for (let i = 0; i < 5000; i++) {
      sends.push(flood.send(probeXml('1.1', id(), '')))
      if (i % 50 === 49) { await Promise.all(sends); sends.length = 0; await sleep(1) }
    }
    await Promise.all(sends)
    const sentMs = Date.now() - started
    await sleep(TIMING.APP_MAX_DELAY + TIMING.UDP_MAX_DELAY + 300) // the admitted answers (and their repeats) go out
    const heard = s.received - received1
    const answered = new Set(flood.got.filter((r) => r.msg?.action === 'ProbeMatches').map((r) => r.msg!.relatesTo)).size
    const shed = target.droppedAnswers - droppedAnswers0
    t.comment(`flood: 5000 Probes sent in ${sentMs} ms; the service heard ${heard} (the rest lost in the kernel's socket buffer), answered ${answered}, shed ${shed} (droppedAnswers); dropped=${JSON.stringify(s.dropped)}`)
    t.ok(heard > 64, 'the service heard the flood')
    t.ok(shed > 0, 'answers beyond the bound are shed and counted in droppedAnswers')
    t.equal(answered + shed, heard, 'every Probe heard is either answered or counted as shed')
    t.ok(answered <= heard, 'bounded answers')
    t.equal(target.udp.pendingTimers, 0, 'no timers left once the flood is over')

    const pid = id()
    await raw.send(probeXml('2005', pid, probeInner('2005', { types: 'mo:StorageDomain' }), ` xmlns:mo="${METAOS_TYPES_NS}"`))
    await sleep(ANSWER_WAIT_MS)
    t.equal(answersTo(raw, pid)[0]?.msg?.action, 'ProbeMatches', 'still answers a normal Probe afterwards')
  })
})

t.test('Hello at start and Bye at stop, in both versions, with their SOAP-over-UDP repeats', async (t) => {
  const cap = await rawSocket(t, { port: DISCOVERY_PORT, join: true })
  // Ten services at once: the repeat delays are random, so one stop alone could hide a race
  // between the repeats of the two versions' Byes and the closing of the socket.
  const services = Array.from({ length: 10 }, (_, i) => new TargetService({
    epr: `urn:uuid:${randomUUID()}`, types: [STORAGE_DOMAIN_TYPE], scopes: [`metaos://volume/v${i}`], xaddrs: [`http://127.0.0.1:${1000 + i}/storage`], interfaces: ['lo'],
  }))
  await Promise.all(services.map(async (s) => { await s.start() }))
  await sleep(TIMING.UDP_UPPER_DELAY + 200)
  const stopStarted = Date.now()
  await Promise.all(services.map(async (s) => { await s.stop() }))
  const stopMs = Date.now() - stopStarted
  await sleep(TIMING.UDP_UPPER_DELAY + 200)
  const expected = 1 + TIMING.MULTICAST_UDP_REPEAT
  const counts: string[] = []
  for (const [n, s] of services.entries()) {
    const mine = cap.got.filter((r) => r.msg !== undefined && (r.msg.action === 'Hello' || r.msg.action === 'Bye') && r.msg.targets[0]?.epr === s.info.epr)
    const byId = new Map<string, Rx[]>()
    for (const r of mine) byId.set(r.msg!.messageId, [...(byId.get(r.msg!.messageId) ?? []), r])
    const announcements = [...byId.values()].map((rs) => ({ action: rs[0]!.msg!.action, version: rs[0]!.msg!.version, seq: rs[0]!.msg!.appSequence!, datagrams: rs.length, first: rs[0]!, spreadMs: rs[rs.length - 1]!.at - rs[0]!.at }))
    const key = (a: { action: string, version: string }): string => `${a.action} ${a.version}`
    t.same(announcements.map(key).sort(), ['Bye 1.1', 'Bye 2005', 'Hello 1.1', 'Hello 2005'], `service ${n}: Hello and Bye in both versions`)
    counts.push(`service ${n}: ${announcements.map((a) => `${key(a)}=${a.datagrams}${a.datagrams > 1 ? ` (over ${a.spreadMs} ms)` : ''}`).join(', ')}`)
    for (const a of announcements) {
      t.equal(a.datagrams, expected, `service ${n}: ${key(a)} sent ${expected} times (1 + MULTICAST_UDP_REPEAT), got ${a.datagrams}`)
      const V = VERSIONS[a.version]
      t.equal(a.first.msg!.to, V.multicastTo, `service ${n}: ${key(a)} To the multicast URN of its version`)
      t.ok(a.first.text.includes(`"${V.wsa}"`) && !a.first.text.includes(VERSIONS[a.version === '1.1' ? '2005' : '1.1'].wsd), `service ${n}: ${key(a)} in its version's namespaces`)
      t.match(a.first.text, PREFIXED_MESSAGE_ID)
    }
    const hello = announcements.find((a) => a.action === 'Hello')
    if (hello !== undefined) t.same(hello.first.msg!.targets[0], s.info, `service ${n}: Hello carries Types, Scopes, XAddrs, MetadataVersion`)
    const seqs = announcements.map((a) => a.seq).sort((a, b) => a.messageNumber - b.messageNumber)
    t.equal(new Set(seqs.map((q) => q.instanceId)).size, 1, `service ${n}: one InstanceId`)
    t.ok(seqs[0]!.instanceId > 0 && seqs[0]!.instanceId <= 4294967295, `service ${n}: InstanceId within 32 bits`)
    t.equal(new Set(seqs.map((q) => q.messageNumber)).size, seqs.length, `service ${n}: distinct MessageNumbers`)
    const order = [...announcements].sort((a, b) => a.seq.messageNumber - b.seq.messageNumber).map((a) => a.action)
    t.same(order, ['Hello', 'Hello', 'Bye', 'Bye'], `service ${n}: MessageNumber increases from the Hellos to the Byes`)
  }
  t.comment(`datagrams per announcement (expected ${expected} each; stop() took ${stopMs} ms):`)
  for (const c of counts) t.comment(`  ${c}`)
  t.ok(services.every((s) => s.udp.pendingTimers === 0), 'no timers left after stop()')
})
