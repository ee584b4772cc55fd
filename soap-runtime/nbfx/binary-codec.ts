// Compiled binary encoders: a ServiceDescriptor's elements written straight as [MC-NBFX] records
// from the runtime's values (no XML text in between), compiled once per client or host like the
// text encoders of codec.ts and checking values the same way (required fields, enumerations,
// integers, characters XML cannot carry: INVALID_ARGUMENT naming the field). Element names and the
// service's namespace go as session dictionary strings when the writer has a session; ints and
// longs as the smallest integer record, booleans as True/False, dateTime as DateTimeText, base64
// fields as raw Bytes records (never base64). Decoding needs nothing here: the reader builds the
// element tree codec.ts's decoders read.
import { MetaosError } from '../errors.js'
import type { FieldDescriptor, FieldType, ServiceDescriptor } from '../descriptor.js'
import { xmlText } from '../xml.js'
import type { NbfxWriter } from './writer.js'

/** Writes `<tag>…</tag>` in the default namespace (declaring `ns` on it when given). */
type ValueEncoder = (v: unknown, w: NbfxWriter, tag: string, ns: string | undefined) => void
type ContentEncoder = (v: unknown, w: NbfxWriter) => void

export interface BinaryCodecs {
  /** The descriptor's namespace: the default namespace of every element written. */
  readonly namespace: string
  /** Writes the global element `element` holding `value`, declaring the namespace on it. */
  encode: (element: string, value: unknown, w: NbfxWriter) => void
}

function bad (path: string, why: string): MetaosError {
  return new MetaosError('INVALID_ARGUMENT', `${path}: ${why}`)
}

function open (w: NbfxWriter, tag: string, ns: string | undefined): void {
  w.startElement('', tag)
  if (ns !== undefined) w.xmlns('', ns)
}

function simpleEncoder (name: string): ValueEncoder {
  switch (name) {
    case 'string': return (v, w, tag, ns) => { open(w, tag, ns); w.text(xmlText(String(v)), true) }
    case 'int': case 'long': return (v, w, tag, ns) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw bad(tag, `${String(v)} is not an integer`)
      open(w, tag, ns)
      w.integer(v, true)
    }
    case 'double': return (v, w, tag, ns) => { open(w, tag, ns); w.double(Number(v), true) }
    case 'boolean': return (v, w, tag, ns) => { open(w, tag, ns); w.bool(v === true, true) }
    case 'dateTime': return (v, w, tag, ns) => {
      const d = v instanceof Date ? v : new Date(String(v))
      if (Number.isNaN(d.getTime())) throw bad(tag, `${String(v).slice(0, 40)} is not a date`)
      open(w, tag, ns)
      w.dateTime(d, true)
    }
    case 'base64': return (v, w, tag, ns) => {
      if (!(v instanceof Uint8Array)) throw bad(tag, 'binary data must be a Buffer or Uint8Array')
      open(w, tag, ns)
      w.bytes(v, true)
    }
  }
  throw new Error(`unknown simple type ${name}`)
}

interface Compiled {
  readonly contents: Map<string, ContentEncoder>
  readonly elements: Map<string, ValueEncoder>
}

function valueEncoder (t: FieldType, c: Compiled): ValueEncoder {
  switch (t.kind) {
    case 'simple': return simpleEncoder(t.name)
    case 'enum': return (v, w, tag, ns) => {
      if (!t.values.includes(v as string)) throw bad(tag, `"${String(v)}" is not one of ${t.values.join(', ')}`)
      open(w, tag, ns)
      w.text(v as string, true)
    }
    case 'complex': {
      const contents = c.contents
      return (v, w, tag, ns) => {
        open(w, tag, ns)
        contents.get(t.name)!(v, w)
        w.endElement()
      }
    }
    case 'choice': {
      const elements = c.elements
      return (v, w, tag, ns) => {
        const keys = Object.keys(v as object)
        if (keys.length !== 1 || !t.elements.includes(keys[0]!)) throw bad(tag, `must hold exactly one of ${t.elements.join(', ')}`)
        open(w, tag, ns)
        elements.get(keys[0]!)!((v as Record<string, unknown>)[keys[0]!], w, keys[0]!, undefined)
        w.endElement()
      }
    }
  }
}

/** A complex type's content: each field in order, a required one present. */
function contentEncoder (fields: readonly FieldDescriptor[], c: Compiled): ContentEncoder {
  const encs = fields.map((f) => ({ f, enc: valueEncoder(f.type, c) }))
  return (v, w) => {
    const o = (v ?? {}) as Record<string, unknown>
    for (const { f, enc } of encs) {
      const x = o[f.name]
      if (x === undefined || x === null) {
        if (!f.optional && !f.repeated) throw bad(f.name, 'is required')
        continue
      }
      if (f.repeated) for (const item of x as unknown[]) enc(item, w, f.name, undefined)
      else enc(x, w, f.name, undefined)
    }
  }
}

/** Compiles the binary encoders of every type and element of a descriptor. */
export function compileBinaryCodecs (d: ServiceDescriptor): BinaryCodecs {
  const c: Compiled = { contents: new Map(), elements: new Map() }
  for (const [name, fields] of Object.entries(d.types)) c.contents.set(name, contentEncoder(fields, c))
  for (const [name, t] of Object.entries(d.elements)) c.elements.set(name, valueEncoder(t, c))
  const ns = d.namespace
  const elements = c.elements
  return {
    namespace: ns,
    encode: (element, value, w) => {
      const enc = elements.get(element)
      if (enc === undefined) throw new Error(`${d.name} has no element ${element}`)
      enc(value, w, element, ns)
    },
  }
}
