// How every `metaos` command reads its options. Each option says what it takes (a Kind: a check
// and a conversion, and the words of its usage error); parseOptions checks the whole command line
// before the command does anything, and any mistake — an unknown option, a missing or bad value, a
// required option left out, one given without its partner — is a UsageError: metaos.ts prints its
// one line ("metaos storage: --sla takes a number from 0 to 1; got "5"") and exits 2.
// test/cli/cli-usage.test.ts walks every command's options through these definitions.
import { accessSync, constants, statSync } from 'node:fs'
import { parseArgs } from 'node:util'

/** A mistake on the command line: metaos.ts prints `metaos <command>: <message>` and exits 2. */
export class UsageError extends Error {
  /** The command it is about when more than metaos.ts knows ("pki issue-domain"). */
  readonly command?: string
  constructor (message: string, command?: string) {
    super(message.replace(/\s*\n\s*/g, ' '))
    this.name = 'UsageError'
    if (command !== undefined) this.command = command
  }

  /** The line metaos.ts prints for it when `command` ran: "metaos storage: --sla takes …". */
  lineFor (command: string): string { return `metaos ${this.command ?? command}: ${this.message}\n` }
}

/** What an option's value may be: checked and converted once, before the command runs. */
export interface Kind<T> {
  /** What the option takes, as the usage error says it: "a positive integer". */
  readonly takes: string
  /** The value; throws (an Error saying what is wrong, or nothing more) when it is not acceptable. */
  readonly parse: (value: string) => T
  /** Values it refuses: test/cli/cli-usage.test.ts feeds them to every option of this kind. */
  readonly refuses: readonly string[]
}

/** An option without a value. */
export interface FlagSpec { readonly flag: true }
/** An option with a value of a kind; `multiple` collects every occurrence. */
export interface ValueSpec<T> {
  readonly kind: Kind<T>
  readonly multiple?: boolean
  readonly required?: boolean
  /** Options that must be given with this one. */
  readonly needs?: readonly string[]
}
export type OptionSpec = FlagSpec | ValueSpec<unknown>
export type OptionSpecs = Readonly<Record<string, OptionSpec>>

type ValueOf<S> = S extends FlagSpec
  ? boolean | undefined
  : S extends ValueSpec<infer T>
    ? (S extends { readonly multiple: true } ? T[] : T) | (S extends { readonly required: true } ? never : undefined)
    : never
export type OptionValues<S extends OptionSpecs> = { -readonly [K in keyof S]: ValueOf<S[K]> }

export const flag: FlagSpec = { flag: true }

const quoted = (v: string): string => JSON.stringify(v)

/**
 * Reads `argv` against `specs`. With --help (or -h) anywhere before `--`, prints `help` and returns
 * undefined (the command exits 0); otherwise the values, each converted by its kind; any mistake
 * throws UsageError (about `command` when given, e.g. "pki init"). No positional arguments are taken.
 */
export function parseOptions<const S extends OptionSpecs> (argv: readonly string[], specs: S, help: string, command?: string): OptionValues<S> | undefined {
  try {
    return readOptions(argv, specs, help)
  } catch (e) {
    if (e instanceof UsageError && command !== undefined) throw new UsageError(e.message, command)
    throw e
  }
}

function readOptions<const S extends OptionSpecs> (argv: readonly string[], specs: S, help: string): OptionValues<S> | undefined {
  const end = argv.indexOf('--')
  if ((end < 0 ? argv : argv.slice(0, end)).some((a) => a === '--help' || a === '-h')) { process.stdout.write(help); return undefined }
  const config = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, 'flag' in s ? { type: 'boolean' as const } : { type: 'string' as const, multiple: s.multiple === true }]))
  let tokens
  try {
    ({ tokens } = parseArgs({ args: [...argv], options: config, strict: false, allowPositionals: true, tokens: true }))
  } catch (e) {
    throw new UsageError((e as Error).message)
  }
  const values: Record<string, unknown> = {}
  const given = new Set<string>()
  for (const t of tokens) {
    if (t.kind === 'option-terminator') continue
    if (t.kind === 'positional') throw new UsageError(`unexpected argument ${quoted(t.value)}: options only (--help lists them)`)
    const spec = Object.hasOwn(specs, t.name) ? specs[t.name] : undefined
    if (spec === undefined) throw new UsageError(`${t.rawName} is not an option (--help lists them)`)
    given.add(t.name)
    if ('flag' in spec) {
      if (t.value !== undefined) throw new UsageError(`${t.rawName} takes no value; got ${quoted(t.value)}`)
      values[t.name] = true
      continue
    }
    const takes = `${t.rawName} takes ${spec.kind.takes}`
    if (t.value === undefined) throw new UsageError(`${takes}; got nothing`)
    // `--root --sla 5`: the next word is another option, not --root's value (--root=--x gives that).
    if (t.inlineValue !== true && /^-(?!\d|\.\d)/.test(t.value)) throw new UsageError(`${takes}; got nothing (the next word, ${quoted(t.value)}, is an option; ${t.rawName}=${t.value} if it is the value)`)
    let v: unknown
    try {
      v = spec.kind.parse(t.value)
    } catch (e) {
      const why = e instanceof Error && e.message !== '' ? ` (${e.message})` : ''
      throw new UsageError(`${takes}; got ${quoted(t.value)}${why}`)
    }
    if (spec.multiple === true) values[t.name] = [...(values[t.name] as unknown[] | undefined ?? []), v]
    else values[t.name] = v
  }
  for (const [name, spec] of Object.entries(specs)) {
    if ('flag' in spec) continue
    if (spec.required === true && !given.has(name)) throw new UsageError(`--${name} is required; it takes ${spec.kind.takes}`)
    if (!given.has(name)) continue
    for (const other of spec.needs ?? []) if (!given.has(other)) throw new UsageError(`--${name} needs --${other} too`)
  }
  return values as OptionValues<S>
}

// ---- kinds ----

/** Any text (a name, a path): only a missing value is refused. */
export function text (takes: string): Kind<string> {
  return { takes, parse: (v) => v, refuses: [] }
}

/** A whole number in [min, max]. */
export function integer (min: number, max = Number.MAX_SAFE_INTEGER, takes?: string): Kind<number> {
  const words = takes ?? (max === Number.MAX_SAFE_INTEGER ? (min === 1 ? 'a positive integer' : `a whole number ≥ ${min}`) : `a whole number from ${min} to ${max}`)
  return {
    takes: words,
    parse: (v) => {
      const n = Number(v)
      if (!/^[-+]?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min || n > max) throw new Error()
      return n
    },
    refuses: ['x', '1.5', String(min - 1), ...(max === Number.MAX_SAFE_INTEGER ? [] : [String(max + 1)])],
  }
}

/** A number in [min, max] (or (min, max] when `above`). */
export function number (min: number, max = Infinity, o: { above?: boolean, takes?: string } = {}): Kind<number> {
  const words = o.takes ?? (max === Infinity ? `a number ${o.above === true ? '>' : '≥'} ${min}` : `a number from ${min} to ${max}`)
  return {
    takes: words,
    parse: (v) => {
      const n = Number(v)
      if (v.trim() === '' || !Number.isFinite(n) || n < min || n > max || (o.above === true && n === min)) throw new Error()
      return n
    },
    refuses: ['x', String(min - 1), ...(o.above === true ? [String(min)] : []), ...(max === Infinity ? [] : [String(max + 1)])],
  }
}

/** One of the given words. */
export function oneOf<const T extends string> (values: readonly T[]): Kind<T> {
  return {
    takes: `one of ${values.join(', ')}`,
    parse: (v) => { if (!(values as readonly string[]).includes(v)) throw new Error(); return v as T },
    refuses: ['x'],
  }
}

/** A comma-separated list, each item of `item`. */
export function listOf<T> (item: Kind<T>, takes?: string): Kind<T[]> {
  return {
    takes: takes ?? `a comma-separated list, each ${item.takes}`,
    parse: (v) => {
      const items = v.split(',').map((x) => x.trim()).filter((x) => x !== '')
      if (items.length === 0) throw new Error('an empty list')
      return items.map((x) => { try { return item.parse(x) } catch { throw new Error(`the item ${JSON.stringify(x)}`) } })
    },
    refuses: [',', ...item.refuses.filter((r) => r !== '' && !r.includes(','))],
  }
}

/** A byte count: 512, 4k, 1m (k = 1024). */
export const size: Kind<number> = {
  takes: 'a size such as 512, 4k or 1m',
  parse: (v) => {
    const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v.trim())
    if (m === null) throw new Error()
    const n = Math.round(Number(m[1]) * (m[2]!.toLowerCase() === 'k' ? 1024 : m[2]!.toLowerCase() === 'm' ? 1048576 : 1))
    if (n <= 0) throw new Error()
    return n
  },
  refuses: ['x', '4g', '0'],
}

/** An absolute URI (a scope, an EPR, a matching rule). */
export function uri (takes = 'an absolute URI such as metaos://zone/a'): Kind<string> {
  return {
    takes,
    parse: (v) => { if (!/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(v)) throw new Error(); return v },
    refuses: ['not a uri'],
  }
}

/** An http:// or https:// URL. */
export function httpUrl (takes = 'an http://HOST:PORT URL'): Kind<string> {
  return {
    takes,
    parse: (v) => {
      let u: URL
      try { u = new URL(v) } catch { throw new Error() }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error()
      return v
    },
    refuses: ['x', 'ftp://127.0.0.1:1/'],
  }
}

/** A file that exists (and can be read now); `load` may read and check it further. */
export function file<T = string> (takes: string, load?: (path: string) => T, o: { directory?: boolean } = {}): Kind<T> {
  return {
    takes,
    parse: (v) => {
      try { accessSync(v, constants.R_OK) } catch (e) { const c = (e as NodeJS.ErrnoException).code; throw new Error(c === 'ENOENT' ? 'no such file' : c === 'EACCES' ? 'not readable' : c ?? String(e)) }
      if (!statSync(v).isFile() && !(o.directory === true && statSync(v).isDirectory())) throw new Error(o.directory === true ? 'neither a file nor a directory' : 'not a file')
      return load === undefined ? v as T : load(v)
    },
    refuses: ['no-such-file.metaos'],
  }
}

/** Text matching a regular expression. */
export function matching (re: RegExp, takes: string, refuses: readonly string[]): Kind<string> {
  return { takes, parse: (v) => { if (!re.test(v)) throw new Error(); return v }, refuses }
}
