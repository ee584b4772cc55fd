// Every usage error of every `metaos` command is one line on stderr naming the option and what it
// takes, and exit 2 — never a stack trace. The commands and their options come from the code's own
// definitions (cli/commands.ts, each command's OPTIONS / pki's SUBCOMMAND_OPTIONS, each kind's
// `refuses`), and each command's --help must name exactly those options: a new option is covered
// without touching this test. Runs the built CLI (dist/cli/metaos.js) as a user would for --help,
// for one bad command line of every command and for the command line itself; the other bad lines
// (several hundred) go to each command's own `main` in this process, which must refuse them with
// the UsageError whose line metaos.ts prints (a process each cost two minutes of the suite).
import t, { type Test } from 'tap'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { COMMANDS, type CommandModule } from '../../cli/commands.js'
import { UsageError, type OptionSpecs } from '../../cli/options.js'
import { packageFile } from '../../wsdl/package-root.js'

const CLI = packageFile('dist', 'cli', 'metaos.js')

interface Run { readonly code: number | null, readonly stdout: string, readonly stderr: string }

let cwd = ''
async function metaos (args: readonly string[]): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { cwd, encoding: 'utf8', timeout: 30_000, env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
    })
  })
}

/** Runs the calls two at a time (the machine has two cores). */
async function pool<T, R> (items: readonly T[], f: (x: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length)
  let next = 0
  await Promise.all([0, 1].map(async () => { while (next < items.length) { const i = next++; out[i] = await f(items[i]!) } }))
  return out
}

interface Command { readonly words: readonly string[], readonly options: OptionSpecs, readonly module: CommandModule }

/** Every command (and pki subcommand) with its option definitions. */
async function commands (): Promise<Command[]> {
  const out: Command[] = []
  for (const [name, c] of Object.entries(COMMANDS)) {
    const m = await c.load() as CommandModule & { OPTIONS?: OptionSpecs, SUBCOMMAND_OPTIONS?: Record<string, OptionSpecs> }
    if (m.OPTIONS !== undefined) out.push({ words: [name], options: m.OPTIONS, module: m })
    for (const [sub, options] of Object.entries(m.SUBCOMMAND_OPTIONS ?? {})) out.push({ words: [name, sub], options, module: m })
    if (m.OPTIONS === undefined && m.SUBCOMMAND_OPTIONS === undefined) throw new Error(`metaos ${name} exports no OPTIONS: define its options with cli/options.ts`)
  }
  return out
}

interface Case { readonly command: Command, readonly args: readonly string[], readonly names: string, readonly prefix: string, readonly why: string }

/**
 * The bad command lines of one command: each must be refused naming `names`. Every option gets its
 * kind's first refused value (no value at all when its kind refuses none); the first option of
 * each kind (`seen`) gets all of them, and no value.
 */
function cases (c: Command, file: string, seen: Set<unknown>): Case[] {
  const prefix = `metaos ${c.words.join(' ')}: `
  const out: Case[] = [
    { command: c, args: [...c.words, '--no-such-option'], names: '--no-such-option', prefix, why: 'an unknown option' },
    { command: c, args: [...c.words, 'stray'], names: '"stray"', prefix, why: 'a stray argument' },
  ]
  for (const [name, spec] of Object.entries(c.options)) {
    const opt = `--${name}`
    if ('flag' in spec) { out.push({ command: c, args: [...c.words, `${opt}=yes`], names: opt, prefix, why: 'a value to a flag' }); continue }
    const first = !seen.has(spec.kind)
    seen.add(spec.kind)
    const refused = first ? spec.kind.refuses : spec.kind.refuses.slice(0, 1)
    if (first || refused.length === 0) out.push({ command: c, args: [...c.words, opt], names: `${opt} takes ${spec.kind.takes}; got nothing`, prefix, why: 'no value' })
    for (const bad of refused) out.push({ command: c, args: [...c.words, `${opt}=${bad}`], names: `${opt} takes ${spec.kind.takes}; got ${JSON.stringify(bad)}`, prefix, why: `the bad value ${JSON.stringify(bad)}` })
    if (spec.required === true) {
      // Every other required option given a plausible value: only this one is missing.
      const others = Object.entries(c.options).filter(([n, s]) => n !== name && 'kind' in s && s.required === true).flatMap(([n]) => [`--${n}`, 'x'])
      out.push({ command: c, args: [...c.words, ...others], names: `${opt} is required`, prefix, why: 'left out' })
    }
    for (const other of spec.needs ?? []) {
      out.push({ command: c, args: [...c.words, `${opt}=${file}`], names: `${opt} needs --${other}`, prefix, why: `without --${other}` })
    }
  }
  return out
}

t.before(async () => {
  cwd = t.testdir({ 'some.pem': 'not really a certificate\n' })
})

t.test('every command\'s --help names exactly the options it defines', async (t) => {
  for (const c of await commands()) {
    const h = await metaos([...c.words, '--help'])
    t.equal(h.code, 0, `metaos ${c.words.join(' ')} --help exits 0`)
    const named = new Set([...h.stdout.matchAll(/(?<![\w-])--([a-z][a-z0-9-]*)/g)].map((m) => m[1]!))
    named.delete('help')
    t.same([...named].sort(), Object.keys(c.options).sort(), `metaos ${c.words.join(' ')}: --help and OPTIONS name the same options`)
  }
})

/** What `metaos <args>` prints and exits with, run by the command's `main` in this process. */
async function inProcess (c: Case): Promise<Run> {
  try {
    const code = await c.command.module.main(c.args.slice(1))
    return { code, stdout: '', stderr: '' }
  } catch (e) {
    if (e instanceof UsageError) return { code: 2, stdout: '', stderr: e.lineFor(c.args[0]!) }
    return { code: 1, stdout: '', stderr: (e as Error).stack ?? String(e) }
  }
}

function check (t: Test, c: Case, r: Run, how: string): void {
  const what = `metaos ${c.args.join(' ')} (${c.why}${how})`
  const lines = r.stderr.split('\n').filter((l) => l !== '')
  const ok = r.code === 2 && lines.length === 1 && lines[0]!.startsWith(c.prefix) && lines[0]!.includes(c.names) && !/^\s+at /m.test(r.stderr) && r.stdout === ''
  // One assertion per line keeps the output readable; the details only when it fails.
  t.ok(ok, what, ok ? {} : { code: r.code, stderr: r.stderr, stdout: r.stdout.slice(0, 500), wanted: `${c.prefix}…${c.names}…` })
}

t.test('every bad option value, unknown or missing option: one line naming it, exit 2, no stack trace', async (t) => {
  const file = join(cwd, 'some.pem')
  const seen = new Set<unknown>()
  const all = (await commands()).flatMap((c) => cases(c, file, seen))
  t.ok(all.length > 100, `${all.length} bad command lines`)
  // The built CLI, for the first bad line of every command: metaos.ts prints the line and exits 2.
  const firsts = all.filter((c, i) => i === all.findIndex((o) => o.command === c.command))
  const runs = await pool(firsts, async (c) => await metaos(c.args))
  firsts.forEach((c, i) => { check(t, c, runs[i]!, ', the built CLI') })
  for (const c of all) check(t, c, await inProcess(c), '')
})

t.test('the command line itself: no command, an unknown one, an unknown pki subcommand, revoke without its target', async (t) => {
  for (const [args, names] of [[[], 'a command is required'], [['frobnicate'], 'unknown command "frobnicate"'], [['pki', 'frob'], 'unknown subcommand "frob"'], [['pki', 'revoke'], 'give either --serial or --name']] as const) {
    const r = await metaos(args)
    t.equal(r.code, 2, `metaos ${args.join(' ')} → exit 2`)
    t.equal(r.stderr.split('\n').filter((l) => l !== '').length, 1, 'one line')
    t.match(r.stderr, names)
  }
})

t.test('a value that looks like an option is not taken as one; with = it is', async (t) => {
  const r = await metaos(['storage', '--root', '--sla', '0.5'])
  t.equal(r.code, 2)
  t.equal(r.stderr, 'metaos storage: --root takes the directory to serve; got nothing (the next word, "--sla", is an option; --root=--sla if it is the value)\n')
  const neg = await metaos(['network', '--max-sockets', '-5'])
  t.match(neg.stderr, /^metaos network: --max-sockets takes a positive integer; got "-5"\n$/, 'a negative number is a value, and refused as one')
  writeFileSync(join(cwd, 'rules.json'), '{ "rules": [ { "name": "r", "when": { "nope": 1 }, "exclude": {} } ] }')
  const rules = await metaos(['up', '--rules', 'rules.json'])
  t.equal(rules.code, 2, 'a rules file that does not check is a usage error')
  t.match(rules.stderr, /^metaos up: --rules takes a rules file \(JSON, docs\/rules\.md\); got "rules\.json" \(.*nope.*\)\n$/)
})
