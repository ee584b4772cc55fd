// METAOS_CONFIG: the documented example loads (its relative paths resolved against its folder);
// every way a file can be wrong is refused with INVALID_CONFIG naming the file and the key; a
// process-wide frontend refuses a broken file, or trust configured twice, before it starts anything.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { configFromEnvironment, coordinationFromEnvironment, loadConfig } from '../../frontend/assembly/configuration.js'
import { closeSharedFrontend, sharedFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { FileStream, MetaosError } from '../../index.js'
import { packageFile } from '../../wsdl/package-root.js'

const dir = mkdtempSync(join(tmpdir(), 'metaos-config-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
writeFileSync(join(dir, 'ca.pem'), PEM)
writeFileSync(join(dir, 'client.pem'), PEM)
writeFileSync(join(dir, 'client-key.pem'), PEM.replaceAll('CERTIFICATE', 'PRIVATE KEY'))
writeFileSync(join(dir, 'not-pem.txt'), 'hello')
writeFileSync(join(dir, 'rules.json'), JSON.stringify({ rules: [{ name: 'big to bulk', when: { minBytes: 1048576 }, choose: { zone: 'bulk' } }] }))
writeFileSync(join(dir, 'bad-rules.json'), JSON.stringify({ rules: [{ name: 'typo', chose: { zone: 'bulk' } }] }))
writeFileSync(join(dir, 'feed.json'), JSON.stringify({ vulnerabilities: [{ id: 'X-1', action: 'lower', affected: [{ kernel: { sysname: 'Linux', ranges: [{ fixed: '1.0' }] } }] }] }))
writeFileSync(join(dir, 'bad-feed.json'), JSON.stringify({ vulnerabilities: [{ id: 'X-2', action: 'ignore', affected: [] }] }))

let n = 0
/** Writes a configuration (a value, or raw text) to a fresh file of `dir`; returns its path. */
function file (doc: unknown): string {
  const p = join(dir, `config-${n++}.json`)
  writeFileSync(p, typeof doc === 'string' ? doc : JSON.stringify(doc))
  return p
}

/** Asserts that loading fails with INVALID_CONFIG, the message naming the file and matching `re`. */
function refused (t: Test, doc: unknown, re: RegExp, what: string): void {
  const p = file(doc)
  try {
    loadConfig(p, { watchFeed: false })
    t.fail(`${what}: accepted`)
  } catch (e) {
    t.ok(e instanceof MetaosError, `${what}: a MetaosError`)
    t.equal((e as MetaosError).code, 'INVALID_CONFIG', `${what}: code INVALID_CONFIG`)
    t.ok((e as Error).message.startsWith(`METAOS_CONFIG ${p}: `), `${what}: the message names the file`)
    t.match((e as Error).message, re, `${what}: ${(e as Error).message.slice(p.length + 16)}`)
  }
}

t.test('the documented example loads, its files resolved against its folder', async (t) => {
  const c = loadConfig(packageFile('docs', 'examples', 'metaos-config.json'), { watchFeed: false })
  t.same(c.rules?.rules.map((r) => r.name), ['files under /scratch stay local', 'kernels in the vulnerability feed are excluded', 'writes over 1 MB prefer a bus domain', 'the local kernel only for scratch'], 'rules from docs/examples/rules.json')
  t.same(c.feed?.vulnerabilities.map((v) => v.id), ['CVE-2024-1086', 'EXAMPLE-NODE-1'], 'feed from docs/examples/vulnerability-feed.json')
  t.equal(c.policy, 'weighted')
  t.equal(c.sharpness, 2)
  t.same(c.exchange, { intervalMs: 10000 })
  t.equal(c.trust, undefined, 'no trust in the example (it needs the operator\'s CA)')
})

t.test('every key, in files and inline', async (t) => {
  const c = loadConfig(file({
    rules: 'rules.json',
    feed: 'feed.json',
    placement: { policy: 'best', sharpness: 3 },
    trust: { ca: 'ca.pem', cert: 'client.pem', key: 'client-key.pem', username: 'app', password: 's3cret', passwordType: 'text', verifyTimeoutMs: 2000, recheckMs: 1500, probePath: 'app/.probe' },
    exchange: { listen: ['http://127.0.0.1:0'], interfaces: ['lo'], intervalMs: 500 },
  }), { watchFeed: false })
  t.same(c.rules?.rules.map((r) => r.name), ['big to bulk'])
  t.same(c.feed?.vulnerabilities.map((v) => v.id), ['X-1'])
  t.same([c.policy, c.sharpness], ['best', 3])
  t.equal(c.trust?.ca.toString(), PEM, 'trust.ca read from the file')
  t.match(c.trust?.key?.toString(), /PRIVATE KEY/, 'trust.key too')
  t.same(c.trust?.credentials, { username: 'app', password: 's3cret', passwordType: 'text' })
  t.same([c.trust?.verifyTimeoutMs, c.trust?.recheckMs, c.trust?.probePath], [2000, 1500, 'app/.probe'])
  t.same(c.exchange, { listen: ['http://127.0.0.1:0'], interfaces: ['lo'], intervalMs: 500 })

  const inline = loadConfig(file({ rules: [{ name: 'inline', avoid: { transport: 'local' } }], feed: [{ id: 'Y-1', action: 'exclude', affected: [{ runtime: { name: 'node', ranges: [{ introduced: '0' }] } }] }], exchange: true }), { watchFeed: false })
  t.same(inline.rules?.rules.map((r) => r.name), ['inline'], 'rules inline')
  t.same(inline.feed?.vulnerabilities.map((v) => v.id), ['Y-1'], 'a feed inline')
  t.same(inline.exchange, {}, 'exchange: true')
  t.same(loadConfig(file({ exchange: false })), { source: `METAOS_CONFIG ${join(dir, `config-${n - 1}.json`)}` }, 'exchange: false is no exchange; an empty configuration is fine')
  const coordinated = loadConfig(file({ coordination: { url: 'etcds://10.0.0.1:2379,10.0.0.2:2379', ca: 'ca.pem', cert: 'client.pem', key: 'client-key.pem', leaseTtlSeconds: 5, prefix: '/prod' } }), { watchFeed: false })
  t.match(coordinated.coordination, { url: 'etcds://10.0.0.1:2379,10.0.0.2:2379', leaseTtlSeconds: 5, prefix: '/prod' }, 'coordination as an object')
  t.equal(coordinated.coordination?.ca?.toString(), PEM, 'coordination.ca read from the file')
  t.same(loadConfig(file({ coordination: 'etcd://127.0.0.1:2379' })).coordination, { url: 'etcd://127.0.0.1:2379' }, 'coordination as a URL')
  t.same(coordinationFromEnvironment({ METAOS_COORDINATION: 'etcd://a:1,b:2' }), { url: 'etcd://a:1,b:2' }, 'METAOS_COORDINATION')
  t.equal(coordinationFromEnvironment({ METAOS_COORDINATION: 'etcds://a:1', METAOS_COORDINATION_CA: join(dir, 'ca.pem') })?.ca?.toString(), PEM, 'METAOS_COORDINATION_CA')
  t.throws(() => coordinationFromEnvironment({ METAOS_COORDINATION: 'etcds://a:1' }), { code: 'INVALID_CONFIG', message: /METAOS_COORDINATION: etcds:\/\/ needs the CA/ }, 'METAOS_COORDINATION etcds:// without METAOS_COORDINATION_CA')
  t.equal(coordinationFromEnvironment({}), undefined, 'no METAOS_COORDINATION, no coordination')
  t.equal(configFromEnvironment({}), undefined, 'no METAOS_CONFIG, no configuration')
  t.equal(configFromEnvironment({ METAOS_CONFIG: '' }), undefined, 'an empty one neither')
})

t.test('each mistake: INVALID_CONFIG naming the key and what it accepts', async (t) => {
  const p = join(dir, 'missing.json')
  t.throws(() => loadConfig(p), { code: 'INVALID_CONFIG', message: `METAOS_CONFIG ${p}: not a readable JSON file (ENOENT)` }, 'a missing file')
  refused(t, '{ "rules": ', /not a readable JSON file \(.*JSON/, 'not JSON')
  refused(t, [], /must hold one JSON object .* not \[\]/, 'not an object')
  refused(t, { rules: 'rules.json', rulez: [] }, /unknown key "rulez" \(accepted: rules, feed, placement, trust, exchange, coordination\)/, 'an unknown key')
  refused(t, { coordination: 'http://127.0.0.1:2379' }, /"coordination": coordination "http:\/\/127\.0\.0\.1:2379" is not etcd:\/\//, 'coordination: not an etcd URL')
  refused(t, { coordination: 42 }, /"coordination" must be an etcd:\/\/HOST:PORT\[,…\] URL, or an object/, 'coordination of another type')
  refused(t, { coordination: { url: 'etcds://127.0.0.1:2379' } }, /"coordination": etcds:\/\/ needs the CA/, 'coordination: etcds:// without a CA')
  refused(t, { coordination: { url: 'etcd://127.0.0.1:2379', ca: 'ca.pem' } }, /"coordination": a CA, certificate or key for coordination needs etcds:\/\//, 'coordination: a CA without etcds://')
  refused(t, { coordination: { url: 'etcds://h:1', ca: 'ca.pem', cert: 'client.pem' } }, /needs its key/, 'coordination: a certificate without its key')
  refused(t, { coordination: { url: 'etcds://h:1', ca: 'nowhere.pem' } }, /"coordination\.ca": .*nowhere\.pem is not readable \(ENOENT\)/, 'coordination: a missing CA file')
  refused(t, { coordination: { url: 'etcd://h:1', leaseTtlSeconds: 0 } }, /"coordination\.leaseTtlSeconds" must be a whole number of seconds from 1 to 3600, not 0/, 'coordination.leaseTtlSeconds')
  refused(t, { coordination: { url: 'etcd://h:1', prefix: 'metaos' } }, /"coordination\.prefix" must be a key prefix/, 'coordination.prefix')
  refused(t, { coordination: { url: 'etcd://h:1', ttl: 3 } }, /unknown key "coordination\.ttl"/, 'coordination: an unknown key')
  refused(t, { rules: 42 }, /"rules" must be a path to a rules file \(docs\/rules\.md\) or a list of rules, not 42/, 'rules of another type')
  refused(t, { rules: '' }, /"rules" must be a path to a file, not ""/, 'rules: an empty path')
  refused(t, { rules: 'nowhere.json' }, /"rules": .*nowhere\.json: not readable JSON/, 'rules: a missing file')
  refused(t, { rules: 'bad-rules.json' }, /"rules": .*bad-rules\.json: rule 1 \("typo"\): unknown field "chose"/, 'rules: a file with a broken rule')
  refused(t, { rules: [{ name: 'x' }] }, /"rules": rule 1 \("x"\): needs one of choose, exclude, prefer, avoid/, 'rules: a broken rule inline')
  refused(t, { feed: { id: 'X' } }, /"feed" must be a path to a vulnerability feed \(a file or a directory.* or a list of vulnerabilities/, 'feed of another type')
  refused(t, { feed: 'bad-feed.json' }, /"feed": .*bad-feed\.json: .*"action" must be exclude or lower/, 'feed: a file with a broken entry')
  refused(t, { feed: [{ action: 'lower' }] }, /"feed": vulnerability 1: "id" is required/, 'feed: a broken entry inline')
  refused(t, { placement: 'weighted' }, /"placement" must be an object \{ "policy"\?: "best" \| "weighted", "sharpness"\?: number \}, not "weighted"/, 'placement not an object')
  refused(t, { placement: { policy: 'fastest' } }, /"placement\.policy" must be "best" or "weighted", not "fastest"/, 'placement.policy')
  refused(t, { placement: { sharpness: -1 } }, /"placement\.sharpness" must be a number above 0, not -1/, 'placement.sharpness')
  refused(t, { placement: { policy: 'best', hangMs: 5 } }, /unknown key "placement\.hangMs" \(accepted: policy, sharpness\)/, 'an unknown key in placement')
  refused(t, { trust: 'ca.pem' }, /"trust" must be an object \{ "ca": path/, 'trust not an object')
  refused(t, { trust: { cert: 'client.pem', key: 'client-key.pem' } }, /"trust\.ca" is required/, 'trust without a CA')
  refused(t, { trust: { ca: 'nowhere.pem' } }, /"trust\.ca": .*nowhere\.pem is not readable \(ENOENT\)/, 'trust.ca missing')
  refused(t, { trust: { ca: 'not-pem.txt' } }, /"trust\.ca": .*not-pem\.txt is not PEM/, 'trust.ca not PEM')
  refused(t, { trust: { ca: 'ca.pem', cert: 'client.pem' } }, /"trust\.cert" and "trust\.key" go together/, 'a certificate without its key')
  refused(t, { trust: { ca: 'ca.pem', username: 'app' } }, /"trust\.username" and "trust\.password" go together/, 'a user without a password')
  refused(t, { trust: { ca: 'ca.pem', username: 'app', password: 7 } }, /"trust\.password" must be a string, not 7/, 'a password that is not a string')
  refused(t, { trust: { ca: 'ca.pem', username: 'a', password: 'b', passwordType: 'plain' } }, /"trust\.passwordType" must be "digest" or "text", not "plain"/, 'trust.passwordType')
  refused(t, { trust: { ca: 'ca.pem', verifyTimeoutMs: 1.5 } }, /"trust\.verifyTimeoutMs" must be a whole number of milliseconds above 0, not 1\.5/, 'trust.verifyTimeoutMs')
  refused(t, { trust: { ca: 'ca.pem', recheckMs: 0 } }, /"trust\.recheckMs" must be a whole number of milliseconds above 0, not 0/, 'trust.recheckMs')
  refused(t, { trust: { ca: 'ca.pem', insecure: true } }, /unknown key "trust\.insecure" \(accepted: ca, cert, key, username, password, passwordType, verifyTimeoutMs, recheckMs, probePath\)/, 'an unknown key in trust')
  refused(t, { exchange: 'on' }, /"exchange" must be true, false, or an object/, 'exchange of another type')
  refused(t, { exchange: { listen: 'http://127.0.0.1:0' } }, /"exchange\.listen" must be a non-empty list of strings/, 'exchange.listen not a list')
  refused(t, { exchange: { listen: ['tcp://127.0.0.1:9'] } }, /"exchange\.listen" must be endpoints such as "http:\/\/127\.0\.0\.1:0" or "unix:\/path\.sock"/, 'exchange.listen not an endpoint')
  refused(t, { exchange: { interfaces: [] } }, /"exchange\.interfaces" must be a non-empty list of strings, not \[\]/, 'exchange.interfaces empty')
  refused(t, { exchange: { intervalMs: '10s' } }, /"exchange\.intervalMs" must be a whole number of milliseconds above 0, not "10s"/, 'exchange.intervalMs')
  refused(t, { exchange: { peers: [] } }, /unknown key "exchange\.peers" \(accepted: listen, interfaces, intervalMs\)/, 'an unknown key in exchange')
})

t.test('the process-wide frontend refuses a broken file and trust given twice, before starting anything', async (t) => {
  const saved = { ...process.env }
  t.teardown(async () => {
    for (const k of ['METAOS_CONFIG', 'METAOS_TRUST_CA']) { if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k] }
    await closeSharedFrontend()
  })
  process.env.METAOS_CONFIG = file({ placement: { policy: 'random' } })
  await t.rejects(sharedFrontend(), { code: 'INVALID_CONFIG', message: /"placement\.policy" must be "best" or "weighted", not "random"/ }, 'sharedFrontend()')
  await t.rejects(FileStream.open('x', { mode: 'Create', destination: 'discover' }), { code: 'INVALID_CONFIG' }, 'FileStream.open with destination discover')
  process.env.METAOS_CONFIG = file({ trust: { ca: 'ca.pem' } })
  process.env.METAOS_TRUST_CA = join(dir, 'ca.pem')
  await t.rejects(sharedFrontend(), { code: 'INVALID_CONFIG', message: /"trust" and METAOS_TRUST_CA both configure trusted discovery: keep one/ }, 'trust from the file and from METAOS_TRUST_CA')
})
