// The dispatcher's checkpoints in the coordination stream directory (issue 20): the owner of every
// stream, its epoch and the position as of its last move, readable by any frontend and the
// dashboard; a move is a compare-and-set on the epoch, so of two frontends moving one stream only
// one wins. The takeover's wait for a domain that cannot be killed is the wait for its lease to go.
import { MetaosError } from '../../soap-runtime/errors.js'
import type { Coordination, Lease } from '../../coordination/api.js'
import type { Checkpoint, StreamDirectory } from '../placement/takeover.js'

/**
 * The stream directory of `c` as the dispatcher uses it; records are put under the frontend's
 * `lease` when given (they vanish with the frontend) and name it (`frontend`).
 */
export function coordinatedStreams (c: Coordination, frontend?: { readonly id: string, readonly lease?: Lease }): StreamDirectory {
  const record = (stream: string, cp: Checkpoint): Parameters<Coordination['streams']['open']>[0] => ({ stream, ...cp, ...(frontend === undefined ? {} : { frontend: frontend.id }) })
  return {
    opened: async (stream, cp) => {
      if (!(await c.streams.open(record(stream, cp), frontend?.lease))) throw new MetaosError('STALE_EPOCH', `${cp.path}: the stream directory already holds stream ${stream} at epoch ${cp.epoch} or newer`)
    },
    moved: async (stream, epoch, cp) => await c.streams.move(stream, epoch, record(stream, cp)),
    closed: async (stream) => { await c.streams.close(stream) },
    leaseExpired: async (epr) => { await c.leaseGone(epr) },
  }
}
