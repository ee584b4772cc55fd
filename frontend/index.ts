// metaos/frontend: the intelligent frontend, for operators and integrators (docs/api.md#metaosfrontend):
// the shared frontends and how to assemble one, the dispatchers, the Performance Mapping Table and
// its exchange, rules, the vulnerability feed, the supervisor, a local cluster, METAOS_CONFIG, the
// registry of discovered storage domains, the local handlers. Applications need none of it
// ('discover' loads it); import from 'metaos' for streams and sockets.
export { IntelligentFrontend, sharedFrontend, closeSharedFrontend, identityFromScopes, type IntelligentFrontendOptions, type SharedFrontendOptions } from './assembly/intelligent-frontend.js'
export { NetworkFrontend, sharedNetworkFrontend, closeSharedNetworkFrontend, type NetworkFrontendOptions } from './assembly/network-frontend.js'
export { loadConfig, configFromEnvironment, type MetaosConfig, type FrontendSettings, type ExchangeSettings } from './assembly/configuration.js'
export { Supervisor, type SupervisorOptions, type Decision } from './assembly/supervisor.js'
export { createFrontendMetrics, type FrontendMetrics, type FrontendMetricsParts } from './assembly/frontend-metrics.js'
export { LocalCluster, type LocalClusterOptions, type ClusterStatus, type LifecycleEvent } from './assembly/local-cluster.js'
export { Dispatcher, type Placement, type DispatcherOptions, type MoveEvent, type PlacementRecord } from './placement/dispatcher.js'
export { NetworkDispatcher, type NetworkDispatcherOptions } from './placement/network-dispatcher.js'
export { PerformanceMappingTable, type PmtRow, type DomainIdentity, type DomainState, type Declared } from './placement/pmt.js'
export { score, DEFAULT_WEIGHTS, type ScoreWeights, type ScoreParts } from './placement/score.js'
export { PerformanceModule, PROBE_FILE } from './placement/performance-module.js'
export { PmtExchange, PERFORMANCE_PATH, PERFORMANCE_MODULE_TYPE } from './placement/pmt-exchange.js'
export { AffinityTable } from './placement/affinity-table.js'
export { TaskAffinity, withTask, currentTask, type TaskEntry, type TaskAffinityOptions } from './placement/task-affinity.js'
export { Holt, LimitForecast, type LimitOptions, type Crossing } from './placement/forecast.js'
export type { Sla, SlaForecastOptions, ForecastView } from './placement/sla-forecast.js'
export { RulesEngine, validateRules, type Rule, type DomainSelector, type SyscallContext } from './placement/rules-engine.js'
export { VulnerabilityFeed, type Vulnerability } from './placement/vulnerability-feed.js'
export { storageRegistry, closeStorageRegistry, discoverStorageEndpoint, bestEndpoint } from './handlers/discovered-domains.js'
export { LocalHandler } from './handlers/local-handler.js'
export { LocalNetworkHandler } from './handlers/local-network-handler.js'
export { sharedNetworkProxy } from './handlers/network-handler.js'
