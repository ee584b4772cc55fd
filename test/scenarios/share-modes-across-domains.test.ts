// Share modes across the domains of one volume (issue 20): a real 3-member etcd cluster, two
// storage domains of one volume (`metaos storage --coordination` child processes over one shared
// directory) and two applications — this test, and a second Node process. A FileShare.None open
// through domain A makes an open of the same file through domain B fail with SHARING_VIOLATION,
// and the other way round; once the domain holding the open is killed (SIGKILL, no Close), its
// registration goes with its lease and the open through the other domain succeeds within TTL + 1 s.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { FileStream, closeAll } from '../../index.js'
import { spawnDomain, type DomainProcess } from '../../domains/domain-process.js'
import { packageFile } from '../../wsdl/package-root.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { etcdMissing, startEtcdCluster } from '../helpers/etcd-cluster.js'
import { tempDir } from '../helpers/temp-dir.js'

const missing = etcdMissing()
if (missing !== undefined) t.plan(0, missing)

const TTL_S = 3

/** The second application: another Node process opens `path` through `endpoint` and says what happened (ok or the error code). */
function otherApplication (endpoint: string, path: string, share: string): string {
  const script = `import { FileStream } from ${JSON.stringify(packageFile('dist', 'index.js'))}
try { const f = await FileStream.open(${JSON.stringify(path)}, { mode: 'Open', access: 'ReadWrite', share: ${JSON.stringify(share)}, destination: ${JSON.stringify(endpoint)} }); await f.close(); console.log('ok') } catch (e) { console.log(e.code ?? e.message) }
process.exit(0)`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, METAOS_LOG_LEVEL: 'silent' } })
  return r.stdout.trim() || `exit ${r.status}: ${r.stderr.slice(-500)}`
}

async function openCode (endpoint: string, path: string, share: 'None' | 'ReadWrite'): Promise<string> {
  try {
    const f = await FileStream.open(path, { mode: 'Open', access: 'ReadWrite', share, destination: endpoint })
    await f.close()
    return 'ok'
  } catch (e) {
    return e instanceof MetaosError ? e.code : String(e)
  }
}

t.test('two domains of one volume, two applications', async (t) => {
  const cluster = await startEtcdCluster(t)
  const root = join(tempDir(t, 'metaos-shares-'), 'volume')
  mkdirSync(root)
  writeFileSync(join(root, 'doc.txt'), 'shared')
  const domains: DomainProcess[] = []
  t.teardown(async () => { await closeAll(); for (const d of domains) await d.stop(2000) })
  const start = async (name: string): Promise<DomainProcess> => {
    const d = await spawnDomain(['storage', '--root', root, '--volume', 'shared', '--name', name, '--coordination', cluster.url, '--log-level', 'warn'])
    domains.push(d)
    return d
  }
  const a = await start('a')
  const b = await start('b')
  const [ea, eb] = [a.ready.endpoints[0]!, b.ready.endpoints[0]!]
  t.not(a.ready.epr, b.ready.epr, 'two domains')

  const held = await FileStream.open('doc.txt', { mode: 'Open', access: 'ReadWrite', share: 'None', destination: ea })
  t.equal(otherApplication(eb, 'doc.txt', 'ReadWrite'), 'SHARING_VIOLATION', 'FileShare.None through A: the other application\'s open through B is refused')
  t.equal(otherApplication(ea, 'doc.txt', 'ReadWrite'), 'SHARING_VIOLATION', 'and through A itself (the local check)')
  await held.close()
  t.equal(otherApplication(eb, 'doc.txt', 'ReadWrite'), 'ok', 'closed: the open through B works')

  const heldB = await FileStream.open('doc.txt', { mode: 'Open', access: 'Read', share: 'Read', destination: eb })
  t.equal(otherApplication(ea, 'doc.txt', 'Read'), 'SHARING_VIOLATION', 'the other direction: a writer through A while a reader through B shares only Read')
  await heldB.close()

  // The holder dies without closing: its registration goes with its lease.
  const holder = await FileStream.open('doc.txt', { mode: 'Open', access: 'ReadWrite', share: 'None', destination: ea })
  t.equal(await openCode(eb, 'doc.txt', 'ReadWrite'), 'SHARING_VIOLATION', 'held through A')
  const exited = new Promise((resolve) => a.child.once('exit', resolve))
  a.child.kill('SIGKILL')
  await exited
  const killedAt = performance.now()
  let code = ''
  let took = 0
  while ((took = performance.now() - killedAt) < (TTL_S + 1) * 1000) {
    code = await openCode(eb, 'doc.txt', 'ReadWrite')
    if (code === 'ok') break
    await sleep(100)
  }
  t.equal(code, 'ok', `the open through B succeeds within TTL + 1 s of A's SIGKILL (after ${Math.round(took)} ms)`)
  void holder.close().catch(() => {})
})
