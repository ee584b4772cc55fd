// An etcd cluster of N members on loopback for a benchmark (Debian's etcd-server): free ports, one
// temporary directory, elections tuned for one machine (heartbeat 50 ms, election timeout 500 ms, as
// docs/coordination.md advises on a LAN), ready once a member's /health says true; `stop` kills the
// members and removes the directory. Undefined when etcd is not installed (the suite says so).
// `parent` puts the members' data directories elsewhere than the system's temporary directory
// (/dev/shm: on tmpfs, where etcd's fsyncs cost nothing — what is left is etcd's and the client's own work).
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface EtcdCluster {
  /** `etcd://127.0.0.1:P1,127.0.0.1:P2,…` */
  readonly url: string
  readonly members: number
  stop: () => Promise<void>
}

export function etcdBinary (): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin']) {
    if (dir === '') continue
    try { accessSync(join(dir, 'etcd'), constants.X_OK); return join(dir, 'etcd') } catch { /* next */ }
  }
  return undefined
}

/** The file system type a directory is on (the longest mount point of /proc/mounts it lies under), 'unknown' without /proc. */
export function fileSystemOf (dir: string): string {
  let best = ''
  let type = 'unknown'
  let real = dir
  try { real = realpathSync(dir) } catch { /* as given */ }
  try {
    for (const line of readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const [, mount, fs] = line.split(' ')
      if (mount === undefined || fs === undefined) continue
      if ((real === mount || real.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) && mount.length >= best.length) { best = mount; type = fs }
    }
  } catch { /* no /proc */ }
  return type
}

/** A free TCP port on 127.0.0.1 (bound, read, released). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => { resolve(port) }) })
  })
}

async function healthy (client: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = get(`${client}/health`, { timeout: 1000 }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(/"health":\s*"true"/.test(body)) })
    })
    req.on('timeout', () => { req.destroy() })
    req.on('error', () => { resolve(false) })
  })
}

export async function startEtcdCluster (members = 3, parent = tmpdir()): Promise<EtcdCluster | undefined> {
  const bin = etcdBinary()
  if (bin === undefined) return undefined
  const dir = mkdtempSync(join(parent, 'metaos-bench-etcd-'))
  const m = await Promise.all(Array.from({ length: members }, async (_, i) => ({ name: `m${i + 1}`, client: `http://127.0.0.1:${await freePort()}`, peer: `http://127.0.0.1:${await freePort()}` })))
  const initial = m.map((x) => `${x.name}=${x.peer}`).join(',')
  const children: ChildProcess[] = m.map((x) => spawn(bin, ['--name', x.name, '--data-dir', join(dir, x.name),
    '--listen-client-urls', x.client, '--advertise-client-urls', x.client, '--listen-peer-urls', x.peer, '--initial-advertise-peer-urls', x.peer,
    '--initial-cluster', initial, '--initial-cluster-state', 'new', '--heartbeat-interval', '50', '--election-timeout', '500',
    '--logger', 'zap', '--log-level', 'error'], { stdio: 'ignore' }))
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return
      const exited = new Promise((resolve) => c.once('exit', resolve))
      c.kill('SIGKILL')
      await exited
    }))
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 200; i++) {
    if (await healthy(m[0]!.client)) return { url: `etcd://${m.map((x) => x.client.slice('http://'.length)).join(',')}`, members, stop }
    await sleep(100)
  }
  await stop()
  throw new Error(`etcd (${members} members) did not become healthy within 20 s`)
}
