#!/usr/bin/env node
// The `metaos` command: dispatches to one module per subcommand. Every subcommand has --help.
import { MetaosError } from '../soap-runtime/errors.js'

// A domain command (`domain: true`) that fails prints an error line on stdout, where its spawner
// waits for the ready line, carrying the failure's code (domains/domain-process.ts).
const COMMANDS: Record<string, { summary: string, domain?: true, load: () => Promise<{ main: (argv: string[]) => Promise<number> }> }> = {
  storage: { summary: 'run a storage domain in the foreground', domain: true, load: async () => await import('./storage-command.js') },
  network: { summary: 'run a network domain in the foreground', domain: true, load: async () => await import('./network-command.js') },
  discover: { summary: 'find domains with WS-Discovery', load: async () => await import('./discover-command.js') },
  'discovery-proxy': { summary: 'run a WS-Discovery discovery proxy (managed mode)', load: async () => await import('./discovery-proxy-command.js') },
  pmt: { summary: 'measure discovered domains and print the Performance Mapping Table', load: async () => await import('./pmt-command.js') },
  up: { summary: 'start local process domains and show them working (the default demo)', load: async () => await import('./up-command.js') },
  status: { summary: 'show what the running `metaos up` is doing: domains, PMT, supervisor decisions, streams', load: async () => await import('./status-command.js') },
  bench: { summary: 'run benchmarks (see docs/benchmarks.md)', load: async () => await import('../benchmarks/bench-command.js') },
  pki: { summary: 'make a private CA, domain and client certificates, revoke them', load: async () => await import('./pki-command.js') },
}

function usage (): string {
  return 'usage: metaos <command> [options]\n\ncommands:\n' +
    Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join('\n') +
    '\n\nmetaos <command> --help shows a command\'s options.\n'
}

const [cmd, ...rest] = process.argv.slice(2)
if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  process.stdout.write(usage())
  process.exit(cmd === undefined ? 2 : 0)
}
const entry = COMMANDS[cmd]
if (entry === undefined) {
  process.stderr.write(`metaos: unknown command "${cmd}"\n\n${usage()}`)
  process.exit(2)
}
try {
  const code = await (await entry.load()).main(rest)
  process.exitCode = code
} catch (caught) {
  let e = caught
  if (entry.domain === true) {
    const { errorLine, startFailure } = await import('../domains/domain-process.js')
    e = startFailure(caught)
    const line = errorLine(cmd, e)
    if (line !== undefined) process.stdout.write(line)
  }
  if (e instanceof MetaosError) process.stderr.write(`metaos ${cmd}: ${e.code}: ${e.message}\n`)
  else if ((e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' || (e as { code?: string }).code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') process.stderr.write(`metaos ${cmd}: ${(e as Error).message}\nmetaos ${cmd} --help shows the options.\n`)
  else process.stderr.write(`metaos ${cmd}: ${(e as Error).stack ?? String(e)}\n`)
  process.exitCode = 1
}
