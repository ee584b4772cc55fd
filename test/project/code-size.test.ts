// No product file over 400 lines, no function over 80: what a reader takes in at once. Counted by
// docs/tools/code-size.ts (`node dist/docs/tools/code-size.js --top 20` lists the largest) over the
// repository's .ts sources but test/, dist/, node_modules and the generated WSDL bindings. A failure
// names each file or function over its limit: split it by concern.
import t from 'tap'
import { codeSizes, functionSizes, lineCount, productFiles } from '../../docs/tools/code-size.js'

const MAX_FILE = 400
const MAX_FUNCTION = 80

const { files, functions } = codeSizes()

t.test('the count sees the product and nothing else', async (t) => {
  const all = productFiles()
  t.ok(all.includes('soap-runtime/xml.ts') && all.includes('vm/hypervisor-bus.ts') && all.includes('docs/tools/code-size.ts'), 'product files are counted')
  t.same(all.filter((f) => /^(test|dist|node_modules|wsdl\/generated)\//.test(f) || f.endsWith('.d.ts')), [], 'no test, build output, dependency or generated binding')
  t.ok(functions.length > 1000, `${functions.length} functions found`)
})

t.test('functions are found and measured: every kind, named by what binds them', async (t) => {
  const src = [
    'export function f (): void {', // 1
    '  const g = () => 1', // 2
    '}', // 3
    'class C {', // 4
    '  constructor () { this.x = 1 }', // 5
    '  m (): void {', // 6
    '    [1].map(function () {', // 7
    '      return 2', // 8
    '    })', // 9
    '  }', // 10
    '  get a (): number { return 1 }', // 11
    '  set a (v: number) {}', // 12
    '  #p = (): void => {}', // 13
    '  overload (): void', // 14
    '}', // 15
  ].join('\n') + '\n'
  t.equal(lineCount(src), 15)
  t.same(functionSizes('x.ts', src).map((s) => `${s.line} ${s.name} ${s.lines}`), [
    '1 f 3', '2 g 1', '5 C.constructor 1', '6 C.m 5', '7 (function passed to [1].map) 3', '11 C.get a 1', '12 C.set a 1', '13 C.#p 1',
  ])
})

t.test(`no product file is over ${MAX_FILE} lines`, async (t) => {
  const over = files.filter((f) => f.lines > MAX_FILE).map((f) => `${f.file}: ${f.lines} lines`)
  t.same(over, [], `largest: ${files[0]!.file} (${files[0]!.lines} lines)`)
})

t.test(`no function is over ${MAX_FUNCTION} lines`, async (t) => {
  const over = functions.filter((f) => f.lines > MAX_FUNCTION).map((f) => `${f.file}:${f.line} ${f.name}: ${f.lines} lines`)
  t.same(over, [], `largest: ${functions[0]!.file}:${functions[0]!.line} ${functions[0]!.name} (${functions[0]!.lines} lines)`)
})
