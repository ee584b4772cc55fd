// The process-wide state of the frontend, in one place: the shared proxies (one per endpoint), the
// discovery registry of storage domains, the shared storage and network frontends, the handlers the
// 'local' and 'discover' destinations resolve to. Each module keeps its own entry under a key of
// KEYS and says how to close it; closeAll() ends everything, the newest entry first (a frontend
// before the registry it listens to). The older close functions (closeSharedProxies,
// closeSharedFrontend…) release their own entries. Low in the house (frontend/handlers) so every
// room of the frontend can keep its state here; it imports nothing.

/** The keys of the registry's entries; a per-endpoint proxy's key is its prefix + the endpoint. */
export const KEYS = {
  storageProxy: 'storage-proxy:',
  networkProxy: 'network-proxy:',
  storageRegistry: 'storage-registry',
  storageFrontend: 'storage-frontend',
  networkFrontend: 'network-frontend',
  localStorageHandler: 'local-storage-handler',
  localNetworkHandler: 'local-network-handler',
  discoverNetworkHandler: 'discover-network-handler',
} as const

interface Entry { readonly value: unknown, readonly close: (value: never) => Promise<void> | void }

const entries = new Map<string, Entry>()

/** The value kept under `key`, if any. */
export function lookup<T> (key: string): T | undefined {
  return entries.get(key)?.value as T | undefined
}

/** The value kept under `key`; made by `make()` (and kept, with how to close it) when there is none. */
export function obtain<T> (key: string, make: () => T, close: (value: T) => Promise<void> | void): T {
  const e = entries.get(key)
  if (e !== undefined) return e.value as T
  const value = make()
  entries.set(key, { value, close })
  return value
}

/** Keeps `value` under `key` (replacing what was there, unclosed: the caller owns that). */
export function keep<T> (key: string, value: T, close: (value: T) => Promise<void> | void): T {
  entries.delete(key)
  entries.set(key, { value, close })
  return value
}

/**
 * Forgets the entries whose key is `key` or, with `prefix`, starts with it, then closes them
 * together. Forgotten first: a caller asking again meanwhile gets a new one.
 */
export async function release (key: string, o: { prefix?: boolean } = {}): Promise<void> {
  const gone: Entry[] = []
  for (const [k, e] of entries) {
    if (o.prefix === true ? k.startsWith(key) : k === key) { entries.delete(k); gone.push(e) }
  }
  await Promise.all(gone.map(async (e) => { await e.close(e.value as never) }))
}

/** Ends the process-wide state, newest first (each entry after those made after it); errors are thrown after all closed. */
export async function closeAll (): Promise<void> {
  const all = [...entries.values()].reverse()
  entries.clear()
  const errors: unknown[] = []
  for (const e of all) {
    try { await e.close(e.value as never) } catch (err) { errors.push(err) }
  }
  if (errors.length === 1) throw errors[0]
  if (errors.length > 1) throw new AggregateError(errors, 'closing the process-wide state')
}

/** The keys kept now, oldest first (tests, status). */
export function keys (): string[] {
  return [...entries.keys()]
}
