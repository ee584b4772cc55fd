// docs/errors.md documents every code of the catalogue and no other; the WSDL's FaultCode
// enumeration is exactly the catalogue's fault codes.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { ERRORS, FAULT_CODES, NETWORK_FAULT_CODES } from '../../soap-runtime/errors.js'
import { FaultCodeValues as NetworkFaultCodeValues } from '../../wsdl/generated/network-service.js'
import { FaultCodeValues } from '../../wsdl/generated/storage-service.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'

t.test('docs/errors.md is in step with the catalogue', async (t) => {
  const doc = readFileSync(join(PACKAGE_ROOT, 'docs', 'errors.md'), 'utf8')
  const documented = new Set([...doc.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!))
  for (const code of Object.keys(ERRORS)) t.ok(documented.has(code), `${code} is documented`)
  for (const code of documented) t.ok(code in ERRORS, `${code} in the docs exists in soap-runtime/errors.ts`)
  t.same([...FaultCodeValues].sort(), [...FAULT_CODES].sort(), 'the storage WSDL declares exactly the fault codes')
  t.same([...NetworkFaultCodeValues].sort(), [...NETWORK_FAULT_CODES].sort(), 'the network WSDL declares exactly its fault codes')
})
