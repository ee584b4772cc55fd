// The hypervisor bus's link (vm/hypervisor-bus.ts) as one Duplex over a QEMU chardev socket that can
// move to another QEMU's chardev socket with no byte lost, doubled or reordered: a VM domain's live
// migration (vm/vm-migration.ts) moves the guest to a new QEMU process, whose chardev is a new socket.
// Host → guest: `hold` stops passing writes on (they wait, in order, with the Writable's own
// backpressure) after a marker, so the old QEMU gets nothing the guest might not have taken before
// it stopped. Guest → host: `switchTo` reads the old socket to its end (the old QEMU quit, having
// written all it took from the guest; what it had not taken is in guest memory and comes from the
// new one), and only then the new socket, to which the held writes go first.
import type { Socket } from 'node:net'
import { Duplex } from 'node:stream'

export class SwitchableLink extends Duplex {
  #cur!: Socket
  #held: { chunk: Buffer, cb: (e?: Error | null) => void } | undefined
  #holding = false
  #switching = false

  constructor (socket: Socket) {
    super({ readableHighWaterMark: 65536, writableHighWaterMark: 65536 })
    this.#use(socket)
  }

  /** Stops passing writes on and writes `marker`, the last bytes the current socket gets. */
  hold (marker: Buffer): void {
    this.#holding = true
    this.#cur.write(marker)
  }

  /** The held writes go to the current socket after all (the move did not happen). */
  release (): void {
    this.#holding = false
    const h = this.#held
    this.#held = undefined
    if (h !== undefined) this.#forward(h.chunk, h.cb)
  }

  /** Once the current socket has ended, reads and writes `next` (connected already; nothing is read from it before). */
  async switchTo (next: Socket): Promise<void> {
    const old = this.#cur
    this.#switching = true
    try {
      if (!old.readableEnded && !old.destroyed) {
        await new Promise<void>((resolve) => { old.once('end', resolve); old.once('close', () => { resolve() }) })
      }
    } finally { this.#switching = false }
    old.destroy()
    if (this.destroyed) { next.destroy(); return }
    this.#use(next)
    this.release()
  }

  override _read (): void { this.#cur.resume() }

  override _write (chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#holding) { this.#held = { chunk, cb }; return }
    this.#forward(chunk, cb)
  }

  override _destroy (err: Error | null, cb: (e?: Error | null) => void): void {
    this.#cur.destroy()
    cb(err)
  }

  #forward (chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (this.#cur.write(chunk)) cb()
    else this.#cur.once('drain', () => { cb() })
  }

  #use (s: Socket): void {
    this.#cur = s
    s.on('data', (c: Buffer) => { if (!this.push(c)) s.pause() })
    s.once('close', () => { if (this.#cur === s && !this.#switching && !this.destroyed) this.destroy() })
    s.resume() // `next` was paused explicitly: a 'data' listener alone does not start it
  }
}
