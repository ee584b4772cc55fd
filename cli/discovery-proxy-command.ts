// `metaos discovery-proxy`: runs a WS-Discovery Discovery Proxy (managed mode) in the foreground.
import { hostname } from 'node:os'
import { DiscoveryProxy } from '../discovery/discovery-proxy.js'
import { stableUuid } from '../service-domain/identity.js'
import { createLogger } from '../soap-runtime/logger.js'
import { httpUrl, parseOptions, text } from './options.js'
import { interfaceName, logLevel } from './option-kinds.js'

const HELP = `usage: metaos discovery-proxy [--listen http://HOST:PORT]... [--interface NAME]... [--name NAME]

Keeps a registry of the domains that say Hello on its interfaces (or POST Hello to it), answers
Probe and Resolve over SOAP/HTTP and unicast UDP, and answers multicast probes with a suppression
Hello so that clients switch to it (managed mode). Prints one JSON ready line.

  --listen URL      HTTP endpoint (default http://127.0.0.1:0; path /discovery)
  --interface NAME  where to listen for Hello/Bye and multicast probes (repeatable or "all"; default lo)
  --name NAME       part of the proxy's stable EPR (default "discovery-proxy")
  --log-level L     pino level (default info)
`

/** The options of `metaos discovery-proxy` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  listen: { kind: httpUrl(), multiple: true },
  interface: { kind: interfaceName, multiple: true },
  name: { kind: text('a name') },
  'log-level': { kind: logLevel },
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const logger = createLogger('metaos-discovery-proxy', values['log-level'])
  const proxy = new DiscoveryProxy({
    epr: stableUuid('metaos-discovery-proxy', hostname(), values.name ?? 'discovery-proxy'),
    listen: values.listen ?? ['http://127.0.0.1:0'],
    ...(values.interface === undefined ? {} : { interfaces: values.interface }),
    logger,
  })
  await proxy.start()
  process.stdout.write(JSON.stringify({ event: 'ready', service: 'discovery-proxy', endpoints: proxy.xaddrs, epr: proxy.epr }) + '\n')
  await new Promise<void>((resolve) => { process.once('SIGTERM', () => { resolve() }); process.once('SIGINT', () => { resolve() }) })
  await proxy.stop()
  logger.flush()
  return 0
}
