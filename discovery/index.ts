// metaos/discovery: WS-Discovery 1.1 and April 2005, for integrators (docs/discovery.md): a client
// (probe, resolve, a registry of announcements), a target service announcing an endpoint, a
// discovery proxy, and the types and scopes metaos domains announce.
export { DiscoveryClient, type DiscoveredTarget, type ProbeOptions, type DiscoveryClientOptions } from './client.js'
export { TargetService, type TargetServiceOptions } from './target-service.js'
export { DiscoveryProxy, DISCOVERY_PROXY_TYPES, type DiscoveryProxyOptions } from './discovery-proxy.js'
export { STORAGE_DOMAIN_TYPE, NETWORK_DOMAIN_TYPE, domainScopes } from './storage-announcement.js'
