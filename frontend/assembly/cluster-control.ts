// An operator's hands on a running cluster (`metaos domain`, the dashboard's control endpoint):
// list its domains, and start, stop, pause, resume, restart, clone, resize or migrate one by name,
// through the domain manager (migrate: migrate-action.ts). What the supervisor would undo is told first: a domain stopped or paused is
// held (the isolation policy does not restart it) and isolated beforehand, so its streams move to
// another domain of the volume before it stops answering; once running again, the supervisor
// readmits it when its probes are good. Every action is noted on the supervisor's timeline with
// who asked. It checks states and names; the transport (HTTP, a token) is the caller's.
import type { ManagedDomain } from '../../domains/domain-manager.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { LocalCluster } from './local-cluster.js'
import type { Decision } from './supervisor.js'
import { migrate, type MigrationView } from './migrate-action.js'

export const DOMAIN_ACTIONS = ['start', 'stop', 'pause', 'resume', 'restart', 'clone', 'resize', 'migrate'] as const
export type DomainAction = typeof DOMAIN_ACTIONS[number]

/** Why an action was refused; the control endpoint answers it as `{ error: { code, message } }`. */
export type ControlErrorCode = 'NO_SUCH_DOMAIN' | 'INVALID_STATE' | 'INVALID_ARGUMENT' | 'NOT_SUPPORTED'

export class ControlError extends Error {
  readonly code: ControlErrorCode
  constructor (code: ControlErrorCode, message: string) {
    super(message)
    this.name = 'ControlError'
    this.code = code
  }
}

export interface ActionRequest {
  readonly action: DomainAction
  readonly name: string
  /** Who asks, as the timeline shows it ("metaos domain (user alice)", "dashboard"). */
  readonly by: string
  /** clone, and migrate of a process or container domain: the new domain's name (default `<name>-clone-<n>`, `<name>-m<n>`). */
  readonly newName?: string
  /** resize: share of one CPU in percent (50 = half a CPU). */
  readonly cpuPercent?: number
  /** resize: memory limit in bytes. */
  readonly memoryBytes?: number
}

export interface DomainView {
  readonly name: string
  readonly epr: string
  readonly service: string
  /** The domain manager's state: running, paused, stopped, exited. */
  readonly state: string
  /** The PMT's state (healthy, suspect, draining, isolated), for a domain the PMT measures. */
  readonly pmtState?: string
  readonly pid: number
  readonly restarts: number
  readonly endpoints: readonly string[]
  readonly volume?: string
  readonly limits?: { readonly cpuPercent?: number, readonly memoryBytes?: number, readonly applied: boolean, readonly mechanism: string, readonly reason?: string }
}

export interface ActionResult {
  readonly action: DomainAction
  readonly domain: DomainView
  /** The timeline entry this action made. */
  readonly decision: Decision
  /** migrate: how the domain moved and what it cost. */
  readonly migration?: MigrationView
}

export interface DomainControl {
  list: () => Promise<DomainView[]>
  act: (r: ActionRequest) => Promise<ActionResult>
}

const live = (d: ManagedDomain): boolean => d.state === 'running' || d.state === 'paused'

/** The control of `cluster`'s domains (those of its domain manager: the storage domains and, for process hosting, the network gateway). */
export function clusterControl (cluster: LocalCluster): DomainControl {
  const view = viewOf(cluster)
  return {
    list: async () => (await cluster.manager.list()).map(view),
    act: async (r) => {
      if (!(DOMAIN_ACTIONS as readonly string[]).includes(r.action)) throw new ControlError('INVALID_ARGUMENT', `unknown action "${String(r.action)}": one of ${DOMAIN_ACTIONS.join(', ')}`)
      let d: ManagedDomain
      try { d = await cluster.manager.get(r.name) } catch { throw new ControlError('NO_SUCH_DOMAIN', `no domain named "${r.name}" (metaos domain list shows them)`) }
      let done
      try {
        done = await perform(cluster, r, d)
      } catch (e) {
        if (e instanceof ControlError) throw e
        // The manager's refusals (a name taken, a closed manager, a bad limit) are the caller's to fix.
        if (e instanceof MetaosError && e.code === 'INVALID_ARGUMENT') throw new ControlError('INVALID_ARGUMENT', e.message)
        throw e
      }
      const decision = cluster.supervisor.note(done.after.epr, r.action, r.by, done.reason)
      return { action: r.action, domain: view(done.after), decision, ...(done.migration === undefined ? {} : { migration: done.migration }) }
    },
  }
}

function viewOf (cluster: LocalCluster): (d: ManagedDomain) => DomainView {
  return (d) => {
    const row = cluster.pmt.row(d.epr)
    const l = d.limits
    return {
      name: d.name, epr: d.epr, service: d.spec.service ?? 'storage', state: d.state, pid: d.pid, restarts: d.restarts, endpoints: [...d.endpoints],
      ...(row === undefined ? {} : { pmtState: row.state }),
      ...(d.spec.volume === undefined ? {} : { volume: d.spec.volume }),
      ...(l === undefined ? {} : { limits: { ...d.spec.limits, applied: l.applied, mechanism: l.mechanism, ...(l.reason === undefined ? {} : { reason: l.reason }) } }),
    }
  }
}

function must (d: ManagedDomain, ok: boolean, action: string): void {
  if (!ok) throw new ControlError('INVALID_STATE', `domain "${d.name}" is ${d.state}: it cannot ${action}`)
}

/** Does `r` to `d`: the domain after, and what the timeline says of it. */
async function perform (cluster: LocalCluster, r: ActionRequest, d: ManagedDomain): Promise<{ after: ManagedDomain, reason: string, migration?: MigrationView }> {
  const { manager, supervisor } = cluster
  const who = `operator ${r.action} (${r.by})`
  switch (r.action) {
    case 'stop':
      must(d, live(d), 'be stopped')
      cluster.held.add(d.name)
      await supervisor.isolate(d.epr, who)
      return { after: await manager.stop(d.name), reason: 'stopped (SIGTERM: it drained); held: the supervisor does not restart it' }
    case 'pause':
      must(d, d.state === 'running', 'be paused')
      cluster.held.add(d.name)
      await supervisor.isolate(d.epr, who)
      return { after: await manager.pause(d.name), reason: 'paused (SIGSTOP) after its streams moved; held: the supervisor does not restart it' }
    case 'resume': {
      must(d, d.state === 'paused', 'be resumed')
      const after = await manager.resume(d.name)
      cluster.held.delete(d.name)
      return { after, reason: 'resumed (SIGCONT); readmitted once its probes are good' }
    }
    case 'start': {
      must(d, !live(d), 'be started')
      // A restart of a stopped domain: the same spec, EPR and addresses.
      const after = await manager.restart(d.name)
      cluster.held.delete(d.name)
      return { after, reason: 'started again (same EPR and addresses); readmitted once its probes are good' }
    }
    case 'restart': {
      cluster.held.add(d.name)
      try {
        await supervisor.isolate(d.epr, who)
        return { after: await manager.restart(d.name), reason: 'restarted (same EPR and addresses) after its streams moved; readmitted once its probes are good' }
      } finally { cluster.held.delete(d.name) }
    }
    case 'clone': {
      const newName = r.newName ?? `${d.name}-clone-${cluster.names.length}`
      if ((await manager.list()).some((x) => x.name === newName)) throw new ControlError('INVALID_ARGUMENT', `a domain named "${newName}" exists already`)
      const after = (d.spec.service ?? 'storage') === 'storage' ? await cluster.clone(d.name, newName) : await manager.clone(d.name, newName)
      return { after, reason: `cloned from ${d.name} as ${after.name} (a new EPR${after.spec.volume === undefined ? '' : `, volume ${after.spec.volume}`})` }
    }
    case 'resize':
      return await resize(cluster, r, d)
    case 'migrate':
      return await migrate(cluster, r, d, who, (code, message) => new ControlError(code, message))
  }
}

async function resize (cluster: LocalCluster, r: ActionRequest, d: ManagedDomain): Promise<{ after: ManagedDomain, reason: string }> {
  must(d, live(d), 'be resized')
  if (r.cpuPercent === undefined && r.memoryBytes === undefined) throw new ControlError('INVALID_ARGUMENT', 'resize needs a CPU share, a memory limit, or both')
  // The limits not given stay as they were.
  const limits = { ...d.spec.limits, ...(r.cpuPercent === undefined ? {} : { cpuPercent: r.cpuPercent }), ...(r.memoryBytes === undefined ? {} : { memoryBytes: r.memoryBytes }) }
  const after = await cluster.manager.resize(d.name, limits)
  const facts = [limits.cpuPercent === undefined ? '' : `cpu ${limits.cpuPercent}%`, limits.memoryBytes === undefined ? '' : `memory ${limits.memoryBytes} B`].filter((x) => x !== '').join(', ')
  if (after.limits?.applied !== true) {
    const why = after.limits?.reason ?? 'no mechanism'
    cluster.supervisor.note(d.epr, r.action, r.by, `${facts} not applied: ${why}`)
    throw new ControlError('NOT_SUPPORTED', `the limits of "${d.name}" could not be changed in place: ${why}; it runs on unchanged (a restart starts it with them)`)
  }
  return { after, reason: `resized in place (${after.limits.mechanism}): ${facts}` }
}
