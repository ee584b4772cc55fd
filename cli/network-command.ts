// `metaos network`: runs one network domain in the foreground (DESIGN.md §5). Prints exactly one
// JSON "ready" line on stdout; logs go to stderr. SIGTERM/SIGINT: Bye (when announced), drain
// in-flight calls, close every socket, exit 0. A bad --allow rule is a usage error (exit 2).
import { parseArgs } from 'node:util'
import { startNetworkDomain } from '../backend-network/network-domain.js'
import { LOOPBACK_ONLY, parseAllowList } from '../backend-network/allow-list.js'
import { createLogger } from '../soap-runtime/logger.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { serveUntilSignalled } from './domain-lifecycle.js'
import { domainScopes, NETWORK_DOMAIN_TYPE } from '../discovery/storage-announcement.js'
import { HostingValues, type Hosting } from '../frontend/generated/network-service.js'

const HELP = `usage: metaos network [--listen URL]... [--name NAME] [--allow CIDR:PORTS]... [options]

Runs a network service domain: socket system calls (Connect, Send, Receive, Listen, Accept,
SendTo, ReceiveFrom, ResolveHost…) made by this host's kernel for its callers.

  --listen URL             http://HOST:PORT (port 0 = any free port) or unix:/path/to.sock;
                           repeatable; default http://127.0.0.1:0
  --name NAME              domain name, part of its stable EPR (default "network")
  --allow CIDR:PORTS       a destination the domain may connect, send and listen to; repeatable.
                           PORTS is *, a port, a list (80,443) or a range (8000-8100), e.g.
                           10.1.0.0/16:80,443 or ::1/128:*. Names are resolved first and every
                           address is checked. Default: ${LOOPBACK_ONLY.join(' ')} (loopback only)
  --announce               announce with WS-Discovery (Hello/Bye, answers Probe/Resolve)
  --interface NAME         where to announce and listen (repeatable, or "all"; default: lo only)
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
  --help                   this text

When ready it prints one line on stdout:
  {"event":"ready","service":"network","endpoints":[…],"epr":"urn:uuid:…"}
The WSDL is at each HTTP endpoint + "?wsdl".
`

export async function main (argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      listen: { type: 'string', multiple: true },
      name: { type: 'string' },
      allow: { type: 'string', multiple: true },
      announce: { type: 'boolean' },
      interface: { type: 'string', multiple: true },
      zone: { type: 'string' },
      hosting: { type: 'string' },
      scope: { type: 'string', multiple: true },
      'max-sockets': { type: 'string' },
      'max-sockets-per-caller': { type: 'string' },
      'max-buffered-bytes': { type: 'string' },
      'idle-socket-ms': { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  })
  if (values.help === true) { process.stdout.write(HELP); return 0 }
  const usage = (message: string): number => {
    process.stderr.write(`metaos network: ${message}\nmetaos network --help shows the options.\n`)
    return 2
  }
  const hosting = (values.hosting ?? 'process') as Hosting
  if (!HostingValues.includes(hosting)) return usage(`--hosting must be one of ${HostingValues.join(', ')}, not "${values.hosting}"`)
  const allow = values.allow ?? LOOPBACK_ONLY
  try {
    parseAllowList(allow)
  } catch (e) {
    if (e instanceof MetaosError) return usage(`--allow: ${e.message}`)
    throw e
  }
  const limits: Record<string, number> = {}
  for (const [flag, key] of [['max-sockets', 'maxSockets'], ['max-sockets-per-caller', 'maxSocketsPerCaller'], ['max-buffered-bytes', 'maxBufferedBytesPerSocket'], ['idle-socket-ms', 'idleMs'], ['max-message-bytes', 'maxMessageBytes']] as const) {
    const v = values[flag]
    if (v === undefined) continue
    const n = Number(v)
    if (v.trim() === '' || !Number.isSafeInteger(n) || n <= 0) return usage(`--${flag} must be a positive integer, not "${v}"`)
    limits[key] = n
  }
  const logger = createLogger('metaos-network', values['log-level'])
  const domain = await startNetworkDomain({
    listen: values.listen ?? ['http://127.0.0.1:0'],
    ...(values.name === undefined ? {} : { name: values.name }),
    allow,
    hosting,
    limits,
    logger,
  })
  // The allow rules are not announced: RFC 3986 prefix matching cannot ask "does it reach this
  // address", and a multicast announcement is no place to publish a policy. GetDomainInfo has them.
  const announce = values.announce === true
    ? { types: [NETWORK_DOMAIN_TYPE], scopes: domainScopes({ hosting, ...(values.zone === undefined ? {} : { zone: values.zone }), extra: values.scope ?? [] }), ...(values.interface === undefined ? {} : { interfaces: values.interface }) }
    : undefined
  return await serveUntilSignalled('network', domain, announce, logger, () => domain.engine.stats)
}
