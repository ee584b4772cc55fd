// CPU time per Write round trip, client and server apart, of two builds of metaos side by side
// (e.g. a commit before a change and after it). Throughput on a shared 2-core machine moves with
// the load; the CPU time a call costs each end (garbage collection included: it runs on the
// process's threads) moves far less, so this is how a per-call regression is shown or ruled out.
// Each build's own `dist/` serves (`metaos storage` over http on 127.0.0.1) and calls (its own
// createStorageProxy); the builds take turns (ABAB…), so both see the same load.
//
//   git worktree add --detach ../metaos-before <commit> && (cd ../metaos-before && ln -s "$PWD/../<this repo>/node_modules" && npx tsc)
//   node dist/benchmarks/micro/cpu-per-call.js --builds ../metaos-before,. [--size 65536] [--calls 1000] [--pairs 5]
// `--via http,net.uds,net.uds-text` compares transports instead (or as well): the domain listens on
// each, the proxy calls over one at a time (net.uds in the binary encoding, net.uds-text in text).
//   node dist/benchmarks/micro/cpu-per-call.js --builds . --via http,net.uds,net.uds-text --size 512
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { parseArgs } from 'node:util'
import type { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import { median } from './measure.js'

const { values } = parseArgs({ options: { builds: { type: 'string' }, via: { type: 'string' }, size: { type: 'string' }, calls: { type: 'string' }, pairs: { type: 'string' } } })
const VIAS = ['http', 'net.uds', 'net.uds-text'] as const
type Via = typeof VIAS[number]
const vias = (values.via ?? 'http').split(',') as Via[]
if (values.builds === undefined || values.builds.split(',').length * vias.length < 2 || vias.some((v) => !VIAS.includes(v))) {
  process.stderr.write('usage: node dist/benchmarks/micro/cpu-per-call.js --builds DIR[,DIR…] [--via http,net.uds,net.uds-text] [--size BYTES] [--calls N] [--pairs N]\n')
  process.exit(2)
}
const builds = values.builds.split(',').map(b => resolve(b))
const size = Number(values.size ?? '65536')
const calls = Number(values.calls ?? '1000')
const pairs = Number(values.pairs ?? '5')

interface Sample { client: number, server: number, callsPerSecond: number }

/** CPU µs the process has used (user + system), from /proc: the server is another process. */
function processCpuMicros (pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 1_000_000 / 100 // clock ticks of 10 ms
}

async function measure (build: string, via: Via): Promise<Sample> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-cpu-per-call-'))
  const listen = via === 'http' ? 'http://127.0.0.1:0' : `net.uds:${join(dir, 'd.sock')}`
  const server = spawn(process.execPath, [join(build, 'dist/cli/metaos.js'), 'storage', '--root', dir, '--listen', listen],
    { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  try {
    const ready = await new Promise<string>((resolve, reject) => {
      let text = ''
      server.stdout.on('data', (d: Buffer) => { text += d.toString(); const i = text.indexOf('\n'); if (i >= 0) resolve(text.slice(0, i)) })
      server.once('exit', code => { reject(new Error(`${build}: metaos storage exited (${code}) before its ready line`)) })
    })
    const url = (via === 'http' ? /http:\/\/127\.0\.0\.1:\d+\/storage/ : /net\.uds:[^"\s]+/).exec(ready)?.[0]
    if (url === undefined) throw new Error(`${build}: no ${via} listener in the ready line ${ready}`)
    const metaos = await import(pathToFileURL(join(build, 'dist/index.js')).href) as { createStorageProxy: typeof createStorageProxy }
    const proxy = metaos.createStorageProxy(url, via === 'net.uds-text' ? { encoding: 'text' } : {})
    const { handle } = (await proxy.invoke('Open', { path: 'f', mode: 'Create', access: 'Write', share: 'None' })).output
    const data = Buffer.alloc(size, 7)
    for (let i = 0; i < 200; i++) await proxy.invoke('Write', { handle, data }) // warm-up: JIT, sockets
    const client0 = process.cpuUsage()
    const server0 = processCpuMicros(server.pid!)
    const t0 = performance.now()
    for (let i = 0; i < calls; i++) await proxy.invoke('Write', { handle, data })
    const ms = performance.now() - t0
    const client = process.cpuUsage(client0)
    const sample = { client: (client.user + client.system) / calls, server: (processCpuMicros(server.pid!) - server0) / calls, callsPerSecond: calls / ms * 1000 }
    await proxy.invoke('Close', { handle })
    return sample
  } finally {
    server.kill()
    rmSync(dir, { recursive: true, force: true })
  }
}

const cases = builds.flatMap((build) => vias.map((via) => ({ build, via, name: vias.length === 1 ? build : `${build} ${via}` })))
const samples = new Map<string, Sample[]>(cases.map(c => [c.name, []]))
for (let p = 0; p < pairs; p++) for (const c of (p % 2 === 0 ? cases : [...cases].reverse())) samples.get(c.name)!.push(await measure(c.build, c.via))
process.stdout.write(`CPU per ${size} B Write round trip, ${calls} calls × ${pairs} turns per case, medians (µs per call)\n`)
process.stdout.write('build\tclient µs\tserver µs\tcalls/s\n')
for (const [b, s] of samples) {
  process.stdout.write(`${b}\t${median(s.map(x => x.client)).toFixed(0)}\t${median(s.map(x => x.server)).toFixed(0)}\t${median(s.map(x => x.callsPerSecond)).toFixed(0)}\n`)
}
process.exit(0)
