// Fault injection for tests and benchmarks: a real delay inside the service (every operation
// waits before it runs), switched on and off while the domain runs — in-process through the
// object, and for a domain process through a small JSON file it watches (`--fault-file`), so a
// benchmark or a fault-injection test slows a real domain without a mock anywhere.
import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'

/** What the fault file holds: `delayMs` (every operation waits; 0 = none), `jitterMs` (and a uniformly random 0..jitterMs more: a noisy domain) and `closeListeners` (the listening sockets close once; open connections stay served). */
export interface FaultFile {
  readonly delayMs?: number
  readonly jitterMs?: number
  readonly closeListeners?: boolean
}

export class FaultInjection {
  /** Milliseconds every operation waits before it runs (0 = none). */
  delayMs = 0
  /** Up to this many ms more, uniformly at random, per operation (0 = none). */
  jitterMs = 0
  #file: string | undefined
  #listenersClosed = false
  /** Set by the domain: closes its listening sockets. */
  onCloseListeners: (() => void) | undefined

  /** Closes the domain's listening sockets (once); open connections stay served. */
  closeListeners (): void {
    if (this.#listenersClosed) return
    this.#listenersClosed = true
    this.onCloseListeners?.()
  }

  /** Waits as long as the current settings say. */
  async before (): Promise<void> {
    const ms = this.delayMs + (this.jitterMs > 0 ? Math.random() * this.jitterMs : 0)
    if (ms > 0) await sleep(ms)
  }

  /**
   * Follows a JSON file `{"delayMs": N, "jitterMs": J}` (polled every `intervalMs`; a missing or malformed file
   * means no fault, and a malformed one is logged). The watcher never keeps the process alive.
   */
  follow (file: string, logger?: Logger, intervalMs = 100): void {
    this.#file = file
    const load = (): void => {
      let next = 0
      let jitter = 0
      try {
        const v = JSON.parse(readFileSync(file, 'utf8')) as { [K in keyof FaultFile]?: unknown }
        if (v.closeListeners === true) { logger?.warn('fault injection: listening sockets closed'); this.closeListeners() }
        if (typeof v.jitterMs === 'number' && Number.isFinite(v.jitterMs) && v.jitterMs >= 0 && v.jitterMs <= 600_000) jitter = v.jitterMs
        else if (v.jitterMs !== undefined) logger?.warn({ file }, 'fault file: jitterMs must be a number of ms between 0 and 600000; no jitter')
        if (v.delayMs === undefined) next = 0
        else if (typeof v.delayMs === 'number' && Number.isFinite(v.delayMs) && v.delayMs >= 0 && v.delayMs <= 600_000) next = v.delayMs
        else logger?.warn({ file }, 'fault file: delayMs must be a number of ms between 0 and 600000; no fault')
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') logger?.warn({ file, err: e }, 'fault file unreadable; no fault')
      }
      if (next !== this.delayMs) logger?.warn({ delayMs: next }, 'fault injection changed')
      this.delayMs = next
      this.jitterMs = jitter
    }
    load()
    watchFile(file, { interval: intervalMs, persistent: false }, load)
  }

  stop (): void {
    if (this.#file !== undefined) unwatchFile(this.#file)
    this.#file = undefined
  }
}
