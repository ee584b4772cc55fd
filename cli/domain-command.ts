// `metaos domain`: an operator's actions on the domains of a running `metaos up` — list, start,
// stop, pause, resume, restart, clone, resize, migrate — through its control endpoint (the dashboard's
// 127.0.0.1 server, dashboard/control-routes.ts), with the token `metaos up` printed and recorded
// (0600) in STATUS_FILE. Each action shows on the supervisor's timeline (`metaos status`).
// Exit codes: 0 done; 1 refused or failed (no such domain, a state that forbids it, limits the host
// cannot apply, no running `metaos up`, a wrong token); 2 a usage mistake.
import { readFileSync } from 'node:fs'
import { userInfo } from 'node:os'
import { flag, httpUrl, number, parseOptions, size, text, UsageError } from './options.js'
import { STATUS_FILE } from './status-command.js'
import type { ActionResult, DomainView } from '../frontend/assembly/cluster-control.js'

const ACTIONS = ['list', 'start', 'stop', 'pause', 'resume', 'restart', 'clone', 'resize', 'migrate'] as const
type Action = typeof ACTIONS[number]

const HELP = `usage: metaos domain list [--json]
       metaos domain start|stop|pause|resume|restart NAME [--json]
       metaos domain clone NAME [NEW-NAME] [--json]
       metaos domain migrate NAME [NEW-NAME] [--json]
       metaos domain resize NAME [--cpus N] [--memory SIZE] [--json]

Acts on the domains of the running \`metaos up\` (docs/operations.md), through its control endpoint
and the token it printed (read from ${STATUS_FILE}, or --url and --token). Every action
appears on the supervisor's timeline (metaos status, the dashboard) with who asked.

  list     the domains: name, process state, PMT state, pid, restarts, endpoint
  stop     moves the domain's streams to another domain of the volume, then stops it (SIGTERM,
           drained); the supervisor leaves it stopped
  pause    moves its streams off, then freezes it (SIGSTOP); the supervisor leaves it paused
  resume   unfreezes a paused domain (SIGCONT); readmitted once its probes are good
  start    starts a stopped domain again (same EPR and addresses)
  restart  moves its streams off, then stops and starts it (same EPR and addresses)
  clone    a new domain of the same volume like NAME (a new EPR); NEW-NAME by default NAME-clone-N
  resize   new limits in place (cgroups; same pid): the ones not given stay as they were
  migrate  moves the domain. A VM domain: live, whole, to a new QEMU process (QEMU's migration;
           same EPR and endpoints, a new pid; its streams go on after a stall; QEMU's downtime is
           reported). A process or container domain: by clone + stream migration + stop — a clone
           (NEW-NAME, by default NAME-mN) starts, the streams move at their positions, NAME stops

  --cpus N        resize: share of CPUs (0.5 = half a CPU, 2 = two CPUs)
  --memory SIZE   resize: memory limit (512k, 256m)
  --json          print the result as JSON (errors too, on stdout, as {"error":{"code","message"}})
  --url URL       the running \`metaos up\`'s status URL (default: the one it recorded)
  --token TOKEN   its control token (default: the one it recorded)
  --help          this text

Exit codes: 0 done; 1 refused (NO_SUCH_DOMAIN, INVALID_STATE, NOT_SUPPORTED, INVALID_ARGUMENT),
unauthorized (UNAUTHORIZED) or no running \`metaos up\` (NO_METAOS_UP); 2 a usage mistake.
`

/** The options of `metaos domain` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  cpus: { kind: number(0, 1024, { above: true, takes: 'a number of CPUs above 0, such as 0.5 or 2' }) },
  memory: { kind: size },
  json: flag,
  url: { kind: httpUrl('a status URL such as http://127.0.0.1:PORT/status') },
  token: { kind: text('the control token `metaos up` printed') },
} as const

const VALUED = new Set(Object.entries(OPTIONS).filter(([, s]) => 'kind' in s).map(([n]) => `--${n}`))

/** The words that are not options (nor an option's value), and the rest. */
function split (argv: readonly string[]): { words: string[], options: string[] } {
  const words: string[] = []
  const options: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    if (a === '--') { words.push(...argv.slice(i + 1)); break }
    if (!a.startsWith('-')) { words.push(a); continue }
    options.push(a)
    if (VALUED.has(a) && i + 1 < argv.length) options.push(argv[++i]!)
  }
  return { words, options }
}

class Refused extends Error {
  readonly code: string
  constructor (code: string, message: string) { super(message); this.code = code }
}

export async function main (argv: string[]): Promise<number> {
  const { words, options } = split(argv)
  const values = parseOptions(options, OPTIONS, HELP)
  if (values === undefined) return 0
  const [action, name, newName, ...extra] = words
  if (action === undefined) throw new UsageError(`an action is required: one of ${ACTIONS.join(', ')}`)
  if (!(ACTIONS as readonly string[]).includes(action)) throw new UsageError(`unknown action ${JSON.stringify(action)}: one of ${ACTIONS.join(', ')}`)
  const a = action as Action
  const most = a === 'list' ? 0 : a === 'clone' || a === 'migrate' ? 2 : 1
  const stray = [name, newName, ...extra].filter((w) => w !== undefined)[most]
  if (stray !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(stray)}: metaos domain ${a} takes ${most === 0 ? 'no name' : most === 1 ? 'one NAME' : 'NAME [NEW-NAME]'}`)
  if (a !== 'list' && name === undefined) throw new UsageError(`metaos domain ${a} needs the domain's NAME (metaos domain list shows them)`)
  if (a !== 'resize' && (values.cpus !== undefined || values.memory !== undefined)) throw new UsageError(`--cpus and --memory are for resize, not ${a}`)
  if (a === 'resize' && values.cpus === undefined && values.memory === undefined) throw new UsageError('resize needs --cpus N, --memory SIZE, or both')
  const json = values.json === true
  try {
    const target = locate(values.url, values.token)
    if (a === 'list') {
      const { domains } = await call(target, 'GET', '/api/domains') as { domains: DomainView[] }
      process.stdout.write(json ? JSON.stringify({ domains }, null, 2) + '\n' : listing(domains))
      return 0
    }
    const body = {
      by: `metaos domain (user ${safeUser()})`,
      ...(newName === undefined ? {} : { newName }),
      ...(values.cpus === undefined ? {} : { cpuPercent: Math.round(values.cpus * 100) }),
      ...(values.memory === undefined ? {} : { memoryBytes: values.memory }),
    }
    const done = await call(target, 'POST', `/api/domains/${encodeURIComponent(name!)}/${a}`, body, a === 'migrate' ? 600_000 : 60_000) as ActionResult
    process.stdout.write(json ? JSON.stringify(done, null, 2) + '\n' : `${done.domain.name}: ${done.decision.reason}\n${listing([done.domain])}`)
    return 0
  } catch (e) {
    const r = e instanceof Refused ? e : new Refused('INTERNAL', (e as Error).message)
    if (json) process.stdout.write(JSON.stringify({ error: { code: r.code, message: r.message } }) + '\n')
    process.stderr.write(`metaos domain: ${r.code}: ${r.message}\n`)
    return 1
  }
}

function safeUser (): string {
  try { return userInfo().username } catch { return `uid ${process.getuid?.() ?? '?'}` }
}

interface Target { readonly base: string, readonly token: string }

/** Where the running `metaos up` answers, and its token: as given, else as it recorded them. */
function locate (url: string | undefined, token: string | undefined): Target {
  let rec: { url?: string, pid?: number, token?: string } = {}
  if (url === undefined || token === undefined) {
    try {
      rec = JSON.parse(readFileSync(STATUS_FILE, 'utf8')) as typeof rec
      if (url === undefined) process.kill(rec.pid ?? -1, 0)
    } catch {
      throw new Refused('NO_METAOS_UP', `no running \`metaos up\` found (none recorded in ${STATUS_FILE}; start one, or give --url and --token)`)
    }
  }
  const u = url ?? rec.url
  const t = token ?? rec.token
  if (u === undefined) throw new Refused('NO_METAOS_UP', `no status URL recorded in ${STATUS_FILE}`)
  if (t === undefined) throw new Refused('UNAUTHORIZED', `no control token recorded in ${STATUS_FILE} (a \`metaos up\` of an older version?); give --token`)
  let base: string
  try { base = new URL('/', u).href.replace(/\/$/, '') } catch { throw new Refused('INVALID_ARGUMENT', `not a URL: ${u}`) }
  return { base, token: t }
}

async function call (target: Target, method: 'GET' | 'POST', path: string, body?: object, timeoutMs = 60_000): Promise<unknown> {
  let res: globalThis.Response
  try {
    res = await fetch(target.base + path, {
      method,
      headers: { authorization: `Bearer ${target.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      // A restart or a stop waits for the domain to drain (10 s at most) and its streams to move; a
      // VM's live migration under emulation takes longer.
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (e) {
    throw new Refused('NO_METAOS_UP', `${target.base}: ${(e as Error & { cause?: Error }).cause?.message ?? (e as Error).message} (is \`metaos up\` still running?)`)
  }
  const text = await res.text()
  let parsed: unknown
  try { parsed = JSON.parse(text) } catch { throw new Refused('INTERNAL', `${target.base}${path}: HTTP ${res.status}: ${text.slice(0, 200)}`) }
  if (!res.ok) {
    const err = (parsed as { error?: { code?: string, message?: string } }).error
    throw new Refused(err?.code ?? `HTTP_${res.status}`, err?.message ?? `HTTP ${res.status}`)
  }
  return parsed
}

function listing (domains: readonly DomainView[]): string {
  const head = ['name', 'service', 'state', 'PMT state', 'pid', 'restarts', 'limits', 'endpoint']
  const limits = (d: DomainView): string => d.limits === undefined ? '-' : `${d.limits.cpuPercent === undefined ? '' : `cpu ${d.limits.cpuPercent}% `}${d.limits.memoryBytes === undefined ? '' : `mem ${d.limits.memoryBytes} B `}${d.limits.applied ? `(${d.limits.mechanism})` : '(not applied)'}`
  const rows = domains.map((d) => [d.name, d.service, d.state, d.pmtState ?? '-', String(d.pid), String(d.restarts), limits(d), d.endpoints[0] ?? ''])
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: string[]): string => '  ' + cells.map((c, i) => c.padEnd(w[i]!)).join('  ').trimEnd() + '\n'
  return line(head) + rows.map(line).join('')
}
