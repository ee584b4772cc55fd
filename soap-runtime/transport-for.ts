// The client transport an endpoint's scheme names: HTTP for `http://`, `https://`, `unix:` and
// `http+unix://`; a framed [MC-NMF] session for `net.uds:` and `net.tcp://`. Proxies take any of
// them through this one door. The framed transport's modules load with its first call, so a
// process that only speaks HTTP never loads them (`import 'metaos'` stays small).
import { formatEndpoint, isFramed, parseEndpoint } from './endpoint.js'
import { createHttpTransport, type HttpTransportOptions } from './http-transport.js'
import type { FramedTransportOptions } from './nmf/client-transport.js'
import type { Transport } from './transport.js'

export type TransportOptions = HttpTransportOptions & FramedTransportOptions

export function transportFor (url: string, defaultPath: string, options: TransportOptions = {}): Transport {
  const ep = parseEndpoint(url, defaultPath)
  if (!isFramed(ep)) return createHttpTransport(url, defaultPath, options)
  let inner: Transport | undefined
  let loading: Promise<Transport> | undefined
  const load = async (): Promise<Transport> => await (loading ??= import('./nmf/client-transport.js').then((m) => (inner = m.createFramedTransport(url, defaultPath, options))))
  return {
    address: formatEndpoint(ep),
    // The binary encoding unless another is named (createFramedTransport refuses an unknown one).
    framing: { soapVersion: '1.2', addressing: true, tree: options.encoding === undefined || options.encoding.startsWith('binary') },
    send: async (r) => await (inner ?? await load()).send(r),
    close: async () => { if (loading !== undefined) await (await loading.catch(() => undefined))?.close() }, // a transport that failed to load has nothing to close
  }
}
