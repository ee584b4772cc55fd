// `metaos discovery-proxy`: runs a WS-Discovery Discovery Proxy (managed mode) in the foreground.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { DiscoveryProxy } from '../discovery/discovery-proxy.js'
import { stableUuid } from '../service-domain/identity.js'
import { createLogger } from '../soap-runtime/logger.js'
import { file, httpUrl, parseOptions, text } from './options.js'
import { interfaceName, logLevel, milliseconds } from './option-kinds.js'

const HELP = `usage: metaos discovery-proxy [--listen URL]... [--interface NAME]... [--name NAME] [--forget-after MS]
       [--tls-cert FILE --tls-key FILE [--client-ca FILE [--crl FILE]]]

Keeps a registry of the domains that say Hello on its interfaces (or POST Hello to it), answers
Probe and Resolve over SOAP/HTTP(S) and unicast UDP, and answers multicast probes with a
suppression Hello so that clients switch to it (managed mode). Prints one JSON ready line.

  --listen URL      http://HOST:PORT or https://HOST:PORT (repeatable; default
                    http://127.0.0.1:0; path /discovery)
  --interface NAME  where to listen for Hello/Bye and multicast probes (repeatable or "all"; default lo)
  --name NAME       part of the proxy's stable EPR (default "discovery-proxy")
  --forget-after MS forget a domain not heard from (Hello, or an answer to a re-probe) for MS
                    (default 75000; 0 = never): domains announcing to a proxy say Hello every
                    10 s, so a crashed one leaves the answers that long after its last Hello
  --tls-cert FILE   certificate (PEM) of the https:// listeners
  --tls-key FILE    its private key
  --client-ca FILE  authenticated registrations (docs/discovery.md): a Hello or Bye is taken only
                    over https from a client certificate of this CA naming the announced EPR
                    (metaos pki issue-domain makes them); others get the fault UNAUTHORIZED, and
                    Hellos heard by multicast are ignored. Probe and Resolve need no certificate
  --crl FILE        revoked client certificates (PEM CRL; SIGHUP re-reads it and the others)
  --log-level L     pino level (default info)
`

/** The options of `metaos discovery-proxy` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  listen: { kind: httpUrl(), multiple: true },
  interface: { kind: interfaceName, multiple: true },
  name: { kind: text('a name') },
  'forget-after': { kind: milliseconds },
  'tls-cert': { kind: file('a certificate file (PEM)'), needs: ['tls-key'] },
  'tls-key': { kind: file('a private key file (PEM)'), needs: ['tls-cert'] },
  'client-ca': { kind: file('a CA certificate file (PEM)'), needs: ['tls-cert'] },
  crl: { kind: file('a CRL file (PEM)'), needs: ['client-ca'] },
  'log-level': { kind: logLevel },
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const logger = createLogger('metaos-discovery-proxy', values['log-level'])
  const readTls = (): { cert: Buffer, key: Buffer, clientCa?: Buffer, crl?: Buffer } | undefined => values['tls-cert'] === undefined
    ? undefined
    : {
        cert: readFileSync(values['tls-cert']),
        key: readFileSync(values['tls-key']!),
        ...(values['client-ca'] === undefined ? {} : { clientCa: readFileSync(values['client-ca']) }),
        ...(values.crl === undefined ? {} : { crl: readFileSync(values.crl) }),
      }
  const tls = readTls()
  const proxy = new DiscoveryProxy({
    epr: stableUuid('metaos-discovery-proxy', hostname(), values.name ?? 'discovery-proxy'),
    listen: values.listen ?? ['http://127.0.0.1:0'],
    ...(values.interface === undefined ? {} : { interfaces: values.interface }),
    ...(values['forget-after'] === undefined ? {} : { forgetAfterMs: values['forget-after'] }),
    ...(tls === undefined ? {} : { tls }),
    logger,
  })
  await proxy.start()
  if (tls !== undefined) {
    process.on('SIGHUP', () => {
      try { proxy.setTls(readTls()!); logger.info('TLS material re-read') } catch (e) { logger.error({ err: e }, 'could not re-read the TLS material; the old one stays') }
    })
  }
  process.stdout.write(JSON.stringify({ event: 'ready', service: 'discovery-proxy', endpoints: proxy.xaddrs, epr: proxy.epr }) + '\n')
  await new Promise<void>((resolve) => { process.once('SIGTERM', () => { resolve() }); process.once('SIGINT', () => { resolve() }) })
  await proxy.stop()
  logger.flush()
  return 0
}
