// `metaos discover`: probes with WS-Discovery (both versions) and lists the domains that answer.
import { DiscoveryClient } from '../discovery/client.js'
import { parseTypeName } from '../discovery/storage-announcement.js'
import { createLogger } from '../soap-runtime/logger.js'
import { proveByTls } from '../frontend/handlers/domain-trust.js'
import { readFileSync } from 'node:fs'
import { file, flag, httpUrl, parseOptions, text, uri, UsageError } from './options.js'
import { interfaceName, milliseconds } from './option-kinds.js'

const HELP = `usage: metaos discover [--type T]... [--scope S]... [--match-by URI] [--timeout MS] [--interface NAME]... [--json]
       [--proxy URL [--proxy-ca FILE] [--client-cert FILE --client-key FILE]]

Multicasts a WS-Discovery Probe (1.1 and April 2005) and lists what answers; with --proxy, asks
that discovery proxy instead (managed mode, e.g. on another host).

  --type T          required type: StorageDomain, NetworkDomain, or {namespace}Local (repeatable)
  --scope S         required scope, e.g. metaos://volume/data (repeatable; RFC 3986 prefix match)
  --match-by URI    another matching rule (strcmp0, uuid, ldap, none of either version)
  --timeout MS      how long to gather answers (default 1500)
  --interface NAME  where to probe (repeatable, or "all"; default: lo only)
  --trust-ca FILE   prove each answer: a TLS handshake with one of its https:// XAddrs must show a
                    certificate of this CA naming the announced EPR (docs/security.md); says
                    which answers are proven and why the others are not
  --proxy URL       ask the discovery proxy at URL (http(s)://HOST:PORT/discovery) by SOAP/HTTP(S)
  --proxy-ca FILE   the CA an https proxy's certificate must chain to (default: the system's)
  --client-cert FILE, --client-key FILE
                    a client certificate (PEM) to present to the proxy (mutual TLS)
  --json            one JSON array on stdout
  --help            this text
`

/** The options of `metaos discover` (test/cli/cli-usage.test.ts feeds each a bad value). */
export const OPTIONS = {
  type: { kind: text('a type name: StorageDomain, NetworkDomain or {namespace}Local'), multiple: true },
  scope: { kind: uri(), multiple: true },
  'match-by': { kind: uri('a matching rule URI') },
  timeout: { kind: milliseconds },
  interface: { kind: interfaceName, multiple: true },
  json: flag,
  'trust-ca': { kind: file('a CA certificate file (PEM)') },
  proxy: { kind: httpUrl('an http(s)://HOST:PORT/discovery URL') },
  'proxy-ca': { kind: file('a CA certificate file (PEM)'), needs: ['proxy'] },
  'client-cert': { kind: file('a certificate file (PEM)'), needs: ['client-key'] },
  'client-key': { kind: file('a private key file (PEM)'), needs: ['client-cert'] },
} as const

export async function main (argv: string[]): Promise<number> {
  const values = parseOptions(argv, OPTIONS, HELP)
  if (values === undefined) return 0
  const timeoutMs = values.timeout ?? 1500
  if (values['client-cert'] !== undefined && values.proxy === undefined) throw new UsageError('--client-cert is presented to a discovery proxy: it needs --proxy too')
  const proxyTls = {
    ...(values['proxy-ca'] === undefined ? {} : { ca: readFileSync(values['proxy-ca']) }),
    ...(values['client-cert'] === undefined ? {} : { cert: readFileSync(values['client-cert']), key: readFileSync(values['client-key']!) }),
  }
  const client = new DiscoveryClient({
    ...(values.interface === undefined ? {} : { interfaces: values.interface }),
    ...(values.proxy === undefined ? {} : { proxy: values.proxy, proxyTls }),
    logger: createLogger('metaos-discover', process.env.METAOS_LOG_LEVEL ?? 'warn'),
  })
  await client.start()
  try {
    const found = await client.probe({
      types: (values.type ?? []).map(parseTypeName),
      scopes: values.scope ?? [],
      ...(values['match-by'] === undefined ? {} : { matchBy: values['match-by'] }),
      timeoutMs,
    })
    found.sort((a, b) => a.epr.localeCompare(b.epr))
    const ca = values['trust-ca'] === undefined ? undefined : readFileSync(values['trust-ca'])
    const proofs = new Map<string, { proven: boolean, proof: string }>()
    if (ca !== undefined) {
      await Promise.all(found.map(async (t) => {
        const https = t.xaddrs.filter((x) => x.startsWith('https://'))
        if (https.length === 0) { proofs.set(t.epr, { proven: false, proof: 'no https endpoint: it cannot prove its identity' }); return }
        const why: string[] = []
        for (const x of https) {
          const fail = await proveByTls(x, t.epr, ca)
          if (fail === undefined) { proofs.set(t.epr, { proven: true, proof: `TLS at ${x}` }); return }
          why.push(`${x}: ${fail}`)
        }
        proofs.set(t.epr, { proven: false, proof: why.join('; ') })
      }))
    }
    if (values.json === true) {
      process.stdout.write(JSON.stringify(found.map(({ lastSeen: _l, ...t }) => ({ ...t, ...proofs.get(t.epr) })), null, 2) + '\n')
    } else if (found.length === 0) {
      process.stdout.write(`nothing answered within ${timeoutMs} ms\n`)
    } else {
      for (const t of found) {
        const p = proofs.get(t.epr)
        process.stdout.write(`${t.epr}  (WS-Discovery ${t.version}, from ${t.from}, metadata v${t.metadataVersion})\n` +
          `  types   ${t.types.join(' ')}\n  xaddrs  ${t.xaddrs.join(' ')}\n  scopes  ${t.scopes.join('\n          ')}\n` +
          (p === undefined ? '' : `  proven  ${p.proven ? 'yes' : 'NO'}: ${p.proof}\n`))
      }
    }
  } finally {
    await client.close()
  }
  return 0
}
