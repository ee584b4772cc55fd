// The operator's own feed format ({ "vulnerabilities": [ … ] }, docs/vulnerability-feed.md): written
// by hand, so validated strictly — the first error fails the file, naming the entry and the field.
// A severity may be given as a number (0–10) or a CVSS v3 vector; none counts as a medium one.
import { MetaosError } from '../../../soap-runtime/errors.js'
import { cvss3BaseScore } from './cvss.js'
import { DEFAULT_SEVERITY, type Vulnerability } from './model.js'

export function validateFeed (doc: unknown, source = 'feed'): Vulnerability[] {
  const fail = (why: string): never => { throw new MetaosError('INVALID_ARGUMENT', `${source}: ${why}`) }
  const list = (doc as { vulnerabilities?: unknown })?.vulnerabilities
  if (!Array.isArray(list)) fail('expected { "vulnerabilities": [ … ] }')
  return (list as unknown[]).map((v, i) => {
    const o = v as Record<string, unknown>
    if (typeof o?.id !== 'string') fail(`vulnerability ${i + 1}: "id" is required`)
    if (o.action !== 'exclude' && o.action !== 'lower') fail(`${o.id as string}: "action" must be exclude or lower`)
    if (!Array.isArray(o.affected) || o.affected.length === 0) fail(`${o.id as string}: "affected" must list kernels or runtimes`)
    for (const a of o.affected as Array<Record<string, { ranges?: unknown, sysname?: unknown, name?: unknown }>>) {
      const k = a?.kernel ?? a?.runtime ?? a?.debian
      if (k === undefined || !Array.isArray(k.ranges)) fail(`${o.id as string}: each affected entry needs kernel{sysname,ranges}, runtime{name,ranges} or debian{package,release,ranges}`)
    }
    let severity = DEFAULT_SEVERITY
    let severityFrom = 'none given (medium)'
    if (typeof o.severity === 'number') {
      if (!(o.severity >= 0 && o.severity <= 10)) fail(`${o.id as string}: "severity" must be from 0 to 10`)
      severity = o.severity
      severityFrom = 'given'
    } else if (typeof o.severity === 'string') {
      try { severity = cvss3BaseScore(o.severity) } catch (e) { fail(`${o.id as string}: "severity": ${(e as Error).message}`) }
      severityFrom = o.severity
    } else if (o.severity !== undefined) fail(`${o.id as string}: "severity" must be a number from 0 to 10 or a CVSS v3 vector`)
    return { ...(o as unknown as Vulnerability), severity, severityFrom }
  })
}
