import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

// Interop with WCF Discovery as Mono 6.8 ships it (Debian: mono-devel,
// libmono-system-servicemodel-discovery4.0-cil): a C# program (discovery-wcf/MetaosDiscovery.cs)
// compiled with mcs at test time.
//
// (a) Mono's DiscoveryClient(new UdpDiscoveryEndpoint(WSDiscovery11)) looks for
//     {urn:metaos:v1}StorageDomain. It cannot receive ANY ProbeMatches on Mono 6.8, whoever sends
//     it, for three independent Mono bugs (seen in Mono 6.8's IL and by experiment):
//       1. DuplexClientBase<T>(InstanceContext, ServiceEndpoint) — the constructor its internal
//          DiscoveryTargetClient11 uses — builds a plain ChannelFactory<T>, not a
//          DuplexChannelFactory<T>: the runtime channel is not duplex (the program prints
//          duplexChannel=False), so nothing ever reads the UDP socket for the ReplyFind callback
//          (with a UdpDiscoveryEndpoint aimed at soap.udp://127.0.0.1:3702 instead, the domain's
//          answers do reach the socket, and ss shows them queued there, never read).
//       2. UdpDuplexChannel.OnOpen Connect()s the client's UDP socket to 239.255.255.250:3702, so
//          the kernel drops every unicast answer (from the responder's own address): the domain's
//          answers show up as UDP NoPorts in this namespace.
//       3. Reading any message with an AppSequence header (which WS-Discovery 1.1 requires in
//          Hello, Bye, ProbeMatches and ResolveMatches) throws XmlSchemaException "The 'base'
//          attribute is either invalid or missing": DiscoveryMessageSequence11.GetSchema builds
//          an XmlSchemaComplexContentRestriction without a BaseTypeName.
//     Also: Mono's MessageBuffer (Message.CreateBufferedCopy) drops the namespace declarations of
//     s:Envelope and s:Body, so after buffering, a Types QName whose prefix is declared there (as
//     metaos now does, for nmap) no longer resolves ("A namespace for prefix 'm' cannot be found");
//     read straight from the datagram it does. A prefix declared on d:ProbeMatches/d:ProbeMatch
//     would survive both.
//     So the Find assertion is a todo, and the test also reads the domain's real answer with
//     Mono's own WS-Discovery 1.1 serializer and message contract (the one Mono's callback would be
//     given): that works once the AppSequence header is removed, i.e. nothing else in our
//     ProbeMatches needs to change for Mono.
// (b) Our DiscoveryClient and a Mono WCF service with ServiceDiscoveryBehavior: the service never
//     starts — with a UdpAnnouncementEndpoint, ServiceHost.Open throws the same XmlSchemaException
//     (while sending Hello, which carries AppSequence); with a UdpDiscoveryEndpoint it throws
//     "Contract 'TargetService' is not implemented". Recorded as todo with the exact error.
import t from 'tap'
import { createSocket } from 'node:dgram'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DiscoveryClient } from '../../discovery/client.js'
import { spawnDomain } from '../../domains/domain-process.js'
import { which } from '../helpers/which.js'
import { partMissing } from '../helpers/require-part.js'

const here = dirname(fileURLToPath(import.meta.url))
const source = [resolve(here, 'discovery-wcf/MetaosDiscovery.cs'), resolve(here, '../../../test/interop/discovery-wcf/MetaosDiscovery.cs')].find((f) => existsSync(f))

interface Run { code: number | null, stdout: string, stderr: string }

async function run (cmd: string, args: string[], cwd: string, timeout = 60_000): Promise<Run> {
  return await new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout, maxBuffer: 16 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null
      resolve({ code: e === null ? 0 : typeof e.code === 'number' ? e.code : null, stdout, stderr })
    })
  })
}

/** key=value lines; a key may repeat. */
function parseLines (text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  for (const line of text.split('\n')) {
    const i = line.indexOf('=')
    if (i > 0) out.set(line.slice(0, i), [...(out.get(line.slice(0, i)) ?? []), line.slice(i + 1).replace(/\r$/, '')])
  }
  return out
}

/** UDP datagrams that arrived for a port nobody listens on (or on a socket connected elsewhere), in this namespace. */
function udpNoPorts (): number {
  const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp: '))
  const names = lines[0]!.split(/\s+/)
  return Number(lines[1]!.split(/\s+/)[names.indexOf('NoPorts')])
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const a = s.address(); s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : 0) }) })
  })
}

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const mcs = which('mcs')
const mono = which('mono')
const assemblyDir = ['/usr/lib/mono/4.5', '/usr/lib/mono/4.5-api'].find((d) => existsSync(join(d, 'System.ServiceModel.Discovery.dll')))
if (mcs === undefined || mono === undefined || assemblyDir === undefined) {
  t.plan(0, partMissing('Mono WCF Discovery', 'needs mcs and mono on PATH and System.ServiceModel.Discovery.dll in /usr/lib/mono/4.5',
    'apt-get install mono-mcs mono-runtime libmono-system-servicemodel4.0a-cil libmono-system-servicemodel-discovery4.0-cil'))
} else {
  // Mono's UDP sockets do not choose a multicast interface; with no preferred source on the only
  // route to 224.0.0.0/4 (lo's 127.0.0.1 is host-scoped) they would send from 0.0.0.0, which the
  // domain drops as foreign. Inside this namespace only, give the route the source a host would have.
  spawnSync('ip', ['route', 'replace', '224.0.0.0/4', 'dev', 'lo', 'src', '127.0.0.1'])

  const work = mkdtempSync(join(tmpdir(), 'metaos-wcf-discovery-'))
  const root = join(work, 'root')
  mkdirSync(root)
  t.teardown(() => { rmSync(work, { recursive: true, force: true }) })
  const exe = join(work, 'MetaosDiscovery.exe')
  const refs = ['System.ServiceModel.dll', 'System.ServiceModel.Discovery.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir, a)}`)
  const cc = await run(mcs, ['-nologo', `-out:${exe}`, ...refs, source ?? 'MetaosDiscovery.cs'], work, 120_000)
  const domain = cc.code === 0 ? await spawnDomain(['storage', '--root', root, '--listen', 'http://127.0.0.1:0', '--announce']) : undefined
  t.teardown(async () => { await domain?.stop() })

  await t.test('mcs compiles discovery-wcf/MetaosDiscovery.cs', async (t) => {
    t.ok(source, 'the C# source is found')
    t.equal(cc.code, 0, 'no compiler error', { output: `${cc.stdout}\n${cc.stderr}` })
  })

  if (domain !== undefined) {
    const { epr, endpoints } = domain.ready
    const mono$ = async (...args: string[]): Promise<Run & { out: Map<string, string[]> }> => {
      const r = await run(mono, [exe, ...args], work)
      return { ...r, out: parseLines(r.stdout) }
    }

    await t.test('(a) Mono DiscoveryClient + UdpDiscoveryEndpoint (WS-Discovery 1.1) finds the domain by type', async (t) => {
      // Listen to what Mono sends, next to the domain (both bound to 3702, both get the multicast).
      const sniffer = createSocket({ type: 'udp4', reuseAddr: true })
      const probes: Buffer[] = []
      sniffer.on('message', (d) => { if (d.includes('/discovery/2009/01/Probe</')) probes.push(d) })
      await new Promise<void>((resolve) => { sniffer.bind(3702, () => { resolve() }) })
      sniffer.addMembership('239.255.255.250', '127.0.0.1')
      const noPortsBefore = udpNoPorts()
      const r = await mono$('find', '3')
      const undelivered = udpNoPorts() - noPortsBefore
      await new Promise<void>((resolve) => { sniffer.close(() => { resolve() }) })
      const info = { stdout: r.stdout, stderr: r.stderr.slice(0, 3000) }

      // What Mono sends, and that the domain copes with it.
      const probe = probes[0]?.toString('utf8') ?? ''
      t.ok(probes.length >= 1, 'Mono multicast its Probe', info)
      t.equal(new Set(probes.map((p) => /MessageID>([^<]+)</.exec(p.toString())?.[1])).size, 1, `one Probe, sent ${probes.length} times (Mono's UdpDuplexChannel sends every message 3 times)`)
      t.same([...(probes[0] ?? Buffer.alloc(0)).subarray(0, 3)], [0xef, 0xbb, 0xbf], 'Mono prefixes its datagram with a UTF-8 BOM (the domain tolerates it)')
      t.match(probe, />\{urn:metaos:v1\}StorageDomain<\/d:Types>/, 'Mono writes the Types in Clark notation, not as a QName (the domain tolerates it)')
      const found = r.out.get('epr')?.includes(epr) === true
      t.ok(found || undelivered >= 1, `the domain answered Mono's Probe (${undelivered} answer datagram(s) dropped by the kernel: UDP NoPorts)`, info)

      const error = r.out.get('error')?.[0]
      t.equal(r.out.get('epr')?.[0], epr, `Mono's DiscoveryClient.Find returns the domain's EPR ${epr}`, {
        ...info,
        todo: found
          ? false
          : `Mono 6.8 cannot receive a ProbeMatches (${error ?? 'no endpoint found'}): its DiscoveryTargetClient11 ` +
            `gets a non-duplex runtime channel (duplexChannel=${r.out.get('duplexChannel')?.[0] ?? '?'}) that never reads ` +
            'the socket, the socket is connect()ed to 239.255.255.250:3702 so the kernel drops the unicast answers, ' +
            'and the AppSequence header would throw XmlSchemaException anyway. No change to our ProbeMatches can help.',
      })
      t.same(r.out.get('listenUri') ?? [], found ? endpoints : [], found ? 'and its XAddrs as ListenUris' : 'no ListenUris (nothing found)')
    })

    await t.test("(a) Mono's WS-Discovery 1.1 message contracts read the domain's ProbeMatches", async (t) => {
      const r = await mono$('probe', '2')
      const out = r.out
      const info = { stdout: r.stdout, stderr: r.stderr.slice(0, 3000) }
      t.same(out.get('from'), ['127.0.0.1'], 'one ProbeMatches came back for the Probe Mono wrote (its repeat suppressed by MessageID)', info)
      const rejected = out.get('rejected')?.[0]
      t.same(out.get('accepted'), ['as sent'], 'Mono reads our ProbeMatches as sent', {
        todo: rejected === undefined
          ? false
          : `Mono 6.8 throws ${rejected} on the AppSequence header (DiscoveryMessageSequence11.GetSchema: a ` +
            'complexContent restriction without a base type), which WS-Discovery 1.1 requires in ProbeMatches ' +
            '(and in Hello, Bye, ResolveMatches); dropping it would break the spec and still not reach Mono\'s DiscoveryClient',
      })
      if (rejected !== undefined) t.match(rejected, /XmlSchemaException: The 'base' attribute is either invalid or missing/, 'the rejection is Mono\'s AppSequence schema bug, not our message', info)
      t.equal(out.get('rejectedWithoutAppSequence'), undefined, 'without the AppSequence header, Mono reads the rest of our ProbeMatches', info)
      t.same(out.get('epr'), [epr], 'EndpointDiscoveryMetadata.Address is the domain\'s EPR')
      t.same(out.get('listenUri'), endpoints, 'ListenUris are the domain\'s XAddrs')
      t.same(out.get('type'), ['{urn:metaos:v1}StorageDomain'], 'ContractTypeNames is {urn:metaos:v1}StorageDomain')
      t.ok(out.get('scope')?.some((s) => s.startsWith('metaos://volume/')), 'Scopes include the volume scope', { scopes: out.get('scope') })
      const ours = new DiscoveryClient()
      await ours.start()
      const resolved = await ours.resolve(epr, { timeoutMs: 2000 })
      await ours.close()
      t.same(out.get('metadataVersion'), [String(resolved?.metadataVersion)], 'Version is the MetadataVersion our own client resolves')
      t.same(out.get('found'), ['1'], 'one endpoint')
    })

    await t.test('(b) our DiscoveryClient hears a Mono WCF service announced with ServiceDiscoveryBehavior + UdpAnnouncementEndpoint', async (t) => {
      const client = new DiscoveryClient({ listen: true, reprobeMs: 0 })
      await client.start()
      t.teardown(async () => { await client.close() })
      const url = `http://127.0.0.1:${await freePort()}/echo`
      const hello = client.waitFor((x) => x.xaddrs.includes(url), 10_000)
      const r = await mono$('announce', url, '2')
      const error = r.out.get('error')?.[0]
      const info = { stdout: r.stdout, stderr: r.stderr.slice(0, 3000) }
      const todo = error === undefined ? false : `Mono 6.8's ServiceHost does not open with a UdpAnnouncementEndpoint: ${error}`
      t.same(r.out.get('opened'), [url], 'the Mono service opened', { ...info, todo })
      const found = error === undefined ? await hello : undefined
      t.ok(found, `its Hello (XAddrs ${url}) reached our registry`, { ...info, todo })
      t.ok(found?.types.includes('{urn:metaos:interop}Echo'), 'with its contract type', { todo })
      if (error !== undefined) t.match(error, /XmlSchemaException/, 'the failure is Mono\'s AppSequence schema bug (Hello carries AppSequence)', info)
    })

    await t.test('(b) our DiscoveryClient probes a Mono WCF service made discoverable with a UdpDiscoveryEndpoint', async (t) => {
      const client = new DiscoveryClient()
      await client.start()
      t.teardown(async () => { await client.close() })
      const url = `http://127.0.0.1:${await freePort()}/echo`
      const service = mono$('discoverable', url, '4')
      const probed = sleep(1500).then(async () => await client.probe({ types: ['{urn:metaos:interop}Echo'], timeoutMs: 2000 }))
      const [r, found] = await Promise.all([service, probed])
      const error = r.out.get('error')?.[0]
      const info = { stdout: r.stdout, stderr: r.stderr.slice(0, 3000) }
      const todo = error === undefined ? false : `Mono 6.8's ServiceHost does not open with a UdpDiscoveryEndpoint: ${error}`
      t.same(r.out.get('opened'), [url], 'the Mono service opened', { ...info, todo })
      t.ok(found.some((x) => x.xaddrs.includes(url)), 'our Probe found it', { ...info, todo, found })
      if (error !== undefined) t.match(error, /Contract 'TargetService' is not implemented/, 'the failure is Mono\'s: its ServiceHost treats the discovery endpoint as one of the service\'s own contracts', info)
    })
  }
}
