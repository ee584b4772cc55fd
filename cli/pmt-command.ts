// `metaos pmt`: builds a Performance Mapping Table of the storage domains discovery finds (and of
// this machine's kernel), measures them with probes, prints the table with each score's parts, and
// explains where a syscall would be placed and which rules decided it.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DiscoveryClient } from '../discovery/client.js'
import { STORAGE_DOMAIN_TYPE } from '../discovery/storage-announcement.js'
import { bestEndpoint } from '../frontend/handlers/discovered-domains.js'
import { LocalHandler } from '../frontend/handlers/local-handler.js'
import { PerformanceModule, PROBE_FILE } from '../frontend/placement/performance-module.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { place, rank } from '../frontend/placement/placement.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { createLogger } from '../soap-runtime/logger.js'
import { flag, parseOptions } from './options.js'
import { interfaceName, milliseconds, positive, syscall } from './option-kinds.js'
import { feedFile, rulesFile } from './placement-kinds.js'

const HELP = `usage: metaos pmt [--timeout MS] [--probes N] [--rules FILE] [--feed PATH] [--explain "OP PATH [BYTES]"] [--interface NAME]... [--json]

Finds storage domains with WS-Discovery, measures them (and the local kernel) with Open/Close
probes of a sample file, and prints the Performance Mapping Table: identity, latency, errors,
SLA, cost, state and the score with its parts (docs/score.md).

  --timeout MS     how long discovery listens (default 1500)
  --probes N       probes per domain (default 5)
  --rules FILE     placement rules (docs/rules.md)
  --feed PATH      vulnerability feed, a file or a directory (docs/vulnerability-feed.md)
  --explain S      where a syscall would go, e.g. "Open reports/q3.csv 4194304"
  --interface N    where to discover (repeatable, or "all"; default lo)
  --json           the rows (and the explanation) as JSON
  --help           this text

Exit codes: 0; 1 when discovery cannot start; 2 for a usage error; 3 when --explain finds no
domain that can take the syscall (NO_ELIGIBLE_DOMAIN): the table is printed, and why each domain
is out (isolated, draining, excluded by the vulnerability feed or by a rule).
`

/** The options of `metaos pmt` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  timeout: { kind: milliseconds },
  probes: { kind: positive },
  rules: { kind: rulesFile },
  feed: { kind: feedFile },
  explain: { kind: syscall },
  interface: { kind: interfaceName, multiple: true },
  json: flag,
} as const

/** The exit code of `--explain` when no domain can take the syscall (docs/cli.md). */
export const NO_ELIGIBLE_DOMAIN_EXIT = 3

/** No domain can take the explained syscall: the reason on stderr, exit 3. */
function refuse (message: string): number {
  process.stderr.write(`metaos pmt: NO_ELIGIBLE_DOMAIN: ${message}\n`)
  return NO_ELIGIBLE_DOMAIN_EXIT
}

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const { rules, feed } = values
  const client = new DiscoveryClient({ ...(values.interface === undefined ? {} : { interfaces: values.interface }), logger: createLogger('metaos-pmt', process.env.METAOS_LOG_LEVEL ?? 'warn') })
  await client.start()
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  try {
    const found = await client.probe({ types: [STORAGE_DOMAIN_TYPE], timeoutMs: values.timeout ?? 1500 })
    const local = new LocalHandler()
    const li = (await local.invoke('GetDomainInfo', {})).output
    handlers.set('local', perf.track({ epr: 'local', endpoints: ['local'], hosting: 'process', kernel: li.kernel, volume: 'local', runtime: li.runtime }, local, join(tmpdir(), PROBE_FILE)))
    for (const t of found) {
      const endpoint = bestEndpoint(t)
      if (endpoint === undefined) continue
      const proxy = createStorageProxy(endpoint, { timeoutMs: 5000 })
      try {
        const info = (await proxy.invoke('GetDomainInfo', {})).output
        const zone = t.scopes.find((s) => s.startsWith('metaos://zone/'))?.slice('metaos://zone/'.length)
        handlers.set(t.epr, perf.track({ epr: t.epr, endpoints: [endpoint], hosting: info.hosting, kernel: info.kernel, volume: info.volume, runtime: info.runtime, ...(zone === undefined ? {} : { zone: decodeURIComponent(zone) }) }, proxy))
      } catch (e) {
        process.stderr.write(`metaos pmt: ${t.epr} at ${endpoint} does not answer GetDomainInfo: ${(e as Error).message}\n`)
        await proxy.close()
      }
    }
    const n = values.probes ?? 5
    for (let i = 0; i < n; i++) for (const epr of handlers.keys()) await perf.probe(epr)
    const rows = pmt.rows()
    let explanation
    const ctx = values.explain
    if (ctx !== undefined) {
      const query = { ctx, eligible: (epr: string) => handlers.has(epr), what: 'storage domain' }
      const o = { ...(rules === undefined ? {} : { rules }), ...(feed === undefined ? {} : { feed }) }
      try {
        explanation = { syscall: ctx, ...place(pmt, query, o) }
      } catch (e) {
        if (!(e instanceof MetaosError) || e.code !== 'NO_ELIGIBLE_DOMAIN') throw e
        const { fired, out } = rank(pmt, query, o)
        explanation = { syscall: ctx, error: { code: e.code, message: e.message }, fired, out }
      }
    }
    if (values.json === true) {
      process.stdout.write(JSON.stringify({ rows: rows.map((r) => ({ ...r, vulnerabilities: feed?.affecting(r).map((v) => v.id) ?? [] })), explanation }, null, 2) + '\n')
      return explanation !== undefined && 'error' in explanation ? refuse(explanation.error.message) : 0
    }
    process.stdout.write(`${'domain'.padEnd(14)} ${'endpoint'.padEnd(44)} ${'kernel'.padEnd(18)} ${'volume'.padEnd(18)} ${'lat ms'.padStart(7)} ${'p99'.padStart(6)} ${'err'.padStart(4)} ${'score'.padStart(6)}  parts (perf·health·sla·cost)  state\n`)
    for (const r of rows) {
      const v = feed?.affecting(r).map((x) => x.id).join(',') ?? ''
      process.stdout.write(`${r.identity.epr.replace('urn:uuid:', '').slice(0, 13).padEnd(14)} ${r.identity.endpoints[0]!.slice(0, 44).padEnd(44)} ${`${r.identity.kernel.sysname} ${r.identity.kernel.release}`.slice(0, 18).padEnd(18)} ${r.identity.volume.slice(0, 18).padEnd(18)} ` +
        `${(r.measures.latencyMs ?? r.measures.probeLatencyMs ?? NaN).toFixed(2).padStart(7)} ${(r.p99Ms ?? NaN).toFixed(1).padStart(6)} ${String(r.measures.errors).padStart(4)} ${r.score.score.toFixed(1).padStart(6)}  ` +
        `${[r.score.perf, r.score.health, r.score.sla, r.score.cost].map((x) => x.toFixed(2)).join('·').padEnd(28)} ${r.state}${v === '' ? '' : `  vulnerable: ${v}`}\n`)
    }
    if (explanation !== undefined) {
      const what = [explanation.syscall.op, explanation.syscall.path, explanation.syscall.bytes].filter((x) => x !== undefined).join(' ')
      const short = (epr: string): string => epr.replace('urn:uuid:', '').slice(0, 13)
      process.stdout.write(`\n${what} → ${'chosen' in explanation ? explanation.chosen : 'no domain (NO_ELIGIBLE_DOMAIN)'}\n  rules fired: ${explanation.fired.length === 0 ? '(none)' : explanation.fired.join('; ')}\n`)
      if ('ranking' in explanation) process.stdout.write(`  ranking: ${explanation.ranking.map((r) => `${r.epr.replace('urn:uuid:', '').slice(0, 8)} ${r.score.toFixed(1)}`).join(' > ')}\n`)
      for (const x of explanation.out) process.stdout.write(`  out: ${short(x.epr).padEnd(14)} ${x.why}\n`)
      if ('error' in explanation) return refuse(explanation.error.message)
    }
    return 0
  } finally {
    for (const h of handlers.values()) await h.close()
    await client.close()
  }
}
