// Calls with a deadline: what the dispatchers use to tell a hung domain from a slow one. The call
// itself goes on (a domain may answer later); its late outcome is swallowed, never unhandled.
// One watch per dispatcher and one timer for all its calls, armed for the earliest deadline and
// moved only when a call comes with an earlier one: a stream's calls, one after the other, cost no
// timer each (a timer set and cleared per call — a new timer list, a priority-queue insert and
// removal, the loop's ref toggled — was a visible share of the supervised dispatcher's per-call
// cost). The timer is unref'd: the call watched keeps the process alive (its socket), not its watch.

interface Watched {
  readonly at: number
  readonly reject: (e: Error) => void
  readonly expired: () => Error
  done: boolean
}

export class DeadlineWatch {
  readonly #pending = new Set<Watched>()
  #timer: NodeJS.Timeout | undefined
  /** When the timer fires (performance.now() ms), if armed. */
  #due = Infinity

  /** Calls watched and not settled yet. */
  get size (): number { return this.#pending.size }

  /** `call`, or `expired()` as its error once `ms` passed without an outcome (then the call's own outcome is swallowed). */
  watch<T> (call: Promise<T>, ms: number, expired: () => Error): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const w: Watched = { at: performance.now() + ms, reject, expired, done: false }
      this.#pending.add(w)
      if (w.at < this.#due) this.#arm(w.at)
      call.then((v) => {
        if (w.done) return
        w.done = true
        this.#pending.delete(w)
        resolve(v)
      }, (e: unknown) => {
        if (w.done) return // late: swallowed
        w.done = true
        this.#pending.delete(w)
        reject(e)
      })
    })
  }

  #arm (at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#due = at
    this.#timer = setTimeout(() => { this.#check() }, Math.max(1, Math.ceil(at - performance.now())))
    this.#timer.unref()
  }

  #check (): void {
    this.#timer = undefined
    this.#due = Infinity
    const now = performance.now()
    let next = Infinity
    for (const w of this.#pending) {
      if (w.at <= now) {
        w.done = true
        this.#pending.delete(w)
        w.reject(w.expired())
      } else if (w.at < next) next = w.at
    }
    if (next !== Infinity) this.#arm(next)
  }
}

/** A call with a deadline of its own (one timer): for a single call outside a dispatcher. */
export async function withDeadline<T> (call: Promise<T>, ms: number, expired: () => Error): Promise<T> {
  return await new DeadlineWatch().watch(call, ms, expired)
}
