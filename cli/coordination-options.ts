// `--coordination etcd://HOST:PORT[,HOST:PORT…]` and its TLS files, shared by `metaos storage`,
// `metaos network` and `metaos up` (docs/coordination.md). Checked with the same parser the
// coordination client uses, before anything connects; a URL and files that do not go together
// (etcds:// without a CA, a certificate without its key) are a usage error.
import { readFileSync } from 'node:fs'
import type { Logger } from 'pino'
import { connectCoordination, parseCoordinationUrl, type Coordination, type CoordinationOptions } from '../coordination/connect.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { file, integer, UsageError, type Kind, type OptionSpecs } from './options.js'

const coordinationUrl: Kind<string> = {
  takes: 'etcd://HOST:PORT[,HOST:PORT…] or etcds://HOST:PORT[,…]',
  parse: (v) => { parseCoordinationUrl(v, v.startsWith('etcds:') ? { ca: '' } : {}); return v },
  refuses: ['x', 'http://127.0.0.1:2379', 'etcd://', 'etcd://h:99999'],
}

export const COORDINATION_OPTIONS = {
  coordination: { kind: coordinationUrl },
  'coordination-ca': { kind: file('a CA certificate file (PEM)'), needs: ['coordination'] },
  // Each needs --coordination too: coordinationOptionsOf says so (an option names one partner here).
  'coordination-cert': { kind: file('a certificate file (PEM)'), needs: ['coordination-key'] },
  'coordination-key': { kind: file('a private key file (PEM)'), needs: ['coordination-cert'] },
  'coordination-ttl': { kind: integer(1, 3600, 'a lease TTL in whole seconds from 1 to 3600') },
} as const satisfies OptionSpecs

export const COORDINATION_HELP = `  --coordination URL      etcd://HOST:PORT[,HOST:PORT…] (etcds:// for TLS): hold a lease in etcd,
                          register every open across the volume's domains (share modes), refuse
                          handle operations once the lease is lost (DOMAIN_FENCED); without it,
                          one host's behaviour (docs/coordination.md)
  --coordination-ca FILE  etcds://: the CA etcd's certificates chain to
  --coordination-cert FILE, --coordination-key FILE
                          etcds://: this process's client certificate and key
  --coordination-ttl N    the lease's TTL in seconds (default 3)
`

/** The connection options the command line asks for, or undefined without --coordination. */
export function coordinationOptionsOf (values: Readonly<Record<string, unknown>>, logger?: Logger): CoordinationOptions | undefined {
  const url = values.coordination
  if (typeof url !== 'string') {
    const orphan = Object.keys(COORDINATION_OPTIONS).find((k) => values[k] !== undefined)
    if (orphan !== undefined) throw new UsageError(`--${orphan} needs --coordination too`)
    return undefined
  }
  const read = (k: string): Buffer | undefined => typeof values[k] === 'string' ? readFileSync(values[k]) : undefined
  const tls = { ca: read('coordination-ca'), cert: read('coordination-cert'), key: read('coordination-key') }
  const o: CoordinationOptions = {
    url,
    ...Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)),
    ...(typeof values['coordination-ttl'] === 'number' ? { leaseTtlSeconds: values['coordination-ttl'] } : {}),
    ...(logger === undefined ? {} : { logger }),
  }
  try {
    parseCoordinationUrl(url, o)
  } catch (e) {
    if (e instanceof MetaosError) throw new UsageError(`--coordination ${url}: ${e.message}`)
    throw e
  }
  return o
}

/** The options given again, for a child process (`metaos up` passes them to its domains). */
export function coordinationArgs (values: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(COORDINATION_OPTIONS).flatMap((k) => values[k] === undefined ? [] : [`--${k}`, String(values[k])])
}

/** Connects when --coordination was given (COORDINATION_UNAVAILABLE when no member answers). */
export async function coordinationOf (values: Readonly<Record<string, unknown>>, logger?: Logger): Promise<Coordination | undefined> {
  const o = coordinationOptionsOf(values, logger)
  return o === undefined ? undefined : await connectCoordination(o)
}
