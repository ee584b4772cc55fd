// `metaos domain migrate` (and the dashboard's): a domain moves. Two ways, said as such:
//  - live: the driver moves the running domain whole to a new process (a VM domain: QEMU's own live
//    migration, vm/vm-migration.ts) — same EPR, endpoints and open handles; the streams through it
//    go on after a stall; the downtime is QEMU's, measured by it;
//  - clone + stream migration + stop: a process or container domain has no hypervisor to carry its
//    memory, so a clone of it starts (a new EPR, same volume), the supervisor moves its streams to
//    a healthy domain of the volume at their acknowledged positions (the dispatcher's migration),
//    and it stops (held: the supervisor leaves it stopped). The stall is the streams' longest.
import { setTimeout as sleep } from 'node:timers/promises'
import type { ManagedDomain } from '../../domains/domain-manager.js'
import { MetaosError } from '../../soap-runtime/errors.js'
import type { MoveEvent } from '../placement/dispatcher.js'
import type { LocalCluster } from './local-cluster.js'

export interface MigrationView {
  /** live: the whole domain moved to a new process; clone: clone + stream migration + stop. */
  readonly kind: 'live' | 'clone'
  readonly mechanism: string
  readonly fromPid: number
  /** live: the new process. */
  readonly toPid?: number
  /** clone: the domain that stands in (a new EPR). */
  readonly to?: string
  /** live: the guest's stop-and-copy pause as the hypervisor measured it. */
  readonly downtimeMs?: number
  /** What the applications saw: live, how long calls were held; clone, the longest stall of a moved stream. */
  readonly stallMs: number
  /** From asking to done, as this host measured it. */
  readonly totalMs: number
  /** clone: streams moved. */
  readonly streams?: number
  readonly notes?: readonly string[]
}

/** Why a migrate is refused, as the control endpoint's errors say it (cluster-control.ts's ControlError). */
export type Refuse = (code: 'INVALID_STATE' | 'INVALID_ARGUMENT' | 'NOT_SUPPORTED', message: string) => Error

export async function migrate (cluster: LocalCluster, r: { readonly newName?: string }, d: ManagedDomain, who: string, refuse: Refuse): Promise<{ after: ManagedDomain, reason: string, migration: MigrationView }> {
  if (d.state !== 'running') throw refuse('INVALID_STATE', `domain "${d.name}" is ${d.state}: it cannot be migrated${d.state === 'paused' ? ' (resume it first)' : ''}`)
  const t0 = performance.now()
  try {
    const { domain, report } = await cluster.manager.migrate(d.name)
    return {
      after: domain,
      reason: `live-migrated whole to a new process (pid ${report.fromPid} → ${report.toPid}, ${report.mechanism}): downtime ${report.downtimeMs} ms (QEMU), calls held ${report.stallMs} ms, ${report.totalMs} ms in all; same EPR and endpoints, its streams went on`,
      migration: { kind: 'live', mechanism: report.mechanism, fromPid: report.fromPid, toPid: report.toPid, downtimeMs: report.downtimeMs, stallMs: report.stallMs, totalMs: report.totalMs, ...(report.notes.length === 0 ? {} : { notes: report.notes }) },
    }
  } catch (e) {
    if (!(e instanceof MetaosError && e.code === 'NOT_SUPPORTED')) throw e
  }
  if ((d.spec.service ?? 'storage') !== 'storage') throw refuse('NOT_SUPPORTED', `domain "${d.name}" is a ${d.spec.service ?? '?'} domain: its open sockets cannot move to a clone (only storage streams migrate)`)
  const newName = r.newName ?? `${d.name}-m${cluster.names.length}`
  if ((await cluster.manager.list()).some((x) => x.name === newName)) throw refuse('INVALID_ARGUMENT', `a domain named "${newName}" exists already`)
  const clone = await cluster.clone(d.name, newName)
  // The streams can move once a domain other than this one can be placed on (the clone is, after its first probe).
  for (const until = Date.now() + 30_000; Date.now() < until; await sleep(50)) {
    try { cluster.dispatcher.place({ op: 'Open' }, new Set([d.epr])); break } catch { /* not yet eligible */ }
  }
  const moves: MoveEvent[] = []
  const onMove = (m: MoveEvent): void => { if (m.from === d.epr) moves.push(m) }
  cluster.dispatcher.on('moved', onMove)
  cluster.held.add(d.name)
  try { await cluster.supervisor.isolate(d.epr, who) } finally { cluster.dispatcher.off('moved', onMove) }
  const after = await cluster.manager.stop(d.name)
  const stallMs = Math.round(Math.max(0, ...moves.map((m) => m.stallMs)))
  const totalMs = Math.round(performance.now() - t0)
  return {
    after,
    reason: `migrated by clone + stream migration + stop (no live migration for a ${d.hosting?.kind ?? 'process'} domain): cloned as ${clone.name} (a new EPR), ${moves.length} stream(s) moved at their positions (longest stall ${stallMs} ms), then stopped; held: the supervisor leaves it stopped`,
    migration: { kind: 'clone', mechanism: 'clone + stream migration + stop', fromPid: d.pid, to: clone.name, stallMs, totalMs, streams: moves.length },
  }
}
