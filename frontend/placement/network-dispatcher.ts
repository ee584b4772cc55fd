// The network dispatcher: places each new connection, listener or name resolution on the best
// network domain of the Performance Mapping Table (the local kernel included, if tracked), by the
// same placement as storage (rules, vulnerability feed, score), and keeps every later call of a
// socket on the domain that holds it (affinity per socket).
//
// Failover semantics differ from storage on purpose: a TCP connection is state inside one kernel
// (sequence numbers, buffers) and cannot move to another. When the domain serving a socket fails —
// a reset or refused connection to the domain, a hang past the call's wait plus `hangMs`, a drain —
// the socket's call fails with CONNECTION_LOST (as it would if the application's own kernel had
// failed), the domain is marked suspect, and new connections go to a healthy domain. Calls that
// create nothing yet (Connect, Listen, ResolveHost) are retried on another domain.
//
// Pushed receives: the dispatcher's PushChannel hands a socket's receiver to the push channel of the
// handler of the domain holding it (a proxy on net.uds or net.tcp), so sockets placed on such a
// domain are pushed their data; those on a domain reached over HTTP (or the local kernel) read with
// Receive (`carries` says which). A session carrying pushes lost is the domain failing for the
// sockets it pushed to: they fail with CONNECTION_LOST, leave the affinity table ('lost'), and the
// domain is marked suspect, as when a call to it fails.
import { EventEmitter } from 'node:events'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { Invocation } from '../../soap-runtime/client.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import type { NetworkHandler, NetworkOp, PushChannel, PushReceiver } from '../handlers/network-handler.js'
import type { PerformanceMappingTable } from './pmt.js'
import type { SyscallContext } from './rules-engine.js'
import type { Placement, PlacementOptions } from './placement.js'
import { DispatchCore, lastFailure, type SuspectEvent } from './dispatch-core.js'

export interface NetworkDispatcherOptions extends PlacementOptions {
  /** Beyond the time a call may legitimately wait (its timeoutMs), this long without an answer is a hang (default 2000 ms; 1 ms more per 8 KiB sent). */
  readonly hangMs?: number
  /** Domains tried for a Connect, Listen or ResolveHost before giving up (default 3). */
  readonly maxAttempts?: number
}

export interface NetworkDispatcherEvents {
  /** A domain the dispatcher saw fail: marked suspect in the PMT. */
  suspect: [SuspectEvent]
  /** A socket lost with its domain. */
  lost: [{ readonly socket: string, readonly epr: string, readonly reason: string }]
}

type BatchOp = NetworkOperations['Batch']['input']['op'][number]
type Call<K extends NetworkOp> = Promise<Invocation<NetworkOperations[K]['output']>>

export class NetworkDispatcher extends EventEmitter<NetworkDispatcherEvents> implements NetworkHandler {
  readonly destination = 'dispatcher'
  /** Socket or listener handle → the domain that holds it. */
  readonly affinity = new Map<string, string>()
  /** Connections and listeners placed, by domain. */
  readonly placements: Map<string, number>
  /** Pushed receives of each socket through the push channel of the domain holding it. */
  readonly pushes: PushChannel = {
    carries: (socket) => this.#channelOf(socket) !== undefined,
    attach: (socket, receiver) => this.#attach(socket, receiver),
  }

  readonly #core: DispatchCore<NetworkOperations>
  readonly #handlers: ReadonlyMap<string, NetworkHandler>
  readonly #o: NetworkDispatcherOptions
  /** Session losses already counted against their domain (every receiver on the session hears the same one). */
  readonly #lostSessions = new WeakSet<MetaosError>()

  constructor (pmt: PerformanceMappingTable, handlers: ReadonlyMap<string, NetworkHandler>, options: NetworkDispatcherOptions = {}) {
    super()
    this.#o = options
    this.#handlers = handlers
    this.#core = new DispatchCore<NetworkOperations>(pmt, handlers, {
      placement: options,
      what: 'network domain',
      callee: 'network domain',
      maxAttempts: options.maxAttempts ?? 3,
      failover: true,
      // A fault the domain sent (a refused connection, an unknown host) is about the destination.
      faultsAreTheDestinations: true,
      markFrom: ['healthy'],
      onSuspect: (ev) => { this.emit('suspect', ev) },
    })
    this.placements = this.#core.placements
  }

  /** Which domain a new connection (or resolution) would go to, and why. */
  place (ctx: SyscallContext = { op: 'Connect' }, exclude: ReadonlySet<string> = new Set()): Placement {
    return this.#core.place(ctx, exclude)
  }

  /** Sockets and listeners held by a domain. */
  socketsOn (epr: string): string[] { return [...this.affinity].filter(([, e]) => e === epr).map(([s]) => s) }

  /** Connections cannot move between kernels: nothing is migrated (the supervisor's call; they stay until closed or lost). */
  async migrateAll (_epr: string, _reason: string): Promise<number> { return 0 }

  async invoke<K extends NetworkOp> (op: K, input: NetworkOperations[K]['input']): Call<K> {
    const handle = handleOf(op, input)
    if (handle === undefined) return await this.#placed(op, input)
    const epr = this.affinity.get(handle)
    if (epr === undefined) throw new MetaosError('INVALID_HANDLE', 'this socket was not opened through the dispatcher, or is closed')
    try {
      const inv = await this.#on(epr, op, input)
      if (op === 'Close') this.affinity.delete(handle)
      if (op === 'Accept') { const s = (inv.output as NetworkOperations['Accept']['output']).socket; if (s !== undefined) this.affinity.set(s, epr) }
      return inv
    } catch (e) {
      if (e instanceof MetaosError && e.code === 'INVALID_HANDLE') this.affinity.delete(handle)
      if (!this.#core.domainFailed(e)) throw e
      this.#core.suspect(epr, e.code, op)
      // The handles the domain held are gone with it.
      for (const s of this.socketsOn(epr)) { this.affinity.delete(s); this.emit('lost', { socket: s, epr, reason: e.code }) }
      if (op === 'Close') return { output: {} as NetworkOperations[K]['output'], serviceMicros: undefined, totalMicros: 0 }
      throw new MetaosError('CONNECTION_LOST', `the network domain serving this socket failed (${e.code}: ${e.message}); a TCP connection cannot move to another kernel`, { cause: e })
    }
  }

  async close (): Promise<void> { /* the handlers belong to whoever made them */ }

  /** The push channel that carries a socket's pushes: its domain's handler's, if that has one (looked up now: domains come and go). */
  #channelOf (socket: string): PushChannel | undefined {
    const epr = this.affinity.get(socket)
    const channel = epr === undefined ? undefined : this.#handlers.get(epr)?.pushes
    return channel === undefined || channel.carries?.(socket) === false ? undefined : channel
  }

  #attach (socket: string, receiver: PushReceiver): () => void {
    const epr = this.affinity.get(socket)
    const channel = this.#channelOf(socket)
    if (epr === undefined || channel === undefined) throw new MetaosError('NOT_SUPPORTED', `socket ${socket} is not held by a domain whose session carries pushed receives: read it with Receive`)
    return channel.attach(socket, {
      received: (r) => { receiver.received(r) },
      lost: (err) => {
        // The domain closed the connection with the session: the socket is lost as with a failed call.
        if (this.affinity.get(socket) === epr) {
          this.affinity.delete(socket)
          if (!this.#lostSessions.has(err)) { this.#lostSessions.add(err); if (this.#core.domainFailed(err)) this.#core.suspect(epr, err.code, 'Received') }
          this.emit('lost', { socket, epr, reason: err.code })
        }
        receiver.lost(err)
      },
    })
  }

  /** A call that creates a socket or listener, or needs no socket: placed, and retried elsewhere if the domain fails. */
  async #placed<K extends NetworkOp> (op: K, input: NetworkOperations[K]['input']): Call<K> {
    const r = await this.#core.inTurn({
      op,
      choose: (tried) => this.place({ op, ...hostOf(input) }, tried).chosen,
      run: async (epr) => {
        const inv = await this.#on(epr, op, input)
        const created = op === 'Connect' ? (inv.output as NetworkOperations['Connect']['output']).socket : op === 'Listen' ? (inv.output as NetworkOperations['Listen']['output']).listener : undefined
        if (created !== undefined) { this.affinity.set(created, epr); this.#core.placed(epr) }
        return inv
      },
    })
    if (r.ok) return r.value
    throw new MetaosError('TRANSPORT_ERROR', `no network domain could serve ${op} (last failure: ${lastFailure(r.last)})`, { cause: r.last })
  }

  /** One call on one domain, with the hang deadline: the call's own wait plus hangMs. */
  async #on<K extends NetworkOp> (epr: string, op: K, input: NetworkOperations[K]['input']): Call<K> {
    const i = input as { timeoutMs?: number, data?: Buffer }
    return await this.#core.call(epr, op, input, (i.timeoutMs ?? 0) + (this.#o.hangMs ?? 2000) + (i.data?.length ?? 0) / 8192)
  }
}
/** The socket or listener a call works on (a Batch: all its socket operations must name the same one). */
function handleOf (op: string, input: unknown): string | undefined {
  if (op === 'Batch') {
    let h: string | undefined
    for (const o of (input as NetworkOperations['Batch']['input']).op as BatchOp[]) {
      const inner = Object.values(o)[0] as { socket?: string, listener?: string }
      const x = inner.socket ?? inner.listener
      if (x === undefined) continue
      if (h !== undefined && x !== h) throw new MetaosError('NOT_SUPPORTED', 'a Batch through the network dispatcher works on one socket at a time')
      h = x
    }
    return h
  }
  const i = input as { socket?: string, listener?: string }
  return i.socket ?? i.listener
}

function hostOf (input: unknown): { path?: string } {
  const i = input as { host?: string, port?: number, name?: string }
  if (i.host !== undefined) return { path: `${i.host}:${i.port ?? 0}` }
  return i.name === undefined ? {} : { path: i.name }
}
