// Fault injection for tests and benchmarks: a real delay inside the service (every operation
// waits before it runs), switched on and off while the domain runs — in-process through the
// object, and for a domain process through a small JSON file it watches (`--fault-file`), so a
// benchmark or a fault-injection test slows a real domain without a mock anywhere.
import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'

/** What the fault file holds: `delayMs` (every operation waits; 0 = none) and `closeListeners` (the listening sockets close once; open connections stay served). */
export interface FaultFile {
  readonly delayMs?: number
  readonly closeListeners?: boolean
}

export class FaultInjection {
  /** Milliseconds every operation waits before it runs (0 = none). */
  delayMs = 0
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
    if (this.delayMs > 0) await sleep(this.delayMs)
  }

  /**
   * Follows a JSON file `{"delayMs": N}` (polled every `intervalMs`; a missing or malformed file
   * means no fault, and a malformed one is logged). The watcher never keeps the process alive.
   */
  follow (file: string, logger?: Logger, intervalMs = 100): void {
    this.#file = file
    const load = (): void => {
      let next = 0
      try {
        const v = JSON.parse(readFileSync(file, 'utf8')) as { [K in keyof FaultFile]?: unknown }
        if (v.closeListeners === true) { logger?.warn('fault injection: listening sockets closed'); this.closeListeners() }
        if (v.delayMs === undefined) next = 0
        else if (typeof v.delayMs === 'number' && Number.isFinite(v.delayMs) && v.delayMs >= 0 && v.delayMs <= 600_000) next = v.delayMs
        else logger?.warn({ file }, 'fault file: delayMs must be a number of ms between 0 and 600000; no fault')
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') logger?.warn({ file, err: e }, 'fault file unreadable; no fault')
      }
      if (next !== this.delayMs) logger?.warn({ delayMs: next }, 'fault injection changed')
      this.delayMs = next
    }
    load()
    watchFile(file, { interval: intervalMs, persistent: false }, load)
  }

  stop (): void {
    if (this.#file !== undefined) unwatchFile(this.#file)
    this.#file = undefined
  }
}
