// Many hosts (issue 19, DESIGN.md §9): a Docker Swarm of three nodes on this machine
// (docker/swarm/local-swarm.sh: a dockerd per network namespace, on a bridge namespace) runs
// docker/swarm/stack.yaml as is. Checked: three Ready managers with their zone and kernel labels;
// every task healthy where its placement says; from the client namespace, 4 MiB written through the
// storage domain of node3 (its host-mode port, mutual TLS with a certificate of `metaos pki`) and
// read back through node2's, same SHA-256 (one shared volume), and refused without a client
// certificate; from a container on the attachable overlay on node1, a round trip with node3's
// domain by its task name (VXLAN between the namespaces, swarm DNS, the node's certificate).
// Discovery across the nodes: every domain says Hello to the proxy (node1) over https with the
// identity of its own node (a certificate naming its EPR, bind-mounted from the node's directory),
// so `metaos discover --proxy` on node2 and node3 lists every node's storage domain with that EPR,
// proven by TLS; a Hello or Bye for node3's EPR without a client certificate, or with a certificate
// naming another EPR, gets the SOAP fault UNAUTHORIZED and the proxy logs it; node3 killed (a host
// crash): node1 reports it Down, and its domain leaves the proxy's answers when its lease runs out.
// `down` removes everything. The root namespace gains nothing: no link, address or iptables rule of
// the swarm while it runs, no namespace or process after.
// Needs root, iproute2, util-linux and docker.io: skips saying why without them, fails under CI.
import t from 'tap'
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs'
import { release } from 'node:os'
import { join } from 'node:path'
import { namedEndpoint } from '../../service-domain/announcement.js'
import { certificateIdentity } from '../../security/certificate-identity.js'
import { which } from '../helpers/which.js'
import { partMissing, underCi } from '../helpers/require-part.js'
import { DIST, SWARM_INSTALL, Timings, expectedTasks, imagesFromTestEngine, lastJson, must, sh, swarmFor, swarmUnavailable, until, waitForOtherSwarms } from '../helpers/swarm.js'

const NET = '10.231.0'
const POOL = '10.232.'
const PREFIX = 'mswt'

const missing = swarmUnavailable()
const skip = missing === undefined ? false : partMissing('the local swarm', missing, SWARM_INSTALL)

t.test('--announce-hostname names wildcard listeners only', async (t) => {
  t.equal(namedEndpoint('https://0.0.0.0:8443/storage', 'node1.storage.metaos'), 'https://node1.storage.metaos:8443/storage')
  t.equal(namedEndpoint('http://[::]:8080/network', 'h'), 'http://h:8080/network')
  t.equal(namedEndpoint('https://10.0.0.5:8443/storage', 'h'), 'https://10.0.0.5:8443/storage')
  t.equal(namedEndpoint('http+unix://%2Frun%2Fmetaos%2Fstorage.sock/storage', 'h'), 'http+unix://%2Frun%2Fmetaos%2Fstorage.sock/storage')
})

// What the swarm must never add to the root namespace.
interface RootState { links: Map<string, string>, netns: string[], iptables: string[] }
function rootState (): RootState {
  const links = new Map<string, string>()
  for (const l of JSON.parse(must('ip', ['-j', '-d', 'link', 'show'])) as Array<{ ifname: string, linkinfo?: { info_kind?: string }, link_netnsid?: number, master?: string }>) {
    links.set(l.ifname, `${l.linkinfo?.info_kind ?? 'device'}${l.master === undefined ? '' : ` master ${l.master}`}${l.link_netnsid === undefined ? '' : ` peer-netnsid ${l.link_netnsid}`}`)
  }
  const netns = must('ip', ['netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n !== '')
  const save = which('iptables-save')!
  const iptables = [...must(save, []).split('\n'), ...must(save, ['-t', 'nat']).split('\n')].filter((l) => l.startsWith('-A'))
  return { links, netns, iptables }
}
/** Things in `now` that can only be the swarm's: its namespaces' peers, its bridges and VXLANs, its addresses and rules. */
function swarmTraces (name: string, before: RootState, now: RootState): string[] {
  const ours = new Set<number>()
  for (const l of must('ip', ['netns', 'list']).split('\n')) {
    const m = /^(\S+) \(id: (\d+)\)/.exec(l)
    if (m !== null && m[1]!.startsWith(name)) ours.add(Number(m[2]))
  }
  const out: string[] = []
  for (const [link, kind] of now.links) {
    if (before.links.has(link)) continue
    if (/^(docker_gwbridge|docker0|vx-|ov-|p\d+$|pc$|br0$)/.test(link) || kind.startsWith('vxlan') || kind.includes('master docker_gwbridge')) out.push(`link ${link} (${kind})`)
    const peer = /peer-netnsid (\d+)/.exec(kind)
    if (peer !== null && ours.has(Number(peer[1]))) out.push(`link ${link} (${kind}) paired with a swarm namespace`)
  }
  const addrs = must('ip', ['-o', 'addr', 'show'])
  for (const l of addrs.split('\n')) if (l.includes(` ${NET}.`) || l.includes(` ${POOL}`)) out.push(`address: ${l.trim()}`)
  for (const r of now.iptables) if (!before.iptables.includes(r) && (r.includes('docker_gwbridge') || r.includes(`${NET}.`) || r.includes(POOL))) out.push(`iptables: ${r}`)
  return out
}

/**
 * Outside CI, a link a dockerd of the root namespace made (other work on this machine may run one;
 * the tests never use it): a bridge of one of its networks, or a veth on one. Under CI none runs.
 */
function rootDockerLink (name: string, now: RootState): boolean {
  if (underCi()) return false
  const root = (...args: string[]): ReturnType<typeof sh> => sh('docker', ['-H', 'unix:///var/run/docker.sock', ...args])
  const r = root('network', 'ls', '--filter', 'driver=bridge', '-q')
  const ids = r.status === 0 ? r.stdout.split('\n').filter((l) => l !== '') : []
  const bridges = new Set(ids.length === 0 ? [] : root('network', 'inspect', '-f', '{{.Id}} {{index .Options "com.docker.network.bridge.name"}}', ...ids).stdout
    .split('\n').filter((l) => l !== '').map((l) => { const [id, b] = l.split(' '); return b !== undefined && b !== '' && b !== '<no value>' ? b : `br-${id!.slice(0, 12)}` }))
  if (bridges.has(name)) return true
  const master = /master (\S+)/.exec(now.links.get(name) ?? '')?.[1]
  return /^veth[0-9a-f]{7}$/.test(name) && (master === undefined || bridges.has(master))
}

// A FileStream round trip run where the test puts it (the client namespace, or a container on the
// overlay): writes through one endpoint, reads back through another, prints one JSON line.
const CLIENT = `
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
const [dist, pki, writeUrl, readUrl, size] = process.argv.slice(2)
const { FileStream, createStorageProxy } = await import(dist + '/index.js')
const sha = (b) => createHash('sha256').update(b).digest('hex')
const tls = { ca: readFileSync(pki + '/ca.crt'), cert: readFileSync(pki + '/clients/swarm-client.crt'), key: readFileSync(pki + '/clients/swarm-client.key') }
const out = {}
const w = createStorageProxy(writeUrl, { tls }), r = createStorageProxy(readUrl, { tls })
out.writer = (await w.invoke('GetDomainInfo', {})).output
out.reader = (await r.invoke('GetDomainInfo', {})).output
const data = randomBytes(Number(size)), name = 'swarm-' + process.pid + '-' + Date.now() + '.bin'
let t0 = performance.now()
const ws = await FileStream.open(name, { mode: 'Create', access: 'Write', destination: w, bufferSize: 0 })
for (let o = 0; o < data.length; o += 65536) await ws.write(data, o, Math.min(65536, data.length - o))
await ws.close()
out.writeMs = performance.now() - t0
t0 = performance.now()
const back = Buffer.alloc(data.length)
const rs = await FileStream.open(name, { mode: 'Open', access: 'Read', destination: r, bufferSize: 0 })
let n = 0
for (let k; n < back.length && (k = await rs.read(back, n, back.length - n)) > 0;) n += k
await rs.close()
out.readMs = performance.now() - t0
Object.assign(out, { name, bytes: n, written: sha(data), read: sha(back.subarray(0, n)) })
// Without a client certificate: the domain's policy admits nobody.
const anon = createStorageProxy(writeUrl, { tls: { ca: tls.ca } })
try { await anon.invoke('GetDomainInfo', {}); out.anonymous = 'admitted' } catch (e) { out.anonymous = e.code }
for (const p of [w, r, anon]) await p.close()
console.log(JSON.stringify({ event: 'roundtrip', ...out }))
`
interface RoundTrip { writer: { domainId: string, volume: string, hosting: string }, reader: { domainId: string, volume: string }, name: string, bytes: number, written: string, read: string, anonymous: string, writeMs: number, readMs: number }

// Registrations the proxy must refuse, run in a container on the overlay: a Hello and a Bye for
// `victim`'s EPR with no client certificate (also sent raw, to see the SOAP fault itself), with the
// certificate of another node's domain, and with a client's; prints one JSON line.
const IMPOSTORS = `
import { readFileSync } from 'node:fs'
import { request } from 'node:https'
const [dist, pki, proxyUrl, victim, other] = process.argv.slice(2)
const { buildEnvelope, body, newMessageId } = await import(dist + '/discovery/messages.js')
const { askProxy } = await import(dist + '/discovery/proxy-client.js')
const { VERSIONS } = await import(dist + '/discovery/protocol.js')
const { STORAGE_DOMAIN_TYPE } = await import(dist + '/discovery/storage-announcement.js')
const ca = readFileSync(pki + '/ca.crt')
const as = (crt, key) => ({ ca, cert: readFileSync(pki + crt), key: readFileSync(pki + key) })
const message = (action) => {
  const t = { epr: victim, types: [STORAGE_DOMAIN_TYPE], scopes: [], xaddrs: ['https://impostor.example:8443/storage'], metadataVersion: 2 ** 40 }
  return buildEnvelope({ version: '1.1', action, messageId: newMessageId(), to: VERSIONS['1.1'].multicastTo, body: action === 'Hello' ? body.hello('1.1', t) : body.bye('1.1', t) })
}
const raw = await new Promise((resolve, reject) => {
  const m = message('Hello'), u = new URL(proxyUrl)
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', ca, headers: { 'Content-Type': 'application/soap+xml', 'Content-Length': m.length } }, (res) => {
    const chunks = []
    res.on('data', (c) => chunks.push(c)).on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString() }))
  })
  req.on('error', reject).end(m)
})
const attempts = {}
for (const [label, action, tls] of [['Hello, no client certificate', 'Hello', { ca }], ['Hello, certificate of another node', 'Hello', as('/nodes/' + other + '/storage.crt', '/nodes/' + other + '/storage.key')],
  ['Hello, a client certificate', 'Hello', as('/clients/swarm-client.crt', '/clients/swarm-client.key')], ['Bye, certificate of another node', 'Bye', as('/nodes/' + other + '/storage.crt', '/nodes/' + other + '/storage.key')]]) {
  try { await askProxy(proxyUrl, message(action), 5000, tls); attempts[label] = 'taken' } catch (e) { attempts[label] = e.code + ': ' + e.message }
}
console.log(JSON.stringify({ event: 'impostors', raw, attempts }))
`
interface Impostors { raw: { status: number, body: string }, attempts: Record<string, string> }
/** One entry of `metaos discover --json` (with --trust-ca: proven, proof). */
interface Listed { epr: string, types: string[], xaddrs: string[], proven?: boolean, proof?: string }
const PROXY = 'https://discovery.metaos:8443/discovery'
/** The EPR a certificate names (its urn:uuid URI). */
const eprOf = (file: string): string => certificateIdentity(readFileSync(file)).uris.find((u) => u.startsWith('urn:uuid:'))!

t.test('a swarm of 3 nodes on this machine runs docker/swarm/stack.yaml', { skip }, async (t) => {
  await waitForOtherSwarms()
  const { swarm, tmp } = swarmFor(t, PREFIX)
  const NAME = swarm.name
  // The images, from the tests' Docker engine (started first when it is not running: before the root
  // namespace is looked at).
  const images = imagesFromTestEngine((l) => { t.comment(l) })
  const before = rootState()
  const timings = new Timings()
  const time = timings.time.bind(timings)
  try {
    const ready = await time('up', () => swarm.up(3, images))
    t.equal(ready.event, 'ready')
    t.same(ready.nodes.map((n) => [n.name, n.netns, n.address, n.role, n.zone]), [1, 2, 3].map((i) => [`node${i}`, `${NAME}-node${i}`, `${NET}.${10 + i}`, 'manager', 'abc'[i - 1]]))
    t.equal(ready.client.netns, `${NAME}-client`)
    const dk = (i: number, ...args: string[]): string => swarm.docker(i, ...args)

    const nodes = dk(2, 'node', 'ls', '--format', '{{.Hostname}} {{.Status}} {{.ManagerStatus}}').split('\n').sort()
    t.same(nodes.map((l) => l.split(' ').slice(0, 2).join(' ')), ['node1 Ready', 'node2 Ready', 'node3 Ready'], 'docker node ls: three Ready')
    t.ok(nodes.every((l) => /Leader|Reachable/.test(l)), 'three managers')
    const labels = dk(1, 'node', 'inspect', '-f', '{{.Description.Hostname}} {{index .Spec.Labels "zone"}} {{index .Spec.Labels "kernel"}}', 'node1', 'node2', 'node3')
    t.same(labels.split('\n'), ['a', 'b', 'c'].map((z, i) => `node${i + 1} ${z} ${release()}`), 'zone and kernel labels')
    t.same(swarmTraces(NAME, before, rootState()), [], 'the root namespace has nothing of the swarm after up')

    // Secrets made by metaos pki; node addresses in the storage certificate for the client namespace.
    const pki = join(tmp, 'pki')
    swarm.secrets(pki)
    await time('deploy', () => { swarm.deploy(pki) })
    const expected = expectedTasks(3)
    t.same(expected, ['node1 discovery', 'node1 storage', 'node2 network', 'node2 storage', 'node3 storage'])
    await time('healthy', async () => await swarm.waitHealthy())
    t.same(swarm.healthy(), expected, 'tasks healthy where placed: storage on every node, the proxy in zone a, the network domain in zone b')

    // From the client namespace: write through node3's port, read through node2's.
    const client = join(tmp, 'client')
    mkdirSync(client)
    writeFileSync(join(client, 'roundtrip.mjs'), CLIENT)
    chmodSync(client, 0o755)
    const [, n2, n3] = ready.nodes
    const rt = await time('roundtrip-client', () => lastJson<RoundTrip>(must('ip', ['netns', 'exec', ready.client.netns, process.execPath, join(client, 'roundtrip.mjs'),
      DIST, pki, `https://${n3!.address}:8443/storage`, `https://${n2!.address}:8443/storage`, String(4 * 1024 * 1024)])))
    t.equal(rt.bytes, 4 * 1024 * 1024)
    t.equal(rt.read, rt.written, 'client namespace: 4 MiB written through node3, read back through node2, same SHA-256')
    t.match(rt.writer.domainId, /^urn:uuid:/)
    t.not(rt.writer.domainId, rt.reader.domainId, 'two domains (each its own EPR)')
    t.comment(`client namespace → node3 (write) / node2 (read), 4 MiB in 64 KiB calls: ${(4 / (rt.writeMs / 1000)).toFixed(0)} MiB/s written, ${(4 / (rt.readMs / 1000)).toFixed(0)} MiB/s read`)
    t.same([rt.writer.volume, rt.writer.hosting, rt.reader.volume], ['shared', 'container', 'shared'])
    t.equal(rt.anonymous, 'UNAUTHORIZED', 'no client certificate: refused')
    t.ok(readdirSync(ready.shared).includes(rt.name), 'the file is in the shared directory')

    // From a container on the attachable overlay on node1: node3's domain by its task name.
    const onOverlay = (i: number, ...args: string[]): string => dk(i, 'run', '--rm', '--network', 'metaos_overlay', '--user', '0:0',
      '-v', `${client}:/client:ro`, '-v', `${pki}:/pki:ro`, '--entrypoint', 'node', 'metaos/network:dev', ...args)
    const inside = await time('roundtrip-overlay', () => lastJson<RoundTrip>(onOverlay(1, '/client/roundtrip.mjs',
      '/app/dist', '/pki', 'https://node3.storage.metaos:8443/storage', 'https://node3.storage.metaos:8443/storage', String(1024 * 1024))))
    t.equal(inside.read, inside.written, 'overlay: 1 MiB round trip with node3.storage.metaos (VXLAN between the nodes)')
    t.equal(inside.writer.domainId, rt.writer.domainId, 'the same domain by its task name as by its node port')

    // Discovery across the nodes: each domain said Hello to the proxy on node1 with its node's identity.
    const storageEpr = (node: string): string => eprOf(join(pki, 'nodes', node, 'storage.crt'))
    const eprs = new Map(ready.nodes.map((n) => [storageEpr(n.name), `https://${n.name}.storage.metaos:8443/storage`]))
    t.equal(eprs.size, 3, 'three node identities, three EPRs')
    t.equal(rt.writer.domainId, storageEpr('node3'), 'node3\'s domain is the EPR its node\'s certificate names')
    const discover = (i: number): Listed[] => JSON.parse(onOverlay(i, '/app/dist/cli/metaos.js', 'discover', '--proxy', PROXY, '--proxy-ca', '/pki/ca.crt', '--trust-ca', '/pki/ca.crt', '--json')) as Listed[]
    const storageListed = (l: Listed[]): string[] => l.filter((x) => x.types.some((y) => y.endsWith('StorageDomain'))).map((x) => `${x.epr} ${x.xaddrs.filter((a) => a.startsWith('https://')).join(' ')}`).sort()
    const want = [...eprs].map(([e, x]) => `${e} ${x}`).sort()
    const fromNode2 = await time('proxy-lists-all', async () => await until('every domain registered with the proxy', 60_000, () => {
      const l = discover(2)
      return storageListed(l).join() === want.join() && l.length === 4 ? l : undefined
    }, 1000))
    t.same(storageListed(fromNode2), want, 'metaos discover --proxy on node2: every node\'s storage domain, each with the EPR its certificate names')
    t.ok(fromNode2.every((x) => x.proven === true), `and each proven by TLS (--trust-ca): ${fromNode2.filter((x) => x.proven !== true).map((x) => x.proof).join('; ')}`)
    const network = fromNode2.find((x) => x.types.some((y) => y.endsWith('NetworkDomain')))
    t.equal(network?.epr, eprOf(join(pki, 'domains', 'network.crt')), 'and the network domain, with the EPR its certificate names')
    t.same(storageListed(discover(3)), want, 'the same from node3')

    // Impostors: registrations for node3's EPR that the proxy must refuse, from node2.
    writeFileSync(join(client, 'impostors.mjs'), IMPOSTORS)
    const imp = lastJson<Impostors>(onOverlay(2, '/client/impostors.mjs', '/app/dist', '/pki', PROXY, storageEpr('node3'), 'node2'))
    t.equal(imp.raw.status, 500, 'a Hello POSTed without a client certificate: HTTP 500')
    t.match(imp.raw.body, /<s:Fault>.*<code>UNAUTHORIZED<\/code>.*no client certificate/s, 'with a SOAP fault UNAUTHORIZED saying why')
    t.match(imp.attempts, {
      'Hello, no client certificate': /^UNAUTHORIZED: .*no client certificate/,
      'Hello, certificate of another node': new RegExp(`^UNAUTHORIZED: .*names ${storageEpr('node2')}.*not ${storageEpr('node3')}`),
      'Hello, a client certificate': /^UNAUTHORIZED: .*names metaos:identity:swarm-client/,
      'Bye, certificate of another node': /^UNAUTHORIZED: Bye/,
    }, 'each refused with the fault UNAUTHORIZED')
    t.same(storageListed(discover(2)), want, 'node3\'s domain still listed with its own XAddr')
    const proxyLog = (): string => {
      const id = dk(1, 'ps', '-q', '--filter', 'label=com.docker.swarm.service.name=metaos_discovery')
      const r = swarm.dockerSh(1, 'logs', id)
      return r.stdout + r.stderr
    }
    const refusals = proxyLog().split('\n').filter((l) => l.includes('discovery registration refused')).map((l) => JSON.parse(l) as { action: string, epr: string, peer: string, reason: string })
    t.equal(refusals.length, 5, 'the proxy logged each refusal (pino, warn)')
    t.ok(refusals.every((r) => r.epr === storageEpr('node3') && r.peer !== '' && r.reason !== ''), 'with the EPR, the peer and the reason')
    t.same(swarmTraces(NAME, before, rootState()), [], 'the root namespace has nothing of the swarm while the stack runs')

    // A host crash: node3's processes killed; node1 sees it Down, the other two Ready.
    const killedAt = performance.now()
    const killed = await swarm.killNode('node3')
    t.same([killed.event, killed.node], ['killed', 'node3'])
    t.ok(killed.processes >= 3, `kill-node killed ${killed.processes} processes (dockerd, containerd, shim, domain…)`)
    const status = await time('down-detected', async () => await until('node3 Down', 90_000, () => {
      const s = swarm.nodeStatus(1)
      return s?.includes('node3 Down') === true ? s : undefined
    }))
    t.same(status, ['node1 Ready', 'node2 Ready', 'node3 Down'], 'docker node ls on node1: node3 Down')
    t.same(sh('ip', ['netns', 'pids', `${NAME}-node3`]).stdout.trim(), '', 'no process left in node3')
    // No Bye from a crashed host: the proxy forgets node3's domain when its Hellos stop renewing it (--forget-after).
    const gone = await time('proxy-forgets-node3', async () => await until('node3\'s domain gone from the proxy', 120_000, () => {
      const l = storageListed(discover(2))
      return l.some((x) => x.startsWith(storageEpr('node3'))) ? undefined : l
    }, 2000))
    t.same(gone, want.filter((x) => !x.startsWith(storageEpr('node3'))), 'node3\'s domain has left the proxy\'s answers; node1\'s and node2\'s remain')
    t.comment(`node3's domain left the proxy's answers ${((performance.now() - killedAt) / 1000).toFixed(1)} s after kill-node (its lease: --forget-after 30 s, renewed by a Hello every 10 s)`)
  } finally {
    const d = await time('down', () => swarm.down())
    t.equal(d.status, 0, `local-swarm.sh down: ${d.stderr.trim()}`)
    t.comment(timings.line())
  }
  const after = rootState()
  t.same(after.netns.filter((n) => n.startsWith(NAME)), [], 'down: no namespace of the swarm left')
  t.same(swarmTraces(NAME, before, after), [], 'down: nothing of the swarm in the root namespace')
  t.same([...after.links.keys()].filter((n) => !before.links.has(n) && !rootDockerLink(n, after)), [], 'no new link in the root namespace (outside CI, but a root dockerd\'s, for other work)')
  t.notOk(existsSync(swarm.env.METAOS_SWARM_DIR!) || existsSync(swarm.env.METAOS_SWARM_DATA!), 'down: state directories removed')
  const left = sh('pgrep', ['-f', tmp]).stdout.trim()
  t.equal(left, '', 'down: no process of the swarm left')
  t.equal(readFileSync('/proc/self/mountinfo', 'utf8').includes(tmp), false, 'no mount of the swarm in this mount namespace')
})
