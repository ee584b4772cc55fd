// The control endpoint of a running `metaos up`, on the dashboard's 127.0.0.1 server: what
// `metaos domain` (and the page's buttons) call. Every request must carry the token `metaos up`
// printed, as `Authorization: Bearer TOKEN`; without it, or with another, the answer is 401 and
// nothing is read or changed. A browser on another site cannot send that header without a CORS
// preflight, which this server never grants, and the Host check of dashboard-server.ts answers
// only loopback names.
//   GET  /api/domains                  → { domains: DomainView[] }
//   POST /api/domains/NAME/ACTION      → { action, domain, decision }  (body JSON: by, newName, cpuPercent, memoryBytes)
// Refusals are { error: { code, message } }: 400 INVALID_ARGUMENT, 404 NO_SUCH_DOMAIN,
// 409 INVALID_STATE, 501 NOT_SUPPORTED, 401 UNAUTHORIZED.
import { timingSafeEqual, createHash } from 'node:crypto'
import express, { type Request, type Response } from 'express'
import { ControlError, DOMAIN_ACTIONS, type ActionRequest, type DomainAction, type DomainControl } from '../frontend/assembly/cluster-control.js'

const STATUS: Record<ControlError['code'], number> = { INVALID_ARGUMENT: 400, NO_SUCH_DOMAIN: 404, INVALID_STATE: 409, NOT_SUPPORTED: 501 }

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** True when the request carries `token` (compared in constant time). */
export function hasToken (req: Request, token: string): boolean {
  const m = /^Bearer ([A-Za-z0-9_-]{1,200})$/.exec(req.headers.authorization ?? '')
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token))
}

function refuse (res: Response, status: number, code: string, message: string): void {
  res.status(status).set('cache-control', 'no-store').json({ error: { code, message } })
}

/** Mounts the control routes on `app`: `control` acts, `token` guards. */
export function mountControl (app: express.Express, control: DomainControl, token: string): void {
  const guard = (req: Request, res: Response, next: () => void): void => {
    if (!hasToken(req, token)) { res.set('www-authenticate', 'Bearer'); refuse(res, 401, 'UNAUTHORIZED', 'this needs the control token `metaos up` printed (Authorization: Bearer TOKEN)'); return }
    next()
  }
  app.get('/api/domains', guard, (_req, res) => {
    control.list().then((domains) => { res.set('cache-control', 'no-store').json({ domains }) }, (e: unknown) => { refuse(res, 500, 'INTERNAL', String(e)) })
  })
  app.post('/api/domains/:name/:action', guard, express.json({ limit: '4kb' }), (req, res) => {
    const action = String(req.params.action) as DomainAction
    if (!(DOMAIN_ACTIONS as readonly string[]).includes(action)) { refuse(res, 404, 'INVALID_ARGUMENT', `unknown action "${action}": one of ${DOMAIN_ACTIONS.join(', ')}`); return }
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>
    const by = typeof body.by === 'string' && body.by.trim() !== '' ? body.by.replace(/[^\x20-\x7e]/g, '?').slice(0, 100) : 'unnamed client'
    const r: ActionRequest = {
      action,
      name: String(req.params.name),
      by,
      ...(typeof body.newName === 'string' ? { newName: body.newName } : {}),
      ...(typeof body.cpuPercent === 'number' ? { cpuPercent: body.cpuPercent } : {}),
      ...(typeof body.memoryBytes === 'number' ? { memoryBytes: body.memoryBytes } : {}),
    }
    control.act(r).then((done) => { res.set('cache-control', 'no-store').json(done) }, (e: unknown) => {
      if (e instanceof ControlError) refuse(res, STATUS[e.code], e.code, e.message)
      else refuse(res, 500, 'INTERNAL', e instanceof Error ? e.message : String(e))
    })
  })
  // A malformed JSON body: a 400 in the same shape, not express's HTML page.
  app.use('/api/domains', (err: unknown, _req: Request, res: Response, next: (e?: unknown) => void) => {
    if (err instanceof SyntaxError || (typeof err === 'object' && err !== null && 'status' in err)) { refuse(res, 400, 'INVALID_ARGUMENT', `the request body: ${(err as Error).message}`); return }
    next(err)
  })
}
