// What the host tells a VM domain's guest, and what the guest answers: the kernel command line's
// `metaos.config=` word (base64url JSON, so no quoting can break it) and the control port's ready
// line. Shared by the host's driver (vm/vm-driver.ts) and the guest agent (vm/guest-agent.ts).
import { MetaosError } from '../soap-runtime/errors.js'

/** virtio-serial port names (QEMU `virtserialport,name=…`; the guest finds them in /sys/class/virtio-ports). */
export const BUS_PORT_NAME = 'org.metaos.bus'
export const CONTROL_PORT_NAME = 'org.metaos.control'
/** The domain's Unix socket inside the guest, the bus's far end. */
export const GUEST_BUS_SOCKET = '/run/metaos/bus.sock'
/** Guest TCP ports of the HTTP listeners (host-forwarded by QEMU's user-mode network). */
export const FIRST_GUEST_PORT = 8080
/** The 9p mount tag of the volume; the guest mounts it at /data. */
export const VOLUME_TAG = 'metaos-data'
export const GUEST_ROOT = '/data'
/** x86's COMMAND_LINE_SIZE, less what the driver puts beside the config. */
const MAX_CONFIG = 1600

export interface GuestConfig {
  readonly service: 'storage' | 'network'
  /** The domain command's arguments, but for --listen, --hosting and --announce (the agent adds them). */
  readonly args: readonly string[]
  readonly httpPorts: readonly number[]
  /** What the domain serves on GUEST_BUS_SOCKET, the hypervisor bus's far end (default 'unix': HTTP). */
  readonly bus?: 'net.uds' | 'unix'
  readonly logLevel?: string
}

export interface GuestReady {
  readonly event: 'ready'
  readonly epr: string
  /** As the guest sees them (the host maps them to its side). */
  readonly endpoints: readonly string[]
  readonly kernel: { readonly sysname: string, readonly release: string, readonly version: string, readonly machine: string }
  /** The domain's WS-Discovery types and scopes (empty if the agent could not hear them). */
  readonly types: readonly string[]
  readonly scopes: readonly string[]
  /** The guest's uptime when the domain was ready (/proc/uptime): its boot-to-ready time. */
  readonly uptimeMs: number
}

export function encodeGuestConfig (c: GuestConfig): string {
  const word = `metaos.config=${Buffer.from(JSON.stringify(c)).toString('base64url')}`
  if (word.length > MAX_CONFIG) throw new MetaosError('INVALID_ARGUMENT', `the domain's arguments are too long for a kernel command line (${word.length} > ${MAX_CONFIG} bytes)`)
  return word
}

export function decodeGuestConfig (cmdline: string): GuestConfig {
  const word = cmdline.split(/\s+/).find((w) => w.startsWith('metaos.config='))
  if (word === undefined) throw new MetaosError('INVALID_ARGUMENT', 'no metaos.config= on the kernel command line')
  const c = JSON.parse(Buffer.from(word.slice('metaos.config='.length), 'base64url').toString('utf8')) as GuestConfig
  if ((c.service !== 'storage' && c.service !== 'network') || !Array.isArray(c.args) || !Array.isArray(c.httpPorts) || (c.bus !== undefined && c.bus !== 'net.uds' && c.bus !== 'unix')) throw new MetaosError('INVALID_ARGUMENT', 'metaos.config= is not a guest configuration')
  return c
}
