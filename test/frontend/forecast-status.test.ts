// The forecast in the status snapshot (what `metaos status` and the dashboard read): a supervised
// cluster of domain processes with an SLA shows, per domain, its p99 forecast against the SLA.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { FileStream } from '../../index.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'

t.test('status: each domain\'s forecast against its SLA', async (t) => {
  const c = await LocalCluster.start({ probeIntervalMs: 200, supervisor: { sla: { p99Ms: 500 } } })
  t.teardown(async () => { await c.close() })
  const f = await FileStream.open('f.bin', { mode: 'Create', access: 'Write', destination: c.dispatcher, bufferSize: 0 })
  const block = randomBytes(4096)
  let forecast
  for (let i = 0; i < 2000 && forecast === undefined; i++) {
    await f.write(block)
    if (i % 20 === 0) forecast = (await c.status()).pmt.find((r) => r.forecast?.p99 !== undefined)?.forecast?.p99
  }
  await f.close()
  t.ok(forecast !== undefined, 'a domain shows a p99 forecast')
  t.match(forecast, { limit: 500, horizonMs: 3000, level: Number, trend: Number, forecast: Number })
  t.notOk(c.supervisor.decisions.some((d) => /^forecast/.test(d.reason)), 'a healthy cluster far inside its SLA: no forecast isolation')
})
