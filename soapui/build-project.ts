#!/usr/bin/env node
// `npm run soapui:project`: builds soapui/metaos-soapui-project.xml from wsdl/StorageService.wsdl,
// wsdl/NetworkService.wsdl and the test plan (test-plan.ts). Every binding of both WSDLs becomes a
// SoapUI interface with the WSDL cached (the project opens offline) and one request per
// operation; each service gets a test suite; the storage service gets a mock service. The
// operations, SOAPActions and element shapes all come from the WSDLs, so the file stays in step
// with them (test/interop/soapui-project.test.ts fails when the committed file is stale).
import { readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { readWsdl } from '../soap-runtime/codegen/wsdl-reader.js'
import type { FieldDescriptor, FieldType, ServiceDescriptor } from '../soap-runtime/descriptor.js'
import { escapeXml, parseXml, type XmlElement } from '../soap-runtime/xml.js'
import { PACKAGE_ROOT } from '../wsdl/package-root.js'
import {
  SOAP_ENV, interfaceXml, mockServiceXml, projectXml, requestStepXml, testCaseXml, testSuiteXml, transferStepXml,
  type MockResponse, type SoapVersion,
} from './project-xml.js'
import { MOCK_FAULTS, MOCK_PORT, NETWORK_PLAN, PROJECT_PROPERTIES, REQUEST_PREFIX, STORAGE_PLAN, type Fields, type ServicePlan } from './test-plan.js'

export const PROJECT_FILE = join('soapui', 'metaos-soapui-project.xml')
const WSDL_NS = 'http://schemas.xmlsoap.org/wsdl/'
const BINDING_NS: Record<string, SoapVersion> = { 'http://schemas.xmlsoap.org/wsdl/soap/': '1.1', 'http://schemas.xmlsoap.org/wsdl/soap12/': '1.2' }

export interface Binding {
  readonly name: string
  readonly version: SoapVersion
  /** operation name → soapAction, in WSDL order */
  readonly actions: ReadonlyMap<string, string>
}

/** The SOAP-over-HTTP bindings of a WSDL (what SoapUI makes interfaces of). */
export function readBindings (wsdlText: string): Binding[] {
  const defs = parseXml(wsdlText, { maxDepth: 64, maxElements: 1_000_000 })
  const out: Binding[] = []
  for (const b of defs.children.filter((c) => c.ns === WSDL_NS && c.local === 'binding')) {
    const kind = b.children.find((c) => c.local === 'binding' && BINDING_NS[c.ns] !== undefined)
    // SOAP over HTTP only: a callback binding on a framed session (NetworkCallbackBinding) is the domain's to call, not SoapUI's.
    if (kind === undefined || kind.attrs.transport !== 'http://schemas.xmlsoap.org/soap/http') continue
    const actions = new Map<string, string>()
    for (const op of b.children.filter((c) => c.ns === WSDL_NS && c.local === 'operation')) {
      const soapOp = op.children.find((c: XmlElement) => c.local === 'operation' && c.ns === kind.ns)
      actions.set(op.attrs.name!, soapOp?.attrs.soapAction ?? '')
    }
    out.push({ name: b.attrs.name!, version: BINDING_NS[kind.ns]!, actions })
  }
  return out
}

export function envelope (version: SoapVersion, ns: string, body: string): string {
  const env = version === '1.1' ? 'soapenv' : 'soap'
  return `<${env}:Envelope xmlns:${env}="${SOAP_ENV[version]}" xmlns:${REQUEST_PREFIX}="${ns}">\n` +
    `   <${env}:Header/>\n   <${env}:Body>\n${body}   </${env}:Body>\n</${env}:Envelope>`
}

/** `<urn:Op>` with one child per field of the WSDL's element, valued from `fields` (a missing required field is an error). */
export function requestElement (d: ServiceDescriptor, op: string, fields: Fields, where: string): string {
  const shape = d.types[op] ?? []
  for (const k of Object.keys(fields)) if (!shape.some((f) => f.name === k)) throw new Error(`${where}: ${op} has no field ${k} in the WSDL`)
  const p = REQUEST_PREFIX
  const kids = shape.map((f) => {
    const v = fields[f.name]
    if (v === undefined) {
      if (f.optional || f.repeated) return ''
      throw new Error(`${where}: no value for ${op}.${f.name} (add it to soapui/test-plan.ts)`)
    }
    return (typeof v === 'string' ? [v] : v).map((x) => `         <${p}:${f.name}>${x}</${p}:${f.name}>\n`).join('')
  }).join('')
  return kids === '' ? `      <${p}:${op}/>\n` : `      <${p}:${op}>\n${kids}      </${p}:${op}>\n`
}

// Mock responses: every element filled from its schema type with recognisable values.
function sampleValue (d: ServiceDescriptor, t: FieldType, name: string, depth: number): string {
  switch (t.kind) {
    case 'simple':
      switch (t.name) {
        case 'string': return name === 'handle' || name === 'socket' || name === 'listener' ? `mock-${name}-0001` : `mock-${name}`
        case 'int': case 'long': return '13'
        case 'boolean': return 'true'
        case 'base64': return 'aGVsbG8sIFNvYXBVSQ=='
        case 'dateTime': return '2024-01-01T00:00:00Z'
        case 'double': return '1.5'
      }
      break
    case 'enum': return t.values[0]!
    case 'complex': return sampleContent(d, d.types[t.name]!, depth + 1)
    case 'choice': { const e = t.elements[0]!; return `<${e}>${sampleContent(d, d.types[e] ?? [], depth + 1)}</${e}>` }
  }
  throw new Error(`no sample for ${JSON.stringify(t)}`)
}
function sampleContent (d: ServiceDescriptor, fields: readonly FieldDescriptor[], depth: number): string {
  if (depth > 4) return ''
  return fields.filter((f) => !f.optional || f.repeated).map((f) => `<${f.name}>${sampleValue(d, f.type, f.name, depth)}</${f.name}>`).join('')
}

export function mockSuccess (d: ServiceDescriptor, op: string): string {
  const out = d.operations[op]!.output
  return `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV['1.1']}">\n   <soapenv:Header><ServiceTiming xmlns="${d.namespace}">0</ServiceTiming></soapenv:Header>\n` +
    `   <soapenv:Body>\n      <${out} xmlns="${d.namespace}">${sampleContent(d, d.types[out] ?? [], 0)}</${out}>\n   </soapenv:Body>\n</soapenv:Envelope>`
}

export function mockFault (d: ServiceDescriptor, op: string, code: string): string {
  const fault = d.operations[op]!.fault
  return `<soapenv:Envelope xmlns:soapenv="${SOAP_ENV['1.1']}">\n   <soapenv:Header><ServiceTiming xmlns="${d.namespace}">0</ServiceTiming></soapenv:Header>\n   <soapenv:Body>\n` +
    `      <soapenv:Fault><faultcode>soapenv:Client</faultcode><faultstring>${escapeXml(`${code} (mock service)`)}</faultstring>` +
    `<detail><${fault} xmlns="${d.namespace}"><code>${code}</code><message>${escapeXml(`${code} (mock service)`)}</message></${fault}></detail></soapenv:Fault>\n` +
    '   </soapenv:Body>\n</soapenv:Envelope>'
}

interface ServiceParts { interfaces: string[], suite: string, mock?: string }

function buildService (plan: ServicePlan, wsdlDir: string, withMock: boolean): ServiceParts {
  const wsdlText = readFileSync(join(wsdlDir, plan.wsdl), 'utf8')
  const d = readWsdl(wsdlText).descriptor
  const bindings = readBindings(wsdlText)
  const soap11 = bindings.find((b) => b.version === '1.1')
  const soap12 = bindings.find((b) => b.version === '1.2')
  if (soap11 === undefined || soap12 === undefined) throw new Error(`${plan.wsdl}: a SOAP 1.1 and a SOAP 1.2 binding are expected`)
  const endpoint = `\${#Project#${plan.endpointProperty}}`
  const path = plan.endpointProperty === 'storageEndpoint' ? '/storage' : '/network'
  const definitionUrl = `http://127.0.0.1:${plan.endpointProperty === 'storageEndpoint' ? 8080 : 8081}${path}?wsdl`

  const interfaces = bindings.map((b) => interfaceXml({
    name: b.name,
    bindingQName: `{${d.namespace}}${b.name}`,
    soapVersion: b.version,
    definitionUrl,
    wsdlText,
    endpoint,
    operations: [...b.actions].map(([op, action]) => {
      const sample = plan.samples[op]
      if (sample === undefined) throw new Error(`${plan.wsdl}: operation ${op} has no sample request in soapui/test-plan.ts`)
      return { name: op, action, callName: 'Request 1', envelope: envelope(b.version, d.namespace, requestElement(d, op, sample, `${b.name} ${op}`)) }
    }),
  }))

  const cases = plan.cases.map((c) => {
    const caseId = `${plan.suiteName}/${c.name}`
    const steps = c.steps.map((s) => {
      if (s.kind === 'transfer') return transferStepXml({ caseId, name: s.name, transfers: s.transfers })
      const b = s.soap12 === true ? soap12 : soap11
      const action = b.actions.get(s.operation)
      if (action === undefined) throw new Error(`${caseId}: step "${s.name}" calls ${s.operation}, which ${b.name} does not have`)
      return requestStepXml({
        caseId, name: s.name, interfaceName: b.name, operation: s.operation, endpoint, action,
        envelope: envelope(b.version, d.namespace, requestElement(d, s.operation, s.fields, `${caseId} "${s.name}"`)),
        assertions: s.assertions,
      })
    })
    return testCaseXml({ suiteName: plan.suiteName, name: c.name, steps, properties: c.properties })
  })
  const suite = testSuiteXml({ name: plan.suiteName, cases })

  if (!withMock) return { interfaces, suite }
  const mock = mockServiceXml({
    name: `${d.name} Mock`,
    path: `/mock${soap11.name}`,
    port: MOCK_PORT,
    interfaceName: soap11.name,
    operations: [...soap11.actions.keys()].map((op) => {
      const responses: MockResponse[] = [{ name: `${op}Response`, status: 200, content: mockSuccess(d, op) }]
      const code = MOCK_FAULTS[op]
      if (code !== undefined) responses.push({ name: `${code} fault`, status: 500, content: mockFault(d, op, code) })
      return { name: op, responses }
    }),
  })
  return { interfaces, suite, mock }
}

export function buildProject (wsdlDir = join(PACKAGE_ROOT, 'wsdl')): string {
  const storage = buildService(STORAGE_PLAN, wsdlDir, true)
  const network = buildService(NETWORK_PLAN, wsdlDir, false)
  return projectXml({
    name: 'metaos',
    description: 'metaos storage and network services (wsdl/StorageService.wsdl, wsdl/NetworkService.wsdl). Generated by `npm run soapui:project` (soapui/build-project.ts); see docs/soapui.md.',
    interfaces: [...storage.interfaces, ...network.interfaces],
    suites: [storage.suite, network.suite],
    mocks: storage.mock === undefined ? [] : [storage.mock],
    properties: PROJECT_PROPERTIES,
  })
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) {
  const out = join(PACKAGE_ROOT, PROJECT_FILE)
  writeFileSync(out, buildProject())
  process.stdout.write(`wrote ${PROJECT_FILE}\n`)
}
