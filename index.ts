// What applications import from 'metaos'. Modules inside the project import each other directly;
// only what is re-exported here is the public API.
export { FileStream, FileMode, FileAccess, FileShare, SeekOrigin, type FileStreamOptions, type StreamStats } from './frontend/file-stream.js'
export type { StorageHandler, StorageOp } from './frontend/storage-handler.js'
export { LocalHandler } from './frontend/local-handler.js'
export { createStorageProxy, closeSharedProxies, type StorageProxyOptions } from './frontend/storage-proxy.js'
export { startStorageDomain, type StorageDomain, type StorageDomainOptions } from './backend-storage/storage-domain.js'
export { MetaosError, ERRORS, FAULT_CODES, type ErrorCode, type FaultCode } from './soap-runtime/errors.js'
export type { Invocation } from './soap-runtime/client.js'
export type * as Storage from './frontend/generated/storage-service.js'
export { storageRegistry, closeStorageRegistry, discoverStorageEndpoint, bestEndpoint } from './frontend/discovered-domains.js'
export { DiscoveryClient, type DiscoveredTarget, type ProbeOptions, type DiscoveryClientOptions } from './discovery/client.js'
export { TargetService, type TargetServiceOptions } from './discovery/target-service.js'
export { STORAGE_DOMAIN_TYPE, NETWORK_DOMAIN_TYPE, domainScopes } from './discovery/storage-announcement.js'
