// `metaos pmt`: builds a Performance Mapping Table of the storage domains discovery finds (and of
// this machine's kernel), measures them with probes, prints the table with each score's parts, and
// explains where a syscall would be placed and which rules decided it.
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { DiscoveryClient } from '../discovery/client.js'
import { STORAGE_DOMAIN_TYPE } from '../discovery/storage-announcement.js'
import { bestEndpoint } from '../frontend/handlers/discovered-domains.js'
import { Dispatcher } from '../frontend/placement/dispatcher.js'
import { LocalHandler } from '../frontend/handlers/local-handler.js'
import { PerformanceModule, PROBE_FILE } from '../frontend/placement/performance-module.js'
import { PerformanceMappingTable } from '../frontend/placement/pmt.js'
import { RulesEngine } from '../frontend/placement/rules-engine.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import { VulnerabilityFeed } from '../frontend/placement/vulnerability-feed.js'
import { createLogger } from '../soap-runtime/logger.js'

const HELP = `usage: metaos pmt [--timeout MS] [--probes N] [--rules FILE] [--feed FILE] [--explain "OP PATH [BYTES]"] [--interface NAME]... [--json]

Finds storage domains with WS-Discovery, measures them (and the local kernel) with Open/Close
probes of a sample file, and prints the Performance Mapping Table: identity, latency, errors,
SLA, cost, state and the score with its parts (docs/score.md).

  --timeout MS     how long discovery listens (default 1500)
  --probes N       probes per domain (default 5)
  --rules FILE     placement rules (docs/rules.md)
  --feed FILE      vulnerability feed (docs/vulnerability-feed.md)
  --explain S      where a syscall would go, e.g. "Open reports/q3.csv 4194304"
  --interface N    where to discover (repeatable, or "all"; default lo)
  --json           the rows (and the explanation) as JSON
`

export async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      timeout: { type: 'string' }, probes: { type: 'string' }, rules: { type: 'string' }, feed: { type: 'string' },
      explain: { type: 'string' }, interface: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) { process.stdout.write(HELP); return 0 }
  const rules = values.rules === undefined ? undefined : RulesEngine.fromFile(values.rules)
  const feed = values.feed === undefined ? undefined : VulnerabilityFeed.fromFile(values.feed, false)
  const client = new DiscoveryClient({ ...(values.interface === undefined ? {} : { interfaces: values.interface }), logger: createLogger('metaos-pmt', process.env.METAOS_LOG_LEVEL ?? 'warn') })
  await client.start()
  const pmt = new PerformanceMappingTable()
  const perf = new PerformanceModule({ pmt })
  const handlers = new Map<string, StorageHandler>()
  try {
    const found = await client.probe({ types: [STORAGE_DOMAIN_TYPE], timeoutMs: Number(values.timeout ?? '1500') })
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
    const n = Number(values.probes ?? '5')
    for (let i = 0; i < n; i++) for (const epr of handlers.keys()) await perf.probe(epr)
    const rows = pmt.rows()
    let explanation
    if (values.explain !== undefined) {
      const [op = 'Open', path, bytes] = values.explain.trim().split(/\s+/)
      const d = new Dispatcher(pmt, handlers, { ...(rules === undefined ? {} : { rules }), ...(feed === undefined ? {} : { feed }) })
      explanation = { syscall: { op, path, bytes: bytes === undefined ? undefined : Number(bytes) }, ...d.place({ op, ...(path === undefined ? {} : { path }), ...(bytes === undefined ? {} : { bytes: Number(bytes) }) }) }
    }
    if (values.json === true) {
      process.stdout.write(JSON.stringify({ rows: rows.map((r) => ({ ...r, vulnerabilities: feed?.affecting(r).map((v) => v.id) ?? [] })), explanation }, null, 2) + '\n')
      return 0
    }
    process.stdout.write(`${'domain'.padEnd(14)} ${'endpoint'.padEnd(44)} ${'kernel'.padEnd(18)} ${'volume'.padEnd(18)} ${'lat ms'.padStart(7)} ${'p99'.padStart(6)} ${'err'.padStart(4)} ${'score'.padStart(6)}  parts (perf·health·sla·cost)  state\n`)
    for (const r of rows) {
      const v = feed?.affecting(r).map((x) => x.id).join(',') ?? ''
      process.stdout.write(`${r.identity.epr.replace('urn:uuid:', '').slice(0, 13).padEnd(14)} ${r.identity.endpoints[0]!.slice(0, 44).padEnd(44)} ${`${r.identity.kernel.sysname} ${r.identity.kernel.release}`.slice(0, 18).padEnd(18)} ${r.identity.volume.slice(0, 18).padEnd(18)} ` +
        `${(r.measures.latencyMs ?? r.measures.probeLatencyMs ?? NaN).toFixed(2).padStart(7)} ${(r.p99Ms ?? NaN).toFixed(1).padStart(6)} ${String(r.measures.errors).padStart(4)} ${r.score.score.toFixed(1).padStart(6)}  ` +
        `${[r.score.perf, r.score.health, r.score.sla, r.score.cost].map((x) => x.toFixed(2)).join('·').padEnd(28)} ${r.state}${v === '' ? '' : `  vulnerable: ${v}`}\n`)
    }
    if (explanation !== undefined) {
      process.stdout.write(`\n${values.explain} → ${explanation.chosen}\n  rules fired: ${explanation.fired.length === 0 ? '(none)' : explanation.fired.join('; ')}\n  ranking: ${explanation.ranking.map((r) => `${r.epr.replace('urn:uuid:', '').slice(0, 8)} ${r.score.toFixed(1)}`).join(' > ')}\n`)
    }
    return 0
  } finally {
    for (const h of handlers.values()) await h.close()
    await client.close()
  }
}
