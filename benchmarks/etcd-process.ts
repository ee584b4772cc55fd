// A single etcd member on loopback for a benchmark (Debian's etcd-server): free ports, a temporary
// data directory, ready once /health says true; `stop` kills it and removes the directory.
// Undefined when etcd is not installed: the benchmark says so and measures without it.
import { spawn } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { get } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export interface EtcdProcess {
  /** `etcd://127.0.0.1:PORT` */
  readonly url: string
  stop: () => Promise<void>
}

function etcdBinary (): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/local/bin', '/usr/bin']) {
    if (dir === '') continue
    try { accessSync(join(dir, 'etcd'), constants.X_OK); return join(dir, 'etcd') } catch { /* next */ }
  }
  return undefined
}

async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => { resolve(port) }) })
  })
}

async function healthy (url: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const req = get(`${url}/health`, { timeout: 1000 }, (res) => {
      let body = ''
      res.on('data', (d: Buffer) => { body += d.toString() })
      res.on('end', () => { resolve(/"health":\s*"true"/.test(body)) })
    })
    req.on('timeout', () => { req.destroy() })
    req.on('error', () => { resolve(false) })
  })
}

export async function startEtcd (): Promise<EtcdProcess | undefined> {
  const bin = etcdBinary()
  if (bin === undefined) return undefined
  const dir = mkdtempSync(join(tmpdir(), 'metaos-bench-etcd-'))
  const client = `http://127.0.0.1:${await freePort()}`
  const peer = `http://127.0.0.1:${await freePort()}`
  const child = spawn(bin, ['--name', 'bench', '--data-dir', join(dir, 'data'), '--listen-client-urls', client, '--advertise-client-urls', client,
    '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `bench=${peer}`, '--logger', 'zap', '--log-level', 'error'], { stdio: 'ignore' })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited }
    rmSync(dir, { recursive: true, force: true })
  }
  for (let i = 0; i < 200; i++) {
    if (await healthy(client)) return { url: `etcd://${client.slice('http://'.length)}`, stop }
    if (child.exitCode !== null) break
    await sleep(100)
  }
  await stop()
  throw new Error('etcd did not become healthy within 20 s')
}
