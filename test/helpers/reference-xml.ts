// Reference XML parser for differential tests: the saxes-based parser metaos used first (strict
// XML 1.0 + namespaces, character by character). soap-runtime/xml.ts must accept and reject what
// this one does (within the policies both share: no DTD, no PIs, bounded depth) and build the same
// tree. Kept only for test/runtime/xml-parser.test.ts.
import { SaxesParser, type SaxesTagNS } from 'saxes'
import { MetaosError } from '../../soap-runtime/errors.js'

import { DEFAULT_XML_LIMITS, type XmlElement, type XmlLimits } from '../../soap-runtime/xml.js'
export type { XmlElement, XmlLimits }


function malformed (message: string): MetaosError {
  return new MetaosError('MALFORMED_MESSAGE', message)
}

/** Parses a whole document. Throws MetaosError MALFORMED_MESSAGE on anything not well-formed or over a limit. */
export function parseXml (input: string, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const parser = new SaxesParser({ xmlns: true, position: false })
  const stack: XmlElement[] = []
  let root: XmlElement | undefined
  let count = 0
  let failure: MetaosError | undefined
  const fail = (e: MetaosError): void => { if (failure === undefined) failure = e }

  parser.on('doctype', () => { fail(malformed('DTDs are not accepted (DOCTYPE found)')) })
  parser.on('processinginstruction', (pi) => {
    // The XML declaration is not reported as a PI by saxes; any other PI is refused in SOAP (SOAP 1.2 part 1 §5).
    fail(malformed(`processing instructions are not accepted (<?${pi.target}?>)`))
  })
  parser.on('opentag', (tag: SaxesTagNS) => {
    if (++count > limits.maxElements) { fail(malformed(`more than ${limits.maxElements} elements`)); return }
    if (stack.length >= limits.maxDepth) { fail(malformed(`nesting deeper than ${limits.maxDepth}`)); return }
    const attrs: Record<string, string> = {}
    for (const name in tag.attributes) {
      const a = tag.attributes[name]!
      if (a.prefix === 'xmlns' || a.name === 'xmlns') continue
      attrs[a.uri ? `{${a.uri}}${a.local}` : a.local] = a.value
    }
    const parent = stack[stack.length - 1]
    const el: XmlElement = {
      ns: tag.uri ?? '',
      local: tag.local ?? tag.name,
      attrs,
      children: [],
      text: '',
      nsScope: Object.keys(tag.ns).length > 0 ? { ...(parent?.nsScope), ...tag.ns } : (parent?.nsScope ?? {}),
    }
    if (parent !== undefined) parent.children.push(el)
    else root = el
    stack.push(el)
  })
  parser.on('text', (t) => { const top = stack[stack.length - 1]; if (top !== undefined) top.text += t })
  parser.on('cdata', (t) => { const top = stack[stack.length - 1]; if (top !== undefined) top.text += t })
  parser.on('closetag', () => { stack.pop() })
  parser.on('error', (e) => { fail(malformed(`not well-formed XML: ${e.message}`)) })

  try {
    parser.write(input)
    if (failure === undefined) parser.close()
  } catch (e) {
    fail(malformed(`not well-formed XML: ${(e as Error).message}`))
  }
  if (failure !== undefined) throw failure
  if (root === undefined) throw malformed('empty document')
  return root
}
