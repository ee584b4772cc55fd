// `metaos storage`: runs one storage domain in the foreground (DESIGN.md §5). Prints exactly one
// JSON "ready" line on stdout; logs go to stderr. SIGTERM/SIGINT drain in-flight calls and exit 0.
import { hostname } from 'node:os'
import { startStorageDomain, type StorageDomain } from '../backend-storage/storage-domain.js'
import { createLogger } from '../soap-runtime/logger.js'
import { loadDomainSecurity, securityFiles, SECURITY_HELP } from '../security/domain-security.js'
import { DISCOVERY_PROXY_HELP, discoveryProxyOf, DOMAIN_OPTIONS, limitsOf, METRICS_HELP, serveUntilSignalled } from './domain-lifecycle.js'
import { integer, number, parseOptions, text } from './options.js'
import { positive } from './option-kinds.js'
import { declaredScopes } from '../discovery/storage-announcement.js'
import { announcementOf } from '../service-domain/announcement.js'
import { FaultInjection } from '../service-domain/fault-injection.js'
import { COORDINATION_HELP, COORDINATION_OPTIONS, coordinationOf } from './coordination-options.js'

const HELP = `usage: metaos storage --root DIR [--listen URL]... [--name NAME] [--volume NAME] [options]

Runs a storage service domain serving the files under DIR.

  --root DIR              directory served (required); nothing outside it is ever opened
  --listen URL            http://HOST:PORT (port 0 = any free port), https://HOST:PORT
                          (needs --tls-cert/--tls-key), unix:/path/to.sock, or the framed
                          sessions WCF speaks ([MC-NMF]): net.uds:/path/to.sock and
                          net.tcp://HOST:PORT; repeatable; default http://127.0.0.1:0
  --name NAME             domain name, part of its stable EPR (default "storage")
  --volume NAME           the volume it serves; domains of one volume are interchangeable
                          (default: derived from the root's real path)
  --announce              announce with WS-Discovery (Hello/Bye, answers Probe/Resolve)
  --interface NAME        where to announce and listen (repeatable, or "all"; default: lo only)
  --announce-hostname     with --announce: XAddrs name listeners on 0.0.0.0 or [::]
                          by this host's name (a swarm task's hostname), not the wildcard
  --zone NAME             adds the scope metaos://zone/NAME
  --hosting KIND          process, container or vm: what runs this domain, said by GetDomainInfo
                          and the scope metaos://hosting/KIND (default process; the images of
                          docker/ pass container)
  --scope URI             adds a scope (repeatable)
  --max-message-bytes N   largest request accepted (default 67108864)
  --max-read-bytes N      largest count of one Read (default 16777216)
  --idle-handle-ms N      handles unused this long are closed (default 600000)
  --sync-io-max N         Reads and Writes up to N bytes with nothing queued on their handle
                          run as one synchronous system call on the event loop; larger ones
                          on libuv's threadpool (default 65536; 0: all on the threadpool, for
                          a volume whose system calls may block long)
  --sla N                 declared availability importance 0..1 (scope metaos://sla/N)
  --cost-per-call N       declared cost of one call (scope metaos://cost/call/N)
  --cost-per-mb N         declared cost of one MB moved (scope metaos://cost/mb/N)
  --fault-file FILE       fault injection for tests and benchmarks: follows {"delayMs": N,
                          "jitterMs": J, "closeListeners": true} in FILE (every operation waits
                          N ms plus 0..J ms at random; the listening sockets close, open
                          connections stay; missing file = no fault)
  --log-level LEVEL       pino level: fatal error warn info debug trace silent (default info)
  --hypervisor-bus PORT   inside a VM domain (vm/): serve the virtio-serial port named PORT as
                          the hypervisor bus; its calls reach the first net.uds: or unix:
                          listener
${METRICS_HELP}${DISCOVERY_PROXY_HELP}${COORDINATION_HELP}  --help                  this text

${SECURITY_HELP.trimStart()}
When ready it prints one line on stdout:
  {"event":"ready","service":"storage","endpoints":[…],"epr":"urn:uuid:…"}
The WSDL is at each HTTP endpoint + "?wsdl".
`

/** The options of `metaos storage` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  ...DOMAIN_OPTIONS,
  ...COORDINATION_OPTIONS,
  root: { kind: text('the directory to serve'), required: true },
  volume: { kind: text('a volume name') },
  'max-read-bytes': { kind: positive },
  'idle-handle-ms': { kind: positive },
  'sync-io-max': { kind: integer(0) },
  sla: { kind: number(0, 1) },
  'cost-per-call': { kind: number(0) },
  'cost-per-mb': { kind: number(0) },
  'fault-file': { kind: text('a fault file path (it need not exist yet)') },
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const hosting = values.hosting ?? 'process'
  const limits = limitsOf(values, [['max-message-bytes', 'maxMessageBytes'], ['max-read-bytes', 'maxReadBytes'], ['idle-handle-ms', 'idleMs']])
  const declared = declaredScopes({
    ...(values.sla === undefined ? {} : { sla: values.sla }),
    ...(values['cost-per-call'] === undefined ? {} : { costPerCall: values['cost-per-call'] }),
    ...(values['cost-per-mb'] === undefined ? {} : { costPerMB: values['cost-per-mb'] }),
  })
  const logger = createLogger('metaos-storage', values['log-level'])
  const faults = new FaultInjection()
  if (values['fault-file'] !== undefined) faults.follow(values['fault-file'], logger)
  const security = loadDomainSecurity(securityFiles(values))
  const discoveryProxy = discoveryProxyOf(values, security)
  const coordination = await coordinationOf(values, logger)
  const domain = await startStorageDomain({
    security,
    root: values.root,
    listen: values.listen ?? ['http://127.0.0.1:0'],
    ...(values.name === undefined ? {} : { name: values.name }),
    ...(values.volume === undefined ? {} : { volume: values.volume }),
    hosting,
    limits,
    logger,
    ...(values['metrics-listen'] === undefined ? {} : { metricsListen: values['metrics-listen'] }),
    faults,
    ...(coordination === undefined ? {} : { coordination }),
    ...(values['sync-io-max'] === undefined ? {} : { syncIoMax: values['sync-io-max'] }),
  }).catch(async (e: unknown) => { await coordination?.close(); throw e })
  // Node's process metrics (CPU, memory, event loop, GC) belong to this process: the library's registries never add them.
  domain.metrics.includeProcessMetrics()
  if (hosting === 'vm') volumeSignals(domain)
  const announce = values.announce === true || discoveryProxy !== undefined
    ? announcementOf({ service: 'storage', hosting, volume: domain.volume, ...(values.zone === undefined ? {} : { zone: values.zone }), scopes: [...declared, ...(values.scope ?? [])], ...(values.interface === undefined ? {} : { interfaces: values.interface }), ...(values['announce-hostname'] === true ? { hostname: hostname() } : {}), multicast: values.announce === true })
    : undefined
  const code = await serveUntilSignalled('storage', domain, announce, logger, {
    ...(discoveryProxy === undefined ? {} : { discoveryProxy }),
    ...(values['hypervisor-bus'] === undefined ? {} : { hypervisorBus: values['hypervisor-bus'] }),
    reloadTls: () => { const tls = security.reload(); if (tls !== undefined) domain.host.setTls(tls) },
  })
  await coordination?.close()
  return code
}

/**
 * In a VM domain's guest: SIGUSR1 lets go of the volume (operations held, descriptors closed: the
 * guest agent can unmount the 9p share, which QEMU's migration needs), SIGUSR2 takes it again; each
 * is answered on stdout, where the agent reads the domain's lines (vm/guest-agent.ts).
 */
function volumeSignals (domain: StorageDomain): void {
  const say = (o: object): void => { process.stdout.write(JSON.stringify(o) + '\n') }
  let turn: Promise<void> = Promise.resolve()
  const queue = (f: () => Promise<void>, event: string): void => {
    turn = turn.then(f).then(() => { say({ event }) }, (e: unknown) => { say({ event, error: (e as Error).message }) })
  }
  process.on('SIGUSR1', () => { queue(domain.releaseVolume, 'volume-released') })
  process.on('SIGUSR2', () => { queue(domain.takeVolume, 'volume-taken') })
}
