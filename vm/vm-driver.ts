// The DomainDriver that runs each domain in a QEMU virtual machine with its own Linux kernel (the
// paper's heterogeneous kernels, its Fig. 3): the kernel and initramfs of vm/build-image.sh boot,
// vm/init.sh and the guest agent start `metaos storage` (or `metaos network`) inside, and the host
// reaches it two ways —
//   the hypervisor bus: a virtio-serial port (QEMU chardev Unix socket) multiplexed by
//     vm/hypervisor-bus.ts behind a host Unix socket, the spec's `net.uds:` or `unix:` listener
//     (the domain in the guest serves the same kind), so clients connect exactly as to a process
//     domain's bus;
//   the network: QEMU's user-mode network with restrict=on (the guest reaches nothing) and one
//     host-forwarded 127.0.0.1 port per `http://` listener.
// The volume is the spec's root shared into the guest over 9p (virtio-9p, mounted at /data), so a
// VM domain and process or container domains on the same directory are one volume.
// Stop asks the guest agent (control port) to SIGTERM the domain — it drains — and the guest powers
// off; kill is SIGKILL to QEMU; pause and resume are QMP `stop` and `cont` (the vCPUs halt: the
// domain keeps its connections and answers nothing, a hang as seen from outside). Limits: memory is
// the guest's RAM at start and the virtio balloon in place; CPU is the cgroup quota of the QEMU
// process (cgroup-limits.ts), with as many vCPUs as the quota allows whole CPUs. Migrate moves the
// running guest to a new QEMU process with QEMU's live migration (vm-migration.ts); the controls
// of a running domain, which follow its current QEMU, are in vm-controls.ts.
// Discovery: multicast does not cross user-mode networking, so when the spec asks `--announce` the
// driver announces the domain on the host, on the guest's behalf, with the types and scopes the
// domain announced inside the guest (its kernel, hosting vm, volume…) and the host's endpoints.
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, realpath, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { hostname as hostName, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { CgroupLimits, type DomainLimits, type LimitsOutcome } from '../domains/cgroup-limits.js'
import type { DomainDriver, DomainSpec } from '../domains/driver.js'
import { defaultVolume } from '../backend-storage/storage-domain.js'
import { TargetService } from '../discovery/target-service.js'
import { formatEndpoint, parseEndpoint } from '../soap-runtime/endpoint.js'
import { MetaosError } from '../soap-runtime/errors.js'
import { silentLogger } from '../soap-runtime/logger.js'
import { HypervisorBusHost } from './hypervisor-bus.js'
import { QmpClient } from './qmp.js'
import { Control } from './control-port.js'
import { BUS_PORT_NAME, CONTROL_PORT_NAME, encodeGuestConfig, FIRST_GUEST_PORT, GUEST_ROOT, VOLUME_TAG, type GuestReady } from './guest-config.js'
import { buildVmImage, type VmImage } from './vm-image.js'
import { launchQemu, type Qemu } from './qemu-process.js'
import { MIN_GUEST_MIB, vmInstance, type VmDomainInstance } from './vm-controls.js'
import type { MigrationTarget } from './vm-migration.js'

export type { VmDomainInstance } from './vm-controls.js'

export interface VmDriverOptions {
  readonly logger?: Logger
  /** Kernel and initramfs; default: vm/build-image.sh's (built or found in its cache) for `kernelPackage`. */
  readonly image?: VmImage
  /** A Debian kernel package for the default image (default: the release's generic kernel). */
  readonly kernelPackage?: string
  /** The QEMU binary (default qemu-system-x86_64 on the PATH). */
  readonly qemu?: string
  /** 'kvm' needs a usable /dev/kvm; 'tcg' emulates; 'auto' (default) takes KVM where the CPU offers it. */
  readonly accel?: 'auto' | 'kvm' | 'tcg'
  /** Guest RAM when the spec asks no memory limit (default 512 MiB; the initramfs lives in it). */
  readonly memoryMiB?: number
  /** The guest's hostname, part of the domain's EPR (default `<this host>-vm`): stable across restarts. */
  readonly hostname?: string
  /** How long boot to ready may take (default 180 s: emulation is slow). */
  readonly readyTimeoutMs?: number
  /** The domain's log level inside the guest (its logs go to the guest console; default warn). */
  readonly guestLogLevel?: string
}


export class VmDriver implements DomainDriver {
  readonly #o: VmDriverOptions
  readonly #logger: Logger
  #image: Promise<VmImage> | undefined

  constructor (options: VmDriverOptions = {}) {
    this.#o = options
    this.#logger = options.logger ?? silentLogger
  }

  /** The image the domains boot (built once per driver when none was given). */
  async image (): Promise<VmImage> {
    this.#image ??= this.#o.image !== undefined ? Promise.resolve(this.#o.image) : buildVmImage({ ...(this.#o.kernelPackage === undefined ? {} : { kernelPackage: this.#o.kernelPackage }) })
    this.#image.catch(() => { this.#image = undefined })
    return await this.#image
  }

  async start (spec: DomainSpec): Promise<VmDomainInstance> {
    const image = await this.image()
    const plan = await planVm(spec, this.#o.memoryMiB ?? 512)
    // What the spec can get wrong is refused before the state directory is made (nothing left behind).
    const config = encodeGuestConfig({ service: plan.service, args: plan.args, httpPorts: plan.forwards.map((f) => f.guestPort), bus: plan.busKind, ...(this.#o.guestLogLevel === undefined ? {} : { logLevel: this.#o.guestLogLevel }) })
    const accel = this.#accel()
    /** A QEMU for this domain in a state directory of its own: the first boot, or the target of a live migration (`incoming`, no forwarded ports yet). */
    const launch = async (incoming: boolean): Promise<MigrationTarget> => {
      const state = await mkdtemp(join(tmpdir(), 'metaos-vm-'))
      const paths = { qmp: join(state, 'qmp.sock'), bus: join(state, 'bus.sock'), control: join(state, 'control.sock') }
      const uri = `unix:${join(state, 'migrate.sock')}`
      const argv = this.#qemuArgv(incoming ? { ...plan, forwards: [] } : plan, config, image, paths, accel)
      const qemu = launchQemu(this.#o.qemu ?? 'qemu-system-x86_64', incoming ? [...argv, '-incoming', uri] : argv, spec.name)
      return { qemu, paths, state, uri }
    }
    const t0 = performance.now()
    const { qemu, paths, state } = await launch(false)
    const booted = await this.#boot(qemu, plan, paths, spec.name, state)
    const { cpu, ready } = booted
    const bootMs = Math.round(performance.now() - t0)
    let outcome: LimitsOutcome | undefined
    if (spec.limits !== undefined) {
      const c = plan.limits.cpuPercent === undefined ? undefined : await cpu.set({ cpuPercent: plan.limits.cpuPercent })
      outcome = c ?? { applied: true, mechanism: 'none', reason: 'memory: the guest has that much RAM' }
    }
    const endpoints = hostEndpoints(ready.endpoints, plan)
    let target: TargetService | undefined
    if (plan.announce) {
      target = new TargetService({ epr: ready.epr, types: ready.types, scopes: ready.scopes, xaddrs: endpoints, ...(plan.interfaces.length === 0 ? {} : { interfaces: plan.interfaces }), logger: this.#logger })
      await target.start()
    }
    this.#logger.info({ domain: spec.name, pid: qemu.proc.pid, epr: ready.epr, endpoints, kernel: ready.kernel.release, accel, bootMs, guestUptimeMs: ready.uptimeMs }, 'VM domain ready')
    const run = { qemu, qmp: booted.qmp, control: booted.control, cpu, state }
    return vmInstance({
      name: spec.name, run, bus: booted.bus, target, limits: plan.limits, memoryMiB: plan.memoryMiB, volume: plan.service === 'storage',
      forwards: plan.forwards, launchTarget: async () => await launch(true), logger: this.#logger,
    }, {
      epr: ready.epr,
      endpoints,
      ...(outcome === undefined ? {} : { limits: outcome }),
      bootMs,
      kernel: ready.kernel,
      hosting: { kind: 'vm', kernel: { sysname: ready.kernel.sysname, release: ready.kernel.release } },
    })
  }

  /** QEMU's arguments: the image's kernel with the guest's config (encodeGuestConfig), the two serial ports, the restricted network, the volume. */
  #qemuArgv (plan: VmPlan, config: string, image: VmImage, paths: VmPaths, accel: 'kvm' | 'tcg'): string[] {
    const append = `console=ttyS0 quiet loglevel=3 panic=-1 metaos.hostname=${this.#o.hostname ?? `${hostName()}-vm`} ${config}`
    const hostfwd = plan.forwards.map((f) => `,hostfwd=tcp:${f.host}:${f.port}-:${f.guestPort}`).join('')
    return [
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-accel', accel, ...(accel === 'kvm' ? ['-cpu', 'host'] : []), '-m', String(plan.memoryMiB), '-smp', String(plan.cpus),
      '-kernel', image.kernel, '-initrd', image.initrd, '-append', append,
      '-serial', 'stdio',
      '-qmp', `unix:${paths.qmp},server=on,wait=off`,
      '-device', 'virtio-serial-pci',
      '-chardev', `socket,id=bus,path=${paths.bus},server=on,wait=off`, '-device', `virtserialport,chardev=bus,name=${BUS_PORT_NAME}`,
      '-chardev', `socket,id=control,path=${paths.control},server=on,wait=off`, '-device', `virtserialport,chardev=control,name=${CONTROL_PORT_NAME}`,
      '-netdev', `user,id=net,restrict=on${hostfwd}`, '-device', 'virtio-net-pci,netdev=net',
      '-device', 'virtio-balloon-pci',
      ...plan.qemuArgs,
    ]
  }

  /** Connects QMP, the control port and the bus, and waits for the domain's ready line; on failure QEMU is killed and everything released. */
  async #boot (qemu: Qemu, plan: VmPlan, paths: VmPaths, name: string, state: string): Promise<Booted> {
    let qmp: QmpClient | undefined
    let control: Control | undefined
    let bus: HypervisorBusHost | undefined
    let cpu: CgroupLimits | undefined
    try {
      if (qemu.proc.pid === undefined) throw qemu.failed('QEMU did not start')
      cpu = new CgroupLimits(qemu.proc.pid, `metaos-vm-${name}-${qemu.proc.pid}`, this.#logger)
      const gone = qemu.exit.then((x) => { throw qemu.failed(`QEMU exited with ${x.signal ?? String(x.code)} before the domain was ready`) })
      gone.catch(() => {})
      qmp = await Promise.race([QmpClient.connect(paths.qmp), gone])
      control = await Promise.race([Control.connect(paths.control), gone])
      if (plan.busPath !== undefined) {
        bus = new HypervisorBusHost({ listenPath: plan.busPath, linkPath: paths.bus, logger: this.#logger })
        await Promise.race([bus.start(), gone])
      }
      const timeoutMs = this.#o.readyTimeoutMs ?? 180_000
      const ready = await Promise.race([control.ready(timeoutMs), gone]).catch((e: Error) => { throw e instanceof MetaosError && e.code === 'TRANSPORT_ERROR' ? e : qemu.failed(e.message) })
      return { qmp, control, bus, cpu, ready }
    } catch (e) {
      qemu.proc.kill('SIGKILL')
      await qemu.exit
      qmp?.close(); control?.close(); await bus?.close()
      await cpu?.release()
      await rm(state, { recursive: true, force: true })
      throw e
    }
  }

  #accel (): 'kvm' | 'tcg' {
    const asked = this.#o.accel ?? 'auto'
    if (asked !== 'auto') return asked
    return kvmUsable() ? 'kvm' : 'tcg'
  }
}

/** A /dev/kvm that works: the device, and a CPU offering virtualization (a nested guest often has the device without it). */
export function kvmUsable (): boolean {
  if (!existsSync('/dev/kvm')) return false
  try { return /\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8')) } catch { return false }
}

/** What a booted guest is driven through. */
interface Booted { readonly qmp: QmpClient, readonly control: Control, readonly bus: HypervisorBusHost | undefined, readonly cpu: CgroupLimits, readonly ready: GuestReady }

interface Forward { readonly host: string, readonly port: number, readonly guestPort: number }
interface VmPaths { readonly qmp: string, readonly bus: string, readonly control: string }

/** What a start works out from its spec before QEMU runs. */
interface VmPlan {
  readonly service: 'storage' | 'network'
  /** The domain command's arguments inside the guest. */
  readonly args: readonly string[]
  /** The volume shared over 9p (storage). */
  readonly qemuArgs: readonly string[]
  /** One host-forwarded port per http listener. */
  readonly forwards: readonly Forward[]
  /** The host socket of the hypervisor bus (the unix listener). */
  readonly busPath: string | undefined
  /** What the bus carries: what the guest's domain serves on its end. */
  readonly busKind: 'net.uds' | 'unix'
  readonly announce: boolean
  readonly interfaces: readonly string[]
  readonly limits: DomainLimits
  readonly memoryMiB: number
  readonly cpus: number
}

async function planVm (spec: DomainSpec, defaultMiB: number): Promise<VmPlan> {
  const service = spec.service ?? 'storage'
  const { guestArgs, announce, interfaces } = splitArgs(spec.extraArgs ?? [])
  const args = ['--name', spec.name]
  const qemuArgs: string[] = []
  if (service === 'storage') {
    const root = await realpath(spec.root).catch(() => { throw new MetaosError('FILE_NOT_FOUND', `root ${spec.root} does not exist`) })
    args.push('--root', GUEST_ROOT, '--volume', spec.volume ?? defaultVolume(root))
    qemuArgs.push('-fsdev', `local,id=vol,path=${qemuValue(root)},security_model=none`, '-device', `virtio-9p-pci,fsdev=vol,mount_tag=${VOLUME_TAG}`)
  }
  args.push(...guestArgs)
  // Listeners: http → a host-forwarded port; one net.uds or unix → the hypervisor bus.
  const forwards: Forward[] = []
  let busPath: string | undefined
  let busKind: 'net.uds' | 'unix' = 'unix'
  for (const l of spec.listen.length === 0 ? ['http://127.0.0.1:0'] : spec.listen) {
    const ep = parseEndpoint(l)
    if (ep.protocol === 'http') {
      const port = ep.port === 0 ? await freePort(ep.host!) : ep.port!
      forwards.push({ host: ep.host!, port, guestPort: FIRST_GUEST_PORT + forwards.length })
    } else if ((ep.protocol === 'unix' || ep.protocol === 'net.uds') && busPath === undefined) {
      busPath = ep.socketPath!
      busKind = ep.protocol
    } else {
      throw new MetaosError('INVALID_ARGUMENT', `${l}: a VM domain listens on http:// (host-forwarded) and on one net.uds: or unix: socket (the hypervisor bus)`)
    }
  }
  const limits = spec.limits ?? {}
  if (limits.memoryBytes !== undefined && limits.memoryBytes < MIN_GUEST_MIB * 2 ** 20) throw new MetaosError('INVALID_ARGUMENT', `a VM domain needs at least ${MIN_GUEST_MIB} MiB of memory, not ${limits.memoryBytes} bytes`)
  const memoryMiB = limits.memoryBytes !== undefined ? Math.floor(limits.memoryBytes / 2 ** 20) : defaultMiB
  const cpus = limits.cpuPercent !== undefined ? Math.max(1, Math.ceil(limits.cpuPercent / 100)) : 1
  return { service, args, qemuArgs, forwards, busPath, busKind, announce, interfaces, limits, memoryMiB, cpus }
}

/** The guest's endpoints as the host reaches them. */
function hostEndpoints (guest: readonly string[], plan: VmPlan): string[] {
  return guest.map((e) => {
    const ep = parseEndpoint(e)
    if (ep.protocol === 'unix' || ep.protocol === 'net.uds') return plan.busPath === undefined ? e : formatEndpoint({ protocol: ep.protocol, socketPath: plan.busPath, path: ep.path })
    const f = plan.forwards.find((x) => x.guestPort === ep.port)
    return f === undefined ? e : formatEndpoint({ protocol: 'http', host: f.host, port: f.port, path: ep.path })
  })
}

/** What the host does for the guest (announce, interfaces) apart from what the domain inside gets. */
function splitArgs (extra: readonly string[]): { guestArgs: string[], announce: boolean, interfaces: string[] } {
  const guestArgs: string[] = []
  const interfaces: string[] = []
  let announce = false
  for (let i = 0; i < extra.length; i++) {
    const a = extra[i]!
    if (a === '--announce') { announce = true; continue }
    if (a === '--interface') { interfaces.push(extra[++i] ?? 'lo'); continue }
    if (a.startsWith('--interface=')) { interfaces.push(a.slice('--interface='.length)); continue }
    if (a === '--hosting' || a === '--listen') throw new MetaosError('INVALID_ARGUMENT', `${a} is the VM driver's to set`)
    guestArgs.push(a)
  }
  return { guestArgs, announce, interfaces }
}

/** QEMU option values escape a comma by doubling it. */
const qemuValue = (s: string): string => s.replace(/,/g, ',,')

async function freePort (host: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, host, () => { const a = s.address(); s.close(() => { resolve(typeof a === 'object' && a !== null ? a.port : 0) }) })
  })
}
