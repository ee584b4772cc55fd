// What the private CA's library costs (docs/dependencies.md, `@peculiar/x509`): loading
// reflect-metadata and @peculiar/x509 in a fresh process, making a CA (P-256 and RSA-2048) and a
// domain certificate with security/pki.ts, in a temporary directory removed afterwards.
//
//   npm run build && node dist/benchmarks/micro/x509-cost.js [--runs N]
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { initCa, issueDomainCertificate } from '../../security/pki.js'
import { PACKAGE_ROOT } from '../../wsdl/package-root.js'
import { fmt, header, median, table } from './measure.js'

const { values } = parseArgs({ options: { runs: { type: 'string' } } })
const runs = Number(values.runs ?? '9')

// A fresh process each time: the import is what a first `metaos pki` pays.
const LOAD = "const t = performance.now(); await import('reflect-metadata'); await import('@peculiar/x509'); process.stdout.write(String(performance.now() - t))"
const loads: number[] = []
for (let i = 0; i < runs; i++) loads.push(Number(execFileSync(process.execPath, ['--input-type=module', '-e', LOAD], { cwd: PACKAGE_ROOT, encoding: 'utf8' })))

const dir = mkdtempSync(join(tmpdir(), 'metaos-x509-'))
const timed = async (f: () => Promise<unknown>): Promise<number> => { const t = performance.now(); await f(); return performance.now() - t }
try {
  await initCa(join(dir, 'warm'), { keyType: 'ec' }) // the library is loaded here, not in what follows
  const ec: number[] = []
  const rsa: number[] = []
  const domain: number[] = []
  for (let i = 0; i < runs; i++) {
    ec.push(await timed(async () => await initCa(join(dir, 'ec'), { keyType: 'ec', force: true })))
    domain.push(await timed(async () => await issueDomainCertificate(join(dir, 'ec'), { name: `d${i}` })))
    rsa.push(await timed(async () => await initCa(join(dir, 'rsa'), { keyType: 'rsa', force: true })))
  }
  process.stdout.write(header('x509-cost') + `median of ${runs} runs\n\n`)
  process.stdout.write(table(['what', 'ms'], [
    ['load reflect-metadata + @peculiar/x509 (fresh process)', fmt(median(loads))],
    ['make a CA, P-256 (key, certificate, empty CRL, index)', fmt(median(ec))],
    ['issue a domain certificate, P-256', fmt(median(domain))],
    ['make a CA, RSA-2048', fmt(median(rsa))],
  ]))
} finally {
  rmSync(dir, { recursive: true, force: true })
}
