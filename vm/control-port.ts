// The control port, host side: the guest agent's JSON lines (vm/guest-agent.ts) over QEMU's chardev
// socket — the guest's ready line and exit, and the host's hello and stop. Used by vm/vm-driver.ts.
import type { Socket } from 'node:net'
import { createInterface } from 'node:readline'
import type { DomainExit } from '../domains/driver.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { connectWhenListening } from './chardev-socket.js'
import type { GuestReady } from './guest-config.js'

/** The control port, host side: JSON lines over QEMU's chardev socket. */
export class Control {
  readonly #socket: Socket
  readonly #listeners: Array<(m: Record<string, unknown>) => void> = []
  #exitListeners: Array<(x: DomainExit) => void> = []

  private constructor (socket: Socket) {
    this.#socket = socket
    socket.on('error', () => {})
    createInterface({ input: socket }).on('line', (line) => {
      let m: Record<string, unknown>
      try { m = JSON.parse(line) as Record<string, unknown> } catch { return }
      if (m.event === 'exit') for (const f of this.#exitListeners) f({ code: (m.code as number | null) ?? null, signal: (m.signal as NodeJS.Signals | null) ?? null })
      for (const f of this.#listeners) f(m)
    })
  }

  static async connect (path: string, timeoutMs = 10_000): Promise<Control> {
    return new Control(await connectWhenListening(path, 'control port', timeoutMs))
  }

  on (_event: 'exit', f: (x: DomainExit) => void): void { this.#exitListeners.push(f) }

  send (m: object): void { this.#socket.write(JSON.stringify(m) + '\n') }

  /** Asks the guest its state every 500 ms until the domain is ready (or has exited). */
  async ready (timeoutMs: number): Promise<GuestReady> {
    return await new Promise((resolve, reject) => {
      const ask = setInterval(() => { this.send({ op: 'hello' }) }, 500)
      this.send({ op: 'hello' })
      const timer = setTimeout(() => { done(); reject(new MetaosError('TIMED_OUT', `the domain did not get ready within ${timeoutMs} ms`)) }, timeoutMs)
      const f = (m: Record<string, unknown>): void => {
        if (m.event === 'ready') { done(); resolve(m as unknown as GuestReady) }
        if (m.event === 'exit') { done(); reject(new Error(`the domain exited with ${String(m.signal ?? m.code)} before it was ready`)) }
      }
      const done = (): void => { clearInterval(ask); clearTimeout(timer); this.#listeners.splice(this.#listeners.indexOf(f), 1) }
      this.#listeners.push(f)
    })
  }

  /** Sends `m` and waits for the guest's line with `event`; its `error` → TRANSPORT_ERROR, none within `timeoutMs` → TIMED_OUT. */
  async ask (m: object, event: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { done(); reject(new MetaosError('TIMED_OUT', `the guest agent did not answer ${event} within ${timeoutMs} ms`)) }, timeoutMs)
      const f = (r: Record<string, unknown>): void => {
        if (r.event !== event) return
        done()
        if (typeof r.error === 'string') reject(new MetaosError('TRANSPORT_ERROR', `the guest agent: ${event}: ${r.error}`))
        else resolve(r)
      }
      const done = (): void => { clearTimeout(timer); this.#listeners.splice(this.#listeners.indexOf(f), 1) }
      this.#listeners.push(f)
      this.send(m)
    })
  }

  close (): void { this.#socket.destroy() }
}
