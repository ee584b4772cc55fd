// METAOS_CONFIG's "sla" key (docs/supervision.md): the SLA of every domain, per domain by EPR, and
// the forecasting parameters load; every wrong value is refused with INVALID_CONFIG naming the key.
import t from 'tap'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../frontend/assembly/configuration.js'
import { tempDir } from '../helpers/temp-dir.js'

t.test('the "sla" key', async (t) => {
  const dir = tempDir(t, 'metaos-config-sla-')
  let n = 0
  const load = (doc: unknown): ReturnType<typeof loadConfig> => {
    const p = join(dir, `c${n++}.json`)
    writeFileSync(p, JSON.stringify(doc))
    return loadConfig(p, { watchFeed: false })
  }
  const c = load({ sla: { p99Ms: 20, maxErrorRate: 0.05, domains: { 'urn:uuid:1': { p99Ms: 50, minMBps: 30 } }, forecast: { horizonMs: 2000, alpha: 0.4, confirmations: 4 } } })
  t.same(c.sla, { sla: { p99Ms: 20, maxErrorRate: 0.05 }, slas: { 'urn:uuid:1': { p99Ms: 50, minMBps: 30 } }, forecast: { horizonMs: 2000, alpha: 0.4, confirmations: 4 } })
  t.same(load({ sla: { p99Ms: 5, forecast: false } }).sla, { sla: { p99Ms: 5 }, forecast: false }, 'forecasting off: the SLA alone')

  const refused = (doc: unknown, re: RegExp, what: string): void => {
    t.throws(() => load(doc), { code: 'INVALID_CONFIG', message: re }, what)
  }
  refused({ sla: 20 }, /"sla" must be an object/, 'not an object')
  refused({ sla: { p99Ms: -1 } }, /"sla\.p99Ms" must be a number above 0/, 'a negative p99')
  refused({ sla: { maxErrorRate: 2 } }, /"sla\.maxErrorRate" must be a number between 0 and 1/, 'an error rate over 1')
  refused({ sla: { p99: 20 } }, /unknown key "sla\.p99"/, 'an unknown key')
  refused({ sla: { domains: { x: { minMBps: 'fast' } } } }, /"sla\.domains\.x\.minMBps" must be a number above 0/, 'a domain\'s bad value')
  refused({ sla: { forecast: { alpha: 2 } } }, /forecast alpha must be a number above 0 and at most 1/, 'alpha over 1')
  refused({ sla: { forecast: { horizon: 2 } } }, /unknown key "sla\.forecast\.horizon"/, 'an unknown forecast key')
  refused({ sla: { forecast: true } }, /"sla\.forecast" must be false or an object/, 'forecast: true')
})
