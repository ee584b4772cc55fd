// Test helper for abuse scenarios: raw TCP connections from another loopback address that record
// whether the server (not us) closed them and when, a legitimate 4 KiB Write loop whose latencies
// are sampled per time window and whose file content is modelled (to compare SHA-256 at the end),
// and an RSS sampler of a child process. Measures only; the tests decide what to assert.
import { connect, type Socket } from 'node:net'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import type { StorageHandler } from '../../index.js'

export interface RawConn {
  readonly socket: Socket
  readonly openedAt: number
  connected: boolean
  /** Closed by the other side (or reset), not by us. */
  closedByServer: boolean
  closedAt?: number
  received: Buffer[]
  ours: boolean
}

/** Opens `n` TCP connections to 127.0.0.1:`port` from `localAddress`, in batches; resolves once each connected or failed. */
export async function openRaw (n: number, port: number, o: { localAddress: string, batch?: number, onConnect?: (c: RawConn) => void }): Promise<RawConn[]> {
  const out: RawConn[] = []
  const batch = o.batch ?? 200
  for (let i = 0; i < n; i += batch) {
    const ready: Array<Promise<void>> = []
    for (let j = i; j < Math.min(n, i + batch); j++) {
      const socket = connect({ host: '127.0.0.1', port, localAddress: o.localAddress })
      const c: RawConn = { socket, openedAt: Date.now(), connected: false, closedByServer: false, received: [], ours: false }
      out.push(c)
      ready.push(new Promise<void>((resolve) => {
        socket.once('connect', () => { c.connected = true; o.onConnect?.(c); resolve() })
        socket.on('data', (d) => { c.received.push(d) })
        socket.on('error', () => { /* a reset: counted by 'close' */ })
        socket.once('close', () => { c.closedAt = Date.now(); if (!c.ours) c.closedByServer = true; resolve() })
      }))
    }
    await Promise.all(ready)
  }
  return out
}

export const openCount = (cs: readonly RawConn[]): number => cs.filter((c) => c.closedAt === undefined).length
export const serverClosed = (cs: readonly RawConn[]): number => cs.filter((c) => c.closedByServer).length

/** Waits until `pred` holds or `ms` pass; returns whether it held. */
export async function waitFor (pred: () => boolean, ms: number, step = 100): Promise<boolean> {
  const end = Date.now() + ms
  while (Date.now() < end) { if (pred()) return true; await sleep(step) }
  return pred()
}

export async function closeAll (cs: readonly RawConn[]): Promise<void> {
  for (const c of cs) { if (c.closedAt === undefined) { c.ours = true; c.socket.destroy() } }
  await waitFor(() => cs.every((c) => c.closedAt !== undefined), 2000, 20)
}

export interface LatencyStats { calls: number, callsPerSec: number, p50ms: number, p99ms: number, maxMs: number }

const BLOCK = 4096
const SLOTS = 256

/**
 * 4 KiB Writes back to back over one handle; every SLOTS Writes it seeks back to 0, so the file
 * stays 1 MiB and `model` is what it must hold. Each Write's latency is kept with its end time.
 */
export class LegitWriter {
  readonly samples: Array<{ at: number, ms: number }> = []
  readonly errors: string[] = []
  readonly model = Buffer.alloc(BLOCK * SLOTS)
  writes = 0
  #stop = false
  #done: Promise<void> | undefined

  constructor (readonly h: StorageHandler, readonly handle: string) {}

  start (): void { this.#done = this.#loop() }

  async #loop (): Promise<void> {
    let slot = 0
    while (!this.#stop) {
      const data = randomBytes(BLOCK)
      const t0 = performance.now()
      try {
        const r = await this.h.invoke('Write', { handle: this.handle, data })
        const ms = performance.now() - t0
        const out = r.output as { written: number, position: number | bigint }
        if (out.written !== BLOCK || Number(out.position) !== (slot + 1) * BLOCK) this.errors.push(`Write ${this.writes}: written ${out.written}, position ${out.position}`)
        data.copy(this.model, slot * BLOCK)
        this.samples.push({ at: Date.now(), ms })
        this.writes++
        slot++
        if (slot === SLOTS) { slot = 0; await this.h.invoke('Seek', { handle: this.handle, offset: 0, origin: 'Begin' }) }
      } catch (e) {
        this.errors.push(`Write ${this.writes}: ${(e as { code?: string }).code ?? ''} ${(e as Error).message}`)
        await sleep(50)
      }
    }
  }

  async stop (): Promise<void> { this.#stop = true; await this.#done }

  stats (from: number, to: number = Date.now()): LatencyStats {
    const ms = this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.ms).sort((a, b) => a - b)
    const q = (p: number): number => ms.length === 0 ? NaN : ms[Math.min(ms.length - 1, Math.floor(p * ms.length))]!
    const r = (x: number): number => Math.round(x * 100) / 100
    return { calls: ms.length, callsPerSec: r(ms.length / Math.max(0.001, (to - from) / 1000)), p50ms: r(q(0.5)), p99ms: r(q(0.99)), maxMs: r(ms.at(-1) ?? NaN) }
  }
}

export function rssBytes (pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) * 1024
}

/** Samples a process's RSS every `everyMs`; `peak(from)` is the highest seen since `from`. */
export class RssSampler {
  readonly samples: Array<{ at: number, rss: number }> = []
  readonly #timer: NodeJS.Timeout
  constructor (readonly pid: number, everyMs = 200) {
    this.#timer = setInterval(() => { try { this.samples.push({ at: Date.now(), rss: rssBytes(pid) }) } catch { /* gone */ } }, everyMs)
  }

  peak (from: number, to = Date.now()): number { return Math.max(0, ...this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.rss)) }
  stop (): void { clearInterval(this.#timer) }
}
