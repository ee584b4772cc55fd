// The affinity table (the paper's thread → domain table): once a stream is placed on a domain,
// every later syscall of that stream goes to the same domain, until the supervisor moves it or the
// domain fails. The application holds a virtual handle; the table maps it to the domain and the
// handle that domain issued, and keeps the stream's checkpoint — path, access, share and the
// position the domain acknowledged — so that the stream can be reopened on another domain of the
// same volume and go on where it was. An entry lives until the stream closes.
import type { FileAccess, FileShare } from '../../wsdl/generated/storage-service.js'

export interface StreamEntry {
  /** The handle the application holds (stable across migrations). */
  readonly id: string
  readonly path: string
  readonly access: FileAccess
  readonly share: FileShare
  /** The volume of the file: the stream moves only between domains of this volume. */
  readonly volume: string
  /** The stream's name on the wire and in the stream directory (not the application's handle). */
  readonly stream: string
  /** The domain serving the stream now, and the handle it issued. */
  epr: string
  real: string
  /** Bumped at each move (failover, migration): the stream's operations carry it, domains refuse older ones. */
  epoch: number
  /** When the domain acknowledged the stream's Open (ms since the epoch): the run of the domain a fence must kill. */
  since: number
  /** Set when the stream cannot go on (its domain hung and could not be fenced): every later call fails with it. */
  broken?: Error
  /** The position the domain acknowledged last (where a replay starts). */
  position: number
  /** Calls and migrations of the stream run one after the other: one is under way… */
  busy: boolean
  /** …and these wait for their turn, in order. */
  readonly waiting: Array<() => void>
  /** Times the stream moved (failover or migration). */
  moves: number
  /** The stream's size for placement (FileStream's expectedBytes, then its last SetLength): what its moves are chosen for. */
  bytes?: number
  /** A Write reached the domain: from then on a SetLength no longer re-places the stream. */
  written: boolean
}

export class AffinityTable {
  readonly #byId = new Map<string, StreamEntry>()

  add (e: Omit<StreamEntry, 'busy' | 'waiting' | 'moves' | 'written' | 'epoch'>): StreamEntry {
    const entry: StreamEntry = { ...e, epoch: 1, busy: false, waiting: [], moves: 0, written: false }
    this.#byId.set(e.id, entry)
    return entry
  }

  get (id: string): StreamEntry | undefined { return this.#byId.get(id) }
  /** The domain a stream is on. */
  lookup (id: string): string | undefined { return this.#byId.get(id)?.epr }
  release (id: string): void { this.#byId.delete(id) }
  get size (): number { return this.#byId.size }

  /** Streams placed on a domain (what a migration moves). */
  streamsOn (epr: string): StreamEntry[] {
    return [...this.#byId.values()].filter((e) => e.epr === epr)
  }

  entries (): StreamEntry[] { return [...this.#byId.values()] }
}

/** Runs `fn` in the stream's turn (after the calls and migrations before it). */
export async function serialized<T> (s: StreamEntry, fn: () => Promise<T>): Promise<T> {
  if (s.busy) await nextTurn(s)
  else s.busy = true
  try { return await fn() } finally { endTurn(s) }
}

/** Waits for a busy stream's turn (FIFO); the one ending before hands it over (`busy` stays true). */
export async function nextTurn (s: StreamEntry): Promise<void> {
  await new Promise<void>((resolve) => { s.waiting.push(resolve) })
}

/** The stream's turn ends: the next waiting call or migration goes on, else the stream is idle. */
export function endTurn (s: StreamEntry): void {
  const next = s.waiting.shift()
  if (next === undefined) s.busy = false
  else next()
}
