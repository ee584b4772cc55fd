// The kinds of value metaos's own options take (cli/options.ts has the generic ones): endpoints,
// log levels, hostings, rules and feed files, allow rules, a syscall to explain. Each checks with the
// same code the program uses afterwards, so what the command line accepts is what works.
import { isIP } from 'node:net'
import { parseAllowList } from '../security/allow-list.js'
import { selectInterfaces } from '../discovery/soap-udp.js'
import { HostingValues, StorageServiceDescriptor } from '../wsdl/generated/storage-service.js'
import { RulesEngine } from '../frontend/placement/rules-engine.js'
import { VulnerabilityFeed } from '../frontend/placement/vulnerability-feed.js'
import { parseEndpoint } from '../soap-runtime/endpoint.js'
import { file, integer, number, oneOf, type Kind } from './options.js'

/** A listener: http://HOST:PORT, https://HOST:PORT, unix:/path.sock, net.uds:/path.sock or net.tcp://HOST:PORT. */
export const listenEndpoint: Kind<string> = {
  takes: 'http://HOST:PORT, https://HOST:PORT, unix:/path/to.sock, net.uds:/path/to.sock or net.tcp://HOST:PORT',
  parse: (v) => { parseEndpoint(v); return v },
  refuses: ['x', 'ftp://127.0.0.1:1', 'unix:', 'net.uds:relative.sock'],
}

export const logLevel = oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
export const hosting = oneOf(HostingValues)
export const positive = integer(1)
export const port = integer(0, 65535, 'a port number from 0 to 65535')
export const milliseconds = number(0, Infinity, { takes: 'a number of milliseconds ≥ 0' })

/** A rules file (docs/rules.md), read and checked. */
export const rulesFile = file('a rules file (JSON, docs/rules.md)', (p) => RulesEngine.fromFile(p))
/** A vulnerability feed (docs/vulnerability-feed.md), read and checked. */
export const feedFile = file('a vulnerability feed (JSON, docs/vulnerability-feed.md)', (p) => VulnerabilityFeed.fromFile(p, false))
/** The same, re-read when the file changes (a long-running command: `metaos up`). */
export const watchedFeedFile = file('a vulnerability feed (JSON, docs/vulnerability-feed.md)', (p) => VulnerabilityFeed.fromFile(p))

/** A network domain's allow rule CIDR:PORTS. */
export const allowRule: Kind<string> = {
  takes: 'a rule CIDR:PORTS such as 10.1.0.0/16:80,443 or ::1/128:*',
  parse: (v) => { parseAllowList([v]); return v },
  refuses: ['10.0.0.0/8', '10.0.0.0/33:80', '10.0.0.0/8:0', 'example.com/32:80', '10.0.0.0/8:90-80'],
}

export const ipAddress: Kind<string> = {
  takes: 'an IPv4 or IPv6 address',
  parse: (v) => { if (isIP(v) === 0) throw new Error(); return v },
  refuses: ['x', '300.1.1.1'],
}

export interface ExplainedSyscall { readonly op: string, readonly path?: string, readonly bytes?: number }
const OPS = Object.keys(StorageServiceDescriptor.operations)

/** `--explain "OP PATH [BYTES]"`: a storage operation, a path, a byte count. */
export const syscall: Kind<ExplainedSyscall> = {
  takes: `"OP PATH [BYTES]" with OP one of ${OPS.join(', ')}`,
  parse: (v) => {
    const [op = '', path, bytes, ...more] = v.trim().split(/\s+/)
    if (!OPS.includes(op)) throw new Error(`no operation ${JSON.stringify(op)}`)
    if (more.length > 0) throw new Error('more than three words')
    if (bytes !== undefined && !/^\d+$/.test(bytes)) throw new Error(`BYTES ${JSON.stringify(bytes)} is not a whole number`)
    return { op, ...(path === undefined ? {} : { path }), ...(bytes === undefined ? {} : { bytes: Number(bytes) }) }
  },
  refuses: ['Frobnicate x', 'Open x many', ''],
}

/** A network interface of this host, or "all" (discovery/soap-udp.ts's own check). */
export const interfaceName: Kind<string> = {
  takes: 'a network interface of this host, or "all"',
  parse: (v) => { selectInterfaces([v]); return v },
  refuses: ['no-such-interface0'],
}
