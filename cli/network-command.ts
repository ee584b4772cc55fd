// `metaos network`: runs one network domain in the foreground (DESIGN.md §5). Prints exactly one
// JSON "ready" line on stdout; logs go to stderr. SIGTERM/SIGINT: Bye (when announced), drain
// in-flight calls, close every socket, exit 0. A bad --allow rule is a usage error (exit 2).
import { hostname } from 'node:os'
import { startNetworkDomain } from '../backend-network/network-domain.js'
import { LOOPBACK_ONLY } from '../security/allow-list.js'
import { createLogger } from '../soap-runtime/logger.js'
import { loadDomainSecurity, securityFiles, SECURITY_HELP } from '../security/domain-security.js'
import { DISCOVERY_PROXY_HELP, discoveryProxyOf, DOMAIN_OPTIONS, limitsOf, METRICS_HELP, serveUntilSignalled } from './domain-lifecycle.js'
import { parseOptions } from './options.js'
import { allowRule, positive } from './option-kinds.js'
import { announcementOf } from '../service-domain/announcement.js'
import { COORDINATION_HELP, COORDINATION_OPTIONS, coordinationOf } from './coordination-options.js'

const HELP = `usage: metaos network [--listen URL]... [--name NAME] [--allow CIDR:PORTS]... [options]

Runs a network service domain: socket system calls (Connect, Send, Receive, Listen, Accept,
SendTo, ReceiveFrom, ResolveHost…) made by this host's kernel for its callers.

  --listen URL             http://HOST:PORT (port 0 = any free port), https://HOST:PORT
                           (needs --tls-cert/--tls-key), unix:/path/to.sock, or the framed
                           sessions WCF speaks ([MC-NMF]): net.uds:/path/to.sock and
                           net.tcp://HOST:PORT; repeatable; default http://127.0.0.1:0
  --name NAME              domain name, part of its stable EPR (default "network")
  --allow CIDR:PORTS       a destination the domain may connect, send and listen to; repeatable.
                           PORTS is *, a port, a list (80,443) or a range (8000-8100), e.g.
                           10.1.0.0/16:80,443 or ::1/128:*. Names are resolved first and every
                           address is checked. Default: ${LOOPBACK_ONLY.join(' ')} (loopback only)
  --announce               announce with WS-Discovery (Hello/Bye, answers Probe/Resolve)
  --interface NAME         where to announce and listen (repeatable, or "all"; default: lo only)
  --announce-hostname      with --announce: XAddrs name listeners on 0.0.0.0 or [::]
                           by this host's name (a swarm task's hostname), not the wildcard
  --zone NAME              adds the scope metaos://zone/NAME
  --hosting KIND           process, container or vm: what runs this domain, said by GetDomainInfo
                           and the scope metaos://hosting/KIND (default process; the images of
                           docker/ pass container)
  --scope URI              adds a scope (repeatable)
  --max-sockets N          sockets the domain holds at once, all callers (default 4096)
  --max-sockets-per-caller N  sockets one caller holds at once (default 512)
  --max-buffered-bytes N   bytes received and not yet taken, per socket (default 1048576); then
                           TCP stops reading (the sender is slowed), UDP drops datagrams
  --idle-socket-ms N       sockets and listeners unused this long are closed (default 600000)
  --max-message-bytes N    largest request accepted (default 67108864)
  --log-level LEVEL        pino level: fatal error warn info debug trace silent (default info)
  --hypervisor-bus PORT    inside a VM domain (vm/): serve the virtio-serial port named PORT as
                           the hypervisor bus; its calls reach the first net.uds: or unix:
                           listener
${METRICS_HELP}${DISCOVERY_PROXY_HELP}${COORDINATION_HELP}  --help                   this text

${SECURITY_HELP.trimStart()}
When ready it prints one line on stdout:
  {"event":"ready","service":"network","endpoints":[…],"epr":"urn:uuid:…"}
The WSDL is at each HTTP endpoint + "?wsdl".
`

/** The options of `metaos network` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  ...DOMAIN_OPTIONS,
  ...COORDINATION_OPTIONS,
  allow: { kind: allowRule, multiple: true },
  'max-sockets': { kind: positive },
  'max-sockets-per-caller': { kind: positive },
  'max-buffered-bytes': { kind: positive },
  'idle-socket-ms': { kind: positive },
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const hosting = values.hosting ?? 'process'
  const allow = values.allow ?? LOOPBACK_ONLY
  const limits = limitsOf(values, [['max-sockets', 'maxSockets'], ['max-sockets-per-caller', 'maxSocketsPerCaller'], ['max-buffered-bytes', 'maxBufferedBytesPerSocket'], ['idle-socket-ms', 'idleMs'], ['max-message-bytes', 'maxMessageBytes']])
  const logger = createLogger('metaos-network', values['log-level'])
  const security = loadDomainSecurity(securityFiles(values))
  const discoveryProxy = discoveryProxyOf(values, security)
  const coordination = await coordinationOf(values, logger)
  const domain = await startNetworkDomain({
    security,
    listen: values.listen ?? ['http://127.0.0.1:0'],
    ...(values.name === undefined ? {} : { name: values.name }),
    allow,
    hosting,
    limits,
    logger,
    ...(values['metrics-listen'] === undefined ? {} : { metricsListen: values['metrics-listen'] }),
  }).catch(async (e: unknown) => { await coordination?.close(); throw e })
  // A network domain's connections cannot move: its lease only says, to every frontend, that it is alive.
  coordination?.domainLease(domain.epr, { host: hostname(), endpoints: domain.endpoints })
  // The allow rules are not announced: RFC 3986 prefix matching cannot ask "does it reach this
  // address", and a multicast announcement is no place to publish a policy. GetDomainInfo has them.
  // Node's process metrics (CPU, memory, event loop, GC) belong to this process: the library's registries never add them.
  domain.metrics.includeProcessMetrics()
  const announce = values.announce === true || discoveryProxy !== undefined
    ? announcementOf({ service: 'network', hosting, ...(values.zone === undefined ? {} : { zone: values.zone }), scopes: values.scope ?? [], ...(values.interface === undefined ? {} : { interfaces: values.interface }), ...(values['announce-hostname'] === true ? { hostname: hostname() } : {}), multicast: values.announce === true })
    : undefined
  const code = await serveUntilSignalled('network', domain, announce, logger, {
    ...(discoveryProxy === undefined ? {} : { discoveryProxy }),
    drainFacts: () => domain.engine.stats,
    ...(values['hypervisor-bus'] === undefined ? {} : { hypervisorBus: values['hypervisor-bus'] }),
    reloadTls: () => { const tls = security.reload(); if (tls !== undefined) domain.host.setTls(tls) },
  })
  await coordination?.close()
  return code
}
