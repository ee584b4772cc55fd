// `--coordination etcd://HOST:PORT[,HOST:PORT…]` or `etcds://…`: the etcd members to talk to, and
// whether over TLS. Parsed before anything loads the etcd client, so a bad value fails at once with
// INVALID_ARGUMENT naming what is wrong.
import { MetaosError } from '../soap-runtime/errors.js'

export interface CoordinationEndpoints {
  /** The URL as given. */
  readonly url: string
  readonly tls: boolean
  /** gRPC targets: `http://h:p` or `https://h:p`, one per member. */
  readonly hosts: readonly string[]
}

const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]{1,253})$/

export function parseCoordinationUrl (url: string, tls: { ca?: unknown, cert?: unknown, key?: unknown } = {}): CoordinationEndpoints {
  const m = /^(etcds?):\/\/([^/?#]+)\/?$/.exec(url)
  if (m === null) throw new MetaosError('INVALID_ARGUMENT', `coordination "${url.slice(0, 200)}" is not etcd://HOST:PORT[,HOST:PORT…] or etcds://…`)
  const secure = m[1] === 'etcds'
  const hosts = m[2]!.split(',').map((member) => {
    const hp = /^(.+?)(?::(\d{1,5}))?$/.exec(member.trim())
    const host = hp?.[1] ?? ''
    const port = hp?.[2] === undefined ? 2379 : Number(hp[2])
    if (!HOST.test(host) || !(port >= 1 && port <= 65535)) throw new MetaosError('INVALID_ARGUMENT', `coordination member "${member.slice(0, 200)}" is not HOST:PORT`)
    return `${secure ? 'https' : 'http'}://${host}:${port}`
  })
  if (hosts.length > 16) throw new MetaosError('INVALID_ARGUMENT', `coordination names ${hosts.length} members; at most 16`)
  if (!secure && (tls.ca !== undefined || tls.cert !== undefined || tls.key !== undefined)) throw new MetaosError('INVALID_ARGUMENT', 'a CA, certificate or key for coordination needs etcds://')
  if (secure && tls.ca === undefined) throw new MetaosError('INVALID_ARGUMENT', 'etcds:// needs the CA that etcd\'s certificates chain to (--coordination-ca)')
  if ((tls.cert === undefined) !== (tls.key === undefined)) throw new MetaosError('INVALID_ARGUMENT', 'a client certificate for coordination needs its key, and a key its certificate (--coordination-cert and --coordination-key)')
  return { url, tls: secure, hosts }
}
