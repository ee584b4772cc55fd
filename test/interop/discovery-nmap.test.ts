import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

// Interop with a real WS-Discovery client: Debian's nmap (7.93) and its NSE scripts
// `wsdd-discover` (unicast to a host's port 3702) and `broadcast-wsdd-discover` (multicast to
// 239.255.255.250:3702). Each sends two probes: its "general" April 2005 Probe (captured from
// Windows 7, no Types) and its "wcf" WS-Discovery 1.1 Probe (captured from .NET 4.0, with an
// MS-specific Duration element). We start an announced storage domain and check that nmap lists it
// for both probes: nmap prints the reply's MessageID (which it extracts with a regex needing a
// prefixed `…:MessageID` in urn:uuid: form), the XAddrs as "Address" and the Types as "Type". It
// never prints the EPR, so --script-trace shows us the raw datagrams nmap received: each must be
// our ProbeMatches for that very probe (RelatesTo), carrying the domain's EPR.
//
// Runs inside a network namespace of its own (only lo, multicast routed to it): nothing leaves
// the machine.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { spawnDomain } from '../../domains/domain-process.js'
import { which } from '../helpers/which.js'
import { partMissing } from '../helpers/require-part.js'
import { tempDir } from '../helpers/temp-dir.js'

interface Run { code: number | null, stdout: string, stderr: string }

async function run (cmd: string, args: string[], timeout = 30_000): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { timeout, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr })
    })
  })
}

interface Listed { messageId?: string, address?: string, type?: string }

/** The "Devices" and "WCF Services" blocks of a wsdd-discover / broadcast-wsdd-discover result. */
function listed (stdout: string, script: string): Record<'Devices' | 'WCF Services', Listed[]> {
  const out: Record<'Devices' | 'WCF Services', Listed[]> = { Devices: [], 'WCF Services': [] }
  const start = stdout.indexOf(`| ${script}:`)
  if (start < 0) return out
  let section: keyof typeof out | undefined
  for (const raw of stdout.slice(start).split('\n').slice(1)) {
    if (!raw.startsWith('|')) break
    const line = raw.replace(/^\|_?\s*/, '').trimEnd()
    if (line === 'Devices' || line === 'WCF Services') { section = line; continue }
    if (section === undefined) continue
    const m = /^(Message id|Address|Type): (.*)$/.exec(line)
    if (m === null) continue
    if (m[1] === 'Message id') out[section].push({ messageId: m[2]! })
    const cur = out[section][out[section].length - 1]
    if (cur === undefined) continue
    if (m[1] === 'Address') cur.address = m[2]!
    if (m[1] === 'Type') cur.type = m[2]!
  }
  return out
}

/** --script-trace lines: the datagrams NSE sent to and received from port 3702. */
function traced (stdout: string): { sent: string[], received: string[] } {
  const out = { sent: [] as string[], received: [] as string[] }
  for (const line of stdout.split('\n')) {
    const m = /^NSE: UDP \S+ ([<>]) \S+:3702 \| (<.*)$/.exec(line)
    if (m !== null) (m[1] === '>' ? out.sent : out.received).push(m[2]!)
  }
  return out
}

const messageIdOf = (xml: string): string | undefined => /<(?:\w+:)?MessageID>([^<]+)<\/(?:\w+:)?MessageID>/.exec(xml)?.[1]
const relatesToOf = (xml: string): string | undefined => /<(?:\w+:)?RelatesTo>([^<]+)<\/(?:\w+:)?RelatesTo>/.exec(xml)?.[1]
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
/** `<x:Local>text</x:Local>`, whatever the prefix. */
const element = (local: string, text: string): RegExp => new RegExp(`<(?:\\w+:)?${local}>${escapeRe(text)}</(?:\\w+:)?${local}>`)

const nmap = which('nmap')
if (nmap === undefined) {
  t.plan(0, partMissing('nmap', 'nmap is not on PATH: no real WS-Discovery scanner to test against', 'apt-get install nmap'))
} else {
  // A multicast sender that does not choose its interface (as nmap's broadcast script does not)
  // gets source address 0.0.0.0 when the only route to 224.0.0.0/4 has no preferred source (lo's
  // 127.0.0.1 is host-scoped), and the domain drops such datagrams as foreign. Inside this
  // namespace only, give the multicast route the source a real host would have.
  spawnSync('ip', ['route', 'replace', '224.0.0.0/4', 'dev', 'lo', 'src', '127.0.0.1'])

  const dir = tempDir(t, 'metaos-nmap-')
  const domain = await spawnDomain(['storage', '--root', dir, '--listen', 'http://127.0.0.1:0', '--announce'])
  t.teardown(async () => { await domain.stop(); rmSync(dir, { recursive: true, force: true }) })
  const { epr, endpoints } = domain.ready

  for (const mode of ['unicast', 'multicast'] as const) {
    const script = mode === 'unicast' ? 'wsdd-discover' : 'broadcast-wsdd-discover'
    await t.test(`nmap --script ${script} lists the domain for both of its probes`, async (t) => {
      const args = mode === 'unicast'
        ? ['-n', '-Pn', '-sU', '-p', '3702', '--script', script, '--script-trace', '127.0.0.1']
        : ['-n', '-T4', '--script', script, '--script-trace']
      const r = await run(nmap, args, 45_000)
      const diag = { args: args.join(' '), stdout: r.stdout.replace(/^NSOCK .*\n/gm, '').slice(-6000), stderr: r.stderr.slice(-2000) }
      t.equal(r.code, 0, 'nmap exits 0', diag)
      if (mode === 'unicast') t.match(r.stdout, /3702\/udp\s+open(\|filtered)?\s+ws-discovery/, 'port 3702/udp is scanned', diag)

      const found = listed(r.stdout, script)
      for (const section of ['Devices', 'WCF Services'] as const) {
        const probe = section === 'Devices' ? 'its April 2005 "general" probe' : 'its WS-Discovery 1.1 "wcf" probe'
        const entries = found[section]
        t.equal(entries.length, 1, `${section}: exactly one answer to ${probe}`, diag)
        const e = entries[0]
        if (e === undefined) continue
        t.match(e.messageId, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, `${section}: nmap parsed the reply's urn:uuid: MessageID`)
        t.equal(e.address, endpoints.join(' '), `${section}: "Address" is the domain's XAddrs`, diag)
        // nmap 7.93 reads Types with the regex <[^:]*:Types>[wsdp:]*(.*)</[^:]*:Types>: only a start
        // tag without attributes matches, so the type's prefix must be declared on an ancestor.
        t.match(e.type, /^\w+:StorageDomain$/, `${section}: "Type" is the domain's type as a prefixed QName`, diag)
      }
      t.not(found.Devices[0]?.messageId, found['WCF Services'][0]?.messageId, 'two distinct ProbeMatches')

      // What nmap received, datagram by datagram: our ProbeMatches for its own probe, with our EPR.
      const trace = traced(r.stdout)
      const probes = new Map(trace.sent.map((x) => [messageIdOf(x), x]))
      t.equal(probes.size, 2, 'nmap sent two distinct probes (each twice)', diag)
      for (const [id, probe] of probes) {
        const v11 = probe.includes('http://docs.oasis-open.org/ws-dd/ns/discovery/2009/01/Probe')
        const name = v11 ? 'WS-Discovery 1.1 probe' : 'April 2005 probe'
        const replies = trace.received.filter((x) => relatesToOf(x) === id)
        t.ok(replies.length >= 1, `${name}: nmap received an answer that RelatesTo its MessageID`, diag)
        const reply = replies[0] ?? ''
        t.match(reply, v11 ? '/2009/01/ProbeMatches</' : '/2005/04/discovery/ProbeMatches</', `${name}: answered in the version asked`)
        t.match(reply, element('Address', epr), `${name}: the answer carries the domain's EPR ${epr}`)
        t.match(reply, /:Types[^>]*>[^<]*:StorageDomain</, `${name}: and its type`)
        t.match(reply, element('XAddrs', endpoints.join(' ')), `${name}: and its XAddrs`)
        t.equal(new Set(replies.map(messageIdOf)).size, 1, `${name}: one answer (nmap sends each probe twice; the domain suppresses the duplicate and repeats its answer with the same MessageID)`)
      }
    })
  }
}
