// The guest agent: what vm/init.sh runs inside a VM domain. It starts the domain (`metaos storage`
// or `metaos network`, with the host's arguments from the kernel command line, and
// `--hypervisor-bus org.metaos.bus`, so the domain itself serves the bus port) and answers the host
// on the control port (org.metaos.control), one JSON object per line:
//   host → guest  {"op":"hello"}              → the guest's state: booting, ready (with the
//                                               domain's EPR, endpoints, kernel, types and scopes)
//                                               or exited
//                 {"op":"stop","graceMs":N}   → SIGTERM to the domain (drain), SIGKILL after N ms
//                 {"op":"release-volume"}     → the domain lets go of the volume (SIGUSR1: calls
//                                               held, descriptors closed), the agent unmounts the
//                                               9p share → {"event":"volume-released"}; QEMU
//                                               migrates no guest with a 9p export mounted
//                 {"op":"take-volume"}        → mount again, SIGUSR2 → {"event":"volume-taken"}
//   guest → host  {"event":"ready",…} {"event":"exit","code":…,"signal":…}
// The domain announces itself with WS-Discovery on the guest's own loopback, where nobody but
// this agent hears it: the agent resolves its EPR there, so the types and scopes the host announces
// on the guest's behalf are exactly the domain's own (kernel, hosting vm, volume, zone, SLA, cost).
// When the domain exits, the agent exits with its code and init powers the guest off.
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { machine, release, type, version } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { DiscoveryClient } from '../discovery/client.js'
import { PipeLink, waitForVirtioPort } from './virtio-port.js'
import { createLogger } from '../soap-runtime/logger.js'
import { domainNodeFlags } from '../service-domain/node-flags.js'
import { decodeGuestConfig, type GuestConfig, type GuestReady, GUEST_BUS_SOCKET, GUEST_ROOT, BUS_PORT_NAME, CONTROL_PORT_NAME, VOLUME_TAG } from './guest-config.js'

const APP = '/app/dist/cli/metaos.js'

async function main (): Promise<number> {
  const cmdline = readFileSync('/proc/cmdline', 'utf8')
  const config: GuestConfig = decodeGuestConfig(cmdline)
  const logger = createLogger('metaos-guest-agent', config.logLevel ?? 'warn')
  await mkdir(join(GUEST_BUS_SOCKET, '..'), { recursive: true })

  const control = await waitForVirtioPort(CONTROL_PORT_NAME, { onSlow: () => { process.stderr.write(`metaos-guest-agent: still no virtio port ${CONTROL_PORT_NAME}\n`) } })
  const link = new PipeLink(control)
  let state: Record<string, unknown> = { event: 'booting' }
  const send = (o: object): void => { link.write(JSON.stringify(o) + '\n') }

  const args = [...domainNodeFlags(), APP, config.service, ...config.args, ...config.httpPorts.map((p) => `--listen=http://0.0.0.0:${p}`), `--listen=${config.bus ?? 'unix'}:${GUEST_BUS_SOCKET}`,
    // 0.0.0.0 of the guest's user-mode network: only QEMU's hostfwd on the host's 127.0.0.1 reaches it.
    '--allow-insecure', '--hypervisor-bus', BUS_PORT_NAME, '--hosting', 'vm', '--announce', '--interface', 'lo', '--log-level', config.logLevel ?? 'warn']
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] })
  let graceTimer: NodeJS.Timeout | undefined
  const lines = domainLines(child)
  const volume = volumeOps(child, lines, send)
  createInterface({ input: link }).on('line', (line) => {
    let m: { op?: string, graceMs?: number }
    try { m = JSON.parse(line) as typeof m } catch { return }
    if (m.op === 'hello') send(state)
    if (m.op === 'stop' && child.exitCode === null) {
      child.kill('SIGTERM')
      graceTimer ??= setTimeout(() => { child.kill('SIGKILL') }, Math.max(0, m.graceMs ?? 10_000))
    }
    if ((m.op === 'release-volume' || m.op === 'take-volume') && config.service === 'storage' && child.exitCode === null) volume(m.op)
  })

  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>((resolve) => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
  const ready = await new Promise<{ epr: string, endpoints: string[] } | undefined>((resolve) => {
    lines.push((r) => { if (r.event === 'ready' && typeof r.epr === 'string' && Array.isArray(r.endpoints)) resolve({ epr: r.epr, endpoints: r.endpoints as string[] }) })
    void exited.then(() => { resolve(undefined) })
  })

  if (ready !== undefined) {
    // The domain's own announcement, heard on the guest's loopback.
    const client = new DiscoveryClient({ interfaces: ['lo'], listen: false, unref: true, logger })
    await client.start()
    const target = await client.resolve(ready.epr, { timeoutMs: 2000 }).catch(() => undefined)
    await client.close()
    const r: GuestReady = {
      event: 'ready',
      epr: ready.epr,
      endpoints: ready.endpoints,
      kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
      types: target?.types ?? [],
      scopes: target?.scopes ?? [],
      uptimeMs: Math.round(Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000),
    }
    state = r as unknown as Record<string, unknown>
    send(state)
  }
  const end = await exited
  clearTimeout(graceTimer)
  state = { event: 'exit', code: end.code, signal: end.signal }
  send(state)
  // Let the line reach the host before init powers off.
  await sleep(200)
  return end.code ?? 1
}

type LineListener = (r: Record<string, unknown>) => void

/** The domain's stdout, one JSON object a line (its ready line, its answers to SIGUSR1/SIGUSR2), to the listeners in the list. */
function domainLines (child: ChildProcess): LineListener[] {
  const lines: LineListener[] = []
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let r: Record<string, unknown>
    try { r = JSON.parse(line) as Record<string, unknown> } catch { return }
    for (const f of [...lines]) f(r)
  })
  return lines
}

/** release-volume and take-volume, one at a time: the domain's part by a signal and its answer, the mount's by busybox; the host gets the event (with `error` when it failed). */
function volumeOps (child: ChildProcess, lines: LineListener[], send: (o: object) => void): (op: 'release-volume' | 'take-volume') => void {
  const signalled = async (sig: NodeJS.Signals, event: string): Promise<void> => {
    const answer = new Promise<Record<string, unknown>>((resolve) => {
      const f: LineListener = (r) => { if (r.event === event) { lines.splice(lines.indexOf(f), 1); resolve(r) } }
      lines.push(f)
    })
    child.kill(sig)
    const r = await answer
    if (typeof r.error === 'string') throw new Error(r.error)
  }
  let turn: Promise<void> = Promise.resolve()
  return (op) => {
    const event = op === 'release-volume' ? 'volume-released' : 'volume-taken'
    turn = turn.then(async () => {
      if (op === 'release-volume') { await signalled('SIGUSR1', event); await run('umount', [GUEST_ROOT]) } else { await run('mount', MOUNT_VOLUME); await signalled('SIGUSR2', event) }
      send({ event })
    }).catch((e: Error) => { send({ event, error: e.message }) })
  }
}

/** init.sh's mount of the volume, again after a release. */
const MOUNT_VOLUME = ['-t', '9p', '-o', 'trans=virtio,version=9p2000.L,msize=524288,cache=none,access=client', VOLUME_TAG, GUEST_ROOT]

async function run (cmd: string, args: readonly string[]): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    execFile(cmd, args, (e, _out, err) => { if (e === null) resolve(); else reject(new Error(`${cmd} ${args.join(' ')}: ${err.trim() || e.message}`)) })
  })
}

// The host has the exit code from the control port; the agent ends itself with SIGKILL, which
// also ends nothing half-way that matters (an exit could wait on a blocked read of a port), and
// init powers the guest off either way.
const end = (code: number): void => {
  process.stderr.write(`metaos-guest-agent: the domain exited (${code})\n`, () => { process.kill(process.pid, 'SIGKILL') })
}
main().then(end, (e: unknown) => {
  process.stderr.write(`metaos-guest-agent: ${(e as Error).stack ?? String(e)}\n`)
  end(1)
})
