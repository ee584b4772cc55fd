// The coordination API (issue 20, DESIGN.md §10, docs/coordination.md): what domains and frontends
// of several hosts must agree on — who holds a lease, which opens of a volume's files are held on
// which domain, which domain owns a stream at which epoch, the PMT rows each frontend measured.
// Types only: connect.ts is the way in (it loads the etcd client on first use), etcd-coordination.ts
// the one implementation.
import type { Logger } from 'pino'
import type { FileAccess, FileShare } from '../wsdl/generated/storage-service.js'
import type { CoordinationEndpoints } from './coordination-url.js'
export type { CoordinationEndpoints }

export interface CoordinationOptions {
  /** `etcd://HOST:PORT[,HOST:PORT…]` (plain gRPC) or `etcds://…` (TLS; `ca`, and `cert` + `key` for a client certificate). */
  readonly url: string
  /** PEM: the CA etcd's certificates chain to (etcds://). */
  readonly ca?: string | Buffer
  /** PEM: this process's client certificate and key (etcds:// with --client-cert-auth). */
  readonly cert?: string | Buffer
  readonly key?: string | Buffer
  /** A lease's TTL in etcd (default 3 s; etcd grants at least its own minimum, about 2 s). */
  readonly leaseTtlSeconds?: number
  /** Where every key lives (default `/metaos`): several clusters can share one etcd. */
  readonly prefix?: string
  /** How long a call to etcd may take before it fails with COORDINATION_UNAVAILABLE (default 2000 ms). */
  readonly deadlineMs?: number
  /**
   * How long before its TTL runs out (counted from when the last acknowledged renewal was sent,
   * on this process's monotonic clock) a lease stops being valid here (default TTL/6, at least 200 ms).
   */
  readonly safetyMarginMs?: number
  readonly logger?: Logger
}

export type LeaseKind = 'domain' | 'frontend'

/** What a lease's holder publishes while it holds it (`/metaos/holders/<id>`). */
export interface HolderInfo {
  readonly volume?: string
  readonly endpoints?: readonly string[]
  readonly host?: string
}

export interface HolderRecord extends HolderInfo {
  readonly id: string
  readonly kind: LeaseKind
  /** The etcd lease id (decimal), changed by every new grant. */
  readonly lease: string
  /** When the lease was granted (ms since the epoch, the holder's wall clock). */
  readonly since: number
}

export interface LeaseEvents {
  /** The lease became valid: the first grant, and each grant after a loss. */
  granted: []
  /** The lease stopped being valid here (no renewal acknowledged in time, or etcd said it expired). */
  lost: [{ readonly lease: string, readonly reason: string }]
  /** A new lease was granted after a loss (never the lost one again). */
  regained: [{ readonly lease: string, readonly generation: number }]
}

/**
 * A lease held by a domain or a frontend, renewed every TTL/4. It is `valid()` only while the last
 * renewal etcd acknowledged was sent less than TTL − margin ago by this process's monotonic clock,
 * so the holder stops acting before etcd can expire the lease and let someone else take over.
 * A lost lease is never used again: a new one is granted (a new `generation`); what was held under
 * the lost one (registrations, handles) is gone for good.
 */
export interface Lease {
  readonly kind: LeaseKind
  readonly holder: string
  /** The current etcd lease id, undefined before the first grant. */
  readonly id: string | undefined
  /** 1 for the first lease granted, +1 for each grant after a loss; 0 before the first. */
  readonly generation: number
  valid: () => boolean
  /** Milliseconds of validity left (0 when not valid). */
  remainingMs: () => number
  /** Resolves once the lease is valid; COORDINATION_UNAVAILABLE after `timeoutMs` (default the deadline). */
  whenValid: (timeoutMs?: number) => Promise<void>
  on: <E extends keyof LeaseEvents>(event: E, listener: (...args: LeaseEvents[E]) => void) => this
  off: <E extends keyof LeaseEvents>(event: E, listener: (...args: LeaseEvents[E]) => void) => this
  /** Stops renewing and revokes the lease in etcd: everything held under it vanishes at once. */
  release: () => Promise<void>
}

/** An open of a volume's file, as every domain of the volume sees it. */
export interface ShareRequest {
  readonly volume: string
  /** The file's path inside the volume ('/'-separated, no leading '/'). */
  readonly path: string
  readonly access: FileAccess
  readonly share: FileShare
  /** The stream the open serves (a dispatcher's, fencing): opens of one stream never conflict, so a stream that moves (failover, migration) is not refused by its own earlier open. */
  readonly stream?: string
}

export interface ShareRecord extends ShareRequest {
  /** The domain holding the open (its EPR). */
  readonly owner: string
  /** A registration id (not the handle: a handle is a secret of its caller). */
  readonly id: string
  readonly at: number
}

export interface ShareRegistration {
  readonly record: ShareRecord
  /** Removes the registration (the handle's Close): resolves once etcd took it, or after the deadline (then retried in the background until etcd takes it or the lease is gone). */
  release: () => Promise<void>
}

/** The opens of every domain of a volume, held under each domain's lease. */
export interface ShareRegistry {
  /**
   * Registers an open, in one etcd transaction that checks every registration of the same file on
   * any domain (.NET FileShare) and creates this one under the domain's lease. SHARING_VIOLATION
   * naming the domain that holds the other open; COORDINATION_UNAVAILABLE when etcd does not
   * answer within the deadline or the lease is not held.
   */
  register: (r: ShareRequest) => Promise<ShareRegistration>
  /** SHARING_VIOLATION when an open on any domain does not admit deleting the file (FileShare.Delete). */
  checkDelete: (volume: string, path: string) => Promise<void>
  /** Registrations of a volume (of one file with `path`). */
  list: (volume: string, path?: string) => Promise<ShareRecord[]>
}

/** A stream's checkpoint (the dispatcher's): who owns it now, at which epoch, from which position. */
export interface StreamRecord {
  readonly stream: string
  readonly volume: string
  readonly path: string
  /** EPR of the domain serving the stream. */
  readonly owner: string
  /** Bumped by every move (failover, migration); handle operations carry it. */
  readonly epoch: number
  /** The position the owner acknowledged last (as of the last checkpoint written). */
  readonly position: number
  readonly access?: FileAccess
  readonly share?: FileShare
  /** The frontend (module id) whose application holds the stream. */
  readonly frontend?: string
  readonly at?: number
}

export type StreamEvent = { readonly type: 'put', readonly record: StreamRecord } | { readonly type: 'delete', readonly stream: string }

/** The streams' checkpoints, readable by every frontend and the dashboard. */
export interface StreamRegistry {
  /** A new stream (or a newer epoch of one): false when the directory holds this stream at this epoch or a newer one. */
  open: (r: StreamRecord, lease?: Lease) => Promise<boolean>
  /** Compare-and-set on the epoch: the stream goes from `epoch` to `next` (next.epoch > epoch); false when it is not at `epoch` (someone else moved it) or is gone. */
  move: (stream: string, epoch: number, next: StreamRecord) => Promise<boolean>
  /** The acknowledged position, written only while the stream is still at `epoch`; false otherwise. */
  checkpoint: (stream: string, epoch: number, position: number) => Promise<boolean>
  close: (stream: string) => Promise<void>
  get: (stream: string) => Promise<StreamRecord | undefined>
  list: () => Promise<StreamRecord[]>
  /** Every change from now on; returns the function that stops watching. */
  watch: (listener: (e: StreamEvent) => void) => Promise<() => Promise<void>>
}

export type MeasureEvent<Row> = { readonly type: 'put', readonly moduleId: string, readonly rows: readonly Row[], readonly at: number } | { readonly type: 'delete', readonly moduleId: string }

/** PMT rows each frontend measured, under its lease (gone when it dies). Raw: the frontend weighs them (pmt-exchange-guard.ts). */
export interface MeasureBoard {
  publish: (moduleId: string, rows: readonly unknown[], lease: Lease) => Promise<void>
  /** The current rows of every module, then every change; returns the function that stops watching. */
  watch: (listener: (e: MeasureEvent<unknown>) => void) => Promise<() => Promise<void>>
}

export interface Coordination {
  readonly endpoints: CoordinationEndpoints
  readonly prefix: string
  readonly leaseTtlSeconds: number
  readonly deadlineMs: number
  /** The lease of a domain (one per EPR in this process), granted and renewed from now on; its holder record carries `info`. */
  domainLease: (epr: string, info?: HolderInfo) => Lease
  /** The lease of a frontend (its module id). */
  frontendLease: (moduleId: string, info?: HolderInfo) => Lease
  /** The share registry of the domain holding `lease`. */
  shares: (lease: Lease) => ShareRegistry
  readonly streams: StreamRegistry
  readonly measures: MeasureBoard
  /** Who holds a lease now (domains and frontends). */
  holders: () => Promise<HolderRecord[]>
  /**
   * Resolves once `id` holds no lease, or a different one than it holds now (its lease expired or
   * was revoked): a takeover from a domain that cannot be killed waits for this.
   */
  leaseGone: (id: string, o?: { timeoutMs?: number }) => Promise<void>
  /** Revokes this process's leases (their registrations vanish at once) and closes the client. */
  close: () => Promise<void>
}
