// Why a FileStream reads ahead with one coalesced Read in flight (frontend/api/read-ahead.ts,
// docs/api.md): a file read sequentially from a storage domain process, over net.uds and over the
// bus, in each shape read-ahead could take — a Read per 4 KiB block (no read-ahead: the floor),
// Batches of 64 Reads of 4 KiB one at a time, one Read of 256 KiB or 1 MiB at a time, and two
// positioned Batches (Seek + Read of 256 KiB) in flight at once; MB/s, median of interleaved rounds.
//
//   npm run build && node dist/benchmarks/micro/read-shapes.js [--mib N] [--rounds N]
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { randomBytes } from 'node:crypto'
import { spawnDomain } from '../../domains/domain-process.js'
import { createStorageProxy } from '../../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../../frontend/handlers/storage-handler.js'
import { fmt, header, median, table } from './measure.js'

const { values } = parseArgs({ options: { mib: { type: 'string' }, rounds: { type: 'string' } } })
const size = Number(values.mib ?? '16') * 1048576
const rounds = Number(values.rounds ?? '3')
const K4 = 4096

type Shape = (p: StorageHandler, handle: string) => Promise<void>
const shapes: Array<[string, Shape]> = [
  ['a Read per 4 KiB block', async (p, h) => { for (let o = 0; o < size; o += K4) await p.invoke('Read', { handle: h, count: K4 }) }],
  ['Batches of 64 Reads of 4 KiB', async (p, h) => { for (let o = 0; o < size; o += 64 * K4) await p.invoke('Batch', { op: Array.from({ length: 64 }, () => ({ Read: { handle: h, count: K4 } })) }) }],
  ['one Read of 256 KiB at a time', async (p, h) => { for (let o = 0; o < size; o += 262144) await p.invoke('Read', { handle: h, count: 262144 }) }],
  ['one Read of 1 MiB at a time', async (p, h) => { for (let o = 0; o < size; o += 1048576) await p.invoke('Read', { handle: h, count: 1048576 }) }],
  ['two Batches (Seek + Read of 256 KiB) in flight', async (p, h) => {
    let next = 0
    const lane = async (): Promise<void> => {
      while (next < size) {
        const offset = next
        next += 262144
        await p.invoke('Batch', { op: [{ Seek: { handle: h, offset, origin: 'Begin' } }, { Read: { handle: h, count: 262144 } }] })
      }
    }
    await Promise.all([lane(), lane()])
  }],
]

const dir = mkdtempSync(join(tmpdir(), 'metaos-read-shapes-'))
mkdirSync(join(dir, 'root'))
writeFileSync(join(dir, 'root', 'f.bin'), randomBytes(size))
const d = await spawnDomain(['storage', '--root', join(dir, 'root'), '--listen', `net.uds:${join(dir, 'nmf.sock')}`, '--listen', `unix:${join(dir, 'bus.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
const channels = [['net.uds', d.ready.endpoints[0]!], ['bus', d.ready.endpoints[1]!]] as const
const proxies = channels.map(([name, ep]) => [name, createStorageProxy(ep)] as const)
const samples = new Map<string, number[]>()
try {
  for (let r = 0; r < rounds; r++) {
    for (const [channel, p] of proxies) {
      for (const [name, shape] of shapes) {
        const h = (await p.invoke('Open', { path: 'f.bin', mode: 'Open', access: 'Read', share: 'Read' })).output.handle
        const t0 = performance.now()
        await shape(p, h)
        const mb = size / 1048576 / ((performance.now() - t0) / 1000)
        await p.invoke('Close', { handle: h })
        const key = `${channel}|${name}`
        samples.set(key, [...samples.get(key) ?? [], mb])
      }
    }
  }
} finally {
  for (const [, p] of proxies) await p.close()
  await d.stop()
  rmSync(dir, { recursive: true, force: true })
}
process.stdout.write(header('read-shapes') + `${size / 1048576} MiB read sequentially from a storage domain process; MB/s, median of ${rounds} rounds\n\n`)
process.stdout.write(table(['shape', ...channels.map(([c]) => c)], shapes.map(([name]) => [name, ...channels.map(([c]) => fmt(median(samples.get(`${c}|${name}`)!)))])))
