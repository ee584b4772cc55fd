// 'metaos': what applications use — files and sockets, their destinations (the local kernel, a
// domain's endpoint, 'discover', or a handler of your own), the errors, and closeAll() for an orderly
// end. Operators and integrators have subpaths (docs/api.md#what-metaos-exports): metaos/frontend,
// metaos/domains, metaos/discovery, metaos/soap, metaos/dashboard. Importing this module loads only
// what a stream needs: the local kernels, the discovery frontend and the exception-less writer are
// loaded by their first use (test/project/module-count.test.ts keeps it so).
export { FileStream, FileMode, FileAccess, FileShare, SeekOrigin, type FileStreamOptions, type StreamStats } from './frontend/api/file-stream.js'
export { NetSocket, type NetSocketOptions, type NetConnectOptions, type NetDestination, type SocketStats, type AddressInfo } from './frontend/api/net-socket.js'
export { NetServer, type NetServerOptions, type NetListenOptions } from './frontend/api/net-server.js'
export { NetDatagramSocket, type NetDatagramOptions, type NetBindOptions, type RemoteInfo } from './frontend/api/net-datagram.js'
// Destinations: the handler interfaces, and proxies to domains (one of your own, or the shared one a URL names).
export type { StorageHandler, StorageOp } from './frontend/handlers/storage-handler.js'
export { createStorageProxy, closeSharedProxies, type StorageProxyOptions } from './frontend/handlers/storage-proxy.js'
export { createNetworkProxy, closeSharedNetworkProxies, type NetworkHandler, type NetworkOp, type NetworkProxyOptions } from './frontend/handlers/network-handler.js'
export type { SharedFrontendOptions } from './frontend/assembly/intelligent-frontend.js'
export { closeAll } from './frontend/handlers/process-registry.js'
export { MetaosError, ERRORS, FAULT_CODES, type ErrorCode, type FaultCode } from './soap-runtime/errors.js'
export type { Invocation } from './soap-runtime/client.js'
export type * as Storage from './wsdl/generated/storage-service.js'
export type * as Network from './wsdl/generated/network-service.js'
