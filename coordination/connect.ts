// The way into coordination: `connectCoordination` parses the URL (a bad one fails at once, before
// anything loads), then loads the etcd client (etcd3, gRPC) — on the first call only, so nothing
// loads it without `--coordination` — and connects. The API's types come with it.
import type { Coordination, CoordinationOptions } from './api.js'
import { parseCoordinationUrl } from './coordination-url.js'
export type * from './api.js'
export { parseCoordinationUrl }

/** Connects to etcd (at least one member must answer within the deadline, 5 s at least). */
export async function connectCoordination (o: CoordinationOptions): Promise<Coordination> {
  const endpoints = parseCoordinationUrl(o.url, o)
  const { EtcdCoordination } = await import('./etcd-coordination.js')
  return await EtcdCoordination.connect(endpoints, o)
}
