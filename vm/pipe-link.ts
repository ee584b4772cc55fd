// The guest's virtio-serial port as a Duplex through busybox cat, so the agent reads and writes
// pipes, which Node polls with epoll, instead of blocking calls on libuv's thread pool (the
// CharDeviceLink of hypervisor-bus.ts). Measured under TCG (a 1 MiB Write stream through the
// bus): 2.4 MB/s with CharDeviceLink, 7.7 MB/s with this — a virtio-serial read returns one 4 KiB
// buffer, and each thread-pool round trip costs an emulated wake-up. A cat reading the port ends
// when the host disconnects (read() returns 0): that is 'host-disconnected', and it starts again.
import { spawn, type ChildProcess } from 'node:child_process'
import { Duplex } from 'node:stream'

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
