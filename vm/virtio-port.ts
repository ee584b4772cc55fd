// The guest's side of a virtio-serial port: finding it by name (/sys/class/virtio-ports), and the
// port as a Duplex through busybox cat, so Node reads and writes pipes, which it polls with epoll,
// rather than making blocking reads on libuv's thread pool. Measured under TCG (a 1 MiB Write
// stream through the bus): 2.4 MB/s with an fs.read loop on the thread pool, 7.7 MB/s with the
// pipes — a virtio-serial read returns one 4 KiB buffer, and each thread-pool hand-off costs an
// emulated wake-up. A cat reading the port ends when the host disconnects (read() returns 0): that
// is 'host-disconnected', and it starts again.
import { spawn, type ChildProcess } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Duplex } from 'node:stream'
import { MetaosError } from '../soap-runtime/errors.js'

/** The device of the virtio port named `name` (`/dev/vportNpM`), or undefined while it is not there. */
export async function findVirtioPort (name: string, sysDir = '/sys/class/virtio-ports'): Promise<string | undefined> {
  if (typeof name !== 'string' || name === '') throw new MetaosError('INVALID_ARGUMENT', 'findVirtioPort: name must be non-empty')
  let entries: string[]
  try { entries = await readdir(sysDir) } catch { return undefined }
  for (const e of entries.sort()) {
    const n = await readFile(join(sysDir, e, 'name'), 'utf8').catch(() => undefined)
    if (n !== undefined && n.replace(/\n$/, '') === name) return `/dev/${e}`
  }
  return undefined
}

/**
 * The device of the port named `name` once it shows: modules load asynchronously at boot, so a port
 * may appear a little after the guest's processes start. Polls every 50 ms; `onSlow` is called once
 * after 5 s; after `timeoutMs` (default: no limit) it fails with FILE_NOT_FOUND.
 */
export async function waitForVirtioPort (name: string, o: { timeoutMs?: number, onSlow?: () => void, sysDir?: string } = {}): Promise<string> {
  const deadline = Date.now() + (o.timeoutMs ?? Infinity)
  const slowAt = Date.now() + 5000
  let slow = false
  for (;;) {
    const p = await findVirtioPort(name, o.sysDir)
    if (p !== undefined) return p
    if (Date.now() >= deadline) throw new MetaosError('FILE_NOT_FOUND', `no virtio-serial port named ${name} (/sys/class/virtio-ports)`)
    if (!slow && Date.now() >= slowAt) { slow = true; o.onSlow?.() }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** A virtio-serial port (or any file a shell can open read-write) as a Duplex, through cat. */
export class PipeLink extends Duplex {
  readonly #child: ChildProcess
  #paused = false

  constructor (path: string, o: { retryMs?: number } = {}) {
    super({ readableHighWaterMark: 65536, writableHighWaterMark: 65536 })
    // A port opens once at a time (EBUSY): one shell opens it read-write, a cat copies the port to
    // stdout — again after each disconnection, said on fd 4 — and another copies stdin to the port.
    const retry = ((o.retryMs ?? 75) / 1000).toFixed(3)
    const script = `exec 5<>"$0"; (while :; do cat <&5; echo >&4; sleep ${retry}; done) & exec cat >&5`
    // A process group of its own, so destroy() ends the reading loop too.
    const child = spawn('/bin/sh', ['-c', script, path], { stdio: ['pipe', 'pipe', 'inherit', 'ignore', 'pipe'], detached: true })
    this.#child = child
    child.stdin!.on('error', (e) => { this.destroy(e) })
    child.stdout!.on('data', (c: Buffer) => { if (!this.push(c)) { this.#paused = true; child.stdout!.pause() } })
    ;(child.stdio[4] as NodeJS.ReadableStream).on('data', () => { this.emit('host-disconnected') })
    child.once('exit', (code, signal) => { if (!this.destroyed) this.destroy(new Error(`the port's copier exited (${signal ?? String(code)})`)) })
  }

  override _read (): void {
    if (this.#paused) { this.#paused = false; this.#child.stdout!.resume() }
  }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#child.stdin!.write(chunk, cb)
  }

  override _destroy (err: Error | null, cb: (e?: Error | null) => void): void {
    try { process.kill(-this.#child.pid!, 'SIGKILL') } catch { this.#child.kill('SIGKILL') }
    cb(err)
  }
}
