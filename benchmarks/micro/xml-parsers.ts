// What parsing one SOAP envelope costs with the XML parsers we measured before writing our own
// (docs/dependencies.md, "The XML parser"): saxes (strict, namespace-aware, our first parser) bare
// and with an element tree built as metaos builds one, sax (the same, tree built), fast-xml-parser,
// txml, and soap-runtime/xml.ts. Two envelopes, as the storage client sends them: a Write of 512 B
// (~1 KB) and a Write of 1 MiB inline as base64 (~1.4 MB).
//
//   npm run build && node dist/benchmarks/micro/xml-parsers.js [--modules DIR] [--rounds N] [--ms MS]
//
// saxes is a devDependency and sax comes with the soap package; fast-xml-parser and txml are no
// dependency of metaos: `npm install --no-save fast-xml-parser@5 txml@6` first (or install them in
// DIR/node_modules and pass --modules DIR/node_modules). A parser that is not installed is skipped,
// saying so.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createClient } from '../../soap-runtime/client.js'
import { parseXml } from '../../soap-runtime/xml.js'
import { StorageServiceDescriptor, type StorageOperations } from '../../wsdl/generated/storage-service.js'
import { packageFile } from '../../wsdl/package-root.js'
import { fmt, header, table, timeEach, type Candidate } from './measure.js'

/** The request envelope the storage client sends for a Write of `bytes`, MTOM off (base64 inline). */
async function writeEnvelope (bytes: number): Promise<string> {
  let xml = ''
  const client = createClient<StorageOperations>(StorageServiceDescriptor, {
    address: 'capture:',
    send: async (req) => { xml = Buffer.concat(req.chunks).toString('utf8'); throw new Error('captured') },
    close: async () => {},
  }, { mtomThreshold: false })
  await client.invoke('Write', { handle: 'h:0123456789abcdef', data: Buffer.alloc(bytes, 0x61) }).catch(() => {})
  return xml
}

interface Node { ns: string, local: string, attrs: Record<string, string>, children: Node[], text: string }

/** saxes' or sax's events into the element tree metaos's parser returns (namespaces resolved, text joined). */
function treeBuilder (): { open: (ns: string, local: string, attrs: Record<string, string>) => void, text: (t: string) => void, close: () => void, root: () => Node | undefined } {
  const stack: Node[] = []
  let root: Node | undefined
  return {
    open: (ns, local, attrs) => {
      const n: Node = { ns, local, attrs, children: [], text: '' }
      if (stack.length === 0) root = n
      else stack[stack.length - 1]!.children.push(n)
      stack.push(n)
    },
    text: (t) => { const top = stack[stack.length - 1]; if (top !== undefined) top.text += t },
    close: () => { stack.pop() },
    root: () => root,
  }
}

type Attr = { uri: string, local: string, value: string, prefix: string }
const attrsOf = (a: Record<string, Attr>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (const x of Object.values(a)) if (x.prefix !== 'xmlns' && !(x.prefix === '' && x.local === 'xmlns')) out[x.uri === '' ? x.local : `{${x.uri}}${x.local}`] = x.value
  return out
}

function candidates (requires: readonly NodeJS.Require[], xml: string, skipped: Set<string>): Candidate[] {
  const out: Candidate[] = []
  const tryLoad = (name: string): any => { // eslint-disable-line @typescript-eslint/no-explicit-any
    for (const require of requires) { try { return require(name) } catch { /* the next place */ } }
    skipped.add(name)
    return undefined
  }
  const saxes = tryLoad('saxes') as { SaxesParser: new (o: object) => any } | undefined // eslint-disable-line @typescript-eslint/no-explicit-any
  if (saxes !== undefined) {
    out.push({ name: 'saxes 6, bare', run: () => new saxes.SaxesParser({ xmlns: true }).write(xml).close() })
    out.push({
      name: 'saxes 6, tree built',
      run: () => {
        const b = treeBuilder()
        const p = new saxes.SaxesParser({ xmlns: true })
        p.on('opentag', (n: { uri: string, local: string, attributes: Record<string, Attr> }) => { b.open(n.uri, n.local, attrsOf(n.attributes)) })
        p.on('text', b.text)
        p.on('closetag', b.close)
        p.write(xml).close()
        return b.root()
      },
    })
  }
  const sax = tryLoad('sax') as { parser: (strict: boolean, o: object) => any } | undefined // eslint-disable-line @typescript-eslint/no-explicit-any
  if (sax !== undefined) {
    out.push({
      name: 'sax 1.6, tree built',
      run: () => {
        const b = treeBuilder()
        const p = sax.parser(true, { xmlns: true })
        p.onopentag = (n: { uri: string, local: string, attributes: Record<string, Attr> }) => { b.open(n.uri, n.local, attrsOf(n.attributes)) }
        p.ontext = b.text
        p.onclosetag = b.close
        p.write(xml).close()
        return b.root()
      },
    })
  }
  const fxp = tryLoad('fast-xml-parser') as { XMLParser: new (o: object) => { parse: (x: string) => unknown } } | undefined
  if (fxp !== undefined) {
    const parser = new fxp.XMLParser({ ignoreAttributes: false })
    out.push({ name: 'fast-xml-parser 5', run: () => parser.parse(xml) })
  }
  const txml = tryLoad('txml') as { parse: (x: string) => unknown } | undefined
  if (txml !== undefined) out.push({ name: 'txml 6', run: () => txml.parse(xml) })
  out.push({ name: 'metaos soap-runtime/xml.ts', run: () => parseXml(xml) })
  return out
}

const { values } = parseArgs({ options: { modules: { type: 'string' }, rounds: { type: 'string' }, ms: { type: 'string' } } })
// Where the parsers are looked for: --modules first, then the repository's own node_modules.
const requires = [...(values.modules === undefined ? [] : [values.modules]), packageFile('node_modules')].map((d) => createRequire(join(d, 'metaos-micro.js')))
const rounds = Number(values.rounds ?? '7')
const ms = Number(values.ms ?? '300')
const small = await writeEnvelope(512)
const large = await writeEnvelope(1048576)
const skipped = new Set<string>()
const perSmall = timeEach(candidates(requires, small, skipped), { rounds, ms })
const perLarge = timeEach(candidates(requires, large, skipped), { rounds: Math.min(rounds, 5), ms })
process.stdout.write(header('xml-parsers') + `envelopes: a Write of 512 B (${small.length} bytes), a Write of 1 MiB as base64 (${(large.length / 1e6).toFixed(2)} MB); median of ${rounds} rounds\n\n`)
process.stdout.write(table(['parser', 'µs per 1 KB envelope', 'ms per 1.4 MB envelope'], [...perSmall].map(([name, us]) => [name, fmt(us), fmt(perLarge.get(name)! / 1000, 2)])))
if (skipped.size > 0) process.stdout.write(`\nnot installed, skipped: ${[...skipped].join(', ')} (npm install --no-save fast-xml-parser@5 txml@6, or --modules DIR)\n`)
