// The container suite: one storage domain hosted as a container (ContainerDriver: published port,
// bind-mounted bus socket) next to the same domain as a process, on one volume, in one run: 4 KiB
// Write round trips per second and MB/s with 1 MiB Writes, over HTTP and over the bus, in
// interleaved rounds; plus the time from start to ready. Needs a Docker engine and the images
// (bash docker/build-images.sh).
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DomainManager } from '../domains/domain-manager.js'
import { ContainerDriver } from '../domains/container-driver.js'
import { createStorageProxy } from '../frontend/handlers/storage-proxy.js'
import type { StorageHandler } from '../frontend/handlers/storage-handler.js'
import { ProcessDriver } from '../domains/process-driver.js'

export interface ContainerRow { readonly hosting: 'process' | 'container', readonly transport: 'http' | 'bus', readonly readyMs: number, readonly writesPerSec: number, readonly mbPerSec: number }

async function measure (h: StorageHandler, path: string, seconds: number): Promise<{ writesPerSec: number, mbPerSec: number }> {
  const small = randomBytes(4096)
  const big = randomBytes(1024 * 1024)
  const { output } = await h.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < seconds * 1000) { await h.invoke('Write', { handle: output.handle, data: small }); n++ }
  const t1 = performance.now()
  for (let i = 0; i < 64; i++) await h.invoke('Write', { handle: output.handle, data: big })
  const t2 = performance.now()
  await h.invoke('Close', { handle: output.handle })
  return { writesPerSec: n / ((t1 - t0) / 1000), mbPerSec: 64 / ((t2 - t1) / 1000) }
}

export async function runContainerSuite (o: { seconds?: number, rounds?: number, onProgress?: (d: number, n: number, l: string) => void } = {}): Promise<ContainerRow[]> {
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-containers-'))
  const root = join(dir, 'volume')
  const socks = join(dir, 'run')
  for (const d of [root, socks]) { mkdirSync(d); chmodSync(d, 0o777) }
  const processes = new DomainManager({ driver: new ProcessDriver() })
  const container = new DomainManager({ driver: new ContainerDriver() })
  const handlers: Array<[ContainerRow['hosting'], ContainerRow['transport'], number, StorageHandler]> = []
  try {
    for (const [hosting, manager] of [['process', processes], ['container', container]] as const) {
      const t0 = performance.now()
      const d = await manager.start({ name: `bench-${hosting}`, root, volume: 'bench', listen: ['http://127.0.0.1:0', `unix:${join(socks, `${hosting}.sock`)}`] })
      const readyMs = performance.now() - t0
      handlers.push([hosting, 'http', readyMs, createStorageProxy(d.endpoints[0]!)], [hosting, 'bus', readyMs, createStorageProxy(d.endpoints[1]!)])
    }
    const sums = handlers.map(() => ({ w: 0, mb: 0 }))
    const rounds = o.rounds ?? 3
    for (let r = 0; r < rounds; r++) {
      for (const [i, [hosting, transport, , h]] of handlers.entries()) {
        o.onProgress?.(r * handlers.length + i, rounds * handlers.length, `round ${r + 1}: ${hosting} over ${transport}`)
        const m = await measure(h, `${hosting}-${transport}.bin`, o.seconds ?? 1)
        sums[i]!.w += m.writesPerSec
        sums[i]!.mb += m.mbPerSec
      }
    }
    return handlers.map(([hosting, transport, readyMs], i) => ({ hosting, transport, readyMs, writesPerSec: sums[i]!.w / rounds, mbPerSec: sums[i]!.mb / rounds }))
  } finally {
    for (const [, , , h] of handlers) await h.close()
    await processes.close()
    await container.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

export function containerTable (rows: readonly ContainerRow[]): string {
  let out = '\nOne storage domain as a process and as a container, on one volume: 4 KiB Write round trips, and 64 MiB in 1 MiB Writes\n'
  out += `  ${'hosting'.padEnd(10)} ${'transport'.padEnd(9)} ${'start→ready ms'.padStart(15)} ${'writes/s'.padStart(9)} ${'MB/s'.padStart(7)}\n`
  for (const r of rows) out += `  ${r.hosting.padEnd(10)} ${r.transport.padEnd(9)} ${r.readyMs.toFixed(0).padStart(15)} ${r.writesPerSec.toFixed(0).padStart(9)} ${r.mbPerSec.toFixed(1).padStart(7)}\n`
  return out
}
