// The assembled frontend: discovered domains are tracked in the PMT with the identity their scopes
// announce, a FileStream to `discover` is placed by the dispatcher on a domain of the requested
// volume, and a domain's Bye takes it out of the table.
import { isolateNetwork } from '../helpers/netns.js'
await isolateNetwork()

import t from 'tap'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'
import { release } from 'node:os'
import { join } from 'node:path'
import { spawnDomain } from '../../domains/domain-process.js'
import { sharedFrontend, closeSharedFrontend } from '../../frontend/assembly/intelligent-frontend.js'
import { FileStream, closeSharedProxies } from '../../index.js'
import { closeStorageRegistry } from '../../frontend/index.js'
import { PerformanceMappingTable } from '../../frontend/placement/pmt.js'
import { PmtExchange } from '../../frontend/placement/pmt-exchange.js'
import { randomUUID } from 'node:crypto'
import { partMissing } from '../helpers/require-part.js'
import { tempDir } from '../helpers/temp-dir.js'
import { serveFrontendDashboard } from '../../dashboard/frontend-dashboard.js'

const CHROMIUM = '/usr/bin/chromium'

t.test('discover → PMT → dispatcher → FileStream', async (t) => {
  const dir = tempDir(t, 'metaos-front-')
  for (const v of ['red', 'blue']) mkdirSync(join(dir, v))
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const red = await spawnDomain(['storage', '--root', join(dir, 'red'), '--volume', 'red', '--zone', 'z1', '--sla', '0.9', '--cost-per-call', '0.5', '--listen', 'http://127.0.0.1:0', '--announce'], { env })
  t.teardown(async () => { await red.stop() })
  const blue = await spawnDomain(['storage', '--root', join(dir, 'blue'), '--volume', 'blue', '--listen', `unix:${join(dir, 'blue.sock')}`, '--announce'], { env })
  t.teardown(async () => { await blue.stop(); await closeSharedFrontend(); await closeSharedProxies(); await closeStorageRegistry() })

  const f = await FileStream.open('hello.txt', { mode: 'Create', destination: 'discover', volume: 'blue' })
  await f.write(Buffer.from('blue volume'))
  await f.close()
  t.equal(readFileSync(join(dir, 'blue', 'hello.txt'), 'utf8'), 'blue volume', 'placed on the domain of the requested volume')

  const front = await sharedFrontend()
  for (let i = 0; i < 50 && front.pmt.row(red.ready.epr) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const row = front.pmt.row(red.ready.epr)!
  t.equal(row.identity.volume, 'red', 'identity from the announced scopes: volume')
  t.equal(row.identity.zone, 'z1', 'zone')
  t.equal(row.identity.kernel.release, release(), 'kernel release')
  t.equal(row.identity.hosting, 'process', 'hosting')
  t.equal(row.sla, 0.9, 'SLA declared in the scopes')
  t.equal(row.costPerCall, 0.5, 'cost declared in the scopes')
  t.equal(front.pmt.row(blue.ready.epr)!.sla, 0.5, 'the default SLA when none is declared')

  // Measures are shared with the other performance modules discovered (here: a bare exchange).
  await front.perf.probe(red.ready.epr)
  const x = await front.shareMeasures({ intervalMs: 200 })
  const peerPmt = new PerformanceMappingTable()
  const peer = new PmtExchange({ pmt: peerPmt, moduleId: `urn:uuid:${randomUUID()}` })
  t.teardown(async () => { await peer.close() })
  await peer.serve(['http://127.0.0.1:0'])
  await peer.join({ intervalMs: 200 })
  for (let i = 0; i < 100 && peerPmt.row(red.ready.epr) === undefined; i++) await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(peerPmt.row(red.ready.epr)?.identity.volume, 'red', 'another module learnt the frontend\'s measure of red')
  t.ok(x.peers.length >= 1, 'and the frontend knows that module')
  t.ok(front.pmt.row(blue.ready.epr)!.measures.calls >= 3, 'the stream\'s calls were measured')

  // The application's own frontend serves the dashboard and its metrics when asked.
  const page = await serveFrontendDashboard(front)
  const base = page.replace(/\/$/, '')
  const st = await (await fetch(`${base}/status`)).json() as { title: string, domains: Array<{ epr: string, volume: string, hosting: string }>, lifecycle: Array<{ epr: string, kind: string }> }
  t.equal(st.title, 'frontend', 'its status says what serves it')
  t.same(st.domains.map((d) => [d.epr, d.volume, d.hosting]).sort(), [[red.ready.epr, 'red', 'process'], [blue.ready.epr, 'blue', 'process']].sort(), 'the discovered domains, their volumes and hosting')
  t.ok(st.lifecycle.some((e) => e.epr === red.ready.epr && e.kind === 'discovered'), 'and when each was discovered')
  await front.perf.probe(red.ready.epr) // metrics count from when the dashboard is served
  t.match(await (await fetch(`${base}/metrics`)).text(), new RegExp(`metaos_frontend_probes_total\\{epr="${red.ready.epr}",result="success"\\} [1-9]`), 'its /metrics counts the probes of red')
  let browser: Browser | undefined
  const noChromium = existsSync(CHROMIUM) ? false : partMissing('Chromium', `${CHROMIUM} does not exist: the page itself is not opened`, 'apt-get install chromium')
  if (noChromium === false) {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
    t.teardown(async () => { await browser?.close() })
    const tab = await browser.newPage()
    const errors: string[] = []
    tab.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text()) })
    tab.on('pageerror', (e) => { errors.push(e.message) })
    await tab.goto(page)
    await tab.locator('#domains tbody tr').nth(1).waitFor({ timeout: 10_000 })
    t.same((await tab.locator('#domains tbody tr').allTextContents()).length, 2, 'the page (Chromium) lists both domains')
    t.match(await tab.locator('#summary').textContent(), /frontend pid \d+/, 'and says it is this frontend')
    t.same(errors, [], 'with no console error')
  } else t.pass('the page (Chromium) lists both domains', { skip: noChromium })

  await blue.stop()
  for (let i = 0; i < 50 && front.handlers.has(blue.ready.epr); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(front.handlers.has(blue.ready.epr), 'after its Bye the domain leaves the dispatcher')
  const gone = await (await fetch(`${base}/status`)).json() as { lifecycle: Array<{ epr: string, kind: string, detail: string }> }
  t.ok(gone.lifecycle.some((e) => e.epr === blue.ready.epr && e.kind === 'gone' && /Bye/.test(e.detail)), 'the status records that it left, and why')
  t.equal(front.pmt.row(blue.ready.epr), undefined, 'and the table')
  t.throws(() => front.dispatcherFor('blue').place(), { code: 'NO_ELIGIBLE_DOMAIN' }, 'no domain of that volume is left')
})

t.test('a Bye moves the streams of the leaving domain to another of their volume', async (t) => {
  const dir = tempDir(t, 'metaos-front-bye-')
  mkdirSync(join(dir, 'green'))
  const env = { ...process.env, METAOS_LOG_LEVEL: 'silent' }
  const args = (name: string): string[] => ['storage', '--root', join(dir, 'green'), '--volume', 'green', '--name', name, '--listen', 'http://127.0.0.1:0', '--announce']
  const g1 = await spawnDomain(args('g1'), { env })
  t.teardown(async () => { await g1.stop() })
  const g2 = await spawnDomain(args('g2'), { env })
  t.teardown(async () => { await g2.stop(); await closeSharedFrontend(); await closeSharedProxies(); await closeStorageRegistry() })
  const front = await sharedFrontend()
  for (let i = 0; i < 100 && !(front.handlers.has(g1.ready.epr) && front.handlers.has(g2.ready.epr)); i++) await new Promise((resolve) => setTimeout(resolve, 50))
  const f = await FileStream.open('moving.txt', { mode: 'Create', destination: 'discover', volume: 'green' })
  await f.write(Buffer.from('first half, '))
  await f.flush()
  const d = front.dispatcherFor('green')
  const first = d.affinity.entries()[0]!.epr
  const leaving = first === g1.ready.epr ? g1 : g2
  await leaving.stop() // SIGTERM: Bye, then drain
  for (let i = 0; i < 100 && d.affinity.entries()[0]!.epr === first; i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.not(d.affinity.entries()[0]!.epr, first, 'the stream moved when its domain said Bye')
  await f.write(Buffer.from('second half'))
  await f.close()
  t.equal(readFileSync(join(dir, 'green', 'moving.txt'), 'utf8'), 'first half, second half', 'and went on where it was')
  t.ok(d.moves.some((m) => m.kind === 'migration' && m.reason === 'the domain said Bye'), 'a migration, with its reason')
})
