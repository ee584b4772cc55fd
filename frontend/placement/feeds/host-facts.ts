// What this host says of its kernel and distribution, for the domains it runs as local processes
// (they share its kernel and files): `uname -v` (a Debian kernel's package version is there) and
// /etc/os-release (ID, VERSION_ID, VERSION_CODENAME).
import { readFileSync } from 'node:fs'
import { release, type, version } from 'node:os'
import type { DomainFacts } from './model.js'

let cached: DomainFacts['distribution'] | null | undefined

/** This host's distribution from os-release (read once); undefined when there is none. */
export function hostDistribution (file = '/etc/os-release'): DomainFacts['distribution'] {
  if (cached !== undefined && file === '/etc/os-release') return cached ?? undefined
  let d: DomainFacts['distribution'] | null = null
  try {
    const kv = new Map(readFileSync(file, 'utf8').split('\n').map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim())).filter((m) => m !== null).map((m) => [m[1]!, m[2]!.replace(/^"(.*)"$/, '$1')]))
    const id = kv.get('ID')
    if (id !== undefined && id !== '') d = { id, ...(kv.has('VERSION_ID') ? { versionId: kv.get('VERSION_ID')! } : {}), ...(kv.get('VERSION_CODENAME') ? { codename: kv.get('VERSION_CODENAME')! } : {}) }
  } catch {}
  if (file === '/etc/os-release') cached = d
  return d ?? undefined
}

/** This host's kernel as a domain reports it. */
export function hostKernel (): DomainFacts['kernel'] {
  return { sysname: type(), release: release(), version: version() }
}
