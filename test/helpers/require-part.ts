// The one way a test says that a part it needs is missing here: a peer program (gSOAP, zeep, Mono,
// nmap, wsdd, Chromium, openssl), the Docker engine and docker-compose, QEMU, network namespaces,
// writable cgroups. Without CI the part's tests skip, and the reason names the part, why it counts
// as missing and how to install it. Under CI (env CI set, as .ci/run sets it) nothing skips for a
// missing part: the file fails with an assertion naming the part and how .ci/run installs it, and
// the call throws, so the test that needed the part does not run. test/project/suite-rules.test.ts checks
// that every skip of test/ goes through here.
import t from 'tap'

/** Whether the suite runs as CI: CI set to anything but '', '0' or 'false' (tools write CI=true). */
export function underCi (): boolean {
  const v = process.env.CI
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false'
}

/** How a host gets the cgroup support the limit tests need (it is no package). */
export const CGROUP_SETUP = 'nothing to install: run the suite as root where /sys/fs/cgroup (v1 or v2) is writable, as .ci/run does'

export class PartMissingError extends Error {
  readonly part: string
  constructor (part: string, message: string) {
    super(message)
    this.name = 'PartMissingError'
    this.part = part
  }
}

/**
 * `part` is missing (`why`: what was looked for and not found; `install`: the command that installs
 * it, as .ci/run runs it). Returns the skip reason (for tap's `skip` option, `t.skip()` or
 * `t.plan(0, …)`); under CI fails the file and throws a PartMissingError instead.
 */
export function partMissing (part: string, why: string, install: string): string {
  if (!underCi()) return `${part} is missing: ${why} (install: ${install}; .ci/run does)`
  const message = `${part} is missing on CI (CI=${process.env.CI ?? ''}): ${why}. .ci/run installs it: ${install}`
  // The assertion puts the part in the TAP output even when the throw ends the file at its top level.
  t.fail(message)
  throw new PartMissingError(part, message)
}
