// `metaos up --feed FILE` and METAOS_CONFIG as a real process (the compiled CLI, dist/): a broken
// feed or configuration is a usage error (exit 2, the reason on stderr); a feed that lowers every
// domain is in force — it says so, per domain — and the demonstration still runs to identical
// bytes; --feed wins over the file's feed while the file's rules and policy apply.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'metaos-up-feed-'))
t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
// A TMPDIR of this file's own: `metaos up` records where its status is in $TMPDIR.
const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent', TMPDIR: dir }
delete ENV.METAOS_CONFIG

async function up (args: string[], env: NodeJS.ProcessEnv = ENV): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, 'up', ...args], { env, timeout: 60_000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const x = e as { code?: number, stdout?: string, stderr?: string }
    return { code: x.code ?? -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' }
  }
}

const lowerNode = (id: string): string => JSON.stringify({ vulnerabilities: [{ id, action: 'lower', affected: [{ runtime: { name: 'node', ranges: [{ introduced: '0' }] } }] }] })
writeFileSync(join(dir, 'feed.json'), lowerNode('TEST-FLAG'))
writeFileSync(join(dir, 'file-feed.json'), lowerNode('TEST-FILE'))
writeFileSync(join(dir, 'broken-feed.json'), JSON.stringify({ vulnerabilities: [{ id: 'X', action: 'maybe', affected: [] }] }))
writeFileSync(join(dir, 'rules.json'), JSON.stringify({ rules: [{ name: 'avoid the bus', avoid: { transport: 'bus' } }] }))
writeFileSync(join(dir, 'metaos.json'), JSON.stringify({ rules: 'rules.json', feed: 'file-feed.json', placement: { policy: 'weighted' } }))
writeFileSync(join(dir, 'broken.json'), JSON.stringify({ placement: { policy: 'fastest' } }))

t.test('a feed or configuration that cannot be used: exit 2, saying why', async (t) => {
  const missing = await up(['--once', '--feed', join(dir, 'nowhere.json')])
  t.equal(missing.code, 2, '--feed of a missing file: exit 2')
  t.match(missing.stderr, /^metaos up: --feed takes a vulnerability feed .*; got ".*nowhere\.json" \(no such file\)$/m)
  const broken = await up(['--once', '--feed', join(dir, 'broken-feed.json')])
  t.equal(broken.code, 2, '--feed of a broken feed: exit 2')
  t.match(broken.stderr, /^metaos up: --feed takes a vulnerability feed .*; got ".*broken-feed\.json" \(.*X: "action" must be exclude or lower.*\)$/m)
  const config = await up(['--once'], { ...ENV, METAOS_CONFIG: join(dir, 'broken.json') })
  t.equal(config.code, 2, 'a broken METAOS_CONFIG: exit 2')
  t.match(config.stderr, /^metaos up: METAOS_CONFIG .*broken\.json: "placement\.policy" must be "best" or "weighted", not "fastest"/m)
  t.notMatch(missing.stdout + broken.stdout + config.stdout, /starting two storage domains/, 'nothing was started')
})

t.test('--feed in force over METAOS_CONFIG\'s, with the file\'s rules and policy', async (t) => {
  const r = await up(['--once', '--size', '1', '--feed', join(dir, 'feed.json')], { ...ENV, METAOS_CONFIG: join(dir, 'metaos.json') })
  t.equal(r.code, 0, `exit 0 (stderr: ${r.stderr.slice(-300)})`)
  t.match(r.stdout, new RegExp(`^Placement: 1 rule \\(METAOS_CONFIG\\), a vulnerability feed of 1 entry \\(--feed\\), policy weighted; METAOS_CONFIG ${join(dir, 'metaos.json')}$`, 'm'), 'what is in force, and where from')
  t.match(r.stdout, /^Vulnerability feed: bus-domain TEST-FLAG \(lower\); net-domain TEST-FLAG \(lower\)$/m, 'the --feed file, not the configuration\'s, lowers both domains')
  t.notMatch(r.stdout, /TEST-FILE/, 'the configuration\'s feed is not used')
  for (const d of ['local', 'bus', 'network']) t.match(r.stdout, new RegExp(`^${d} .* identical$`, 'm'), `${d}: bytes identical`)
  t.match(r.stdout, /^Live migration: .* bytes identical\.$/m, 'the dispatcher with the feed still moves a live stream')
})
