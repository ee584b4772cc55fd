// A frontend with coordination (METAOS_CONFIG's "coordination", METAOS_COORDINATION): it connects
// to etcd, holds a lease as a frontend (its module id), keeps its dispatchers' checkpoints in the
// stream directory under that lease, and publishes its measures on the board while weighing the
// other frontends' (pmt-board.ts). Everything goes with the frontend: its lease is revoked at close.
import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import type { Logger } from 'pino'
import { connectCoordination, type Coordination, type CoordinationOptions, type Lease } from '../../coordination/connect.js'
import { PmtBoard } from '../placement/pmt-board.js'
import type { StreamDirectory } from '../placement/takeover.js'
import { coordinatedStreams } from './stream-directory.js'
import type { PerformanceMappingTable } from '../placement/pmt.js'

/** What of an IntelligentFrontend the measure board needs (structural: that module imports this one). */
export interface CoordinatedFront {
  readonly pmt: PerformanceMappingTable
  readonly handlers: { has: (epr: string) => boolean }
  readonly registry: { readonly targets: { has: (epr: string) => boolean } }
  onClose: (fn: () => Promise<void>) => void
}

export interface FrontendCoordination {
  readonly client: Coordination
  readonly moduleId: string
  readonly lease: Lease
  /** For the dispatchers (their `directory` option). */
  readonly directory: StreamDirectory
  /** Starts the measure board for `front` and closes everything with it. */
  attach: (front: CoordinatedFront, o?: { intervalMs?: number }) => Promise<PmtBoard>
}

export async function joinCoordination (o: CoordinationOptions, moduleId = `urn:uuid:${randomUUID()}`, logger?: Logger): Promise<FrontendCoordination> {
  const client = await connectCoordination({ ...o, ...(logger === undefined ? {} : { logger }) })
  const lease = client.frontendLease(moduleId, { host: hostname() })
  return {
    client,
    moduleId,
    lease,
    directory: coordinatedStreams(client, { id: moduleId, lease }),
    attach: async (front, a = {}) => {
      const board = new PmtBoard({
        pmt: front.pmt, board: client.measures, lease, moduleId,
        knows: (epr) => front.handlers.has(epr) || front.registry.targets.has(epr),
        ...(a.intervalMs === undefined ? {} : { intervalMs: a.intervalMs }),
        ...(logger === undefined ? {} : { logger }),
      })
      front.onClose(async () => { await board.close(); await client.close() })
      await board.start()
      return board
    },
  }
}
