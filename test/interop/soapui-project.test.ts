// The SoapUI project (soapui/metaos-soapui-project.xml) is what `npm run soapui:project` makes from
// wsdl/ today; its structure is what SoapUI 5 loads (interfaces with the WSDLs cached, a request
// for every operation, steps naming existing interfaces/operations, property expansions naming
// defined properties, mock responses that are valid SOAP for their operation); and every test
// case, replayed as-is against a real storage domain, a real network domain and a real TCP echo
// server, passes every assertion it holds (SoapUI itself cannot be installed here).
import t from 'tap'
import { readFileSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'
import { buildProject, readBindings, PROJECT_FILE } from '../../soapui/build-project.js'
import { CON_NS, SOAP_ENV, type SoapVersion } from '../../soapui/project-xml.js'
import { EXPANSION, con, con1, evalXPath, expand, isFault, parseProject, propertiesOf, runTestCase, type Exchange, type ResponseValidator } from '../../soapui/replay.js'
import { readWsdl } from '../../soap-runtime/codegen/wsdl-reader.js'
import { compileCodecs, type ElementCodec } from '../../soap-runtime/codec.js'
import type { ServiceDescriptor } from '../../soap-runtime/descriptor.js'
import { parseEnvelope, readFault } from '../../soap-runtime/envelope.js'
import type { XmlElement } from '../../soap-runtime/xml.js'
import { startNetworkDomain } from '../../backend-network/network-domain.js'
import { startTestDomain } from '../helpers/domain.js'

const WSDLS = ['StorageService.wsdl', 'NetworkService.wsdl'] as const
const projectText = readFileSync(join(PACKAGE_ROOT, PROJECT_FILE), 'utf8')
const project = parseProject(projectText)

interface Service { file: string, text: string, d: ServiceDescriptor, codecs: Map<string, ElementCodec>, bindings: ReturnType<typeof readBindings> }
const services: Service[] = WSDLS.map((file) => {
  const text = readFileSync(join(PACKAGE_ROOT, 'wsdl', file), 'utf8')
  const d = readWsdl(text).descriptor
  return { file, text, d, codecs: compileCodecs(d), bindings: readBindings(text) }
})
const serviceOfNs = (ns: string): Service => services.find((s) => s.d.namespace === ns)!

interface Iface { el: XmlElement, service: Service, version: SoapVersion, actions: Map<string, string> }
const interfaces = new Map<string, Iface>()
for (const el of con(project, 'interface')) {
  const ns = /^\{([^}]*)\}/.exec(el.attrs.bindingName ?? '')?.[1] ?? ''
  const actions = new Map(con(el, 'operation').map((o) => [o.attrs.name!, o.attrs.action ?? '']))
  interfaces.set(el.attrs.name!, { el, service: serviceOfNs(ns), version: el.attrs.soapVersion === '1_2' ? '1.2' : '1.1', actions })
}

/** A response (or mock response) decoded with the generated codecs: the operation's response element, or a fault whose detail is the service's fault element. */
function validateSoap (service: Service, version: SoapVersion, operation: string, xml: string): string | undefined {
  try {
    const env = parseEnvelope(xml, { maxDepth: 64, maxElements: 100_000 }, new Set())
    if (env.version !== version) return `SOAP ${env.version} envelope where ${version} was expected`
    const op = service.d.operations[operation]!
    if (env.body.local === 'Fault' && env.body.ns === SOAP_ENV[version]) {
      const f = readFault(env.body, `{${service.d.namespace}}${op.fault}`)
      if (f.detail === undefined) return 'fault without a detail'
      service.codecs.get(op.fault)!.decode(f.detail)
      return undefined
    }
    service.codecs.get(op.output)!.decode(env.body)
    return undefined
  } catch (e) {
    return e instanceof Error ? e.message : String(e)
  }
}

t.test('the committed project is what the generator makes from wsdl/ today', async (t) => {
  t.equal(projectText, buildProject(), `${PROJECT_FILE} is fresh (run npm run soapui:project)`)
})

t.test('structure: what SoapUI 5 loads', async (t) => {
  t.equal(project.ns, CON_NS)
  t.equal(project.local, 'soapui-project')
  const projectProps = propertiesOf(project)

  t.test('interfaces: every binding of both WSDLs, WSDL cached verbatim, a request for every operation', async (t) => {
    for (const s of services) {
      for (const b of s.bindings) {
        const i = interfaces.get(b.name)
        if (i === undefined) { t.fail(`${s.file}: no interface for binding ${b.name}`); continue }
        t.equal(i.el.attrs['{http://www.w3.org/2001/XMLSchema-instance}type'], 'con:WsdlInterface')
        t.equal(i.el.attrs.bindingName, `{${s.d.namespace}}${b.name}`)
        t.equal(i.version, b.version, `${b.name} is SOAP ${b.version}`)
        const cache = con1(i.el, 'definitionCache')!
        const part = con(cache, 'part').find((p) => con1(p, 'url')?.text === cache.attrs.rootPart)
        t.ok(part !== undefined && cache.attrs.rootPart === i.el.attrs.definition, `${b.name}: the definition's root part is cached`)
        t.equal(con1(part!, 'content')?.text, s.text, `${b.name}: the cached WSDL is wsdl/${s.file}`)
        t.same([...i.actions.keys()], [...b.actions.keys()], `${b.name}: every operation, in WSDL order`)
        for (const [op, action] of b.actions) {
          t.equal(i.actions.get(op), action, `${b.name} ${op}: SOAPAction`)
          const el = con(i.el, 'operation').find((o) => o.attrs.name === op)!
          const calls = con(el, 'call')
          t.ok(calls.length >= 1, `${b.name} ${op}: has a request`)
          for (const call of calls) {
            // The request as sent with the project's properties: a valid envelope of this SOAP version, decoding as the operation's input.
            const body = expand(con1(call, 'request')!.text, { Project: projectProps, TestSuite: new Map(), TestCase: new Map() })
            const env = parseEnvelope(body, { maxDepth: 64, maxElements: 100_000 }, new Set())
            t.equal(env.version, b.version, `${b.name} ${op}: SOAP ${b.version} request`)
            t.doesNotThrow(() => s.codecs.get(s.d.operations[op]!.input)!.decode(env.body), `${b.name} ${op}: the request decodes as ${op}`)
          }
        }
      }
    }
  })

  t.test('test steps name existing interfaces and operations; transfers read earlier request steps', async (t) => {
    let steps = 0
    for (const suite of con(project, 'testSuite')) {
      for (const tc of con(suite, 'testCase')) {
        const before = new Set<string>()
        for (const step of con(tc, 'testStep')) {
          steps++
          const config = con1(step, 'config')!
          if (step.attrs.type === 'request') {
            const i = interfaces.get(con1(config, 'interface')?.text ?? '')
            t.ok(i?.actions.has(con1(config, 'operation')?.text ?? ''), `${tc.attrs.name} / ${step.attrs.name}: ${con1(config, 'interface')?.text} ${con1(config, 'operation')?.text} exists`)
            before.add(step.attrs.name!)
          } else {
            t.equal(step.attrs.type, 'transfer')
            for (const tr of con(config, 'transfers')) t.ok(before.has(con1(tr, 'sourceStep')?.text ?? ''), `${tc.attrs.name} / ${step.attrs.name}: source step runs before`)
          }
        }
      }
    }
    t.ok(steps >= 30, `${steps} test steps`)
  })

  t.test('every property expansion names a defined property', async (t) => {
    const check = (text: string, scopes: Record<string, ReadonlyMap<string, string>>, where: string): void => {
      for (const m of text.matchAll(EXPANSION)) {
        const scope = m[1]
        t.ok(scope !== undefined && scopes[scope]?.has(m[2]!) === true, `${where}: ${m[0]} is defined`)
      }
    }
    const withoutCache = (el: XmlElement): string => JSON.stringify(el, (k, v: unknown) => (k === 'nsScope' ? undefined : (v as XmlElement)?.local === 'definitionCache' ? undefined : v))
    for (const i of interfaces.values()) check(withoutCache(i.el), { Project: projectProps }, i.el.attrs.name!)
    for (const suite of con(project, 'testSuite')) {
      for (const tc of con(suite, 'testCase')) {
        const caseProps = propertiesOf(tc)
        for (const step of con(tc, 'testStep')) {
          for (const tr of con(con1(step, 'config')!, 'transfers')) {
            const target = con1(tr, 'targetStep')?.text
            t.ok(target === '#TestCase#' ? caseProps.has(con1(tr, 'targetType')!.text) : target === '#Project#' && projectProps.has(con1(tr, 'targetType')!.text), `${step.attrs.name}: transfer target property is defined`)
          }
        }
        check(withoutCache(tc), { Project: projectProps, TestSuite: propertiesOf(suite), TestCase: caseProps }, `${suite.attrs.name} / ${tc.attrs.name}`)
      }
    }
  })

  t.test('the mock service answers every storage operation with a valid response, and has faults', async (t) => {
    const mocks = con(project, 'mockService')
    t.equal(mocks.length, 1)
    const storage = services[0]!
    const ops = new Set<string>()
    let faults = 0
    for (const mo of con(mocks[0]!, 'mockOperation')) {
      const i = interfaces.get(mo.attrs.interface ?? '')
      t.ok(i?.actions.has(mo.attrs.operation ?? ''), `mock ${mo.attrs.name}: interface and operation exist`)
      ops.add(mo.attrs.operation!)
      const responses = con(mo, 'response')
      t.ok(responses.some((r) => r.attrs.name === con1(mo, 'defaultResponse')?.text), `mock ${mo.attrs.name}: the default response exists`)
      for (const r of responses) {
        const xml = con1(r, 'responseContent')!.text
        t.equal(validateSoap(storage, i!.version, mo.attrs.operation!, xml), undefined, `mock ${mo.attrs.name} / ${r.attrs.name}: a valid ${mo.attrs.operation} response`)
        const fault = isFault({ version: i!.version, status: 0, body: xml, doc: parseProject(xml) })
        t.equal(r.attrs.httpResponseStatus, fault ? '500' : '200', `mock ${r.attrs.name}: HTTP status`)
        if (fault) faults++
      }
    }
    t.same([...ops].sort(), Object.keys(storage.d.operations).sort(), 'a mock operation for every storage operation')
    t.ok(faults >= 1, `${faults} fault responses`)
  })
})

t.test('replay: every test case, as-is, against real domains; every assertion holds', async (t) => {
  const storage = await startTestDomain(t)
  const network = await startNetworkDomain({ listen: ['http://127.0.0.1:0'] })
  t.teardown(async () => { await network.close(1000) })
  const echo = createServer((s) => { s.pipe(s) })
  const sockets = new Set<Socket>()
  echo.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)) })
  await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', resolve) })
  t.teardown(async () => { for (const s of sockets) s.destroy(); await new Promise<void>((resolve) => { echo.close(() => { resolve() }) }) })

  // As `testrunner.sh -PstorageEndpoint=… -PnetworkEndpoint=… -PechoPort=…` would.
  const projectProps = propertiesOf(project)
  projectProps.set('storageEndpoint', storage.http)
  projectProps.set('networkEndpoint', network.endpoints[0]!)
  projectProps.set('echoPort', String((echo.address() as { port: number }).port))

  const validate: ResponseValidator = (ex: Exchange, operation: string) => {
    for (const i of interfaces.values()) if (i.version === ex.version && i.actions.has(operation) && i.service.d.operations[operation] !== undefined) {
      // The interface is known by the step; any of the service's with this version decodes the same.
      const why = validateSoap(i.service, ex.version, operation, ex.body)
      if (why === undefined) return undefined
    }
    return `not a valid ${operation} response or fault: ${ex.body.slice(0, 300)}`
  }

  let assertions = 0
  let requests = 0
  for (const suite of con(project, 'testSuite')) {
    for (const tc of con(suite, 'testCase')) {
      await t.test(`${suite.attrs.name} / ${tc.attrs.name}`, async (t) => {
        const scopes = { Project: projectProps, TestSuite: propertiesOf(suite), TestCase: propertiesOf(tc) }
        const reports = await runTestCase(tc, { interfaces, scopes }, validate)
        t.equal(reports.length, con(tc, 'testStep').length, 'every step ran')
        for (const r of reports) {
          t.equal(r.error, undefined, `${r.step}: no error`)
          if (r.kind === 'request') requests++
          for (const a of r.assertions) {
            assertions++
            t.ok(a.ok, `${r.step}: ${a.name} (${a.type}) — ${a.why}`)
          }
        }
      })
    }
  }
  t.ok(requests >= 25 && assertions >= 80, `${requests} requests, ${assertions} assertions replayed`)
  // The lifecycle case cleaned up after itself; the escaping Open created nothing.
  const { readdirSync } = await import('node:fs')
  t.same(readdirSync(storage.root), [], 'the storage root is empty again')
  t.equal(storage.domain.engine.openHandles, 0, 'no handle left open')
})

t.test('the XPath subset refuses what it does not implement', async (t) => {
  const doc = parseProject('<a xmlns="urn:x"><b>1</b><b>2</b></a>')
  t.same(evalXPath(doc, "declare namespace x='urn:x';\n//x:b").map((e) => e.text), ['1', '2'])
  t.same(evalXPath(doc, '/*:a/*:b').map((e) => e.text), ['1', '2'])
  t.throws(() => evalXPath(doc, "declare namespace x='urn:x';\n//x:b[1]"))
  t.throws(() => evalXPath(doc, 'count(//b)'))
})
