// The contract between the domain manager and what runs a domain (a local process, a container, a
// VM): the manager owns names, states and events; a driver starts one domain and hands back an
// instance the manager can stop, kill, pause, resume and resize.
import type { DomainLimits, LimitsOutcome } from './cgroup-limits.js'

export interface DomainSpec {
  /** What the domain serves (default 'storage'). */
  readonly service?: 'storage' | 'network'
  /** Part of the domain's stable EPR (with the host and, for storage, the root's real path). */
  readonly name: string
  /** The directory a storage domain serves (ignored by a network domain). */
  readonly root: string
  readonly volume?: string
  /** `http://HOST:PORT` (port 0 = any free port), `net.uds:/path.sock` (the bus) and/or `unix:/path.sock` (HTTP over a Unix socket); none = the CLI's default. */
  readonly listen: readonly string[]
  /** More `metaos storage` arguments, e.g. `['--fault-file', f, '--announce']`. */
  readonly extraArgs?: readonly string[]
  readonly limits?: DomainLimits
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
}

export interface DomainExit { readonly code: number | null, readonly signal: NodeJS.Signals | null }

/** What hosts a domain and which kernel serves it, as its driver knows them. */
export interface DomainHosting {
  readonly kind: 'process' | 'container' | 'vm'
  readonly kernel: { readonly sysname: string, readonly release: string }
}

/** One running domain, as a driver hands it to the manager. */
export interface DomainInstance {
  readonly pid: number
  readonly epr: string
  readonly endpoints: readonly string[]
  readonly limits?: LimitsOutcome
  /** Where it runs, when the driver knows better than "a process on this host's kernel". */
  readonly hosting?: DomainHosting
  /** Resolves once the domain has exited, whatever the cause, and its resources are released. */
  readonly exited: Promise<DomainExit>
  /** Asks the domain to drain and say Bye; forces it after `graceMs`. */
  stop: (graceMs: number) => Promise<DomainExit>
  kill: () => Promise<DomainExit>
  /** Resolves once the domain is frozen. */
  pause: () => Promise<void>
  resume: () => Promise<void>
  /**
   * Puts `limits` in force in place, without a restart (a limit left out is lifted); works on a
   * paused domain too. Never throws for what the host forbids: that is the outcome. A driver
   * without it cannot resize (a container driver would `docker update`).
   */
  setLimits?: (limits: DomainLimits) => Promise<LimitsOutcome>
  /**
   * Moves the running domain, whole, to a new process of its host with its memory and connections
   * (a VM domain: QEMU's live migration); `pid` is the new process's afterwards. A driver without
   * it cannot (the manager's caller clones and moves streams instead).
   */
  migrate?: () => Promise<MigrationReport>
}

/** What a whole-domain live migration took. */
export interface MigrationReport {
  readonly fromPid: number
  readonly toPid: number
  /** The host's migration mechanism, e.g. "qemu live migration over unix:…". */
  readonly mechanism: string
  /** The guest's stop-and-copy pause, as the hypervisor measured it (QEMU's query-migrate `downtime`). */
  readonly downtimeMs: number
  /** From the migration's start to its end, as the hypervisor measured it (query-migrate `total-time`). */
  readonly migrationMs: number
  /** From asking to the domain serving again on the new process, as the host measured it. */
  readonly totalMs: number
  /** How long calls to the domain were held (no call failed): the stall an application sees. */
  readonly stallMs: number
  /** Memory sent (bytes). */
  readonly transferredBytes: number
  /** What did not move as is (e.g. connections through a forwarded port). */
  readonly notes: readonly string[]
}

/** How domains are run: a local process, a container… */
export interface DomainDriver {
  start: (spec: DomainSpec) => Promise<DomainInstance>
}

