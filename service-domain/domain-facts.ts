// What every domain says of itself in GetDomainInfo beside its service's own facts (a storage
// domain's volume, a network domain's allow-list): who it is, what runs it, the kernel and runtime
// it runs on, where it listens and since when. The frontend's local handlers say the same of the
// application's own kernel.
import { hostname, machine, release, type, version } from 'node:os'
import type { Hosting, KernelInfo } from '../wsdl/generated/storage-service.js'

export interface DomainFacts {
  domainId: string
  hosting: Hosting
  kernel: KernelInfo
  runtime: string
  transports: { transport: string[] }
  uptime: number
}

/** The facts as they stand at each call: `endpoints` is read then (a domain knows them once it listens). */
export function domainFacts (domainId: string, hosting: Hosting, endpoints: () => string[]): () => DomainFacts {
  const started = Date.now()
  return () => ({
    domainId,
    hosting,
    kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
    runtime: `node/${process.versions.node}`,
    transports: { transport: endpoints() },
    uptime: (Date.now() - started) / 1000,
  })
}

/** The application's own kernel, as the local handlers describe it: `local:<host>`, no transports. */
export function localFacts (): () => DomainFacts {
  return domainFacts(`local:${hostname()}`, 'process', () => [])
}
