// Runs once tap has finished every test file (package.json "tap": { "after": … }): lists what of
// metaos is still there that the run created — processes, docker containers, networks and volumes,
// named network namespaces, temporary files, and under CI container bridges and veths in the root
// network namespace — and fails the run naming each, with the command that removes it. Every test
// removes what it started, in a teardown that runs when it fails too; this is the check that they did.
// The tests' Docker engine (docker/netns-dockerd.sh) is shared by the test files, so no test stops
// it: the containers, networks and volumes in it are checked like any, and the engine itself, when
// started during the run, is stopped when the check is strict (its image cache kept) and noted
// otherwise — it is no failure.
//
// Strict (exit 1) for the whole suite (`npm test`: tap given no file); under CI the leftovers are
// then removed too (.ci/run owns its machine). When tap runs chosen files, another run on this
// machine may own what is found (two runs side by side, a benchmark): it is listed, the run is not
// failed and nothing is removed, CI or not.
//   METAOS_AFTER_SINCE  ms since the epoch to look from (default: when the tap runner started)
//   METAOS_AFTER_MATCH  only what names this text (test/project/suite-rules.test.ts uses a unique token)
//   METAOS_AFTER_STRICT 1 or 0: overrides the choice above; 1 also removes what is found
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { findLeftovers, processInfo, removalCommand, removeLeftovers } from './helpers/leftovers.js'
import { underCi } from './helpers/require-part.js'

const runner = processInfo(process.ppid)
const sinceMs = process.env.METAOS_AFTER_SINCE !== undefined ? Number(process.env.METAOS_AFTER_SINCE) : runner?.startMs ?? Date.now()

/**
 * The files or folders tap was given. The runner names itself `tap` (its arguments are gone from
 * /proc), so they are read from the commands that started it: `sh -c 'tap … test/x.test.ts'`,
 * `npm exec tap …`, `npm test -- …`.
 */
function chosenFiles (): string[] {
  const files = new Set<string>()
  for (let pid = process.ppid, i = 0; i < 4 && pid > 1; i++) {
    const p = processInfo(pid)
    if (p === undefined || !/\b(tap|npm|npx|sh|node)\b/.test(p.argv.join(' '))) break
    for (const word of p.argv.join(' ').split(/\s+/).map((w) => w.replace(/^['"]|['"]$/g, ''))) {
      // A test file, or a folder of them given with its path (`test/interop`); not `npm test`'s word.
      if (word.startsWith('-') || !/^[\w./-]*test[\w./-]*\/[\w./-]*$/.test(word) || resolve(word) === resolve(process.argv[1] ?? '')) continue
      if (existsSync(resolve(word)) && !word.includes('node_modules')) files.add(word)
    }
    pid = p.ppid
  }
  return [...files]
}

const chosen = chosenFiles()
const strict = process.env.METAOS_AFTER_STRICT !== undefined ? process.env.METAOS_AFTER_STRICT === '1' : chosen.length === 0
const match = process.env.METAOS_AFTER_MATCH

const found = findLeftovers({ sinceMs, links: underCi(), ...(match === undefined ? {} : { match }) })
const engine = found.filter((l) => l.kind === 'dockerd')
const left = found.filter((l) => l.kind !== 'dockerd')
if (left.length === 0) {
  console.log('after-all: nothing the tests started is left (processes, containers, networks, volumes, network namespaces, temporary files)')
} else {
  const lines = left.map((l) => `  ${l.kind} ${l.what}   (${removalCommand(l)})`)
  if (!strict) {
    console.log(`after-all: note: ${left.length} thing(s) of metaos created during this run are still there; tap ran chosen files (${chosen.join(' ') || '?'}), so they may be another run's:\n${lines.join('\n')}`)
  } else {
    console.log(`after-all: FAILED: the tests left ${left.length} thing(s) behind:\n${lines.join('\n')}`)
    if (underCi() || process.env.METAOS_AFTER_STRICT === '1') {
      const failed = removeLeftovers(left)
      console.log(failed.length === 0 ? 'after-all: removed them' : `after-all: could not remove:\n  ${failed.join('\n  ')}`)
    }
    process.exitCode = 1
  }
}
for (const e of engine) {
  if (!strict) {
    console.log(`after-all: note: ${e.what} still runs, for the container tests of the next runs (stop it: ${removalCommand(e)})`)
    continue
  }
  const failed = removeLeftovers([e])
  console.log(failed.length === 0 ? `after-all: stopped ${e.what}; its images stay in its data root` : `after-all: could not stop ${e.what}:\n  ${failed.join('\n  ')}`)
  if (failed.length > 0) process.exitCode = 1
}
