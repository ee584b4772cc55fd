#!/usr/bin/env node
// `npm run codegen`: every wsdl/*.wsdl → <out>/<kebab-name>.ts. Also used by the staleness test.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, basename } from 'node:path'
import { readWsdl } from './wsdl-reader.js'
import { emitTypeScript } from './emit-typescript.js'

export function generatedName (wsdlFile: string): string {
  return basename(wsdlFile, '.wsdl').replace(/([a-z])([A-Z])/g, '$1-$2').toLowerCase() + '.ts'
}

export function generate (wsdlDir: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const f of readdirSync(wsdlDir).filter((x) => x.endsWith('.wsdl')).sort()) {
    out.set(generatedName(f), emitTypeScript(readWsdl(readFileSync(join(wsdlDir, f), 'utf8')), `wsdl/${f}`))
  }
  return out
}

if (process.argv[1] !== undefined && import.meta.url.endsWith(basename(process.argv[1]))) {
  const [wsdlDir = 'wsdl', outDir = 'wsdl/generated'] = process.argv.slice(2)
  for (const [name, text] of generate(wsdlDir)) {
    writeFileSync(join(outDir, name), text)
    process.stdout.write(`wrote ${join(outDir, name)}\n`)
  }
}
