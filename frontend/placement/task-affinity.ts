// Thread affinity (the paper's thread → domain table; issue 22, point 5): the streams a task opens
// keep going to the domain its first stream was placed on, while that domain stays healthy and a
// first choice of the rules (and scores at least `minShare` of the best), so a task's files share
// one domain's caches. A task is an async
// context (AsyncLocalStorage: `withTask(fn)` runs `fn` and everything it awaits as one task), or,
// with `mode: 'thread'`, the worker thread making the call when no task context is set. The table
// maps the task to its domain; entries are bounded (the oldest go first) and can be listed for
// `metaos status` and the dashboard. Opt-in: a dispatcher without it places every stream afresh.
import { AsyncLocalStorage } from 'node:async_hooks'
import { threadId } from 'node:worker_threads'

const tasks = new AsyncLocalStorage<string>()
let next = 0

/** Runs `fn` as one task (`name`, else a new id): the streams it opens share a domain while it stays healthy. */
export function withTask<T> (fn: () => T, name?: string): T {
  return tasks.run(name ?? `task-${++next}`, fn)
}

/** The task of the current async context, if any. */
export function currentTask (): string | undefined { return tasks.getStore() }

export interface TaskAffinityOptions {
  /** 'context' (default): only calls inside `withTask`; 'thread': also the worker thread (`thread-N`) outside any task. */
  readonly mode?: 'context' | 'thread'
  /** Entries kept at most (default 10 000): the least recently used go. */
  readonly max?: number
  /** False: record each task's placements (and its switches) without steering them — to measure churn without affinity. */
  readonly steer?: boolean
  /** A task stays on its domain while that domain's score is at least this share of the best candidate's (default 0.5): healthy but much slower is left. */
  readonly minShare?: number
}

export interface TaskEntry {
  readonly task: string
  /** The domain the task's streams go to. */
  readonly epr: string
  /** Streams placed for it, and how many of them were kept on its domain (the rest placed afresh). */
  readonly placed: number
  readonly kept: number
  /** Placements that went to another domain than the task's previous one (churn). */
  readonly switches: number
  /** When the task was placed on this domain (ms since the epoch). */
  readonly since: number
}

export class TaskAffinity {
  readonly mode: 'context' | 'thread'
  readonly steer: boolean
  readonly minShare: number
  readonly #max: number
  readonly #byTask = new Map<string, TaskEntry>()

  constructor (o: TaskAffinityOptions = {}) {
    this.mode = o.mode ?? 'context'
    this.#max = o.max ?? 10_000
    this.steer = o.steer ?? true
    this.minShare = o.minShare ?? 0.5
  }

  /** The task making the current call (undefined: none, placement as usual). */
  current (): string | undefined {
    return currentTask() ?? (this.mode === 'thread' ? `thread-${threadId}` : undefined)
  }

  /** The domain a task is on. */
  domainOf (task: string): string | undefined { return this.#byTask.get(task)?.epr }

  /** A stream of `task` was placed on `epr` (`kept`: kept there by the affinity). */
  placed (task: string, epr: string, kept: boolean): void {
    const e = this.#byTask.get(task)
    this.#byTask.delete(task)
    const same = e?.epr === epr
    this.#byTask.set(task, { task, epr, placed: (e?.placed ?? 0) + 1, kept: (e?.kept ?? 0) + (kept ? 1 : 0), switches: (e?.switches ?? 0) + (e !== undefined && !same ? 1 : 0), since: same ? e!.since : Date.now() })
    if (this.#byTask.size > this.#max) this.#byTask.delete(this.#byTask.keys().next().value!)
  }

  forget (task: string): void { this.#byTask.delete(task) }
  get size (): number { return this.#byTask.size }
  entries (): TaskEntry[] { return [...this.#byTask.values()] }
}
