// metaos/domains: running service domains, for operators (docs/api.md#metaosdomains): a storage or
// network domain in this process, the DomainManager and its drivers (process, container, VM), fault
// injection, the network domain's allow-list.
export { DomainManager, type DomainSpec, type ManagedDomain, type ManagedDomainState, type DomainDriver, type DomainInstance, type DomainExit, type DomainHosting, type DomainLimits, type LimitsOutcome, type DomainManagerOptions } from './domain-manager.js'
export { ProcessDriver, type ProcessDriverOptions } from './process-driver.js'
export { ContainerDriver, containerName, type ContainerDriverOptions } from './container-driver.js'
export { VmDriver, type VmDriverOptions } from '../vm/vm-driver.js'
export { startStorageDomain, type StorageDomain, type StorageDomainOptions } from '../backend-storage/storage-domain.js'
export { startNetworkDomain, type NetworkDomain, type NetworkDomainOptions } from '../backend-network/network-domain.js'
export { FaultInjection } from '../service-domain/fault-injection.js'
export { parseAllowList, allowAll, LOOPBACK_ONLY } from '../security/allow-list.js'
