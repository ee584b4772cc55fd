// The generated descriptors and types are checked in: they must be what `npm run codegen` makes
// from wsdl/ today.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generate } from '../../soap-runtime/codegen/cli.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'

t.test('wsdl/generated matches wsdl/', async (t) => {
  const files = generate(join(PACKAGE_ROOT, 'wsdl'))
  t.ok(files.size >= 1)
  for (const [name, text] of files) {
    t.equal(readFileSync(join(PACKAGE_ROOT, 'wsdl', 'generated', name), 'utf8'), text, `${name} is fresh (run npm run codegen)`)
  }
})
