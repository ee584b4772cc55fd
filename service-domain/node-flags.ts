// The V8 flags a domain process runs with, wherever it is launched: the process driver and every
// spawnDomain (domains/domain-process.ts), the VM's guest agent (vm/guest-agent.ts), and — written
// out, since they cannot import this — the images' ENTRYPOINTs and the k8s manifests under docker/
// (test/domains/domain-node-flags.test.ts keeps those in step with this list).
//
// Why: a storage domain's resident heap sits just under V8's 8 MB threshold for starting
// incremental marking. With the default young generation (semi-spaces that grow to 8 MB each) the
// heap passes it under 64 KiB Writes, and every pass ends in a full mark-compact: ~20–30 per 3000
// calls, ~100 µs of server CPU per call on top (more at 1 MiB). Young semi-spaces capped at 4 MB
// keep the total under it: a few more scavenges, no full GCs (docs/deploy.md, "A domain's
// Node flags", has the measure). It must be given on the command line or in NODE_OPTIONS:
// v8.setFlagsFromString at run time does not resize a heap already made.

/** The Node/V8 flags every domain process starts with. */
export const DOMAIN_NODE_FLAGS: readonly string[] = Object.freeze(['--max-semi-space-size=4'])

/** The environment variable that replaces DOMAIN_NODE_FLAGS (words split on spaces; empty for none). */
export const DOMAIN_NODE_OPTIONS_ENV = 'METAOS_DOMAIN_NODE_OPTIONS'

/** The flags a launcher passes to `node` before the domain's script: METAOS_DOMAIN_NODE_OPTIONS when set, else DOMAIN_NODE_FLAGS. */
export function domainNodeFlags (env: NodeJS.ProcessEnv = process.env): string[] {
  const override = env[DOMAIN_NODE_OPTIONS_ENV]
  if (override === undefined) return [...DOMAIN_NODE_FLAGS]
  return override.split(/\s+/).filter((w) => w !== '')
}
