// The Secrets and the pods of docker/k8s/, run here as far as no cluster allows. make-secrets.sh
// makes the certificates and policy with `metaos pki` and secrets.yaml; its Secrets validate
// against the Kubernetes schemas and hold every key the manifests use; the certificates name the
// pod records the domains announce. Then each pod's containers run as a kubelet would start them,
// from the manifests' own command, args, env and volumes (tested with kubernetes-models and yaml):
// Secret volumes written from secrets.yaml (mode 0440), emptyDirs and the claim as temporary
// directories, /app as this checkout, $(VAR) expanded, POD_IP 127.0.0.1. What differs, and only
// that: the domains announce on lo instead of eth0, listen on port 0 instead of 8443, and a
// --import answers the pod records <a-b-c-d>.<namespace>.pod.cluster.local with a.b.c.d, as the
// cluster's DNS would. Checked: the init container's copy of the policy is one the domain accepts;
// each domain serves mutual TLS under its pod record's name; a frontend with the client certificate
// writes and reads a file through the storage domain, one without is refused; the bus socket the
// probes ask answers; the discovery proxy lists the storage domain under that name, and its probe
// passes while it serves and fails when it has stopped. In a network namespace of its own
// (test/helpers/netns.ts): its multicast on lo meets no other test file's.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { connect, type PeerCertificate } from 'node:tls'
import { FileStream, createStorageProxy } from '../../index.js'
import { STORAGE_DOMAIN_TYPE } from '../../discovery/index.js'
import { DiscoveryClient, type DiscoveredTarget } from '../../discovery/client.js'
import { loadAccessPolicy } from '../../security/access-policy.js'
import { packageFile } from '../../wsdl/package-root.js'
import { documentedSecrets, expandVars, loadKubernetesModels, loadManifests, parseManifests, podSpecOf, schemaErrors, secretRefs, strictFieldErrors, type Obj } from '../helpers/k8s.js'
import { partMissing } from '../helpers/require-part.js'
import { tempDir } from '../helpers/temp-dir.js'

t.setTimeout(120_000)
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')
const CLI = packageFile('dist', 'cli', 'metaos.js')
/** The cluster DNS's pod records, here: a-b-c-d.<namespace>.pod.cluster.local is a.b.c.d. */
const POD_DNS = "--import=data:text/javascript,import dns from 'node:dns';const l=dns.lookup;dns.lookup=(h,...a)=>l(String(h).replace(/^(\\d+)-(\\d+)-(\\d+)-(\\d+)\\.[a-z0-9-]+\\.pod\\.cluster\\.local$/,'$1.$2.$3.$4'),...a)"

const models = await loadKubernetesModels()
if (models instanceof Error) t.plan(0, partMissing('kubernetes-models', `cannot import it (${models.message})`, 'npm install (kubernetes-models and yaml are devDependencies)'))
else if (!existsSync(CLI)) t.plan(0, partMissing('dist/', 'dist/cli/metaos.js is not built', 'npm run build'))
else {
  const objects = loadManifests()
  const pods = new Map(objects.flatMap((l) => { const p = podSpecOf(l.obj); return p === undefined ? [] : [[l.obj.metadata.name as string, p] as const] }))
  const dir = tempDir(t, 'metaos-k8s-')
  const pki = join(dir, 'pki')
  const made = spawnSync('bash', [packageFile('docker', 'k8s', 'make-secrets.sh'), pki], { encoding: 'utf8', timeout: 60_000 })
  const secretObjects = made.status === 0 ? parseManifests(readFileSync(join(pki, 'secrets.yaml'), 'utf8'), 'secrets.yaml') : []
  const secrets = new Map(secretObjects.map((l) => [l.obj.metadata.name as string, Object.fromEntries(Object.entries(l.obj.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64')]))]))
  const tls = { ca: secrets.get('metaos-client-tls')?.['ca.crt'], cert: secrets.get('metaos-client-tls')?.['tls.crt'], key: secrets.get('metaos-client-tls')?.['tls.key'] }

  t.test('make-secrets.sh: the Secrets the manifests use, valid, made with metaos pki', async (t) => {
    t.equal(made.status, 0, `make-secrets.sh ran (${made.stderr.trim()})`)
    t.match(JSON.parse(made.stdout.trim().split('\n').pop()!), { event: 'secrets', namespace: 'metaos', dns: '*.metaos.pod.cluster.local' }, 'its line says what it made')
    t.equal(statSync(join(pki, 'secrets.yaml')).mode & 0o777, 0o600, 'secrets.yaml holds private keys: mode 0600')
    for (const l of secretObjects) t.same([...await schemaErrors(models, l), ...strictFieldErrors([l])], [], `Secret ${String(l.obj.metadata.name)}: valid (${String(l.obj.type)})`)
    t.same([...secrets.keys()].sort(), [...documentedSecrets().keys()].sort(), 'the Secrets docs/deploy.md documents, no more')
    for (const [name, keys] of documentedSecrets()) t.same(Object.keys(secrets.get(name) ?? {}).sort(), [...keys].sort(), `${name}: the documented keys`)
    const used = [...new Map([...pods.values()].flatMap((p) => secretRefs(p)).map((r) => [`${r.name}/${r.key}`, r])).values()]
    for (const { name, key } of used) t.ok(secrets.get(name)?.[key] !== undefined, `${name}/${key}: made`)
    for (const [name, key, file] of [['metaos-ca', 'ca.crt', 'ca.crt'], ['metaos-ca', 'crl.pem', 'crl.pem'], ['metaos-policy', 'auth.json', 'auth.json'],
      ['metaos-storage-tls', 'tls.key', 'domains/storage.key'], ['metaos-network-tls', 'tls.crt', 'domains/network.crt'], ['metaos-client-tls', 'tls.crt', 'clients/k8s-client.crt']] as const) {
      t.ok(secrets.get(name)?.[key]?.equals(readFileSync(join(pki, file))), `${name}/${key}: the bytes of metaos pki's ${file}`)
    }
    const ca = new X509Certificate(secrets.get('metaos-ca')!['ca.crt']!)
    for (const d of ['storage', 'network']) {
      const cert = new X509Certificate(secrets.get(`metaos-${d}-tls`)!['tls.crt']!)
      t.ok(cert.verify(ca.publicKey), `metaos-${d}-tls: issued by the CA of metaos-ca`)
      t.equal(cert.checkHost('10-244-1-5.metaos.pod.cluster.local'), '*.metaos.pod.cluster.local', `metaos-${d}-tls: names the pod records (10-244-1-5.metaos.pod.cluster.local)`)
    }
    const storageSan = new X509Certificate(secrets.get('metaos-storage-tls')!['tls.crt']!).subjectAltName ?? ''
    t.ok(/URI:urn:metaos:k8s:storage\b/.test(storageSan) && !storageSan.includes('urn:uuid:'), 'the storage certificate names no urn:uuid: every pod keeps an EPR of its own')
    t.ok(new X509Certificate(tls.cert!).verify(ca.publicKey), 'metaos-client-tls: a client certificate of that CA')
  })

  /** A pod's volumes as a kubelet makes them, under root: Secret files from secrets.yaml (mode as defaultMode), emptyDirs and claims empty. */
  const podVolumes = (pod: Obj, root: string): Map<string, string> => {
    const out = new Map<string, string>()
    for (const v of pod.volumes as Obj[]) {
      const d = join(root, v.name as string)
      mkdirSync(d, { recursive: true })
      out.set(v.name as string, d)
      const sources = v.projected !== undefined ? (v.projected.sources as Obj[]).map((s) => s.secret as Obj) : v.secret !== undefined ? [{ ...v.secret, name: v.secret.secretName }] : []
      for (const s of sources) {
        for (const i of s.items as Obj[]) {
          writeFileSync(join(d, i.path as string), secrets.get(s.name as string)![i.key as string]!)
          chmodSync(join(d, i.path as string), (v.projected ?? v.secret).defaultMode as number)
        }
      }
    }
    return out
  }
  /** A container's command line here: /app is this checkout, mount paths the pod's directories, $(VAR) expanded. */
  const commandLine = (c: Obj, volumes: Map<string, string>, env: Record<string, string>, edit: (a: string) => string = (a) => a): string[] => {
    const mounts = ((c.volumeMounts ?? []) as Obj[]).map((m) => [m.mountPath as string, volumes.get(m.name as string)!] as const).sort((a, b) => b[0].length - a[0].length)
    const map = (a: string): string => {
      for (const scheme of ['unix:', 'net.uds:']) if (a.startsWith(scheme)) return `${scheme}${map(a.slice(scheme.length))}`
      if (a.startsWith('/app/')) return packageFile(a.slice('/app/'.length))
      const m = mounts.find(([p]) => a === p || a.startsWith(`${p}/`))
      return m === undefined ? a : m[1] + a.slice(m[0].length)
    }
    const argv = [...(c.command as string[]), ...((c.args ?? []) as string[])].map((a) => edit(map(expandVars(a, env))))
    return argv[0] === 'node' ? [process.execPath, ...argv.slice(1)] : argv
  }
  const envOf = (c: Obj): Record<string, string> => Object.fromEntries(((c.env ?? []) as Obj[]).map((e) => [e.name as string, e.valueFrom?.fieldRef?.fieldPath === 'status.podIP' ? '127.0.0.1' : String(e.value)]))
  const started: ChildProcess[] = []
  t.teardown(() => { for (const p of started) if (p.exitCode === null) p.kill('SIGKILL') })
  const start = async (argv: string[], env: Record<string, string>): Promise<{ child: ChildProcess, ready: { endpoints: string[], epr: string } }> => {
    const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    started.push(child)
    let err = ''
    child.stderr!.on('data', (c: Buffer) => { err += c.toString() })
    const ready = await new Promise<{ endpoints: string[], epr: string }>((resolve, reject) => {
      let out = ''
      child.stdout!.on('data', (c: Buffer) => { out += c.toString(); const line = out.split('\n').find((l) => l.includes('"ready"')); if (line !== undefined) resolve(JSON.parse(line)) })
      child.on('exit', (code) => { reject(new Error(`exited ${String(code)} before ready: ${err.trim().split('\n').slice(0, 3).join(' | ')}`)) })
    })
    return { child, ready }
  }
  const stop = async (child: ChildProcess): Promise<number | null> => await new Promise((resolve) => { if (child.exitCode !== null) resolve(child.exitCode); else { child.once('exit', (code) => { resolve(code) }); child.kill('SIGTERM') } })
  const freePort = async (): Promise<number> => await new Promise((resolve) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => { resolve(p) }) }) })

  t.test('the pods, started from the manifests', async (t) => {
    if (made.status !== 0) { t.fail(`make-secrets.sh failed: ${made.stderr.trim()}`); return }
    // The discovery proxy first, on lo, on a free port for 8080.
    const proxyPod = pods.get('metaos-discovery-proxy')!
    const pc = (proxyPod.containers as Obj[])[0]!
    const port = await freePort()
    const proxyArgv = commandLine(pc, new Map(), envOf(pc), (a) => a.replace(':8080', `:${port}`).replace(/^eth0$/, 'lo'))
    const proxy = await start(proxyArgv, envOf(pc))
    t.same(proxy.ready.endpoints, [`http://127.0.0.1:${port}/discovery`], 'discovery proxy: serves on $(POD_IP):8080 (here 127.0.0.1, another port)')
    const probe = (): number | null => spawnSync(process.execPath, (pc.readinessProbe.exec.command as string[]).slice(1).map((a) => a.replace(':8080', `:${port}`)), { env: { ...process.env, ...envOf(pc) }, timeout: 20_000 }).status
    t.equal(probe(), 0, 'discovery proxy: its probe passes while it serves')

    for (const name of ['metaos-storage', 'metaos-network']) {
      const pod = pods.get(name)!
      const volumes = podVolumes(pod, join(dir, name))
      // The init container: the policy copied from the Secret's file (mode 0440, refused) to one the domain accepts.
      const init = (pod.initContainers as Obj[])[0]!
      const copy = commandLine(init, volumes, envOf(init))
      const from = copy.at(-2)!
      t.throws(() => loadAccessPolicy(from), { code: 'INVALID_ARGUMENT' }, `${name}: the Secret's auth.json (mode ${(statSync(from).mode & 0o777).toString(8)}) would be refused`)
      t.equal(spawnSync(copy[0]!, copy.slice(1), { timeout: 20_000 }).status, 0, `${name}: init container ${String(init.name)} ran`)
      t.equal(statSync(copy.at(-1)!).mode & 0o777, 0o600, `${name}: its copy is mode 0600`)
      t.same(loadAccessPolicy(copy.at(-1)!).identities, ['k8s-client'], `${name}: and the domain's policy: identity k8s-client`)

      const c = (pod.containers as Obj[])[0]!
      const argv = commandLine(c, volumes, envOf(c), (a) => a.replace(/:8443$/, ':0').replace(/^eth0$/, 'lo'))
      const { child, ready } = await start([argv[0]!, POD_DNS, ...argv.slice(1)], envOf(c))
      const service = name.replace('metaos-', '')
      const https = ready.endpoints.find((e) => e.startsWith('https://'))!
      t.match(https, new RegExp(`^https://127-0-0-1\\.metaos\\.pod\\.cluster\\.local:\\d+/${service}$`), `${name}: listens on, and announces, its pod record (${https})`)
      t.ok(ready.endpoints.includes(`net.uds:${join(volumes.get('run')!, `${service}.sock`)}`), `${name}: and the bus socket ([MC-NMF] sessions)`)
      t.ok(ready.endpoints.includes(`http+unix://${encodeURIComponent(join(volumes.get('run')!, `${service}.http.sock`))}/${service}`), `${name}: and HTTP over a Unix socket beside it`)
      const domainPort = Number(new URL(https).port)
      const peer = await new Promise<{ authorized: boolean, cert: PeerCertificate }>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: domainPort, servername: new URL(https).hostname, ca: tls.ca, cert: tls.cert, key: tls.key }, () => { resolve({ authorized: s.authorized, cert: s.getPeerCertificate() }); s.end() })
        s.on('error', reject)
      })
      t.ok(peer.authorized, `${name}: its certificate chains to metaos-ca and matches ${new URL(https).hostname}`)
      if (service === 'network') t.match(peer.cert.subjectaltname, ready.epr, 'network: one replica, its EPR is the one its certificate names')
      // What the probes' healthcheck asks (docker/healthcheck.mjs picks the HTTP Unix socket of PID 1's command line; PID 1 is not ours here).
      const wsdl = await new Promise<{ status?: number, body: string }>((resolve, reject) => {
        get({ socketPath: join(volumes.get('run')!, `${service}.http.sock`), path: `/${service}?wsdl` }, (res) => { let body = ''; res.on('data', (d: Buffer) => { body += d.toString() }); res.on('end', () => { resolve({ status: res.statusCode, body }) }) }).on('error', reject)
      })
      t.ok(wsdl.status === 200 && /<(\w+:)?definitions[\s>]/.test(wsdl.body), `${name}: the Unix socket the probes ask answers ?wsdl with a WSDL`)

      if (service === 'storage') {
        const data = randomBytes(256 * 1024)
        const dest = createStorageProxy(`https://127.0.0.1:${domainPort}/storage`, { tls })
        const w = await FileStream.open('k8s.bin', { mode: 'Create', access: 'Write', destination: dest })
        await w.write(data)
        await w.close()
        const r = await FileStream.open('k8s.bin', { mode: 'Open', access: 'Read', destination: dest })
        const back = Buffer.alloc(data.length)
        let got = 0
        for (let n; got < back.length && (n = await r.read(back, got)) > 0;) got += n
        await r.close()
        await dest.close?.()
        t.equal(sha(back), sha(data), 'storage: a frontend with metaos-client-tls wrote and read 256 KiB (same SHA-256)')
        t.equal(sha(readFileSync(join(volumes.get('shared')!, 'k8s.bin'))), sha(data), 'storage: in the claim\'s directory')
        const anon = createStorageProxy(`https://127.0.0.1:${domainPort}/storage`, { tls: { ca: tls.ca } })
        await t.rejects(FileStream.open('k8s.bin', { mode: 'Open', access: 'Read', destination: anon }), { code: 'UNAUTHORIZED' }, 'storage: without a client certificate: UNAUTHORIZED')
        await anon.close?.()
        // The proxy heard its Hello (on lo here, on the node's pod network there) and lists it under its pod record.
        const client = new DiscoveryClient({ interfaces: ['lo'] })
        await client.start()
        client.useProxy({ epr: proxy.ready.epr, xaddrs: proxy.ready.endpoints, version: '1.1', types: [], scopes: [], metadataVersion: 1, from: '127.0.0.1', lastSeen: Date.now() } as unknown as DiscoveredTarget)
        let listed: DiscoveredTarget | undefined
        for (let i = 0; i < 40 && listed === undefined; i++) {
          listed = (await client.probe({ types: [STORAGE_DOMAIN_TYPE], timeoutMs: 2000 })).find((d) => d.epr === ready.epr)
          if (listed === undefined) await new Promise((resolve) => setTimeout(resolve, 250))
        }
        await client.close()
        t.ok(listed?.xaddrs.includes(https), `the discovery proxy lists the storage domain as ${https}`)
      }
      t.equal(await stop(child), 0, `${name}: SIGTERM → Bye, drained, exit 0`)
    }
    t.equal(await stop(proxy.child), 0, 'discovery proxy: stopped')
    t.not(probe(), 0, 'discovery proxy: its probe fails once it has stopped')
  })
}
