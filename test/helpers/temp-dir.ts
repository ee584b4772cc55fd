// Test helper: a new temporary directory (mkdtemp under os.tmpdir()), removed when `t` ends. The
// removal is registered at once, before anything can fail, so a failing test removes it too; tap
// runs teardowns last-registered first, so what is started in the directory later stops before.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function tempDir (t: { teardown: (fn: () => void) => void }, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}
