// The char-mode suite: a file written byte by byte (WriteByte) through a FileStream whose buffer
// (the paper's "cache") is `cacheBytes`, to the local kernel and to a process domain over HTTP and
// over the bus — faithful (one Write per full buffer, as in the paper) and exception-less
// (pipelined, coalesced Batch calls) — side by side in one run.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { FileStream } from '../frontend/api/file-stream.js'
import { closeSharedProxies } from '../frontend/handlers/storage-proxy.js'
import { spawnDomain } from '../domains/domain-process.js'
import type { BenchRow } from './report.js'

export interface CharSuiteOptions {
  readonly fileBytes: number
  readonly cacheBytes: number
  readonly onProgress?: (done: number, total: number, label: string) => void
}

export async function runCharSuite (o: CharSuiteOptions): Promise<BenchRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-char-'))
  const root = join(dir, 'volume')
  mkdirSync(root)
  const d = await spawnDomain(['storage', '--root', root, '--listen', 'http://127.0.0.1:0', '--listen', `unix:${join(dir, 'bus.sock')}`], { env: { ...process.env, METAOS_LOG_LEVEL: 'warn' } })
  const [http, bus] = d.ready.endpoints as [string, string]
  const data = randomBytes(o.fileBytes)
  const cases: Array<[BenchRow['hosting'], string, string, boolean]> = [
    ['local', 'local', join(dir, 'local.bin'), false],
    ['http', http, 'http.bin', false], ['http', http, 'http-batched.bin', true],
    ['bus', bus, 'bus.bin', false], ['bus', bus, 'bus-batched.bin', true],
  ]
  const rows: BenchRow[] = []
  try {
    for (const [i, [hosting, destination, path, batched]] of cases.entries()) {
      o.onProgress?.(i, cases.length, `${hosting}${batched ? ' exception-less' : ''}`)
      const t0 = performance.now()
      const fs = await FileStream.open(path, { mode: 'Create', access: 'Write', bufferSize: o.cacheBytes, destination, exceptionLess: batched })
      for (let j = 0; j < data.length; j++) await fs.writeByte(data[j]!)
      await fs.close()
      const ms = performance.now() - t0
      rows.push({
        suite: 'char', peer: 'metaos', hosting, op: 'write', mode: batched ? 'char-batched' : 'char',
        fileBytes: o.fileBytes, cacheBytes: o.cacheBytes, runs: 1,
        mbPerSec: o.fileBytes / 1048576 / (ms / 1000), callsPerSec: fs.stats.calls / (ms / 1000),
        channelMs: fs.stats.channelMicros / 1000, serviceMs: fs.stats.serviceMicros / 1000, totalMs: ms,
      })
    }
  } finally {
    await closeSharedProxies()
    await d.stop()
    rmSync(dir, { recursive: true, force: true })
  }
  return rows
}

export function charTable (rows: readonly BenchRow[]): string {
  const local = rows.find((r) => r.hosting === 'local')?.mbPerSec ?? NaN
  let out = `\nWriteByte of ${(rows[0]?.fileBytes ?? 0) / 1048576} MiB through a ${rows[0]?.cacheBytes} B cache\n`
  out += `  ${'hosting/mode'.padEnd(20)} ${'MB/s'.padStart(7)} ${'calls/s'.padStart(9)} ${'channel ms'.padStart(11)} ${'service ms'.padStart(11)} ${'vs local'.padStart(9)}\n`
  for (const r of rows) {
    out += `  ${`${r.hosting}/${r.mode}`.padEnd(20)} ${r.mbPerSec!.toFixed(1).padStart(7)} ${r.callsPerSec!.toFixed(0).padStart(9)} ${r.channelMs!.toFixed(0).padStart(11)} ${r.serviceMs!.toFixed(0).padStart(11)} ${`${(r.mbPerSec! / local).toFixed(2)}x`.padStart(9)}\n`
  }
  return out
}
