// The dashboard's HTTP server (express, 127.0.0.1 only): the page and its static files
// (dashboard/public/), the status JSON that `metaos status` reads (/status), the time series the
// page charts (/api/history), a Server-Sent Events stream pushing the status and the latest
// samples every second (/api/events), and the place where a Prometheus registry mounts
// (/metrics). It renders nothing itself: the page builds its DOM from the JSON with textContent,
// and the Content-Security-Policy forbids inline scripts, so data can never become markup.
// It must not measure or change the cluster: it only reads `snapshot()` and the history.
import express, { type Request, type Response } from 'express'
import type { Server } from 'node:http'
import { packageFile } from '../wsdl/package-root.js'
import type { PmtHistory } from './pmt-history.js'
import type { DomainControl } from '../frontend/assembly/cluster-control.js'
import { mountControl } from './control-routes.js'

/** What prom-client's `Registry` offers (`createFrontendMetrics(...).registry`): mounted at /metrics when given. */
export interface MetricsSource {
  readonly contentType: string
  metrics: () => Promise<string> | string
}

export interface DashboardOptions {
  /** The status served at /status and pushed on /api/events (for `metaos up`: LocalCluster.status() and the pid). */
  readonly snapshot: () => Promise<object>
  /** The series charted (omitted: /api/history answers empty series). */
  readonly history?: PmtHistory
  /** Mounted at /metrics (text exposition format). Without it /metrics answers 404. */
  readonly metrics?: MetricsSource
  /** Period of the event stream (ms, default 1000). */
  readonly pushIntervalMs?: number
  /** The control endpoint (/api/domains, control-routes.ts), guarded by `control.token`; without it there is none. */
  readonly control?: { readonly domains: DomainControl, readonly token: string }
}

const PUBLIC = packageFile('dashboard', 'public')

const SECURITY_HEADERS = {
  // Only this origin's files: no inline script or style, no framing, no plugin content.
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

export function createDashboardApp (o: DashboardOptions): express.Express {
  const app = express()
  app.disable('x-powered-by')
  app.disable('etag')
  app.use((req, res, next) => {
    // A page on 127.0.0.1 is still reachable from a hostile site through DNS rebinding: answer only
    // requests addressed to a loopback name.
    const host = (req.headers.host ?? '').replace(/:\d+$/, '')
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) { res.status(421).type('text/plain').send('this dashboard answers on 127.0.0.1 only\n'); return }
    res.set(SECURITY_HEADERS)
    next()
  })

  app.get('/status', (_req, res) => {
    o.snapshot().then((s) => { res.set('cache-control', 'no-store').json(s) }, (e: unknown) => { res.status(500).type('text/plain').send(`${String(e)}\n`) })
  })

  app.get('/api/history', (req, res) => {
    const since = Number(req.query.since ?? 0)
    res.set('cache-control', 'no-store').json({
      intervalMs: o.history?.intervalMs ?? 1000,
      capacity: o.history?.capacity ?? 0,
      series: o.history?.series(Number.isFinite(since) ? since : 0) ?? {},
    })
  })

  app.get('/api/events', (req, res) => { events(req, res, o) })

  if (o.control !== undefined) mountControl(app, o.control.domains, o.control.token)

  // The Prometheus endpoint: the frontend's registry (frontend/assembly/frontend-metrics.ts) mounts here.
  app.get('/metrics', (_req, res) => {
    if (o.metrics === undefined) { res.status(404).type('text/plain').send('no metrics registry mounted\n'); return }
    const m = o.metrics
    Promise.resolve(m.metrics()).then((text) => { res.set('content-type', m.contentType).send(text) }, (e: unknown) => { res.status(500).type('text/plain').send(`${String(e)}\n`) })
  })

  app.use(express.static(PUBLIC, { index: 'index.html', maxAge: 0 }))
  app.use((_req, res) => { res.status(404).type('text/plain').send('not found\n') })
  return app
}

/** Server-Sent Events: `status` (the snapshot plus the latest sample of each domain) now and every period. */
function events (req: Request, res: Response, o: DashboardOptions): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' })
  res.write('retry: 1000\n\n')
  let busy = false
  const push = (): void => {
    if (busy) return
    busy = true
    o.snapshot().then((status) => {
      res.write(`event: status\ndata: ${JSON.stringify({ status, latest: o.history?.latest() ?? {} })}\n\n`)
    }, (e: unknown) => {
      res.write(`event: failure\ndata: ${JSON.stringify({ message: String(e) })}\n\n`)
    }).finally(() => { busy = false })
  }
  push()
  const timer = setInterval(push, o.pushIntervalMs ?? 1000)
  req.on('close', () => { clearInterval(timer) })
}

export interface ServedDashboard {
  /** The page: http://127.0.0.1:PORT/ */
  readonly url: string
  /** The status JSON: http://127.0.0.1:PORT/status */
  readonly statusUrl: string
  readonly server: Server
  close: () => Promise<void>
}

/** Serves the dashboard on 127.0.0.1:`port` (0: any free port). */
export async function serveDashboard (o: DashboardOptions, port = 0): Promise<ServedDashboard> {
  const app = createDashboardApp(o)
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(port, '127.0.0.1', (e?: Error) => { if (e === undefined) resolve(s); else reject(e) })
    s.once('error', reject)
  })
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return {
    url: `${base}/`,
    statusUrl: `${base}/status`,
    server,
    close: async () => {
      // Event streams never end by themselves: close their connections with the server.
      await new Promise<void>((resolve) => { server.close(() => { resolve() }); server.closeAllConnections() })
    },
  }
}
