// The char suite on a tiny file (64 KiB, one round): every case of each build measured in its own
// worker process (this build as its own baseline here, so the A/B machinery runs), the bytes read
// checked by the worker, and the table laid out side by side. Not speed.
import t from 'tap'
import { packageFile } from '../../wsdl/package-root.js'
import { runCharSuite, charTable } from '../../benchmarks/char-suite.js'

t.test('the char suite: rows of both builds, every case, a table side by side', async (t) => {
  const rows = await runCharSuite({ fileBytes: 65536, cacheBytes: 512, rounds: 1, baseline: packageFile('dist') })
  const metaos = rows.filter((r) => r.peer === 'metaos')
  // 4 hostings × (write char, read char, read block) × (faithful, exception-less) × 2 builds
  t.equal(metaos.length, 48)
  t.equal(rows.filter((r) => r.build === 'bare').length, 2, 'node:fs alone: a write and a read')
  for (const r of rows) {
    const id = `${r.build} ${r.hosting} ${r.op} ${r.mode}`
    t.ok(r.mbPerSec! > 0 && r.samplesMbPerSec.length === 1, id)
    t.equal(r.cacheBytes, r.mode.startsWith('block') ? 4096 : 512, id)
  }
  const local = metaos.find((r) => r.build === 'after' && r.hosting === 'local' && r.op === 'write' && r.mode === 'char')!
  t.equal(local.calls, 1 + 65536 / 512 + 1, 'one Write per full cache, plus Open and Close')
  const table = charTable(rows)
  t.match(table, /before +after +after\/before +vs local/, 'before and after side by side')
  t.match(table, /bus +read +block, exception-less/)
  t.match(table, /net\.uds +write +char, exception-less/)
  t.match(table, /node:fs +write +char \(no FileStream\)/)
  t.notMatch(charTable(rows.filter((r) => r.build !== 'before')), /before/, 'without a baseline, one column')
})
