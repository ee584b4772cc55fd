// The live dashboard of an application's own frontend (the one `destination: 'discover'` uses):
// the dashboard serves a frontend; the frontend knows nothing of the dashboard.
import type { IntelligentFrontend } from '../frontend/assembly/intelligent-frontend.js'
import { createFrontendMetrics } from '../frontend/assembly/frontend-metrics.js'
import { serveDashboard } from './dashboard-server.js'
import { PmtHistory } from './pmt-history.js'

const served = new WeakMap<IntelligentFrontend, Promise<string>>()

/**
 * Serves `front`'s live dashboard (domains, PMT and score parts, charts, supervisor timeline,
 * placements, streams) and its Prometheus metrics (/metrics) on 127.0.0.1:`port` (default any free
 * port). Returns the page's URL; serving the same frontend again returns the same URL. Closed with
 * the frontend. The charts and the metrics' counters start when it is served; the PMT, decisions
 * and the status's lists hold what came before too.
 */
export async function serveFrontendDashboard (front: IntelligentFrontend, port = 0): Promise<string> {
  let url = served.get(front)
  if (url === undefined) served.set(front, url = start(front, port))
  return await url
}

async function start (front: IntelligentFrontend, port: number): Promise<string> {
  const history = new PmtHistory({ pmt: front.pmt })
  // The dispatchers made so far; one made later is counted in open streams, not in moves.
  const metrics = createFrontendMetrics({ pmt: front.pmt, supervisor: front.supervisor, dispatchers: front.dispatchers })
  const page = await serveDashboard({ snapshot: async () => ({ ...front.status(), pid: process.pid }), history, metrics }, port)
  front.onClose(async () => { history.stop(); metrics.close(); await page.close() })
  return page.url
}
