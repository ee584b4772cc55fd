// Test helper: a real etcd cluster (Debian's etcd-server) of N members on loopback, free ports, in a
// temporary directory; members can be killed (SIGKILL) and started again on the same data, and the
// cluster is stopped when the test ends. Without etcd on the machine, `etcdMissing()` says why (a
// skip reason; under CI a failure naming the part).
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { partMissing } from './require-part.js'
import { tempDir } from './temp-dir.js'
import { which } from './which.js'

/** A skip reason when etcd is not installed (under CI: a failure naming the part). */
export function etcdMissing (): string | undefined {
  if (which('etcd') !== undefined) return undefined
  return partMissing('etcd', 'the etcd binary (etcd-server) is not on PATH', 'apt-get install -y etcd-server etcd-client')
}

export interface EtcdTls {
  /** PEM files: etcd's server certificate (naming 127.0.0.1) and key, and the CA clients must present certificates of. */
  readonly cert: string
  readonly key: string
  readonly ca: string
}

export interface EtcdMember {
  readonly name: string
  readonly clientUrl: string
  readonly peerUrl: string
  readonly dataDir: string
  process: ChildProcess | undefined
}

export interface EtcdCluster {
  /** `etcd://127.0.0.1:P1,127.0.0.1:P2,…` (etcds:// with TLS). */
  readonly url: string
  readonly members: readonly EtcdMember[]
  /** SIGKILL a member and wait for its exit. */
  kill: (i: number) => Promise<void>
  /** Starts a killed member again on its data directory. */
  start: (i: number) => Promise<void>
  /** Resolves once a member answers /health true (the cluster has a leader). */
  healthy: (timeoutMs?: number) => Promise<void>
  stop: () => Promise<void>
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => { resolve(port) }) })
  })
}

export async function startEtcdCluster (t: Test, o: { members?: number, tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const n = o.members ?? 3
  const dir = tempDir(t, 'metaos-etcd-')
  const scheme = o.tls === undefined ? 'http' : 'https'
  const members: EtcdMember[] = []
  for (let i = 0; i < n; i++) {
    const name = `m${i + 1}`
    members.push({ name, clientUrl: `${scheme}://127.0.0.1:${await freePort()}`, peerUrl: `http://127.0.0.1:${await freePort()}`, dataDir: join(dir, name), process: undefined })
  }
  const initial = members.map((m) => `${m.name}=${m.peerUrl}`).join(',')
  const tlsArgs = o.tls === undefined ? [] : ['--cert-file', o.tls.cert, '--key-file', o.tls.key, '--trusted-ca-file', o.tls.ca, '--client-cert-auth']
  const start = async (i: number): Promise<void> => {
    const m = members[i]!
    mkdirSync(m.dataDir, { recursive: true })
    const child = spawn(which('etcd')!, [
      '--name', m.name, '--data-dir', m.dataDir,
      '--listen-client-urls', m.clientUrl, '--advertise-client-urls', m.clientUrl,
      '--listen-peer-urls', m.peerUrl, '--initial-advertise-peer-urls', m.peerUrl,
      '--initial-cluster', initial, '--initial-cluster-state', 'new', '--initial-cluster-token', `metaos-test-${process.pid}`,
      // A leader lost is replaced within about a second (docs/coordination.md): well inside the 2 s deadline and the lease's margin.
      '--heartbeat-interval', '50', '--election-timeout', '500',
      '--logger', 'zap', '--log-level', 'error', ...tlsArgs,
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-4000) })
    child.once('exit', (code, signal) => { if (m.process === child) m.process = undefined; if (code !== 0 && signal === null) t.comment(`etcd ${m.name} exited ${code}: ${err}`) })
    m.process = child
  }
  const kill = async (i: number): Promise<void> => {
    const p = members[i]!.process
    if (p === undefined || p.exitCode !== null) return
    const exited = new Promise((resolve) => p.once('exit', resolve))
    p.kill('SIGKILL')
    await exited
  }
  const healthy = async (timeoutMs = 20_000): Promise<void> => {
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      for (const m of members) {
        if (m.process === undefined) continue
        const ok = await healthOf(m, o.tls).catch(() => false)
        if (ok) return
      }
      await sleep(100)
    }
    throw new Error(`the etcd cluster has no leader after ${timeoutMs} ms`)
  }
  const stop = async (): Promise<void> => { for (let i = 0; i < n; i++) await kill(i) }
  t.teardown(stop)
  for (let i = 0; i < n; i++) await start(i)
  await healthy()
  const url = `${o.tls === undefined ? 'etcd' : 'etcds'}://${members.map((m) => m.clientUrl.replace(/^https?:\/\//, '')).join(',')}`
  return { url, members, kill, start, healthy, stop }
}

/** A member's /health: true when it sees a leader. */
async function healthOf (m: EtcdMember, tls: EtcdTls | undefined): Promise<boolean> {
  const { request } = await import(tls === undefined ? 'node:http' : 'node:https')
  const { readFileSync } = await import('node:fs')
  const extra = tls === undefined ? {} : { ca: readFileSync(tls.ca), cert: readFileSync(tls.cert), key: readFileSync(tls.key) }
  return await new Promise((resolve, reject) => {
    const req = request(`${m.clientUrl}/health`, { timeout: 1000, ...extra }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(/"health":\s*"true"/.test(body)) })
    })
    req.on('timeout', () => { req.destroy(new Error('timeout')) })
    req.on('error', reject)
    req.end()
  })
}
