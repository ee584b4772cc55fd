// Reads a WSDL 1.1 document (document/literal wrapped, inline XML Schema) into a ServiceDescriptor.
// Handles the subset of XML Schema our contracts use: named simple types restricted to string
// enumerations, named and anonymous complex types made of a sequence or a choice, element refs,
// minOccurs/maxOccurs. Anything else is refused with a message naming it, so the contract stays
// within what every generated client (WCF, gSOAP, zeep) handles too.
import { parseXml, type XmlElement } from '../xml.js'
import type { FieldDescriptor, FieldType, OperationDescriptor, ServiceDescriptor, SimpleType } from '../descriptor.js'

const WSDL = 'http://schemas.xmlsoap.org/wsdl/'
const XS = 'http://www.w3.org/2001/XMLSchema'
const SOAP11 = 'http://schemas.xmlsoap.org/wsdl/soap/'

const XS_SIMPLE: Record<string, SimpleType> = {
  string: 'string', int: 'int', long: 'long', boolean: 'boolean', base64Binary: 'base64', dateTime: 'dateTime', double: 'double',
}

function kids (el: XmlElement, ns: string, local: string): XmlElement[] {
  return el.children.filter((c) => c.ns === ns && c.local === local)
}
function kid (el: XmlElement, ns: string, local: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.local === local)
}
function qname (el: XmlElement, value: string): { ns: string, local: string } {
  const i = value.indexOf(':')
  const prefix = i < 0 ? '' : value.slice(0, i)
  const ns = el.nsScope[prefix]
  if (ns === undefined) throw new Error(`unbound prefix in "${value}"`)
  return { ns, local: value.slice(i + 1) }
}

export interface WsdlModel {
  readonly descriptor: ServiceDescriptor
  /** Named enumerations, for generating union types. */
  readonly enums: Readonly<Record<string, readonly string[]>>
}

export function readWsdl (text: string): WsdlModel {
  const defs = parseXml(text, { maxDepth: 64, maxElements: 1_000_000 })
  if (defs.ns !== WSDL || defs.local !== 'definitions') throw new Error('not a WSDL 1.1 document')
  const tns = defs.attrs.targetNamespace ?? ''
  const schema = kid(kid(defs, WSDL, 'types') ?? defs, XS, 'schema')
  if (schema === undefined) throw new Error('no inline xs:schema')
  if (schema.attrs.elementFormDefault !== 'qualified') throw new Error('the schema must use elementFormDefault="qualified"')
  const { enums, types, elements } = readSchema(schema, tns)
  const operations = readOperations(defs)
  const service = kid(defs, WSDL, 'service')?.attrs.name ?? defs.attrs.name ?? 'Service'
  return { descriptor: { name: service, namespace: tns, types, elements, operations }, enums }
}

/** What the schema's named enumerations, complex types and elements become. */
interface Schema {
  readonly enums: Record<string, readonly string[]>
  readonly types: Record<string, readonly FieldDescriptor[]>
  readonly elements: Record<string, FieldType>
}

function readSchema (schema: XmlElement, tns: string): Schema {
  const enums: Record<string, readonly string[]> = {}
  for (const st of kids(schema, XS, 'simpleType')) {
    const r = kid(st, XS, 'restriction')
    if (r === undefined) throw new Error(`simpleType ${st.attrs.name}: only restrictions are supported`)
    enums[st.attrs.name!] = kids(r, XS, 'enumeration').map((e) => e.attrs.value!)
  }
  const out: Schema = { enums, types: {}, elements: {} }
  const { types, elements } = out
  for (const ct of kids(schema, XS, 'complexType')) types[ct.attrs.name!] = fieldsOf(ct, ct.attrs.name!, out, tns)
  for (const el of kids(schema, XS, 'element')) {
    const name = el.attrs.name!
    const anon = kid(el, XS, 'complexType')
    if (anon !== undefined) {
      if (types[name] !== undefined) throw new Error(`element ${name} collides with a complex type of the same name`)
      types[name] = fieldsOf(anon, name, out, tns)
      elements[name] = { kind: 'complex', name }
    } else if (el.attrs.type !== undefined) {
      elements[name] = typeOf(el, el.attrs.type, out, tns)
    } else throw new Error(`element ${name} has no type`)
  }
  flattenChoices(types)
  return out
}

/** The type a `type="…"` attribute names: an XML Schema simple type, or one of the schema's enumerations or complex types. */
function typeOf (ctx: XmlElement, ref: string, schema: Schema, tns: string): FieldType {
  const q = qname(ctx, ref)
  if (q.ns === XS) {
    const s = XS_SIMPLE[q.local]
    if (s === undefined) throw new Error(`xs:${q.local} is not supported`)
    return { kind: 'simple', name: s }
  }
  if (q.ns !== tns) throw new Error(`type ${ref} is outside the target namespace`)
  if (schema.enums[q.local] !== undefined) return { kind: 'enum', name: q.local, values: schema.enums[q.local]! }
  return { kind: 'complex', name: q.local }
}

/** The fields of a complex type: its sequence's elements, or one '$choice' field. */
function fieldsOf (ct: XmlElement, owner: string, schema: Schema, tns: string): FieldDescriptor[] {
  const seq = kid(ct, XS, 'sequence')
  const choice = kid(ct, XS, 'choice')
  if (choice !== undefined) {
    // A choice of element refs becomes one field holding `{ [ElementName]: value }`.
    const refs = kids(choice, XS, 'element').map((e) => qname(e, e.attrs.ref ?? '').local)
    return [{ name: '$choice', type: { kind: 'choice', elements: refs }, optional: false, repeated: false }]
  }
  if (seq === undefined) return []
  return kids(seq, XS, 'element').map((e) => {
    if (e.attrs.name === undefined || e.attrs.type === undefined) throw new Error(`${owner}: every element needs a name and a type`)
    return {
      name: e.attrs.name,
      type: typeOf(e, e.attrs.type, schema, tns),
      optional: e.attrs.minOccurs === '0',
      repeated: e.attrs.maxOccurs !== undefined && e.attrs.maxOccurs !== '1',
    }
  })
}

/** Choice types are a single '$choice' field: flattens them into the field type of their users, and drops them. */
function flattenChoices (types: Record<string, readonly FieldDescriptor[]>): void {
  for (const [name, fields] of Object.entries(types)) {
    types[name] = fields.map((f) => {
      if (f.type.kind !== 'complex') return f
      const target = types[f.type.name]
      return target?.length === 1 && target[0]!.name === '$choice' ? { ...f, type: target[0]!.type } : f
    })
  }
  for (const [name, fields] of Object.entries(types)) if (fields.length === 1 && fields[0]!.name === '$choice') delete types[name] // eslint-disable-line @typescript-eslint/no-dynamic-delete
}

/** The portType's operations, with their messages' elements and the SOAP binding's actions. */
function readOperations (defs: XmlElement): Record<string, OperationDescriptor> {
  const messages = new Map<string, string>()
  for (const m of kids(defs, WSDL, 'message')) {
    const parts = kids(m, WSDL, 'part')
    if (parts.length !== 1 || parts[0]!.attrs.element === undefined) throw new Error(`message ${m.attrs.name}: WS-I BP needs exactly one element part`)
    messages.set(m.attrs.name!, qname(parts[0]!, parts[0]!.attrs.element).local)
  }
  const actions = new Map<string, string>()
  for (const b of kids(defs, WSDL, 'binding')) {
    if (kid(b, SOAP11, 'binding') === undefined) continue
    for (const op of kids(b, WSDL, 'operation')) actions.set(op.attrs.name!, kid(op, SOAP11, 'operation')?.attrs.soapAction ?? '')
  }
  const portType = kid(defs, WSDL, 'portType')
  if (portType === undefined) throw new Error('no portType')
  const operations: Record<string, OperationDescriptor> = {}
  for (const op of kids(portType, WSDL, 'operation')) {
    const name = op.attrs.name!
    const msg = (local: string): string => {
      const e = kid(op, WSDL, local)
      if (e === undefined) throw new Error(`operation ${name} has no ${local}`)
      return messages.get(qname(e, e.attrs.message!).local)!
    }
    const doc = kid(op, WSDL, 'documentation')?.text.trim()
    operations[name] = {
      name,
      soapAction: actions.get(name) ?? '',
      input: msg('input'),
      output: msg('output'),
      fault: msg('fault'),
      ...(doc ? { documentation: doc } : {}),
    }
  }
  return operations
}
