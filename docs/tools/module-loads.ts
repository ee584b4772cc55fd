// Records every module a process loads, for docs/tools/module-count.ts: run with
// `node --import ./dist/docs/tools/module-loads.js …`, it registers itself as a loader hook (ESM
// has no module list of its own: process.moduleLoadList misses it), and each load() posts the
// module's URL to the main thread. settled() returns the URLs once every load so far has arrived.
import { register } from 'node:module'
import { isMainThread, MessageChannel, type MessagePort } from 'node:worker_threads'

export const LOADS = Symbol.for('metaos.module-loads')
export interface Loads { readonly urls: string[], settled: () => Promise<string[]> }

// The hooks (they run in the loader's own thread).
let hooksPort: MessagePort | undefined
export function initialize (data: { port: MessagePort }): void { hooksPort = data.port }
export async function load (url: string, context: unknown, next: (url: string, context: unknown) => Promise<unknown>): Promise<unknown> {
  hooksPort?.postMessage(url)
  return await next(url, context)
}

if (isMainThread && (globalThis as Record<symbol, unknown>)[LOADS] === undefined) {
  const { port1, port2 } = new MessageChannel()
  const urls: string[] = []
  let waiting: { sentinel: string, done: () => void } | undefined
  port1.on('message', (url: string) => {
    if (url === waiting?.sentinel) waiting.done()
    else urls.push(url)
  })
  port1.unref()
  register(import.meta.url, { data: { port: port2 }, transferList: [port2] })
  const loads: Loads = {
    urls,
    // A module loaded now is posted after every earlier one: when it arrives, all of them have.
    settled: async () => {
      const sentinel = `data:text/javascript,export{}//${Math.random()}`
      const arrived = new Promise<void>((resolve) => { waiting = { sentinel, done: resolve } })
      port1.ref()
      await import(sentinel)
      await arrived
      port1.unref()
      return [...urls]
    },
  }
  ;(globalThis as Record<symbol, unknown>)[LOADS] = loads
}
