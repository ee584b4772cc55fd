// The contracts' own facts, beside the WSDL they come from: where each service is served and the
// WSDL text itself (read once, on first use), and what a host or an in-process runner needs of each
// (descriptor, fault element and codes). Domains serve these; proxies and discovery use the paths.
// The network service's contract is in network-contract.ts: a storage domain does not load it.
import { readFileSync } from 'node:fs'
import type { ServiceDescriptor } from '../soap-runtime/descriptor.js'
import { packageFile } from './package-root.js'
import { StorageServiceDescriptor, StorageFaultCodes } from './generated/storage-service.js'

export const STORAGE_PATH = '/storage'
export const NETWORK_PATH = '/network'
export const PERFORMANCE_PATH = '/performance'

const texts = new Map<string, string>()
function wsdl (file: string): string {
  let text = texts.get(file)
  if (text === undefined) texts.set(file, text = readFileSync(packageFile('wsdl', file), 'utf8'))
  return text
}
export const storageWsdl = (): string => wsdl('StorageService.wsdl')
export const networkWsdl = (): string => wsdl('NetworkService.wsdl')
export const performanceWsdl = (): string => wsdl('PerformanceService.wsdl')

/** What serving or running a service in process needs of its contract, beside its implementation. */
export interface ServiceContract {
  readonly descriptor: ServiceDescriptor
  /** HTTP path the service answers on. */
  readonly path: string
  readonly wsdl: () => string
  /** The fault detail element, and the codes it admits (the WSDL's FaultCode enumeration). */
  readonly faultElement: string
  readonly faultCodes: readonly string[]
  readonly timingHeader: string
}

export const STORAGE_CONTRACT: ServiceContract = {
  descriptor: StorageServiceDescriptor, path: STORAGE_PATH, wsdl: storageWsdl, faultElement: 'StorageFault', faultCodes: StorageFaultCodes, timingHeader: 'ServiceTiming',
}
