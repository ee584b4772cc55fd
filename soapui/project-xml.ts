// Writers for the parts of a SoapUI 5.x project file (namespace http://eviware.com/soapui/config):
// WSDL interfaces with their cached definition, operations and calls, test suites, request and
// property-transfer steps, assertions, and mock services. Element names, attribute names and their
// order follow what SoapUI 5 itself saves, so the file opens in SoapUI as if SoapUI had written it.
// Pure string building: knows nothing of metaos's services (build-project.ts feeds it).
import { createHash } from 'node:crypto'
import { escapeXml } from '../soap-runtime/xml.js'

export const CON_NS = 'http://eviware.com/soapui/config'
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance'
export const SOAP_ENV = { '1.1': 'http://schemas.xmlsoap.org/soap/envelope/', '1.2': 'http://www.w3.org/2003/05/soap-envelope' } as const
export type SoapVersion = keyof typeof SOAP_ENV

/** SoapUI's assertion type ids. Beware SoapUI's own naming: "SOAP Fault Assertion" is the *Not* SOAP Fault assertion and "Not SOAP Fault Assertion" the SOAP Fault one (NotSoapFaultAssertion.ID / SoapFaultAssertion.ID). */
export const ASSERTION_ID = {
  'SOAP Response': 'SOAP Response',
  'Not SOAP Fault': 'SOAP Fault Assertion',
  'SOAP Fault': 'Not SOAP Fault Assertion',
  'Simple Contains': 'Simple Contains',
  'XPath Match': 'XPath Match',
} as const

export type Assertion =
  | { readonly kind: 'SOAP Response' | 'Not SOAP Fault' | 'SOAP Fault' }
  | { readonly kind: 'Simple Contains', readonly token: string, readonly ignoreCase?: boolean }
  | { readonly kind: 'XPath Match', readonly name: string, readonly namespaces: Readonly<Record<string, string>>, readonly path: string, readonly content: string, readonly allowWildcards?: boolean }

export interface Transfer {
  readonly name: string
  readonly sourceStep: string
  readonly namespaces: Readonly<Record<string, string>>
  readonly path: string
  /** `#TestCase#`, `#TestSuite#` or `#Project#` */
  readonly targetStep: string
  readonly targetProperty: string
}

/** A stable UUID from names (SoapUI wants ids; stable ones keep the generated file reproducible). */
export function stableId (...parts: string[]): string {
  const x = createHash('sha1').update(['metaos-soapui', ...parts].join('\0')).digest('hex')
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-5${x.slice(13, 16)}-${((parseInt(x.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${x.slice(18, 20)}-${x.slice(20, 32)}`
}

export function cdata (s: string): string {
  return `<![CDATA[${s.replaceAll(']]>', ']]]]><![CDATA[>')}]]>`
}

/** XPath text as SoapUI writes it: one `declare namespace p='uri';` line per prefix, then the path. */
export function xpathText (namespaces: Readonly<Record<string, string>>, path: string): string {
  return Object.entries(namespaces).map(([p, uri]) => `declare namespace ${p}='${uri}';\n`).join('') + path
}

export function properties (props: ReadonlyArray<readonly [string, string]>, indent: string): string {
  if (props.length === 0) return `${indent}<con:properties/>\n`
  return `${indent}<con:properties>\n` +
    props.map(([n, v]) => `${indent}  <con:property><con:name>${escapeXml(n)}</con:name>${v === '' ? '<con:value/>' : `<con:value>${escapeXml(v)}</con:value>`}</con:property>\n`).join('') +
    `${indent}</con:properties>\n`
}

export function assertionXml (a: Assertion, id: string, indent: string): string {
  const type = ASSERTION_ID[a.kind]
  switch (a.kind) {
    case 'SOAP Response': case 'Not SOAP Fault': case 'SOAP Fault':
      return `${indent}<con:assertion type="${type}" id="${id}" name="${a.kind}"/>\n`
    case 'Simple Contains':
      return `${indent}<con:assertion type="${type}" id="${id}" name="Contains ${escapeXml(a.token)}">\n` +
        `${indent}  <con:configuration><token>${escapeXml(a.token)}</token><ignoreCase>${a.ignoreCase === true}</ignoreCase><useRegEx>false</useRegEx></con:configuration>\n` +
        `${indent}</con:assertion>\n`
    case 'XPath Match':
      return `${indent}<con:assertion type="${type}" id="${id}" name="${escapeXml(a.name)}">\n` +
        `${indent}  <con:configuration>\n` +
        `${indent}    <path>${escapeXml(xpathText(a.namespaces, a.path))}</path>\n` +
        `${indent}    <content>${escapeXml(a.content)}</content>\n` +
        `${indent}    <allowWildcards>${a.allowWildcards === true}</allowWildcards>\n` +
        `${indent}    <ignoreNamspaceDifferences>false</ignoreNamspaceDifferences>\n` +
        `${indent}    <ignoreComments>false</ignoreComments>\n` +
        `${indent}  </con:configuration>\n` +
        `${indent}</con:assertion>\n`
  }
}

/** The body of a `con:call` or a test step's `con:request` (same schema type in SoapUI). */
export function requestBody (o: { endpoint: string, envelope: string, action: string, assertions?: readonly Assertion[], idBase: string }, indent: string): string {
  return `${indent}<con:settings/>\n` +
    `${indent}<con:encoding>UTF-8</con:encoding>\n` +
    `${indent}<con:endpoint>${escapeXml(o.endpoint)}</con:endpoint>\n` +
    `${indent}<con:request>${cdata(o.envelope)}</con:request>\n` +
    (o.assertions ?? []).map((a, i) => assertionXml(a, stableId(o.idBase, 'assertion', String(i)), indent)).join('') +
    `${indent}<con:credentials><con:authType>No Authorization</con:authType></con:credentials>\n` +
    `${indent}<con:jmsConfig JMSDeliveryMode="PERSISTENT"/>\n` +
    `${indent}<con:jmsPropertyConfig/>\n` +
    `${indent}<con:wsaConfig mustUnderstand="NONE" version="200508" action="${escapeXml(o.action)}"/>\n` +
    `${indent}<con:wsrmConfig version="1.2"/>\n`
}

export interface InterfaceSpec {
  readonly name: string
  readonly bindingQName: string
  readonly soapVersion: SoapVersion
  readonly definitionUrl: string
  readonly wsdlText: string
  readonly endpoint: string
  readonly operations: ReadonlyArray<{ readonly name: string, readonly action: string, readonly callName: string, readonly envelope: string }>
}

export function interfaceXml (i: InterfaceSpec): string {
  const ops = i.operations.map((op) => {
    const base = `${i.name}/${op.name}`
    return `    <con:operation id="${stableId(base)}" isOneWay="false" action="${escapeXml(op.action)}" name="${op.name}" bindingOperationName="${op.name}" type="Request-Response" inputName="" receivesAttachments="false" sendsAttachments="false" anonymous="optional">\n` +
      '      <con:settings/>\n' +
      `      <con:call id="${stableId(base, 'call')}" name="${escapeXml(op.callName)}">\n` +
      requestBody({ endpoint: i.endpoint, envelope: op.envelope, action: op.action, idBase: `${base}/call` }, '        ') +
      '      </con:call>\n' +
      '    </con:operation>\n'
  }).join('')
  return `  <con:interface xsi:type="con:WsdlInterface" id="${stableId(i.name)}" wsaVersion="NONE" name="${i.name}" type="wsdl" bindingName="${escapeXml(i.bindingQName)}" soapVersion="${i.soapVersion === '1.1' ? '1_1' : '1_2'}" anonymous="optional" definition="${escapeXml(i.definitionUrl)}" xmlns:xsi="${XSI_NS}">\n` +
    '    <con:settings/>\n' +
    `    <con:definitionCache type="TEXT" rootPart="${escapeXml(i.definitionUrl)}">\n` +
    '      <con:part>\n' +
    `        <con:url>${escapeXml(i.definitionUrl)}</con:url>\n` +
    `        <con:content>${cdata(i.wsdlText)}</con:content>\n` +
    '        <con:type>http://schemas.xmlsoap.org/wsdl/</con:type>\n' +
    '      </con:part>\n' +
    '    </con:definitionCache>\n' +
    `    <con:endpoints>\n      <con:endpoint>${escapeXml(i.endpoint)}</con:endpoint>\n    </con:endpoints>\n` +
    ops +
    '  </con:interface>\n'
}

export function requestStepXml (o: { caseId: string, name: string, interfaceName: string, operation: string, endpoint: string, envelope: string, action: string, assertions: readonly Assertion[] }): string {
  const base = `${o.caseId}/${o.name}`
  return `      <con:testStep type="request" name="${escapeXml(o.name)}" id="${stableId(base)}">\n` +
    '        <con:settings/>\n' +
    `        <con:config xsi:type="con:RequestStep" xmlns:xsi="${XSI_NS}">\n` +
    `          <con:interface>${o.interfaceName}</con:interface>\n` +
    `          <con:operation>${o.operation}</con:operation>\n` +
    `          <con:request name="${escapeXml(o.name)}" id="${stableId(base, 'request')}">\n` +
    requestBody({ endpoint: o.endpoint, envelope: o.envelope, action: o.action, assertions: o.assertions, idBase: base }, '            ') +
    '          </con:request>\n' +
    '        </con:config>\n' +
    '      </con:testStep>\n'
}

export function transferStepXml (o: { caseId: string, name: string, transfers: readonly Transfer[] }): string {
  return `      <con:testStep type="transfer" name="${escapeXml(o.name)}" id="${stableId(o.caseId, o.name)}">\n` +
    '        <con:settings/>\n' +
    `        <con:config xsi:type="con:PropertyTransfersStep" xmlns:xsi="${XSI_NS}">\n` +
    o.transfers.map((t) =>
      '          <con:transfers setNullOnMissingSource="false" transferTextContent="true" failOnError="true" ignoreEmpty="false" transferToAll="false" entitize="false" transferChildNodes="false">\n' +
      `            <con:name>${escapeXml(t.name)}</con:name>\n` +
      '            <con:sourceType>Response</con:sourceType>\n' +
      `            <con:sourceStep>${escapeXml(t.sourceStep)}</con:sourceStep>\n` +
      `            <con:sourcePath>${escapeXml(xpathText(t.namespaces, t.path))}</con:sourcePath>\n` +
      `            <con:targetType>${escapeXml(t.targetProperty)}</con:targetType>\n` +
      `            <con:targetStep>${escapeXml(t.targetStep)}</con:targetStep>\n` +
      '            <con:targetPath/>\n' +
      '            <con:type>XPATH</con:type>\n' +
      '            <con:targetTransferType>XPATH</con:targetTransferType>\n' +
      '            <con:upgraded>true</con:upgraded>\n' +
      '          </con:transfers>\n').join('') +
    '        </con:config>\n' +
    '      </con:testStep>\n'
}

export function testCaseXml (o: { suiteName: string, name: string, steps: readonly string[], properties: ReadonlyArray<readonly [string, string]> }): string {
  return `    <con:testCase id="${stableId(o.suiteName, o.name)}" failOnError="true" failTestCaseOnErrors="true" keepSession="false" maxResults="0" name="${escapeXml(o.name)}" searchProperties="true">\n` +
    '      <con:settings/>\n' +
    o.steps.join('') +
    properties(o.properties, '      ') +
    '    </con:testCase>\n'
}

export function testSuiteXml (o: { name: string, cases: readonly string[] }): string {
  return `  <con:testSuite id="${stableId(o.name)}" name="${escapeXml(o.name)}">\n` +
    '    <con:settings/>\n' +
    '    <con:runType>SEQUENTIAL</con:runType>\n' +
    o.cases.join('') +
    '    <con:properties/>\n' +
    '  </con:testSuite>\n'
}

export interface MockResponse { readonly name: string, readonly status: number, readonly content: string }

export function mockServiceXml (o: { name: string, path: string, port: number, interfaceName: string, operations: ReadonlyArray<{ readonly name: string, readonly responses: readonly MockResponse[] }> }): string {
  const ops = o.operations.map((op) => {
    const base = `${o.name}/${op.name}`
    return `    <con:mockOperation name="${op.name}" id="${stableId(base)}" interface="${o.interfaceName}" operation="${op.name}">\n` +
      '      <con:settings/>\n' +
      `      <con:defaultResponse>${escapeXml(op.responses[0]!.name)}</con:defaultResponse>\n` +
      '      <con:dispatchStyle>SEQUENCE</con:dispatchStyle>\n' +
      op.responses.map((r) =>
        `      <con:response name="${escapeXml(r.name)}" id="${stableId(base, r.name)}" httpResponseStatus="${r.status}" encoding="UTF-8">\n` +
        '        <con:settings/>\n' +
        `        <con:responseContent>${cdata(r.content)}</con:responseContent>\n` +
        '      </con:response>\n').join('') +
      '      <con:dispatchConfig/>\n' +
      '    </con:mockOperation>\n'
  }).join('')
  return `  <con:mockService id="${stableId(o.name)}" port="${o.port}" path="${escapeXml(o.path)}" host="localhost" name="${escapeXml(o.name)}" bindToHostOnly="false" docroot="">\n` +
    '    <con:settings>\n' +
    '      <con:setting id="com.eviware.soapui.impl.wsdl.mock.WsdlMockService@require-soap-action">false</con:setting>\n' +
    '    </con:settings>\n' +
    '    <con:properties/>\n' +
    ops +
    '  </con:mockService>\n'
}

export function projectXml (o: { name: string, description: string, interfaces: readonly string[], suites: readonly string[], mocks: readonly string[], properties: ReadonlyArray<readonly [string, string]> }): string {
  return '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<con:soapui-project id="${stableId(o.name)}" activeEnvironment="Default" name="${escapeXml(o.name)}" resourceRoot="" soapui-version="5.7.0" abortOnError="false" runType="SEQUENTIAL" xmlns:con="${CON_NS}">\n` +
    `  <con:description>${escapeXml(o.description)}</con:description>\n` +
    '  <con:settings/>\n' +
    o.interfaces.join('') +
    o.suites.join('') +
    o.mocks.join('') +
    properties(o.properties, '  ') +
    '  <con:wssContainer/>\n' +
    '  <con:oAuth2ProfileContainer/>\n' +
    '  <con:oAuth1ProfileContainer/>\n' +
    '</con:soapui-project>\n'
}
