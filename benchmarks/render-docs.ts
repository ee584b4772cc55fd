// Writes docs/benchmarks.md from benchmarks/benchmarks.md.in and the recorded results in
// docs/benchmarks/*.json (benchmarks/record-docs.sh runs the suites that write them): every number
// in the page comes from a run, none is typed by hand. Each `<!-- bench:NAME -->` line of the
// template becomes that result's tables, with the command and the machine that produced them; the
// paper suite's charts are written beside it (docs/benchmarks/charts/). `--check` writes nothing
// and fails when the page is not what the template and the results make (a test runs it).
//
//   node dist/benchmarks/render-docs.js [--check]      (npm run bench:docs)
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { packageFile } from '../wsdl/package-root.js'
import { charTable } from './char-suite.js'
import { containerTable } from './container-suite.js'
import { networkTable } from './network-suite.js'
import { paperMarkdown } from './paper-report.js'
import type { PaperResult } from './paper-suite.js'
import { paperSvgs, svgIndexMarkdown, type PaperSvg } from './paper-svg.js'
import { peersMarkdown, type PeersResult } from './peers-suite.js'
import { placementTable } from './placement-suite.js'
import { forecastTable } from './placement-forecast.js'
import { affinityTable } from './placement-affinity.js'
import { machineLine, portableCommand } from './report.js'
import { supervisionTable } from './supervision-suite.js'
import { securityMarkdown, type SecurityResult } from './security-suite.js'
import { swarmTable } from './swarm-suite.js'
import { coordinationTable } from './coordination-suite.js'

export const TEMPLATE = packageFile('benchmarks', 'benchmarks.md.in')
export const RESULTS = packageFile('docs', 'benchmarks')
export const PAGE = packageFile('docs', 'benchmarks.md')
const CHARTS = 'charts'

interface Recorded { machine: Record<string, unknown>, command?: string, [k: string]: unknown }

/** The recorded command as the page shows it: no machine's paths (an absolute output path becomes its base name). */
const commandOf = (r: Recorded, otherwise: string): string => r.command === undefined ? otherwise : portableCommand(r.command.split(' '))

/** Where a result comes from, in one line under its tables. */
function source (r: Recorded): string {
  return `<sub>\`${commandOf(r, 'metaos bench')}\`, ${String(r.machine.date ?? '').slice(0, 10)}, ${machineLine(r.machine)}.</sub>`
}

const code = (text: string): string => '```\n' + text.replace(/^\n+/, '').replace(/\n+$/, '') + '\n```'

/** Demotes the headings of an embedded page under the template's `## …` sections, and drops its title. */
const embed = (md: string): string => md.replace(/^# .*\n+/, '').replace(/^(#+) /gm, '$1# ')

function paperResult (r: Recorded): PaperResult {
  const p = (r.paper ?? r) as Record<string, unknown>
  return {
    rows: p.rows as PaperResult['rows'],
    skipped: (p.skipped as string[] | undefined) ?? [],
    // What the read rows say (the JSON keeps only the note beside them).
    pageCache: (p.rows as PaperResult['rows']).find((r) => r.pageCache !== undefined)?.pageCache ?? 'warm',
    pageCacheNote: String(p.pageCache ?? ''),
    stopped: p.stopped === true,
    runs: Number(p.runs),
    warmups: Number(p.warmups),
    wallMs: Number(p.wallMs),
  }
}

/** The text for one marker, from its recorded result; undefined when nothing is recorded. */
function section (name: string, r: Recorded, charts: PaperSvg[]): string {
  switch (name) {
    case 'paper': case 'vm': {
      const md = paperMarkdown(paperResult(r), commandOf(r, 'metaos bench --suite paper'), r.machine)
      // The page's own header says command and machine; the tables follow.
      return embed(md)
    }
    case 'paper-charts': return svgIndexMarkdown(charts, `benchmarks/${CHARTS}`)
    case 'peers': return `${peersMarkdown({ rows: r.rows, skipped: r.skipped ?? [] } as PeersResult)}\n${source(r)}`
    case 'char': return `${code(charTable(r.rows as Parameters<typeof charTable>[0]))}\n\n${source(r)}`
    case 'placement': return `${code(placementTable(r.placement as Parameters<typeof placementTable>[0]) + (r.forecast === undefined ? '' : forecastTable(r.forecast as Parameters<typeof forecastTable>[0])) + (r.affinity === undefined ? '' : affinityTable(r.affinity as Parameters<typeof affinityTable>[0])))}\n\n${source(r)}`
    case 'network': return `${code(networkTable(r.network as Parameters<typeof networkTable>[0]))}\n\n${source(r)}`
    case 'containers': return `${code(containerTable(r.containers as Parameters<typeof containerTable>[0]))}\n\n${source(r)}`
    case 'supervision': return `${code(supervisionTable(r.supervision as Parameters<typeof supervisionTable>[0]))}\n\n${source(r)}`
    case 'security': return `${securityMarkdown(r.security as SecurityResult)}\n${source(r)}`
    case 'swarm': return `${code(swarmTable(r.swarm as Parameters<typeof swarmTable>[0]))}\n\n${source(r)}`
    case 'coordination': return `${code(coordinationTable(r.coordination as Parameters<typeof coordinationTable>[0]))}\n\n${source(r)}`
    default: throw new Error(`benchmarks.md.in: unknown marker bench:${name}`)
  }
}

const FILE_OF: Record<string, string> = { 'paper-charts': 'paper' }
const MARKERS = ['paper', 'paper-charts', 'peers', 'char', 'placement', 'network', 'containers', 'supervision', 'vm', 'security', 'swarm', 'coordination']

/** The page and the charts the template and the results in `dir` make. */
export function render (template: string, dir: string): { page: string, charts: PaperSvg[] } {
  const load = (name: string): Recorded | undefined => {
    const f = join(dir, `${FILE_OF[name] ?? name}.json`)
    return existsSync(f) ? JSON.parse(readFileSync(f, 'utf8')) as Recorded : undefined
  }
  const paper = load('paper')
  const charts = paper === undefined ? [] : paperSvgs(paperResult(paper))
  const page = template.replace(/^<!-- bench:([a-z-]+) -->$/gm, (_m, name: string) => {
    if (!MARKERS.includes(name)) throw new Error(`benchmarks.md.in: unknown marker bench:${name}`)
    const r = load(name)
    return r === undefined ? `*Not recorded yet: run \`bash benchmarks/record-docs.sh ${FILE_OF[name] ?? name}\`.*` : section(name, r, charts)
  })
  return { page: `<!-- Generated by npm run bench:docs from benchmarks/benchmarks.md.in and docs/benchmarks/*.json: edit those, not this page. -->\n${page}`, charts }
}

export function main (argv: string[]): number {
  const check = argv.includes('--check')
  const { page, charts } = render(readFileSync(TEMPLATE, 'utf8'), RESULTS)
  const chartDir = join(RESULTS, CHARTS)
  if (check) {
    const stale: string[] = []
    if (!existsSync(PAGE) || readFileSync(PAGE, 'utf8') !== page) stale.push('docs/benchmarks.md')
    for (const c of charts) if (!existsSync(join(chartDir, c.file)) || readFileSync(join(chartDir, c.file), 'utf8') !== c.svg) stale.push(`docs/benchmarks/${CHARTS}/${c.file}`)
    if (stale.length > 0) { process.stderr.write(`render-docs: out of date (run npm run bench:docs): ${stale.join(', ')}\n`); return 1 }
    return 0
  }
  writeFileSync(PAGE, page)
  mkdirSync(chartDir, { recursive: true })
  const keep = new Set(charts.map((c) => c.file))
  for (const f of readdirSync(chartDir)) if (f.endsWith('.svg') && !keep.has(f)) rmSync(join(chartDir, f))
  for (const c of charts) writeFileSync(join(chartDir, c.file), c.svg)
  process.stdout.write(`wrote docs/benchmarks.md and ${charts.length} charts in docs/benchmarks/${CHARTS}/\n`)
  return 0
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) process.exitCode = main(process.argv.slice(2))
