import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

// Interop with a real WS-Discovery target service: Debian's wsdd (0.7, Python), which announces
// this host the way Windows does (WS-Discovery April 2005, Types `wsdp:Device pub:Computer`,
// XAddrs pointing to its WS-Transfer metadata on HTTP port 5357).
//
// wsdd will not run on loopback: it ignores every 127.x address and every IPv6 address that is not
// link-local (is_address_handled), and it does not loop its own multicast back (IP_MULTICAST_LOOP
// 0). So this file builds a two-host network of its own: wsdd runs in a second network namespace
// (a child of this file's, which is already isolated), joined to this one by a veth pair with
// addresses that exist only inside these namespaces (10.203.0.1 here, 10.203.0.2 there). Our
// DiscoveryClient runs here on the veth end, as a client on another host of the LAN would.
//
// What we check: our registry follows wsdd's Hello (EPR, XAddrs) and Bye; Resolve gives its Types
// and XAddrs; the XAddrs serve wsdd's metadata; a Probe by type finds it (wsdd needs the literal
// prefix wsdp, and its ProbeMatch has no XAddrs, so the client resolves them). Recorded as todo:
// wsdd ignores a Probe without Types (a wsdd bug).
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { networkInterfaces, tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { DiscoveryClient, type DiscoveredTarget } from '../../discovery/client.js'
import { newMessageId, type DiscoveryMessage } from '../../discovery/messages.js'
import { VERSIONS } from '../../discovery/protocol.js'
import { SoapUdp } from '../../discovery/soap-udp.js'
import { which } from '../helpers/which.js'
import { partMissing } from '../helpers/require-part.js'

const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }

const DEVPROF = 'http://schemas.xmlsoap.org/ws/2006/02/devprof'
const PUB = 'http://schemas.microsoft.com/windows/pub/2005/07'
const DEVICE = `{${DEVPROF}}Device`
const COMPUTER = `{${PUB}}Computer`
const HERE = '10.203.0.1'
const THERE = '10.203.0.2'
const IFACE = 'wsdd0'

const wsdd = which('wsdd')
if (wsdd === undefined) {
  t.plan(0, partMissing('wsdd', 'wsdd is not on PATH: no real WS-Discovery 2005/04 host announcer to test against', 'apt-get install wsdd (its service masked)'))
} else {
  const uuid = randomUUID()
  const epr = `urn:uuid:${uuid}`
  const xaddr = `http://${THERE}:5357/${uuid}`
  const dir = mkdtempSync(join(tmpdir(), 'metaos-wsdd-'))
  const go = join(dir, 'go')

  // The second "host": a network namespace that waits for its veth end, configures it, then waits
  // for our signal (a file) before it starts wsdd, so that our listener hears its first Hello.
  const script = [
    'while ! ip link show wsdd1 >/dev/null 2>&1; do sleep 0.05; done',
    'ip link set lo up',
    `ip addr add ${THERE}/24 dev wsdd1`,
    'ip link set wsdd1 up',
    `while [ ! -e "${go}" ]; do sleep 0.05; done`,
    `exec "${wsdd}" --interface wsdd1 --ipv4only --uuid ${uuid} --hostname metaos-wsdd-peer --verbose --shortlog`,
  ].join('\n')
  const peer = spawn('unshare', ['--net', '--', 'sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] })
  let log = ''
  peer.stdout.on('data', (c: Buffer) => { log += c.toString() })
  peer.stderr.on('data', (c: Buffer) => { log += c.toString() })
  const peerExited = new Promise<number | null>((resolve) => { peer.once('exit', (code) => { resolve(code) }) })
  let client: DiscoveryClient | undefined
  t.teardown(async () => {
    await client?.close()
    if (peer.exitCode === null && peer.signalCode === null) peer.kill('SIGKILL')
    await peerExited
    rmSync(dir, { recursive: true, force: true })
  })

  const link = spawnSync('ip', ['link', 'add', IFACE, 'type', 'veth', 'peer', 'name', 'wsdd1', 'netns', String(peer.pid)], { encoding: 'utf8' })
  spawnSync('ip', ['addr', 'add', `${HERE}/24`, 'dev', IFACE])
  spawnSync('ip', ['link', 'set', IFACE, 'up'])
  // Node lists an interface once it is up and running (carrier: the other end is up too).
  for (let i = 0; i < 100 && networkInterfaces()[IFACE]?.some((a) => a.address === HERE) !== true; i++) await sleep(50)
  const ready = networkInterfaces()[IFACE]?.some((a) => a.address === HERE) === true
  await t.test('a second host: wsdd in its own network namespace, joined by a veth pair', async (t) => {
    t.equal(link.status, 0, 'ip link add … type veth … netns <pid>', { stderr: link.stderr })
    t.ok(ready, `${IFACE} (${HERE}) <-> wsdd1 (${THERE}, in wsdd's namespace) is up`)
  })

  if (ready) {
    client = new DiscoveryClient({ interfaces: [IFACE], listen: true, reprobeMs: 0 })
    await client.start()
    const c = client
    const hello = c.waitFor((x) => x.epr === epr, 10_000)
    writeFileSync(go, '')

    await t.test("the registry follows wsdd's Hello", async (t) => {
      const found = await hello
      t.ok(found, `wsdd's host ${epr} was added`, { wsdd: log })
      t.equal(found?.version, '2005', 'announced in WS-Discovery April 2005')
      t.equal(found?.from, THERE, 'from the other namespace')
      t.same(found?.xaddrs, [xaddr], "with wsdd's XAddrs (its metadata endpoint)")
      t.same(found?.types, [], "wsdd's Hello carries no Types (it sends them only in ProbeMatches and ResolveMatches)")
    })

    await t.test('Resolve gives its Types and XAddrs', async (t) => {
      const r = await c.resolve(epr, { timeoutMs: 3000 })
      t.ok(r, 'wsdd answered our Resolve', { wsdd: log })
      t.equal(r?.epr, epr, 'for its EPR')
      t.same(r?.types, [DEVICE, COMPUTER], 'Types wsdp:Device pub:Computer, resolved as QNames')
      t.same(r?.xaddrs, [xaddr], 'and its XAddrs')
      t.equal(r?.metadataVersion, 1, 'MetadataVersion 1')
    })

    await t.test("the XAddrs serve wsdd's metadata (WS-Transfer Get)", async (t) => {
      const wsa = 'http://schemas.xmlsoap.org/ws/2004/08/addressing'
      const get = '<?xml version="1.0" encoding="utf-8"?>' +
        `<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="${wsa}"><soap:Header>` +
        `<wsa:To>${epr}</wsa:To><wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Get</wsa:Action>` +
        `<wsa:MessageID>${newMessageId()}</wsa:MessageID><wsa:ReplyTo><wsa:Address>${wsa}/role/anonymous</wsa:Address></wsa:ReplyTo>` +
        '</soap:Header><soap:Body/></soap:Envelope>'
      const res = await fetch(xaddr, { method: 'POST', headers: { 'content-type': 'application/soap+xml' }, body: get, signal: AbortSignal.timeout(5000) })
      const text = await res.text()
      t.equal(res.status, 200, 'HTTP 200', { body: text.slice(0, 2000) })
      t.match(text, 'METAOS-WSDD-PEER/Workgroup:WORKGROUP', 'the metadata names the host wsdd announces')
      t.match(text, `<wsa:Address>${epr}</wsa:Address>`, 'and its EPR')
    })

    await t.test('Probe', async (t) => {
      // What our client writes in its Probe (heard through multicast loopback on the veth end).
      const sniffer = createSocket({ type: 'udp4', reuseAddr: true })
      const sent: string[] = []
      sniffer.on('message', (d) => { const x = d.toString('utf8'); if (x.includes('/2005/04/discovery/Probe<')) sent.push(x) })
      await new Promise<void>((resolve) => { sniffer.bind(3702, () => { resolve() }) })
      sniffer.addMembership('239.255.255.250', HERE)
      const byType = await c.probe({ types: [DEVICE], timeoutMs: 1500 })
      await new Promise<void>((resolve) => { sniffer.close(() => { resolve() }) })
      const typesSent = sent.map((x) => /<(?:\w+:)?Types[^>]*>[^<]*<\/(?:\w+:)?Types>/.exec(x)?.[0]).find((x) => x !== undefined) ?? '(no Types)'
      // wsdd 0.7 compares the text of <wsd:Types> with the literal string "wsdp:Device" (handle_probe:
      // types_elem.text == WSD_TYPE_DEVICE), namespaces ignored: the Probe must use that very prefix.
      t.match(typesSent, />wsdp:Device</, 'our Probe writes the devprof type with the prefix wsdp, the only one wsdd understands', { sent })
      const hit = byType.find((x) => x.epr === epr)
      t.ok(hit, `Probe for Types ${DEVICE} finds wsdd`, { found: byType, wsdd: log })
      t.same(hit?.types, [DEVICE, COMPUTER], 'with its Types')
      t.same(hit?.xaddrs, [xaddr], 'and its XAddrs (wsdd\'s ProbeMatch has none: probe() resolved them)')
      const any = await c.probe({ timeoutMs: 1500 })
      t.ok(any.some((x) => x.epr === epr), 'Probe without Types finds wsdd', {
        todo: 'wsdd 0.7 ignores a Probe without <wsd:Types> ("Probe message lacks wsd:Types element. Ignored."), ' +
          'although an omitted Types matches every target (WS-Discovery 2005/04 §5.1): a wsdd bug; nothing to do on our side',
        found: any,
      })

      // The same Probe with the prefix wsdd expects (written by hand, parsed by our message layer):
      // wsdd answers, which shows that the prefix is all it takes; its ProbeMatch lacks XAddrs.
      const udp = new SoapUdp({ interfaces: [IFACE], port: 0, ipv6: false })
      await udp.open()
      const id = newMessageId()
      const answers: DiscoveryMessage[] = []
      udp.on('message', (m: DiscoveryMessage) => { if (m.relatesTo === id) answers.push(m) })
      const { wsd, wsa, multicastTo } = VERSIONS['2005']
      udp.send(Buffer.from('<?xml version="1.0" encoding="utf-8"?>' +
        `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="${wsa}" xmlns:d="${wsd}" xmlns:wsdp="${DEVPROF}"><s:Header>` +
        `<a:Action>${wsd}/Probe</a:Action><a:MessageID>${id}</a:MessageID><a:To>${multicastTo}</a:To></s:Header>` +
        '<s:Body><d:Probe><d:Types>wsdp:Device</d:Types></d:Probe></s:Body></s:Envelope>'))
      await sleep(2000)
      await udp.close()
      const m = answers[0]
      t.equal(m?.action, 'ProbeMatches', 'with Types written wsdp:Device, wsdd answers', { wsdd: log })
      const target: Partial<DiscoveredTarget> = m?.targets[0] ?? {}
      t.equal(target.epr, epr, 'its ProbeMatch carries the EPR')
      t.same(target.types, [DEVICE, COMPUTER], 'and the Types')
      t.same(target.xaddrs, [], 'but no XAddrs: a client has to Resolve (as tested above)')
    })

    await t.test("the registry removes wsdd's host on its Bye", async (t) => {
      const removed = new Promise<DiscoveredTarget | undefined>((resolve) => {
        const timer = setTimeout(() => { resolve(undefined) }, 8000)
        c.on('removed', (x) => { if (x.epr === epr) { clearTimeout(timer); resolve(x) } })
      })
      t.ok(c.targets.has(epr), 'known before')
      peer.kill('SIGTERM')
      const gone = await removed
      t.equal(gone?.epr, epr, 'removed after wsdd said Bye', { wsdd: log })
      t.notOk(c.targets.has(epr), 'no longer in the registry')
      t.equal(await peerExited, 0, 'wsdd exited cleanly')
    })
  }
}
