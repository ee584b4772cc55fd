// What supervision costs when nothing fails, per Write: the supervision suite's comparison (a file
// written through a FileStream in 64 KiB Writes, bufferSize 0, to a LocalCluster's domain through a
// bare proxy and through the supervised dispatcher, ABBA rounds), with what moves less than MB/s
// with the machine's load next to the wall time: the client's CPU µs per Write (this process,
// garbage collection included), the domain's CPU µs per Write (/proc/PID/stat of the domain the
// stream is on, and of the other domains: probes land there), and the SOAP calls the domain answered
// per file, by operation (its GET /metrics, http domains), so an extra call per Write shows at once.
// `--only bare|sup` runs one side alone (for a CPU profile of it: `node --cpu-prof …`).
//
//   npx tsc -p tsconfig.json && node dist/benchmarks/micro/supervision-cost.js [--mib 16] [--rounds 10] [--via http|net.uds]
import { randomBytes } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FileStream } from '../../frontend/api/file-stream.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { machine, machineLine } from '../report.js'

const { values } = parseArgs({ options: { mib: { type: 'string' }, rounds: { type: 'string' }, via: { type: 'string' }, only: { type: 'string' } } })
const via = values.via ?? 'http'
if (via !== 'http' && via !== 'net.uds') {
  process.stderr.write('usage: node dist/benchmarks/micro/supervision-cost.js [--mib N] [--rounds N] [--via http|net.uds]\n')
  process.exit(2)
}
const size = Number(values.mib ?? '16') * 1048576
const rounds = Number(values.rounds ?? '10')
const BLOCK = 64 * 1024
const data = randomBytes(size)

function cpuMicros (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000 // clock ticks of 10 ms
}

/** The domain's calls answered so far, by operation (its metrics endpoint; http listeners only). */
async function serverCalls (endpoint: string): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  if (!endpoint.startsWith('http')) return out
  const text = await (await fetch(new URL('/metrics', endpoint))).text()
  for (const m of text.matchAll(/^metaos_domain_calls_total\{operation="(\w+)"[^}]*\} (\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]))
  return out
}

interface Sample { ms: number, clientUs: number, serverUs: number, othersUs: number, calls: Map<string, number>, clientCalls: Map<string, number> }

const c = await LocalCluster.start({ domains: [via, via, via] })
try {
  const epr = c.dispatcher.place().chosen
  const chosen = await c.get(c.index(epr))
  const others = await Promise.all(c.names.map(async (_, i) => await c.get(i)))
  const otherPids = others.filter((d) => d.epr !== epr).map((d) => d.pid)
  const bare = createStorageProxy(chosen.endpoints[0]!)
  // Client-side counts of what each side sends the domain: the bare proxy, and the dispatcher's handler of that domain.
  const clientCalls = new Map<string, number>()
  const counted = (h: StorageHandler): StorageHandler => ({ destination: h.destination, close: h.close, invoke: (async (op: string, input: unknown) => { clientCalls.set(op, (clientCalls.get(op) ?? 0) + 1); return await (h.invoke as (o: string, i: unknown) => Promise<unknown>)(op, input) }) as StorageHandler['invoke'] })
  const countedBare = counted(bare)
  c.handlers.set(epr, counted(c.handlers.get(epr)!))
  const once = async (destination: StorageHandler, path: string): Promise<Sample> => {
    const before = await serverCalls(chosen.endpoints[0]!)
    clientCalls.clear()
    const [cpu0, s0, o0] = [process.cpuUsage(), cpuMicros(chosen.pid), otherPids.reduce((a, p) => a + cpuMicros(p), 0)]
    const t0 = performance.now()
    const f = await FileStream.open(path, { mode: 'Create', access: 'Write', destination, bufferSize: 0 })
    for (let off = 0; off < size; off += BLOCK) await f.write(data, off, Math.min(BLOCK, size - off))
    await f.close()
    const ms = performance.now() - t0
    const cpu = process.cpuUsage(cpu0)
    const sample = { ms, clientUs: cpu.user + cpu.system, serverUs: cpuMicros(chosen.pid) - s0, othersUs: otherPids.reduce((a, p) => a + cpuMicros(p), 0) - o0, calls: new Map<string, number>(), clientCalls: new Map(clientCalls) }
    for (const [op, n] of await serverCalls(chosen.endpoints[0]!)) if (n - (before.get(op) ?? 0) > 0) sample.calls.set(op, n - (before.get(op) ?? 0))
    rmSync(join(c.root, path))
    return sample
  }
  await once(countedBare, 'warm.bin')
  await once(c.dispatcher, 'warm.bin')
  const all: Record<'bare' | 'sup', Sample[]> = { bare: [], sup: [] }
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 === 0 ? ['bare', 'sup'] as const : ['sup', 'bare'] as const) {
      if (values.only !== undefined && values.only !== which) continue
      all[which].push(await once(which === 'bare' ? countedBare : c.dispatcher, `${which}.bin`))
    }
  }
  await bare.close()
  const writes = Math.ceil(size / BLOCK)
  const sum = (xs: Sample[], k: 'ms' | 'clientUs' | 'serverUs' | 'othersUs'): number => xs.reduce((a, s) => a + s[k], 0)
  const ops = (m: Map<string, number>): string => [...m].sort().map(([op, n]) => `${op} ${n}`).join(', ')
  process.stdout.write(`${machineLine(machine())}\n${size / 1048576} MiB in ${writes} Writes of 64 KiB over ${via}, ${rounds} ABBA rounds\n`)
  process.stdout.write(`${''.padEnd(12)} ${'MB/s'.padStart(7)} ${'client µs/W'.padStart(12)} ${'domain µs/W'.padStart(12)} ${'others µs/W'.padStart(12)}  calls per file (domain's metrics | client's)\n`)
  for (const which of ['bare', 'sup'] as const) {
    const xs = all[which]
    if (xs.length === 0) continue
    const n = xs.length * writes
    process.stdout.write(`${(which === 'bare' ? 'bare proxy' : 'supervised').padEnd(12)} ${((size / 1048576) * xs.length / (sum(xs, 'ms') / 1000)).toFixed(1).padStart(7)} ${(sum(xs, 'clientUs') / n).toFixed(0).padStart(12)} ${(sum(xs, 'serverUs') / n).toFixed(0).padStart(12)} ${(sum(xs, 'othersUs') / n).toFixed(0).padStart(12)}  ${ops(xs.at(-1)!.calls)} | ${ops(xs.at(-1)!.clientCalls)}\n`)
  }
  if (values.only === undefined) {
    const costs = all.sup.map((s, i) => s.ms / all.bare[i]!.ms - 1)
    const mean = costs.reduce((a, b) => a + b, 0) / costs.length
    const sd = Math.sqrt(costs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, costs.length - 1))
    process.stdout.write(`cost per round (time): ${(mean * 100).toFixed(1)}% ± ${(sd * 100).toFixed(1)}%\n`)
  }
} finally {
  await c.close()
}
