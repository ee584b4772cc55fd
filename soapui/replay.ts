// Replays a SoapUI project's functional tests without SoapUI (which cannot be installed where
// metaos is tested): reads the project file, expands ${#Project#…}/${#TestSuite#…}/${#TestCase#…}
// properties, POSTs each request step with its SOAPAction as SoapUI does for the step's
// interface (SOAP 1.1 or 1.2), runs property transfers, and evaluates the assertions the project
// uses with SoapUI's semantics (see ASSERTION_ID in project-xml.ts for SoapUI's fault-assertion
// ids). Only the XPath subset the project uses is implemented: `declare namespace` prologues and
// location paths of `/` and `//` steps with prefixed, `*:`-wildcard or `*` name tests, optionally
// ending in text(); anything else throws, so the project cannot silently grow beyond what is
// checked. Used by test/interop/soapui-project.test.ts; does not start any domain.
import { request as httpRequest } from 'node:http'
import { parseXml, type XmlElement } from '../soap-runtime/xml.js'
import { ASSERTION_ID, CON_NS, SOAP_ENV, type SoapVersion } from './project-xml.js'

export const con = (el: XmlElement, local: string): XmlElement[] => el.children.filter((c) => c.ns === CON_NS && c.local === local)
export const con1 = (el: XmlElement, local: string): XmlElement | undefined => con(el, local)[0]
const textOf = (el: XmlElement | undefined): string => el?.text ?? ''
/** Unqualified child of an assertion's configuration (SoapUI writes them without a namespace). */
const conf = (el: XmlElement, local: string): string | undefined => el.children.find((c) => c.local === local)?.text

export function parseProject (text: string): XmlElement {
  return parseXml(text, { maxDepth: 64, maxElements: 1_000_000 })
}

export function propertiesOf (holder: XmlElement): Map<string, string> {
  const m = new Map<string, string>()
  for (const p of con(con1(holder, 'properties') ?? holder, 'property')) m.set(textOf(con1(p, 'name')), textOf(con1(p, 'value')))
  return m
}

export interface Scopes { readonly Project: Map<string, string>, readonly TestSuite: Map<string, string>, readonly TestCase: Map<string, string> }
export const EXPANSION = /\$\{(?:#(Project|TestSuite|TestCase)#)?([^}]*)\}/g

/** SoapUI property expansion of the scoped forms the project uses; an unknown property throws (SoapUI would send an empty string). */
export function expand (s: string, scopes: Scopes): string {
  return s.replace(EXPANSION, (whole, scope: string | undefined, name: string) => {
    if (scope === undefined) throw new Error(`unscoped property expansion ${whole}`)
    const v = scopes[scope as keyof Scopes].get(name)
    if (v === undefined) throw new Error(`${whole}: no ${scope} property ${name}`)
    return v
  })
}

// ---- XPath subset ----

export function evalXPath (doc: XmlElement, xpath: string): XmlElement[] {
  const ns: Record<string, string> = {}
  let rest = xpath.trim()
  const DECL = /^declare\s+namespace\s+([A-Za-z_][\w.-]*)\s*=\s*['"]([^'"]*)['"]\s*;\s*/
  for (let m = DECL.exec(rest); m !== null; m = DECL.exec(rest)) { ns[m[1]!] = m[2]!; rest = rest.slice(m[0].length) }
  const STEP = /^(\/\/?)(text\(\)|(?:\*|[A-Za-z_][\w.-]*):[A-Za-z_][\w.-]*|\*|[A-Za-z_][\w.-]*)/
  const root: XmlElement = { ns: '', local: '#document', attrs: {}, children: [doc], text: '', nsScope: {} }
  let set: XmlElement[] = [root]
  let textOnly = false
  while (rest !== '') {
    const m = STEP.exec(rest)
    if (m === null || textOnly) throw new Error(`XPath beyond the subset replay.ts implements: "${rest}" in ${xpath}`)
    rest = rest.slice(m[0].length)
    const [, axis, test] = m as unknown as [string, string, string]
    const from = axis === '//' ? set.flatMap(descendantsOrSelf) : set
    if (test === 'text()') { textOnly = true; set = from; continue }
    let match: (e: XmlElement) => boolean
    if (test === '*') match = () => true
    else if (test.includes(':')) {
      const [p, local] = test.split(':') as [string, string]
      const uri = p === '*' ? undefined : ns[p]
      if (p !== '*' && uri === undefined) throw new Error(`XPath prefix ${p} is not declared in ${xpath}`)
      match = (e) => e.local === local && (uri === undefined || e.ns === uri)
    } else match = (e) => e.local === test && e.ns === ''
    const next: XmlElement[] = []
    for (const e of from) for (const c of e.children) if (match(c) && !next.includes(c)) next.push(c)
    set = next
  }
  return set
}

function descendantsOrSelf (e: XmlElement): XmlElement[] {
  const out = [e]
  for (const c of e.children) out.push(...descendantsOrSelf(c))
  return out
}

/** SoapUI's Tools.assertSimilar with '*' as the wildcard. */
function similar (expected: string, actual: string): boolean {
  const re = new RegExp('^' + expected.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[\\s\\S]*') + '$')
  return re.test(actual)
}

// ---- assertions ----

export interface Exchange { readonly version: SoapVersion, readonly status: number, readonly body: string, readonly doc?: XmlElement, readonly parseError?: string }
export interface AssertionResult { readonly name: string, readonly type: string, readonly ok: boolean, readonly why: string }
/** Extra checks for "SOAP Response" (SoapUI validates the envelope against the WSDL): return why it is invalid, or undefined. */
export type ResponseValidator = (ex: Exchange, operation: string) => string | undefined

export function isFault (ex: Exchange): boolean {
  const body = ex.doc?.children.find((c) => c.local === 'Body' && c.ns === SOAP_ENV[ex.version])
  const first = body?.children[0]
  return first !== undefined && first.local === 'Fault' && first.ns === SOAP_ENV[ex.version]
}

export function evaluateAssertion (a: XmlElement, ex: Exchange, scopes: Scopes, operation: string, validate: ResponseValidator): AssertionResult {
  const type = a.attrs.type ?? ''
  const name = a.attrs.name ?? type
  const r = (ok: boolean, why: string): AssertionResult => ({ name, type, ok, why })
  const c = con1(a, 'configuration')
  switch (type) {
    case ASSERTION_ID['SOAP Response']: {
      if (ex.doc === undefined) return r(false, `not XML: ${ex.parseError ?? ''}`)
      if (ex.doc.local !== 'Envelope' || ex.doc.ns !== SOAP_ENV[ex.version]) return r(false, `root is {${ex.doc.ns}}${ex.doc.local}, not a SOAP ${ex.version} Envelope`)
      const why = validate(ex, operation)
      return why === undefined ? r(true, 'Response Envelope OK') : r(false, why)
    }
    case ASSERTION_ID['Not SOAP Fault']: return isFault(ex) ? r(false, 'Response is a SOAP Fault') : r(ex.doc !== undefined, 'Response is not a SOAP Fault')
    case ASSERTION_ID['SOAP Fault']: return isFault(ex) ? r(true, 'Response is a SOAP Fault') : r(false, 'Response is not a SOAP Fault')
    case ASSERTION_ID['Simple Contains']: {
      if (c === undefined) return r(false, 'no configuration')
      if (conf(c, 'useRegEx') === 'true') return r(false, 'regular expressions are not replayed')
      const token = expand(conf(c, 'token') ?? '', scopes).replaceAll('\r\n', '\n')
      const body = ex.body.replaceAll('\r\n', '\n')
      const found = conf(c, 'ignoreCase') === 'true' ? body.toUpperCase().includes(token.toUpperCase()) : body.includes(token)
      return r(found, found ? `Response contains token [${token}]` : `Missing token [${token}] in Response`)
    }
    case ASSERTION_ID['XPath Match']: {
      if (c === undefined) return r(false, 'no configuration')
      if (ex.doc === undefined) return r(false, 'response is not XML')
      const path = expand(conf(c, 'path') ?? '', scopes)
      const expected = expand(conf(c, 'content') ?? '', scopes)
      const wild = conf(c, 'allowWildcards') === 'true'
      const items = evalXPath(ex.doc, path)
      if (items.length === 0) return r(false, `Missing content for xpath [${path}] in Response`)
      const values = items.map((e) => e.text)
      const ok = values.some((v) => (wild ? similar(expected, v) : v === expected))
      return r(ok, ok ? `Response matches content for [${path}]` : `expecting [${expected}], actual was [${values.join('], [')}]`)
    }
    default: return r(false, `assertion type "${type}" is not replayed`)
  }
}

// ---- HTTP as SoapUI sends it ----

export async function post (endpoint: string, version: SoapVersion, action: string, body: string): Promise<{ status: number, body: string }> {
  const headers: Record<string, string> = version === '1.1'
    ? { 'Content-Type': 'text/xml;charset=UTF-8', SOAPAction: `"${action}"` }
    : { 'Content-Type': `application/soap+xml;charset=UTF-8;action="${action}"` }
  return await new Promise((resolve, reject) => {
    const req = httpRequest(endpoint, { method: 'POST', headers: { ...headers, 'User-Agent': 'metaos-soapui-replay' } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (b: Buffer) => chunks.push(b))
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

export interface StepReport { readonly step: string, readonly kind: 'request' | 'transfer', readonly assertions: readonly AssertionResult[], readonly error?: string }

/** Runs one test case's steps in order, as SoapUI's testrunner would (stopping at the first failing step, failOnError). */
export async function runTestCase (testCase: XmlElement, project: { interfaces: ReadonlyMap<string, { version: SoapVersion, actions: ReadonlyMap<string, string> }>, scopes: Scopes }, validate: ResponseValidator): Promise<StepReport[]> {
  const reports: StepReport[] = []
  const exchanges = new Map<string, Exchange>()
  const scopes = project.scopes
  for (const step of con(testCase, 'testStep')) {
    const name = step.attrs.name ?? ''
    const config = con1(step, 'config')!
    try {
      if (step.attrs.type === 'request') {
        const iface = project.interfaces.get(textOf(con1(config, 'interface')))
        const operation = textOf(con1(config, 'operation'))
        const action = iface?.actions.get(operation)
        if (iface === undefined || action === undefined) throw new Error(`no interface/operation ${textOf(con1(config, 'interface'))}/${operation}`)
        const req = con1(config, 'request')!
        const res = await post(expand(textOf(con1(req, 'endpoint')), scopes), iface.version, action, expand(textOf(con1(req, 'request')), scopes))
        let ex: Exchange
        try { ex = { version: iface.version, ...res, doc: parseXml(res.body) } } catch (e) { ex = { version: iface.version, ...res, parseError: String(e) } }
        exchanges.set(name, ex)
        const results = con(req, 'assertion').map((a) => evaluateAssertion(a, ex, scopes, operation, validate))
        reports.push({ step: name, kind: 'request', assertions: results })
        if (results.some((x) => !x.ok)) break
      } else if (step.attrs.type === 'transfer') {
        for (const tr of con(config, 'transfers')) {
          const source = exchanges.get(textOf(con1(tr, 'sourceStep')))
          if (source?.doc === undefined || textOf(con1(tr, 'sourceType')) !== 'Response' || textOf(con1(tr, 'type')) !== 'XPATH') throw new Error(`transfer ${textOf(con1(tr, 'name'))}: no XML response of ${textOf(con1(tr, 'sourceStep'))} to read`)
          const items = evalXPath(source.doc, expand(textOf(con1(tr, 'sourcePath')), scopes))
          if (items.length === 0) throw new Error(`transfer ${textOf(con1(tr, 'name'))}: ${textOf(con1(tr, 'sourcePath'))} selects nothing`)
          const target = textOf(con1(tr, 'targetStep'))
          const holder = target === '#TestCase#' ? scopes.TestCase : target === '#TestSuite#' ? scopes.TestSuite : target === '#Project#' ? scopes.Project : undefined
          if (holder === undefined) throw new Error(`transfer target ${target} is not replayed`)
          holder.set(textOf(con1(tr, 'targetType')), items[0]!.text)
        }
        reports.push({ step: name, kind: 'transfer', assertions: [] })
      } else throw new Error(`step type ${step.attrs.type ?? ''} is not replayed`)
    } catch (e) {
      reports.push({ step: name, kind: step.attrs.type === 'transfer' ? 'transfer' : 'request', assertions: [], error: e instanceof Error ? e.message : String(e) })
      break
    }
  }
  return reports
}
