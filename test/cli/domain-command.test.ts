// `metaos domain` against a real `metaos up` child process (process domains, no Docker): list;
// pause (a FileStream call to the paused domain stalls, and completes with the right bytes on
// resume); stop and start; restart; clone (a new domain of the same volume, in the list and the
// PMT); resize (applied through cgroups, or refused NOT_SUPPORTED where the host has none); migrate
// (a process domain: clone + stream migration + stop, said as such); the
// control endpoint without or with a wrong token (401, nothing changes); every action on the
// supervisor timeline with who asked; bad usage (exit 2); unknown domains and states (exit 1).
import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { FileStream } from '../../frontend/api/file-stream.js'
import { closeSharedProxies } from '../../frontend/handlers/storage-proxy.js'
import { tempDir } from '../helpers/temp-dir.js'

const CLI = fileURLToPath(new URL('../../dist/cli/metaos.js', import.meta.url))
// A TMPDIR of this file's own: `metaos up` records where it answers (and its token) in $TMPDIR.
const ENV = { ...process.env, METAOS_LOG_LEVEL: 'silent', TMPDIR: tempDir(t, 'metaos-domain-test-') }
const run = promisify(execFile)

interface Out { code: number, stdout: string, stderr: string }

async function metaos (args: string[], env = ENV): Promise<Out> {
  try {
    const r = await run(process.execPath, [CLI, ...args], { env, timeout: 90_000 })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    const x = e as { code?: number, stdout?: string, stderr?: string }
    return { code: typeof x.code === 'number' ? x.code : -1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' }
  }
}

interface View { name: string, epr: string, state: string, pmtState?: string, pid: number, restarts: number, endpoints: string[], volume?: string, limits?: { applied: boolean, mechanism: string } }
interface Decision { epr: string, action?: string, by?: string, reason: string, at: number }

async function list (t: Test): Promise<Map<string, View>> {
  const r = await metaos(['domain', 'list', '--json'])
  t.equal(r.code, 0, 'metaos domain list --json exits 0', { stderr: r.stderr })
  return new Map((JSON.parse(r.stdout) as { domains: View[] }).domains.map((d) => [d.name, d]))
}

async function act (t: Test, args: string[]): Promise<{ domain: View, decision: Decision }> {
  const r = await metaos(['domain', ...args, '--json'])
  t.equal(r.code, 0, `metaos domain ${args.join(' ')} exits 0`, { stderr: r.stderr })
  return JSON.parse(r.stdout) as { domain: View, decision: Decision }
}

const state = (pid: number): string => /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?'
const alive = (pid: number): boolean => { try { process.kill(pid, 0); return true } catch { return false } }
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

t.test('bad usage: one line, exit 2; no running `metaos up`: exit 1, NO_METAOS_UP', async (t) => {
  for (const [args, says] of [
    [['domain'], 'an action is required'],
    [['domain', 'frob'], 'unknown action "frob"'],
    [['domain', 'stop'], 'needs the domain\'s NAME'],
    [['domain', 'stop', 'a', 'b'], 'unexpected argument "b"'],
    [['domain', 'list', 'a'], 'unexpected argument "a"'],
    [['domain', 'resize', 'a'], 'resize needs --cpus N, --memory SIZE, or both'],
    [['domain', 'stop', 'a', '--cpus', '1'], '--cpus and --memory are for resize'],
    [['domain', 'resize', 'a', '--cpus', '-1'], '--cpus takes a number of CPUs above 0'],
    [['domain', 'migrate'], 'needs the domain\'s NAME'],
    [['domain', 'migrate', 'a', 'b', 'c'], 'unexpected argument "c"'],
  ] as const) {
    const r = await metaos([...args])
    t.equal(r.code, 2, `metaos ${args.join(' ')} → exit 2`)
    t.match(r.stderr, new RegExp(`^metaos domain: .*${says.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*\n$`), says)
  }
  const none = await metaos(['domain', 'list', '--json'], { ...ENV, TMPDIR: tempDir(t, 'metaos-domain-none-') })
  t.equal(none.code, 1, 'no running metaos up → exit 1')
  t.equal((JSON.parse(none.stdout) as { error: { code: string } }).error.code, 'NO_METAOS_UP')
  t.match(none.stderr, /^metaos domain: NO_METAOS_UP: no running `metaos up` found/)
})

t.test('against a running metaos up', async (t) => {
  const child = spawn(process.execPath, [CLI, 'up', '--size', '1'], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stderr.resume()
  const exited = new Promise<number | null>((resolve) => { child.once('exit', (code) => { resolve(code) }) })
  t.teardown(async () => {
    await closeSharedProxies()
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGINT'); await exited }
  })
  await new Promise<void>((resolve, reject) => {
    // The dashboard line with the token is the last of the block: wait for it, not for the token's line.
    child.stdout.on('data', (c: string) => { out += c; if (/^Dashboard with the domain actions: .*\n/m.test(out)) resolve() })
    void exited.then((code) => { reject(new Error(`metaos up exited (${code}) before it printed its token: ${out}`)) })
  })
  const token = /^Control token .*: (\S+)/m.exec(out)![1]!
  const base = /^Dashboard: (http:\/\/127\.0\.0\.1:\d+)\/$/m.exec(out)![1]!
  const volume = /^metaos up: starting two storage domains over (\S+)$/m.exec(out)![1]!
  t.match(token, /^[A-Za-z0-9_-]{32}$/, 'it prints a random token')
  const recorded = join(ENV.TMPDIR, `metaos-up-${process.getuid!()}.json`)
  t.equal((JSON.parse(readFileSync(recorded, 'utf8')) as { token: string }).token, token, 'and records it where metaos domain finds it')
  t.equal(statSync(recorded).mode & 0o777, 0o600, 'in a 0600 file')

  t.match(out, new RegExp(`^Dashboard with the domain actions: ${base}/#token=${token}$`, 'm'), 'the dashboard URL that carries the token (in the fragment: never sent to the server)')
  const page = await (await fetch(`${base}/`)).text()
  t.match(page, /<section id="actions-panel" class="wide" hidden>/, 'the page\'s actions panel, hidden until it has the token')
  const script = await (await fetch(`${base}/actions.js`)).text()
  t.match(script, /authorization: `Bearer \$\{t\}`/, 'its buttons send the token')

  const before = await list(t)
  t.same([...before.keys()].sort(), ['bus-domain', 'net-domain', 'net-gateway'], 'list: the two storage domains and the network gateway')
  t.ok([...before.values()].every((d) => d.state === 'running' && alive(d.pid)), 'all running')
  const human = await metaos(['domain', 'list'])
  t.match(human.stdout, /^ {2}name\s+service\s+state\s+PMT state\s+pid\s+restarts\s+limits\s+endpoint$/m, 'list: a table for people')

  t.test('no token, a wrong token: 401, nothing changes', async (t) => {
    const net = before.get('net-domain')!
    for (const auth of [undefined, 'Bearer wrong-token', `Basic ${token}`]) {
      const r = await fetch(`${base}/api/domains/net-domain/stop`, { method: 'POST', headers: { 'content-type': 'application/json', ...(auth === undefined ? {} : { authorization: auth }) }, body: '{"by":"intruder"}' })
      t.equal(r.status, 401, `POST stop with ${auth === undefined ? 'no token' : auth.split(' ')[0] + ' and a wrong token'} → 401`)
      t.equal(((await r.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED')
    }
    t.equal((await fetch(`${base}/api/domains`)).status, 401, 'GET /api/domains without the token → 401')
    const wrong = await metaos(['domain', 'list', '--token', 'nope'])
    t.equal(wrong.code, 1, 'metaos domain with a wrong --token → exit 1')
    t.match(wrong.stderr, /UNAUTHORIZED/)
    const after = (await list(t)).get('net-domain')!
    t.equal(after.state, 'running', 'net-domain still running')
    t.equal(after.pid, net.pid, 'the same process')
    const st = JSON.parse((await metaos(['status', '--json'])).stdout) as { decisions: Decision[] }
    t.notOk(st.decisions.some((d) => d.by === 'intruder' || d.action !== undefined), 'nothing on the timeline')
  })

  t.test('bad requests with the token: a clear refusal, the server serves on', async (t) => {
    const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const frob = await fetch(`${base}/api/domains/bus-domain/frob`, { method: 'POST', headers: auth, body: '{}' })
    t.equal(frob.status, 404, 'an unknown action → 404')
    t.equal(((await frob.json()) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT')
    const bad = await fetch(`${base}/api/domains/bus-domain/pause`, { method: 'POST', headers: auth, body: '{not json' })
    t.equal(bad.status, 400, 'a malformed body → 400')
    t.equal(((await bad.json()) as { error: { code: string } }).error.code, 'INVALID_ARGUMENT')
    t.equal((await list(t)).get('bus-domain')!.state, 'running', 'nothing changed')
  })

  t.test('pause: a call to the domain stalls; resume: it completes, bytes right', async (t) => {
    const bus = before.get('bus-domain')!
    const data = randomBytes(256 * 1024)
    const w = await FileStream.open('paused.bin', { mode: 'Create', access: 'Write', destination: bus.endpoints[0]!, bufferSize: 4096 })
    await w.write(data, 0, 64 * 1024)
    const paused = await act(t, ['pause', 'bus-domain'])
    t.equal(paused.domain.state, 'paused')
    t.equal(paused.domain.pmtState, 'isolated', 'isolated first (its streams moved), so nothing new is placed there')
    t.equal(state(bus.pid), 'T', 'the process is stopped (SIGSTOP)')
    let settled = false
    const pending = w.write(data, 64 * 1024, data.length - 64 * 1024).finally(() => { settled = true })
    await new Promise((resolve) => setImmediate(resolve))
    t.equal(settled, false, 'a write to the paused domain has not completed')
    const again = await metaos(['domain', 'pause', 'bus-domain', '--json'])
    t.equal(again.code, 1, 'pausing a paused domain → exit 1')
    t.equal((JSON.parse(again.stdout) as { error: { code: string } }).error.code, 'INVALID_STATE')
    const resumed = await act(t, ['resume', 'bus-domain'])
    t.equal(resumed.domain.state, 'running')
    await pending
    await w.close()
    t.equal(sha(readFileSync(join(volume, 'paused.bin'))), sha(data), 'the stalled write completed: the bytes are right')
    t.equal(resumed.domain.pid, bus.pid, 'the same process')
  })

  t.test('stop, start: the same EPR and address, a new process', async (t) => {
    const net = before.get('net-domain')!
    const stopped = await act(t, ['stop', 'net-domain'])
    t.equal(stopped.domain.state, 'stopped')
    t.notOk(alive(net.pid), 'its process is gone')
    t.equal((await list(t)).get('net-domain')!.state, 'stopped', 'and it stays stopped: the supervisor does not restart it')
    const started = await act(t, ['start', 'net-domain'])
    t.equal(started.domain.state, 'running')
    t.equal(started.domain.epr, net.epr, 'same EPR')
    t.same(started.domain.endpoints, net.endpoints, 'same address')
    t.not(started.domain.pid, net.pid, 'a new process')
    const twice = await metaos(['domain', 'start', 'net-domain'])
    t.equal(twice.code, 1, 'starting a running domain → exit 1')
    t.match(twice.stderr, /^metaos domain: INVALID_STATE: domain "net-domain" is running/)
  })

  t.test('restart: a new process, the same EPR and address', async (t) => {
    const bus = (await list(t)).get('bus-domain')!
    const r = await act(t, ['restart', 'bus-domain'])
    t.equal(r.domain.state, 'running')
    t.equal(r.domain.restarts, bus.restarts + 1)
    t.not(r.domain.pid, bus.pid)
    t.same(r.domain.endpoints, bus.endpoints)
  })

  t.test('clone: a new domain of the same volume, in the list and the PMT', async (t) => {
    const r = await act(t, ['clone', 'bus-domain', 'bus-copy'])
    t.equal(r.domain.name, 'bus-copy')
    t.equal(r.domain.volume, 'demo', 'the same volume')
    t.not(r.domain.epr, before.get('bus-domain')!.epr, 'a new EPR')
    t.equal((await list(t)).get('bus-copy')?.state, 'running', 'in the list')
    const st = JSON.parse((await metaos(['status', '--json'])).stdout) as { pmt: Array<{ epr: string }> }
    t.ok(st.pmt.some((row) => row.epr === r.domain.epr), 'in the PMT')
    const dup = await metaos(['domain', 'clone', 'bus-domain', 'bus-copy'])
    t.equal(dup.code, 1, 'a clone under a taken name → exit 1')
    t.match(dup.stderr, /INVALID_ARGUMENT: a domain named "bus-copy" exists already/)
  })

  t.test('resize a process domain: in place through cgroups, or NOT_SUPPORTED', async (t) => {
    const bus = (await list(t)).get('bus-domain')!
    const r = await metaos(['domain', 'resize', 'bus-domain', '--cpus', '0.5', '--memory', '256m', '--json'])
    if (r.code === 0) {
      const done = JSON.parse(r.stdout) as { domain: View }
      t.equal(done.domain.limits?.applied, true, `applied (${done.domain.limits?.mechanism})`)
      t.match(done.domain.limits, { cpuPercent: 50, memoryBytes: 256 * 1024 * 1024 })
      t.equal(done.domain.pid, bus.pid, 'in place: the same process')
    } else {
      t.equal(r.code, 1)
      t.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'NOT_SUPPORTED', 'no cgroups here: a clear NOT_SUPPORTED')
    }
  })

  t.test('migrate a process domain: clone + stream migration + stop, said as such', async (t) => {
    const copy = (await list(t)).get('bus-copy')!
    const r = await metaos(['domain', 'migrate', 'bus-copy', '--json'])
    t.equal(r.code, 0, 'exit 0', { stderr: r.stderr })
    const done = JSON.parse(r.stdout) as { domain: View, decision: Decision, migration: { kind: string, mechanism: string, to: string, fromPid: number } }
    t.equal(done.migration.kind, 'clone', 'no live migration for a process')
    t.equal(done.migration.mechanism, 'clone + stream migration + stop')
    t.equal(done.migration.fromPid, copy.pid)
    t.equal(done.domain.state, 'stopped', 'the domain stopped')
    t.notOk(alive(copy.pid), 'its process is gone')
    t.equal((await list(t)).get(done.migration.to)?.state, 'running', `its clone ${done.migration.to} runs`)
    t.match(done.decision.reason, /clone \+ stream migration \+ stop/, 'the timeline says how')
    const human = await metaos(['domain', 'migrate', 'no-such-domain'])
    t.equal(human.code, 1, 'an unknown domain → exit 1')
    t.match(human.stderr, /^metaos domain: NO_SUCH_DOMAIN: /)
  })

  t.test('unknown domain: exit 1, NO_SUCH_DOMAIN', async (t) => {
    const r = await metaos(['domain', 'stop', 'no-such-domain', '--json'])
    t.equal(r.code, 1)
    t.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, 'NO_SUCH_DOMAIN')
  })

  t.test('every action is on the supervisor timeline, with who and when', async (t) => {
    const st = JSON.parse((await metaos(['status', '--json'])).stdout) as { decisions: Decision[] }
    const acts = st.decisions.filter((d) => d.action !== undefined)
    t.same(acts.map((d) => d.action), ['pause', 'resume', 'stop', 'start', 'restart', 'clone', 'resize', 'migrate'], 'in order')
    t.ok(acts.every((d) => /^metaos domain \(user .+\)$/.test(d.by ?? '') && d.at > 0), 'each says who asked, and when')
    const shown = (await metaos(['status'])).stdout
    t.match(shown, /operator pause\s+by metaos domain \(user /, 'metaos status shows them')
  })

  t.test('Ctrl-C: metaos up stops cleanly', async (t) => {
    child.kill('SIGINT')
    t.equal(await exited, 0)
  })
})
