// Docker HEALTHCHECK of the metaos domain images (no curl in them): GETs the domain's WSDL
// (`<endpoint>?wsdl`) and exits 0 when it answers 200 with a WSDL, 1 otherwise. The endpoint is
// METAOS_HEALTH_URL (http://… or unix:/path.sock) when set, else found in the domain's own command
// line (the container's `metaos storage|network … --listen …`): the bus socket first (no port to
// guess), else an HTTP listener with a fixed port, asked on loopback. Plain Node, no dependencies.
import { readFileSync, readdirSync } from 'node:fs'
import { request } from 'node:http'

const TIMEOUT_MS = Number(process.env.METAOS_HEALTH_TIMEOUT_MS ?? 2500)

function fail (message) {
  process.stdout.write(`unhealthy: ${message}\n`)
  process.exit(1)
}

/** argv of the metaos domain in this container: PID 1, or (with --init, or in a shell) any process. */
function domainArgv () {
  const pids = ['1', ...readdirSync('/proc').filter((p) => /^\d+$/.test(p) && p !== '1' && p !== String(process.pid))]
  for (const pid of pids) {
    let argv
    try { argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') } catch { continue }
    const i = argv.findIndex((a) => a.endsWith('/metaos.js') || a === 'metaos')
    if (i >= 0 && (argv[i + 1] === 'storage' || argv[i + 1] === 'network')) return argv.slice(i + 1)
  }
  return undefined
}

function listeners (args) {
  const out = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--listen' && i + 1 < args.length) out.push(args[++i])
    else if (args[i].startsWith('--listen=')) out.push(args[i].slice('--listen='.length))
  }
  return out.length > 0 ? out : ['http://127.0.0.1:0']
}

/** { socketPath } or { host, port } plus the path of the service, for one listen URL. */
function target (url, service) {
  if (url.startsWith('unix:') && !url.startsWith('unix://')) return { socketPath: url.slice('unix:'.length), path: `/${service}` }
  let u
  try { u = new URL(url) } catch { return undefined }
  if (u.protocol !== 'http:' || u.port === '' || u.port === '0') return undefined
  const host = u.hostname.replace(/^\[|\]$/g, '')
  const loop = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host
  return { host: loop, port: Number(u.port), path: u.pathname !== '/' ? u.pathname : `/${service}` }
}

const args = domainArgv()
let t
if (process.env.METAOS_HEALTH_URL !== undefined && process.env.METAOS_HEALTH_URL !== '') {
  const url = process.env.METAOS_HEALTH_URL
  t = target(url, args?.[0] ?? 'storage')
  if (t === undefined) fail(`METAOS_HEALTH_URL=${url} is not http://HOST:PORT[/path] or unix:/path.sock`)
} else {
  if (args === undefined) fail('no `metaos storage|network` process in this container (set METAOS_HEALTH_URL)')
  const candidates = listeners(args).map((l) => target(l, args[0])).filter((x) => x !== undefined)
  t = candidates.find((c) => c.socketPath !== undefined) ?? candidates[0]
  if (t === undefined) fail(`no listener to ask among ${listeners(args).join(' ')} (port 0 cannot be guessed; set METAOS_HEALTH_URL)`)
}

const where = t.socketPath !== undefined ? `unix:${t.socketPath}` : `http://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}`
const req = request({ ...(t.socketPath !== undefined ? { socketPath: t.socketPath } : { host: t.host, port: t.port }), path: `${t.path}?wsdl`, method: 'GET', timeout: TIMEOUT_MS }, (res) => {
  let body = ''
  res.setEncoding('utf8')
  res.on('data', (c) => { if (body.length < 1_000_000) body += c })
  res.on('end', () => {
    if (res.statusCode !== 200) fail(`${where}${t.path}?wsdl answered ${res.statusCode}`)
    if (!/<(\w+:)?definitions[\s>]/.test(body)) fail(`${where}${t.path}?wsdl did not return a WSDL`)
    process.stdout.write(`healthy: ${where}${t.path}?wsdl\n`)
    process.exit(0)
  })
})
req.on('timeout', () => { req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)) })
req.on('error', (e) => { fail(`${where}${t.path}?wsdl: ${e.message}`) })
req.end()
