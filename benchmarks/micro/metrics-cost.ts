// What a domain's Prometheus metrics cost (docs/dependencies.md, `prom-client`): one record() per
// call as the service host makes it, a scrape of a domain's registry (every storage operation
// recorded, Node's process metrics included, as `metaos storage` serves it), and — for scale, in the
// same run — a 4 KiB Write round trip to a storage domain process over the bus (a Unix socket).
//
//   npm run build && node dist/benchmarks/micro/metrics-cost.js [--records N] [--calls N]
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { spawnDomain } from '../../domains/domain-process.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { StorageServiceDescriptor } from '../../wsdl/generated/storage-service.js'
import { DomainMetrics } from '../../soap-runtime/metrics.js'
import { fmt, header, median, table } from './measure.js'

const { values } = parseArgs({ options: { records: { type: 'string' }, calls: { type: 'string' } } })
const records = Number(values.records ?? '1000000')
const calls = Number(values.calls ?? '2000')
const ROUNDS = 5

const metrics = new DomainMetrics({ service: 'storage', epr: 'urn:uuid:00000000-0000-0000-0000-000000000000', labels: { volume: 'bench', hosting: 'process' }, authenticated: false })
metrics.includeProcessMetrics()
const ops = Object.keys(StorageServiceDescriptor.operations)
for (const operation of ops) metrics.record({ operation, transport: 'unix', micros: 120, requestBytes: 900, responseBytes: 400 })
const perRecord: number[] = []
for (let r = 0; r < ROUNDS; r++) {
  const t = performance.now()
  for (let i = 0; i < records / ROUNDS; i++) metrics.record({ operation: 'Write', transport: 'unix', micros: 100 + (i & 255), requestBytes: 5500, responseBytes: 350 })
  perRecord.push(((performance.now() - t) * 1000) / (records / ROUNDS))
}
let text = ''
const scrapes: number[] = []
for (let i = 0; i < 200; i++) { const t = performance.now(); text = await metrics.text(); scrapes.push(performance.now() - t) }

const dir = mkdtempSync(join(tmpdir(), 'metaos-metrics-'))
const domain = await spawnDomain(['storage', '--root', dir, '--listen', `unix:${join(dir, 'bus.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
const proxy = createStorageProxy(domain.ready.endpoints[0]!)
const roundTrips: number[] = []
try {
  const { handle } = (await proxy.invoke('Open', { path: 'w.bin', mode: 'Create', access: 'Write', share: 'None' })).output
  const data = Buffer.alloc(4096, 0x61)
  for (let i = 0; i < 200; i++) await proxy.invoke('Write', { handle, data }) // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now()
    for (let i = 0; i < calls / ROUNDS; i++) await proxy.invoke('Write', { handle, data })
    roundTrips.push(((performance.now() - t) * 1000) / (calls / ROUNDS))
  }
  await proxy.invoke('Close', { handle })
} finally {
  await proxy.close()
  await domain.stop()
  rmSync(dir, { recursive: true, force: true })
}
const rec = median(perRecord)
const rt = median(roundTrips)
process.stdout.write(header('metrics-cost') + `${records} records, ${calls} Writes, medians of ${ROUNDS} rounds\n\n`)
process.stdout.write(table(['what', 'time'], [
  ['record() of one call', `${fmt(rec, 2)} µs`],
  [`a scrape (${(text.length / 1024).toFixed(1)} KiB of text)`, `${fmt(median(scrapes), 2)} ms`],
  ['a 4 KiB Write round trip over the bus (domain process)', `${fmt(rt)} µs`],
  ['record() as a share of that round trip', `${((rec / rt) * 100).toFixed(2)} %`],
]))
