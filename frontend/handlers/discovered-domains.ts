// The frontend's source of storage domains: a process-wide WS-Discovery registry of metaos
// StorageDomains. A domain that says Hello becomes a destination with no configuration; Bye
// removes it. frontend/assembly/intelligent-frontend.ts feeds these to the PMT and the dispatcher; a
// domain's best endpoint is its bus when it is on this machine.
import { existsSync } from 'node:fs'
import { DiscoveryClient, type DiscoveredTarget } from '../../discovery/client.js'
import { STORAGE_DOMAIN_TYPE, volumeScope } from '../../discovery/storage-announcement.js'
import { parseEndpoint } from '../../soap-runtime/endpoint.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import { trustFromEnvironment } from './domain-trust.js'
import { KEYS, lookup, obtain, release } from './process-registry.js'

/** The registry and the interfaces it was started on, kept in the process registry. */
interface Registry { readonly client: Promise<DiscoveryClient>, readonly interfaces: readonly string[] | undefined }

/**
 * The process-wide registry of discovered storage domains (started on first use). `trusted`: every
 * announcement will be proven (default: METAOS_TRUST_CA is set), so AppSequence ordering is off.
 * METAOS_DISCOVERY_PROXY names a discovery proxy to ask (managed mode, e.g. on another host): over
 * https its certificate must chain to METAOS_TRUST_CA, and METAOS_CLIENT_CERT/KEY are presented.
 */
export async function storageRegistry (interfaces?: readonly string[], o: { trusted?: boolean } = {}): Promise<DiscoveryClient> {
  const running = lookup<Registry>(KEYS.storageRegistry)
  if (running !== undefined && interfaces !== undefined && interfaces.join() !== running.interfaces?.join()) {
    throw new MetaosError('INVALID_ARGUMENT', 'the storage registry already runs on other interfaces')
  }
  const r = obtain<Registry>(KEYS.storageRegistry, () => ({
    interfaces,
    client: (async () => {
      // With trusted discovery (METAOS_TRUST_CA) every announcement is proven, so unsigned AppSequence ordering is not relied on.
      const trusted = o.trusted ?? (process.env.METAOS_TRUST_CA ?? '') !== ''
      const proxy = process.env.METAOS_DISCOVERY_PROXY ?? ''
      const tls = proxy === '' ? undefined : trustFromEnvironment()
      const c = new DiscoveryClient({
        listen: true,
        unref: true,
        ordering: !trusted,
        filter: { types: [STORAGE_DOMAIN_TYPE] },
        ...(interfaces === undefined ? {} : { interfaces }),
        // A proxy on another host sends no Hello: its registry is asked every 5 s instead.
        ...(proxy === '' ? {} : { proxy, reprobeMs: 5000, ...(tls === undefined ? {} : { proxyTls: { ca: tls.ca, ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }) } }) }),
      })
      await c.start()
      return c
    })(),
  }), async (r) => { await (await r.client.catch(() => undefined))?.close() })
  return await r.client
}

export async function closeStorageRegistry (): Promise<void> {
  await release(KEYS.storageRegistry)
}

/**
 * The endpoint to use for a discovered domain: its bus when the socket is on this machine, else
 * HTTP. `framed`: a net.uds bus ([MC-NMF] sessions, which carry pushed receives) before an HTTP one.
 */
export function bestEndpoint (t: DiscoveredTarget, o: { framed?: boolean } = {}): string | undefined {
  const onThisMachine = (x: string): boolean => existsSync(parseEndpoint(x).socketPath!)
  const framed = o.framed === true ? t.xaddrs.find((x) => x.startsWith('net.uds:') && onThisMachine(x)) : undefined
  const bus = framed ?? t.xaddrs.find((x) => x.startsWith('http+unix://') && onThisMachine(x))
  return bus ?? t.xaddrs.find((x) => x.startsWith('http://') || x.startsWith('https://'))
}

export { volumeScope }

/** Waits (up to `timeoutMs`) for a discovered storage domain, of `volume` if given, and returns its best endpoint. */
export async function discoverStorageEndpoint (o: { volume?: string, timeoutMs?: number } = {}): Promise<string> {
  const reg = await storageRegistry()
  const scope = o.volume === undefined ? undefined : volumeScope(o.volume)
  const t = await reg.waitFor((x) => (scope === undefined || x.scopes.includes(scope)) && bestEndpoint(x) !== undefined, o.timeoutMs ?? 3000)
  if (t === undefined) throw new MetaosError('FILE_NOT_FOUND', `no storage domain${o.volume === undefined ? '' : ` of volume ${o.volume}`} was discovered within ${o.timeoutMs ?? 3000} ms`)
  return bestEndpoint(t)!
}
