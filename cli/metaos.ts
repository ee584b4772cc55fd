#!/usr/bin/env node
// The `metaos` command: dispatches to one module per subcommand (cli/commands.ts). Every
// subcommand has --help. A usage error is one line on stderr and exit 2; an error of the program
// (a MetaosError) one line with its code and exit 1.
import { MetaosError } from '../soap-runtime/errors.js'
import { COMMANDS } from './commands.js'
import { UsageError } from './options.js'

function usage (): string {
  return 'usage: metaos <command> [options]\n\ncommands:\n' +
    Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`).join('\n') +
    '\n\nmetaos <command> --help shows a command\'s options.\n'
}

const [cmd, ...rest] = process.argv.slice(2)
if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
  process.stdout.write(usage())
  process.exit(0)
}
const entry = cmd === undefined ? undefined : COMMANDS[cmd]
if (entry === undefined) {
  process.stderr.write(`metaos: ${cmd === undefined ? 'a command is required' : `unknown command ${JSON.stringify(cmd)}`}: one of ${Object.keys(COMMANDS).join(', ')} (metaos --help says what each does)\n`)
  process.exit(2)
}
try {
  process.exitCode = await (await entry.load()).main(rest)
} catch (caught) {
  if (caught instanceof UsageError) {
    process.stderr.write(caught.lineFor(cmd!))
    process.exitCode = 2
  } else {
    let e = caught
    if (entry.domain === true) {
      const { errorLine, startFailure } = await import('../domains/domain-process.js')
      e = startFailure(caught)
      const line = errorLine(cmd!, e)
      if (line !== undefined) process.stdout.write(line)
    }
    process.stderr.write(`metaos ${cmd!}: ${e instanceof MetaosError ? `${e.code}: ${e.message}` : (e as Error).stack ?? String(e)}\n`)
    process.exitCode = 1
  }
}
