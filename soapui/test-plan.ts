// What the SoapUI project holds beyond the WSDLs: the sample values of each operation's request
// (the interface's "Request 1"), the functional test cases (steps, transfers, assertions) and the
// project properties they expand. Data only; build-project.ts turns it into the project file
// against the operations and element shapes read from wsdl/, so a field added to the WSDL without
// a sample here stops the build with its name.
import type { Assertion, Transfer } from './project-xml.js'

export const STORAGE_NS = 'urn:metaos:storage:v1'
export const NETWORK_NS = 'urn:metaos:network:v1'
/** Prefix of the service namespace in request envelopes (what SoapUI itself picks for urn: namespaces). */
export const REQUEST_PREFIX = 'urn'

/** A field's value: raw XML content (property expansions allowed); an array for a repeated field. */
export type Fields = Readonly<Record<string, string | readonly string[]>>

export interface RequestStepSpec {
  readonly kind: 'request'
  readonly name: string
  readonly operation: string
  /** The SOAP 1.2 interface instead of the SOAP 1.1 one. */
  readonly soap12?: boolean
  readonly fields: Fields
  readonly assertions: readonly Assertion[]
}
export interface TransferStepSpec { readonly kind: 'transfer', readonly name: string, readonly transfers: readonly Transfer[] }
export type StepSpec = RequestStepSpec | TransferStepSpec

export interface TestCaseSpec {
  readonly name: string
  readonly properties: ReadonlyArray<readonly [string, string]>
  readonly steps: readonly StepSpec[]
}

export interface ServicePlan {
  readonly wsdl: string
  readonly namespace: string
  /** Prefix the XPath expressions of this service declare. */
  readonly xpathPrefix: string
  readonly endpointProperty: string
  readonly suiteName: string
  readonly samples: Readonly<Record<string, Fields>>
  readonly cases: readonly TestCaseSpec[]
}

const HELLO = 'aGVsbG8sIFNvYXBVSQ==' // "hello, SoapUI", 13 bytes
const S = { s: STORAGE_NS }
const N = { n: NETWORK_NS }
const u = REQUEST_PREFIX

const soapOk: readonly Assertion[] = [{ kind: 'SOAP Response' }, { kind: 'Not SOAP Fault' }]
const sEq = (path: string, content: string, allowWildcards = false): Assertion => ({ kind: 'XPath Match', name: `${path} = ${content}`, namespaces: S, path, content, allowWildcards })
const nEq = (path: string, content: string, allowWildcards = false): Assertion => ({ kind: 'XPath Match', name: `${path} = ${content}`, namespaces: N, path, content, allowWildcards })
const storageFault = (code: string): readonly Assertion[] => [{ kind: 'SOAP Response' }, { kind: 'SOAP Fault' }, sEq('//s:StorageFault/s:code', code)]
const networkFault = (code: string): readonly Assertion[] => [{ kind: 'SOAP Response' }, { kind: 'SOAP Fault' }, nEq('//n:NetworkFault/n:code', code)]

const H = '${#TestCase#handle}'
const P = '${#TestCase#path}'

export const STORAGE_PLAN: ServicePlan = {
  wsdl: 'StorageService.wsdl',
  namespace: STORAGE_NS,
  xpathPrefix: 's',
  endpointProperty: 'storageEndpoint',
  suiteName: 'StorageService TestSuite',
  samples: {
    Open: { path: 'soapui-sample.txt', mode: 'OpenOrCreate', access: 'ReadWrite', share: 'None' },
    Read: { handle: '${#Project#handle}', count: '1024' },
    Write: { handle: '${#Project#handle}', data: HELLO },
    Seek: { handle: '${#Project#handle}', offset: '0', origin: 'Begin' },
    Flush: { handle: '${#Project#handle}', flushToDisk: 'true' },
    SetLength: { handle: '${#Project#handle}', length: '0' },
    GetLength: { handle: '${#Project#handle}' },
    Close: { handle: '${#Project#handle}' },
    Delete: { path: 'soapui-sample.txt' },
    GetFileInfo: { path: 'soapui-sample.txt' },
    ListDirectory: { path: '' },
    Batch: { op: [`<${u}:GetFileInfo><${u}:path>soapui-sample.txt</${u}:path></${u}:GetFileInfo>`, `<${u}:ListDirectory><${u}:path></${u}:path></${u}:ListDirectory>`] },
    GetDomainInfo: {},
  },
  cases: [
    {
      name: 'File lifecycle',
      properties: [['path', 'soapui-test.txt'], ['handle', '']],
      steps: [
        { kind: 'request', name: 'Open (CreateNew)', operation: 'Open', fields: { path: P, mode: 'CreateNew', access: 'ReadWrite', share: 'None' }, assertions: [...soapOk, sEq('//s:OpenResponse/s:length', '0'), sEq('//s:OpenResponse/s:position', '0')] },
        { kind: 'transfer', name: 'Transfer handle', transfers: [{ name: 'handle', sourceStep: 'Open (CreateNew)', namespaces: S, path: '//s:OpenResponse/s:handle', targetStep: '#TestCase#', targetProperty: 'handle' }] },
        { kind: 'request', name: 'Write', operation: 'Write', fields: { handle: H, data: HELLO }, assertions: [...soapOk, sEq('//s:WriteResponse/s:written', '13'), sEq('//s:WriteResponse/s:position', '13')] },
        { kind: 'request', name: 'Seek to the start', operation: 'Seek', fields: { handle: H, offset: '0', origin: 'Begin' }, assertions: [...soapOk, sEq('//s:SeekResponse/s:position', '0')] },
        { kind: 'request', name: 'Read', operation: 'Read', fields: { handle: H, count: '1024' }, assertions: [...soapOk, sEq('//s:ReadResponse/s:data', HELLO), sEq('//s:ReadResponse/s:eof', 'true'), { kind: 'Simple Contains', token: HELLO }] },
        { kind: 'request', name: 'GetLength', operation: 'GetLength', fields: { handle: H }, assertions: [...soapOk, sEq('//s:GetLengthResponse/s:length', '13')] },
        { kind: 'request', name: 'Flush to disk', operation: 'Flush', fields: { handle: H, flushToDisk: 'true' }, assertions: [...soapOk, { kind: 'Simple Contains', token: 'FlushResponse' }] },
        { kind: 'request', name: 'SetLength 5', operation: 'SetLength', fields: { handle: H, length: '5' }, assertions: [...soapOk, { kind: 'Simple Contains', token: 'SetLengthResponse' }] },
        { kind: 'request', name: 'GetLength after SetLength', operation: 'GetLength', fields: { handle: H }, assertions: [...soapOk, sEq('//s:GetLengthResponse/s:length', '5')] },
        { kind: 'request', name: 'Close', operation: 'Close', fields: { handle: H }, assertions: [...soapOk, { kind: 'Simple Contains', token: 'CloseResponse' }] },
        { kind: 'request', name: 'GetFileInfo', operation: 'GetFileInfo', fields: { path: P }, assertions: [...soapOk, sEq('//s:GetFileInfoResponse/s:exists', 'true'), sEq('//s:GetFileInfoResponse/s:isDirectory', 'false'), sEq('//s:GetFileInfoResponse/s:length', '5')] },
        { kind: 'request', name: 'ListDirectory', operation: 'ListDirectory', fields: { path: '' }, assertions: [...soapOk, sEq('//s:ListDirectoryResponse/s:entry/s:name', P)] },
        {
          kind: 'request',
          name: 'Batch (GetFileInfo, Delete of a missing file, ListDirectory)',
          operation: 'Batch',
          fields: { op: [`<${u}:GetFileInfo><${u}:path>${P}</${u}:path></${u}:GetFileInfo>`, `<${u}:Delete><${u}:path>no-such-file.txt</${u}:path></${u}:Delete>`, `<${u}:ListDirectory><${u}:path></${u}:path></${u}:ListDirectory>`] },
          assertions: [...soapOk, sEq('//s:BatchResponse/s:result/s:GetFileInfoResponse/s:length', '5'), sEq('//s:BatchResponse/s:result/s:StorageFault/s:code', 'FILE_NOT_FOUND'), sEq('//s:BatchResponse/s:result/s:ListDirectoryResponse/s:entry/s:name', P)],
        },
        { kind: 'request', name: 'Delete', operation: 'Delete', fields: { path: P }, assertions: [...soapOk, { kind: 'Simple Contains', token: 'DeleteResponse' }] },
        { kind: 'request', name: 'GetFileInfo after Delete', operation: 'GetFileInfo', fields: { path: P }, assertions: [...soapOk, sEq('//s:GetFileInfoResponse/s:exists', 'false')] },
        { kind: 'request', name: 'GetDomainInfo (SOAP 1.2)', operation: 'GetDomainInfo', soap12: true, fields: {}, assertions: [...soapOk, sEq('//s:GetDomainInfoResponse/s:runtime', 'node/*', true), sEq('//s:GetDomainInfoResponse/s:domainId', 'urn:uuid:*', true)] },
      ],
    },
    {
      name: 'Faults',
      properties: [],
      steps: [
        { kind: 'request', name: 'Open of a missing file', operation: 'Open', fields: { path: 'no-such-file.txt', mode: 'Open', access: 'Read', share: 'Read' }, assertions: storageFault('FILE_NOT_FOUND') },
        { kind: 'request', name: 'Open of a path escaping the root', operation: 'Open', fields: { path: '../outside-the-root.txt', mode: 'OpenOrCreate', access: 'ReadWrite', share: 'None' }, assertions: storageFault('PATH_OUTSIDE_ROOT') },
        { kind: 'request', name: 'Read with a forged handle', operation: 'Read', fields: { handle: 'forged-handle-0123456789abcdef', count: '16' }, assertions: storageFault('INVALID_HANDLE') },
        { kind: 'request', name: 'Delete of a missing file (SOAP 1.2)', operation: 'Delete', soap12: true, fields: { path: 'no-such-file.txt' }, assertions: storageFault('FILE_NOT_FOUND') },
      ],
    },
  ],
}

const SOCK = '${#TestCase#socket}'

export const NETWORK_PLAN: ServicePlan = {
  wsdl: 'NetworkService.wsdl',
  namespace: NETWORK_NS,
  xpathPrefix: 'n',
  endpointProperty: 'networkEndpoint',
  suiteName: 'NetworkService TestSuite',
  samples: {
    Connect: { host: '${#Project#echoHost}', port: '${#Project#echoPort}', protocol: 'tcp', timeoutMs: '5000' },
    Send: { socket: '${#Project#socket}', data: HELLO },
    Receive: { socket: '${#Project#socket}', maxBytes: '1024', timeoutMs: '2000' },
    SendTo: { socket: '${#Project#socket}', host: '${#Project#echoHost}', port: '${#Project#echoPort}', data: HELLO },
    ReceiveFrom: { socket: '${#Project#socket}', maxBytes: '1024', timeoutMs: '2000' },
    Listen: { host: '127.0.0.1', port: '0', protocol: 'tcp', backlog: '16' },
    Accept: { listener: '${#Project#listener}', timeoutMs: '2000' },
    Shutdown: { socket: '${#Project#socket}' },
    Close: { socket: '${#Project#socket}' },
    Subscribe: { socket: '${#Project#socket}', window: '65536' },
    Grant: { socket: '${#Project#socket}', bytes: '65536' },
    ResolveHost: { name: 'localhost' },
    Batch: { op: [`<${u}:ResolveHost><${u}:name>localhost</${u}:name></${u}:ResolveHost>`, `<${u}:GetDomainInfo/>`] },
    GetDomainInfo: {},
  },
  cases: [
    {
      name: 'Echo through the domain',
      properties: [['socket', '']],
      steps: [
        { kind: 'request', name: 'ResolveHost localhost', operation: 'ResolveHost', fields: { name: 'localhost' }, assertions: [...soapOk, nEq('//n:ResolveHostResponse/n:address', '127.0.0.1')] },
        { kind: 'request', name: 'Connect to the echo server', operation: 'Connect', fields: { host: '${#Project#echoHost}', port: '${#Project#echoPort}', protocol: 'tcp', timeoutMs: '5000' }, assertions: [...soapOk, nEq('//n:ConnectResponse/n:remotePort', '${#Project#echoPort}')] },
        { kind: 'transfer', name: 'Transfer socket', transfers: [{ name: 'socket', sourceStep: 'Connect to the echo server', namespaces: N, path: '//n:ConnectResponse/n:socket', targetStep: '#TestCase#', targetProperty: 'socket' }] },
        { kind: 'request', name: 'Send', operation: 'Send', fields: { socket: SOCK, data: HELLO }, assertions: [...soapOk, nEq('//n:SendResponse/n:sent', '13')] },
        { kind: 'request', name: 'Receive the echo', operation: 'Receive', fields: { socket: SOCK, maxBytes: '1024', timeoutMs: '5000' }, assertions: [...soapOk, nEq('//n:ReceiveResponse/n:data', HELLO), nEq('//n:ReceiveResponse/n:closed', 'false')] },
        { kind: 'request', name: 'Close', operation: 'Close', fields: { socket: SOCK }, assertions: [...soapOk, { kind: 'Simple Contains', token: 'CloseResponse' }] },
        { kind: 'request', name: 'Send after Close', operation: 'Send', fields: { socket: SOCK, data: HELLO }, assertions: networkFault('INVALID_HANDLE') },
        { kind: 'request', name: 'GetDomainInfo (SOAP 1.2)', operation: 'GetDomainInfo', soap12: true, fields: {}, assertions: [...soapOk, nEq('//n:GetDomainInfoResponse/n:runtime', 'node/*', true)] },
      ],
    },
    {
      name: 'Faults',
      properties: [],
      steps: [
        { kind: 'request', name: 'Connect outside the allow-list', operation: 'Connect', fields: { host: '192.0.2.1', port: '80', protocol: 'tcp', timeoutMs: '2000' }, assertions: networkFault('DESTINATION_NOT_ALLOWED') },
        { kind: 'request', name: 'Receive with a forged socket', operation: 'Receive', fields: { socket: 'forged-socket-0123456789abcdef', maxBytes: '16', timeoutMs: '0' }, assertions: networkFault('INVALID_HANDLE') },
      ],
    },
  ],
}

/** Project properties: where the services are (overridable with testrunner's -P), and the handles the interface requests use. */
export const PROJECT_PROPERTIES: ReadonlyArray<readonly [string, string]> = [
  ['storageEndpoint', 'http://127.0.0.1:8080/storage'],
  ['networkEndpoint', 'http://127.0.0.1:8081/network'],
  ['echoHost', '127.0.0.1'],
  ['echoPort', '7007'],
  ['handle', 'paste-a-handle-from-an-Open-response'],
  ['socket', 'paste-a-socket-from-a-Connect-response'],
  ['listener', 'paste-a-listener-from-a-Listen-response'],
]

/** Storage mock responses that are faults, beside the one success response each operation gets. */
export const MOCK_FAULTS: Readonly<Record<string, string>> = { Open: 'FILE_NOT_FOUND', Read: 'INVALID_HANDLE', Delete: 'FILE_NOT_FOUND' }
export const MOCK_PORT = 8088
