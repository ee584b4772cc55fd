// A watch of every key under a prefix from a revision on, through etcd3's watch manager (it
// reconnects by itself and resumes after the last revision it delivered). Returns the function
// that stops it, once etcd has the watch: a change made after it returns is never missed (a watcher
// not yet connected would miss it). Deletions are told by the last part of the key (decoded).
import type { IKeyValue } from 'etcd3'
import { MetaosError } from '../soap-runtime/errors.js'
import type { EtcdSession } from './etcd-session.js'

export interface PrefixListener {
  put: (kv: IKeyValue) => void
  delete: (name: string) => void
}

export async function watchPrefix (session: EtcdSession, parts: string[], listener: PrefixListener, startRevision?: string): Promise<() => Promise<void>> {
  const prefix = `${session.key(...parts)}/`
  let builder = session.client.watch().prefix(prefix)
  if (startRevision !== undefined) builder = builder.startRevision(startRevision)
  const watcher = await builder.create().catch((e: unknown) => {
    throw new MetaosError('COORDINATION_UNAVAILABLE', `coordination: could not watch ${prefix}: ${(e as Error).message}`, { cause: e })
  })
  watcher.on('put', (kv) => { listener.put(kv) })
  watcher.on('delete', (kv) => {
    const rest = kv.key.toString('utf8').slice(prefix.length)
    listener.delete(decodeURIComponent(rest.split('/')[0] ?? ''))
  })
  watcher.on('error', (err) => { session.log.warn({ prefix, err: err.message }, 'coordination watch failed; it reconnects') })
  return async () => { await watcher.cancel().catch(() => {}) }
}
