// `import { FileStream } from 'metaos'` loads only what a stream needs: at most 25 of the package's
// modules, none of the frontend's discovery, placement or supervision, no service host, no domain;
// the local kernel is loaded by the first 'local' stream, the frontend by the first 'discover'.
// Each count is a fresh process (docs/tools/module-count.ts; `node dist/docs/tools/module-count.js`
// prints them). Needs the build (npm test builds first).
import t from 'tap'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { countModules, packageEntries } from '../../docs/tools/module-count.js'
import { packageFile } from '../../wsdl/package-root.js'
import { tempDir } from '../helpers/temp-dir.js'

const MAX = 25
/** What a stream never loads by itself: the intelligent frontend, discovery, the service side. */
// The in-process runner of a service's operation table (service-domain/in-process.js, with the
// domain facts GetDomainInfo answers) is what a local stream runs: light, and no host.
const HEAVY = /^(frontend\/(assembly|placement)\/|discovery\/|domains\/|service-domain\/(?!in-process\.js|domain-facts\.js)|backend-network\/|vm\/|dashboard\/|soap-runtime\/service-host\.js)/

t.before(() => {
  if (!existsSync(packageFile('dist', 'docs', 'tools', 'module-loads.js'))) throw new Error('dist/ is not built: run npx tsc -p tsconfig.json (npm test does)')
})

t.test(`import { FileStream } from 'metaos' loads at most ${MAX} of the package's modules`, async (t) => {
  for (const entry of ['metaos', 'frontend/api/file-stream.js']) {
    const c = await countModules(entry)
    t.ok(c.count <= MAX, `${entry}: ${c.count} modules (at most ${MAX})`, c.count <= MAX ? {} : { modules: c.modules })
    t.same(c.modules.filter((m) => HEAVY.test(m)), [], `${entry}: nothing of the frontend's discovery, placement, supervision, service host or domains`)
    t.notOk(c.modules.includes('backend-storage/storage-engine.js'), `${entry}: the local kernel's engine waits for the first 'local' stream`)
  }
})

t.test('a first local stream loads the local kernel, and still no frontend', async (t) => {
  const file = join(tempDir(t, 'metaos-module-count-'), 'local.bin')
  const c = await countModules('metaos', { run: `const f = await m.FileStream.open(${JSON.stringify(file)}, { mode: 'Create', exceptionLess: true }); await f.write(Buffer.from('x')); await f.close(); await m.closeAll()` })
  t.ok(existsSync(file), 'the stream wrote its file')
  t.ok(c.modules.includes('frontend/handlers/local-handler.js'), 'the local handler is loaded by the stream')
  t.ok(c.modules.includes('frontend/api/write-pipeline.js'), 'the exception-less writer by the stream that asked for it')
  t.same(c.modules.filter((m) => HEAVY.test(m)), [], 'no frontend, discovery or service host')
})

t.test('a NetSocket to the local kernel loads its engine then, not before', async (t) => {
  const before = await countModules('metaos')
  t.notOk(before.modules.some((m) => m.startsWith('backend-network/')), 'importing NetSocket loads no network engine')
  const c = await countModules('metaos', {
    run: `const net = await import('node:net'); const srv = net.createServer((s) => s.end('ok')); await new Promise((r) => srv.listen(0, '127.0.0.1', r));
      const s = m.NetSocket.connect({ host: '127.0.0.1', port: srv.address().port }); let got = ''; for await (const d of s) got += d; if (got !== 'ok') throw new Error(got); srv.close(); await m.closeAll()`,
  })
  t.ok(c.modules.includes('backend-network/network-engine.js'), 'the first local socket loads the network engine')
  t.same(c.modules.filter((m) => /^(frontend\/(assembly|placement)\/|discovery\/)/.test(m)), [], 'and no frontend or discovery')
})

t.test('every entry of package.json "exports" imports in a fresh process', async (t) => {
  for (const entry of packageEntries().keys()) {
    const c = await countModules(entry)
    t.ok(c.count > 0, `${entry}: ${c.count} modules`)
  }
})

// A domain's resident heap is where V8's old generation starts: once it passes 8 MB, with the young
// generation grown under load, V8 runs a full mark-compact every few MB allocated (a storage domain
// that loaded WS-Discovery, the discovery proxy's client, the placement and the network contract for
// nothing spent ~10% more CPU per 64 KiB Write). What a domain runs only on request waits for it.
const NOT_FOR_A_QUIET_DOMAIN = /^(discovery\/(soap-udp|target-service|proxy-client|messages)\.js|frontend\/|wsdl\/(network-contract|generated\/network-service)\.js)/

t.test('a storage domain that does not announce loads no WS-Discovery, discovery proxy client, placement or network contract', async (t) => {
  const c = await countModules('cli/storage-command.js')
  t.ok(c.modules.includes('backend-storage/storage-domain.js'), 'the storage domain is loaded')
  t.same(c.modules.filter((m) => NOT_FOR_A_QUIET_DOMAIN.test(m)), [], 'nothing it runs only when announcing, nor the frontend or the network contract')
})
