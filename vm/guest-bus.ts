// The guest's end of the hypervisor bus, served by the domain itself (`metaos storage
// --hypervisor-bus org.metaos.bus`): the virtio-serial port, read and written through busybox cat
// pipes (virtio-port.ts), demultiplexed by HypervisorBusGuest into connections to the domain's own
// Unix socket (net.uds or unix: the bus carries bytes, so [MC-NMF] sessions or HTTP alike) — in the domain's process, so no other process stands between the port and the
// service (an agent in between cost a third of the bus's round trips under emulation).
import type { Logger } from 'pino'
import { HypervisorBusGuest } from './hypervisor-bus.js'
import { PipeLink, waitForVirtioPort } from './virtio-port.js'
import { parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'

export async function serveHypervisorBus (portName: string, endpoints: readonly string[], logger: Logger, waitMs = 10_000): Promise<{ close: () => void }> {
  const unix = endpoints.map((e) => parseEndpoint(e)).find((e) => e.protocol === 'net.uds' || e.protocol === 'unix')
  if (unix === undefined) throw new MetaosError('INVALID_ARGUMENT', '--hypervisor-bus needs a net.uds: or unix: listener for the bus to reach')
  const port = await waitForVirtioPort(portName, { timeoutMs: waitMs })
  const bus = new HypervisorBusGuest({ link: new PipeLink(port), connectPath: unix.socketPath!, logger })
  logger.info({ port, socket: unix.socketPath }, 'serving the hypervisor bus')
  return bus
}
