// The affinity table (the paper's thread → domain table): once a stream is placed on a domain,
// every later syscall of that stream goes to the same domain, until the supervisor moves it.
// Keyed by the handle a domain returned for the stream; an entry lives until the stream closes.

export class AffinityTable {
  readonly #byHandle = new Map<string, string>()

  bind (handle: string, epr: string): void { this.#byHandle.set(handle, epr) }
  lookup (handle: string): string | undefined { return this.#byHandle.get(handle) }
  release (handle: string): void { this.#byHandle.delete(handle) }
  get size (): number { return this.#byHandle.size }

  /** Streams placed on a domain (what a migration would move). */
  streamsOn (epr: string): string[] {
    return [...this.#byHandle].filter(([, e]) => e === epr).map(([h]) => h)
  }
}
