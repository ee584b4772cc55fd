// A QEMU Machine Protocol client (docs: qemu.org, "QEMU QMP Reference Manual"): one Unix-socket
// connection, the greeting, `qmp_capabilities`, then commands with ids answered in order of their
// ids; asynchronous events (STOP, RESUME, SHUTDOWN…) are emitted. Just what the VM driver needs —
// stop, cont, quit, balloon, query-status — written by hand because it is ~100 lines over
// newline-delimited JSON, and the npm QMP clients are unmaintained.
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { connectWhenListening } from './chardev-socket.js'
import { MetaosError } from '../soap-runtime/errors.js'

interface Pending { resolve: (v: unknown) => void, reject: (e: Error) => void, command: string }

export interface QmpEvents {
  event: [name: string, data: unknown]
  close: []
}

export class QmpClient extends EventEmitter<QmpEvents> {
  readonly #socket: Socket
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #buffer = ''
  #closed = false

  private constructor (socket: Socket) {
    super()
    this.#socket = socket
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { this.#onData(chunk) })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#closed = true
      for (const p of this.#pending.values()) p.reject(new MetaosError('TRANSPORT_ERROR', `QMP ${p.command}: the monitor closed (QEMU exited)`))
      this.#pending.clear()
      this.emit('close')
    })
  }

  /** Connects to QEMU's `-qmp unix:PATH,server=on,wait=off`, retrying while QEMU creates it, and negotiates capabilities. */
  static async connect (path: string, timeoutMs = 10_000): Promise<QmpClient> {
    const deadline = Date.now() + timeoutMs
    const qmp = new QmpClient(await connectWhenListening(path, 'QMP', timeoutMs))
    try {
      await qmp.#greeting(Math.max(1000, deadline - Date.now()))
      await qmp.execute('qmp_capabilities')
    } catch (e) {
      qmp.close()
      throw new MetaosError('TRANSPORT_ERROR', `QMP ${path}: ${(e as Error).message}`, { cause: e })
    }
    return qmp
  }

  get closed (): boolean { return this.#closed }

  /** Runs one command; resolves with its `return`, rejects with its `error`. */
  async execute (command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<unknown> {
    if (this.#closed) throw new MetaosError('TRANSPORT_ERROR', `QMP ${command}: the monitor is closed (QEMU exited)`)
    const id = this.#nextId++
    const done = new Promise<unknown>((resolve, reject) => { this.#pending.set(id, { resolve, reject, command }) })
    this.#socket.write(JSON.stringify({ execute: command, ...(args === undefined ? {} : { arguments: args }), id }) + '\n')
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { this.#pending.delete(id); reject(new MetaosError('TIMED_OUT', `QMP ${command}: no answer within ${timeoutMs} ms`)) }, timeoutMs) })
    try { return await Promise.race([done, late]) } finally { clearTimeout(timer) }
  }

  close (): void { this.#socket.destroy() }

  #greetingWaiter: ((ok: boolean) => void) | undefined

  async #greeting (timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new MetaosError('TIMED_OUT', 'QMP: no greeting')) }, timeoutMs)
      this.#greetingWaiter = (ok) => { clearTimeout(timer); if (ok) resolve(); else reject(new MetaosError('TRANSPORT_ERROR', 'QMP: closed before its greeting')) }
      this.once('close', () => { this.#greetingWaiter?.(false) })
    })
  }

  #onData (chunk: string): void {
    this.#buffer += chunk
    for (let nl = this.#buffer.indexOf('\n'); nl >= 0; nl = this.#buffer.indexOf('\n')) {
      const line = this.#buffer.slice(0, nl).trim()
      this.#buffer = this.#buffer.slice(nl + 1)
      if (line === '') continue
      let m: { QMP?: unknown, id?: number, return?: unknown, error?: { class?: string, desc?: string }, event?: string, data?: unknown }
      try { m = JSON.parse(line) as typeof m } catch { continue }
      if (m.QMP !== undefined) { this.#greetingWaiter?.(true); this.#greetingWaiter = undefined; continue }
      if (m.event !== undefined) { this.emit('event', m.event, m.data); continue }
      const p = m.id === undefined ? undefined : this.#pending.get(m.id)
      if (p === undefined) continue
      this.#pending.delete(m.id!)
      if (m.error !== undefined) p.reject(new MetaosError('PROTOCOL_ERROR', `QMP ${p.command}: ${m.error.class ?? 'error'}: ${m.error.desc ?? ''}`))
      else p.resolve(m.return)
    }
    if (this.#buffer.length > 1 << 20) this.#socket.destroy()
  }
}
