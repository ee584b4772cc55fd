// Which StorageHandler a FileStream's destination names, and what each loads: 'local' the
// process-wide LocalHandler (the kernel's engine loaded by the first 'local' stream), an endpoint
// its shared proxy, 'discover' the process-wide intelligent frontend's dispatcher (the frontend,
// discovery, PMT and supervisor loaded by the first 'discover'). Importing this module loads none
// of them; the handlers live in the process registry. (Sockets: net-socket.ts does the same.)
import type { StorageHandler } from '../handlers/storage-handler.js'
import type { LocalHandler } from '../handlers/local-handler.js'
import { sharedProxy } from '../handlers/storage-proxy.js'
import { KEYS, obtain } from '../handlers/process-registry.js'
import type { SharedFrontendOptions } from '../assembly/intelligent-frontend.js'
import type { Dispatcher } from '../placement/dispatcher.js'

/** One process-wide LocalHandler for 'local', one shared proxy per endpoint, or the handler given. */
export async function resolveDestination (d: 'local' | string | StorageHandler | undefined): Promise<StorageHandler> {
  if (d === undefined || d === 'local') {
    return await obtain<Promise<LocalHandler>>(KEYS.localStorageHandler, async () => new (await import('../handlers/local-handler.js')).LocalHandler(), async (h) => { await (await h).close() })
  }
  if (typeof d === 'string') return sharedProxy(d)
  return d
}

/**
 * 'discover': the frontend first (its trust decides how the registry listens), then a domain (of
 * the volume) known — with trust, proven — and the dispatcher of that volume places the stream.
 */
export async function discoveredDestination (o: { volume?: string, frontend?: SharedFrontendOptions }): Promise<Dispatcher> {
  const [{ sharedFrontend }, { discoverStorageEndpoint }] = await Promise.all([import('../assembly/intelligent-frontend.js'), import('../handlers/discovered-domains.js')])
  const front = await sharedFrontend(o.frontend)
  await discoverStorageEndpoint(o.volume === undefined ? {} : { volume: o.volume })
  await front.waitForDomain(o.volume)
  return front.dispatcherFor(o.volume)
}

/**
 * A dispatcher opens with the stream's size (placement). Only a handler that says it is one can be:
 * then the dispatcher's module is already loaded, and a stream to elsewhere never loads it.
 */
export async function asDispatcher (h: StorageHandler): Promise<Dispatcher | undefined> {
  if (h.destination !== 'dispatcher') return undefined
  return h instanceof (await import('../placement/dispatcher.js')).Dispatcher ? h : undefined
}

