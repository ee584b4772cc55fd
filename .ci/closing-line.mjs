// The closing line CI reads, from the output of `npm test` and its exit status:
//   node .ci/closing-line.mjs TEST_LOG EXIT_STATUS
// "N passed, N failed" (with skipped and todo when there are any) from tap's totals line
// ("# { total: N, pass: N, fail: N, … }"); and, when npm test failed for another reason — the
// after-all check found what the tests left behind, the build (pretest) failed before tap ran, tap
// was killed — it says so, instead of a bare "0 failed" or nothing at all.
import { readFileSync } from 'node:fs'

const [file, statusText = '0'] = process.argv.slice(2)
if (file === undefined) { console.error('usage: node .ci/closing-line.mjs TEST_LOG EXIT_STATUS'); process.exit(2) }
const status = Number(statusText)
let text = ''
try { text = readFileSync(file, 'utf8') } catch (e) { text = '' }
// Colour codes, when tap's reporter wrote to a terminal.
text = text.replace(/\x1b\[[0-9;]*m/g, '')

const totals = [...text.matchAll(/^# \{ (total: \d+[^}]*)\}\s*$/gm)].pop()?.[1]
const n = totals === undefined ? undefined : Object.fromEntries([...totals.matchAll(/(\w+): (\d+)/g)].map((x) => [x[1], Number(x[2])]))
const parts = []
if (n === undefined) parts.push('no test totals: tap reported none (see the output above)')
else {
  parts.push(`${n.pass ?? 0} passed, ${n.fail ?? 0} failed`)
  if (n.skip) parts.push(`${n.skip} skipped`)
  if (n.todo) parts.push(`${n.todo} todo`)
}
const leftBehind = /^after-all: FAILED: (.*)$/m.exec(text)
if (leftBehind !== null) parts.push(`after-all: ${leftBehind[1].replace(/:$/, '')} (listed above)`)
if (status !== 0 && (n?.fail ?? 0) === 0 && leftBehind === null) parts.push(`npm test exited ${status}`)
console.log(parts.join(', '))
