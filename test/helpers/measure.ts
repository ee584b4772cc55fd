// Test helper: Write round trips per second (4 KiB Writes back to back for 2 s), then MB/s
// (`bigWrites` Writes of 1 MiB), through one storage handler; the file is deleted afterwards.
// Measured side by side in one test run, never asserted (the tests print them).
import { randomBytes } from 'node:crypto'
import type { StorageHandler } from '../../index.js'

const MiB = 1024 * 1024

export async function measureWrites (h: StorageHandler, path: string, bigWrites = 64): Promise<{ rtps: number, mbps: number }> {
  const small = randomBytes(4096)
  const big = randomBytes(MiB)
  let { handle } = (await h.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })).output
  let calls = 0
  const t0 = performance.now()
  while (performance.now() - t0 < 2000) { await h.invoke('Write', { handle, data: small }); calls++ }
  const rtps = calls / ((performance.now() - t0) / 1000)
  await h.invoke('Close', { handle });
  ({ handle } = (await h.invoke('Open', { path, mode: 'Create', access: 'Write', share: 'None' })).output)
  const t1 = performance.now()
  for (let i = 0; i < bigWrites; i++) await h.invoke('Write', { handle, data: big })
  const mbps = bigWrites * MiB / 1e6 / ((performance.now() - t1) / 1000)
  await h.invoke('Close', { handle })
  await h.invoke('Delete', { path })
  return { rtps, mbps }
}
