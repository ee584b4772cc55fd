// What supervision costs when nothing fails, per Write: the supervision suite's comparison
// (compareOverhead in benchmarks/supervision-suite.ts: a file written through a FileStream in
// 64 KiB Writes, bufferSize 0, through a bare proxy and through the supervised dispatcher of a
// three-domain LocalCluster, ABBA rounds, both sides of a round on the same domain), with what moves
// less than MB/s with the machine's load next to the wall time: the client's CPU µs per Write (this
// process, garbage collection included), the domains' CPU µs per Write (/proc/PID/stat of all
// three: the probes of the idle ones are supervision's too), and the SOAP calls the domains
// answered per file, by operation (their GET /metrics; http domains), so an extra call per Write
// would show at once.
//
//   npx tsc -p tsconfig.json && node dist/benchmarks/micro/supervision-cost.js [--mib 16] [--rounds 10] [--via http|net.uds]
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { LocalCluster } from '../../frontend/assembly/local-cluster.js'
import { compareOverhead } from '../supervision-suite.js'
import { machine, machineLine, mean, sd } from '../report.js'

const { values } = parseArgs({ options: { mib: { type: 'string' }, rounds: { type: 'string' }, via: { type: 'string' } } })
const via = values.via ?? 'http'
const size = Number(values.mib ?? '16') * 1048576
const rounds = Number(values.rounds ?? '10')
if ((via !== 'http' && via !== 'net.uds') || !(size > 0) || !(rounds > 0)) {
  process.stderr.write('usage: node dist/benchmarks/micro/supervision-cost.js [--mib N] [--rounds N] [--via http|net.uds]\n')
  process.exit(2)
}
const writes = Math.ceil(size / (64 * 1024))

function cpuMicros (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000 // clock ticks of 10 ms
}

/** The calls the domains answered so far, by operation (their metrics endpoints; http listeners only). */
async function serverCalls (endpoints: readonly string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const endpoint of endpoints.filter((e) => e.startsWith('http'))) {
    const text = await (await fetch(new URL('/metrics', endpoint))).text()
    for (const m of text.matchAll(/^metaos_domain_calls_total\{operation="(\w+)"[^}]*\} (\d+)/gm)) out.set(m[1]!, (out.get(m[1]!) ?? 0) + Number(m[2]))
  }
  return out
}

interface Sample { clientUs: number, domainsUs: number, calls: Map<string, number> }

const c = await LocalCluster.start({ domains: [via, via, via] })
try {
  const domains = await Promise.all(c.names.map(async (_, i) => await c.get(i)))
  const endpoints = domains.map((d) => d.endpoints[0]!)
  const domainsCpu = (): number => domains.reduce((a, d) => a + cpuMicros(d.pid), 0)
  // Per side, the sample of each round (a bare file written again replaces the round's first).
  const samples = { bare: new Map<number, Sample>(), sup: new Map<number, Sample>() }
  const result = await compareOverhead(c, randomBytes(size), {
    rounds,
    around: async (side, round, write) => {
      const calls0 = await serverCalls(endpoints)
      const [cpu0, d0] = [process.cpuUsage(), domainsCpu()]
      const ms = await write()
      const cpu = process.cpuUsage(cpu0)
      const s: Sample = { clientUs: cpu.user + cpu.system, domainsUs: domainsCpu() - d0, calls: new Map() }
      for (const [op, n] of await serverCalls(endpoints)) if (n > (calls0.get(op) ?? 0)) s.calls.set(op, n - (calls0.get(op) ?? 0))
      if (round >= 0) samples[side].set(round, s)
      return ms
    },
  })
  const out = (line: string): void => { process.stdout.write(`${line}\n`) }
  out(`${machineLine(machine())}\n${size / 1048576} MiB in ${writes} Writes of 64 KiB over ${via}, ${result.length} ABBA rounds`)
  out(`${''.padEnd(12)} ${'MB/s'.padStart(7)} ${'client µs/W'.padStart(12)} ${'domains µs/W'.padStart(13)}  calls the domains answered per file`)
  for (const side of ['bare', 'sup'] as const) {
    const xs = [...samples[side].values()]
    const ms = result.reduce((a, r) => a + (side === 'bare' ? r.bareMs : r.supMs), 0)
    const n = xs.length * writes
    const calls = [...xs.at(-1)!.calls].sort().map(([op, k]) => `${op} ${k}`).join(', ')
    out(`${(side === 'bare' ? 'bare proxy' : 'supervised').padEnd(12)} ${((size / 1048576) * result.length / (ms / 1000)).toFixed(1).padStart(7)} ${(xs.reduce((a, s) => a + s.clientUs, 0) / n).toFixed(0).padStart(12)} ${(xs.reduce((a, s) => a + s.domainsUs, 0) / n).toFixed(0).padStart(13)}  ${calls === '' ? '(not counted over net.uds)' : calls}`)
  }
  const costs = result.map((r) => r.supMs / r.bareMs - 1)
  out(`cost per round (time): ${(mean(costs) * 100).toFixed(1)}% ± ${(sd(costs) * 100).toFixed(1)}%; the supervised files went to ${new Set(result.map((r) => r.epr)).size} domain(s)`)
} finally {
  await c.close()
}
