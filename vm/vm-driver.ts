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
// process (cgroup-limits.ts), with as many vCPUs as the quota allows whole CPUs.
// Discovery: multicast does not cross user-mode networking, so when the spec asks `--announce` the
// driver announces the domain on the host, on the guest's behalf, with the types and scopes the
// domain announced inside the guest (its kernel, hosting vm, volume…) and the host's endpoints.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, realpath, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { hostname as hostName, tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { CgroupLimits, type DomainLimits, type LimitsOutcome } from '../domains/cgroup-limits.js'
import type { DomainDriver, DomainExit, DomainInstance, DomainSpec } from '../domains/driver.js'
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

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))

/** The guest needs this much RAM: the initramfs (~150 MiB unpacked) lives in it, then Node. */
const MIN_GUEST_MIB = 320

/** A running VM domain: a DomainInstance, and what its boot took and which kernel it runs. */
export interface VmDomainInstance extends DomainInstance {
  /** From QEMU's start to the domain's ready line, as the host measured it. */
  readonly bootMs: number
  readonly kernel: GuestReady['kernel']
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
    const state = await mkdtemp(join(tmpdir(), 'metaos-vm-'))
    const paths = { qmp: join(state, 'qmp.sock'), bus: join(state, 'bus.sock'), control: join(state, 'control.sock') }
    const accel = this.#accel()
    const argv = this.#qemuArgv(plan, config, image, paths, accel)
    const t0 = performance.now()
    const qemu = launchQemu(this.#o.qemu ?? 'qemu-system-x86_64', argv, spec.name)
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
    return {
      ...vmControls({ name: spec.name, qemu, booted, state, plan, target, logger: this.#logger }),
      pid: qemu.proc.pid!,
      epr: ready.epr,
      endpoints,
      ...(outcome === undefined ? {} : { limits: outcome }),
      bootMs,
      kernel: ready.kernel,
      hosting: { kind: 'vm', kernel: { sysname: ready.kernel.sysname, release: ready.kernel.release } },
    }
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

/** A running QEMU: its process, its exit, the last of its console, and an error quoting it. */
interface Qemu {
  readonly proc: ChildProcess
  readonly exit: Promise<DomainExit>
  console: () => string
  failed: (why: string) => MetaosError
}

function launchQemu (binary: string, argv: string[], name: string): Qemu {
  // QEMU dies with this process (setpriv's PR_SET_PDEATHSIG, util-linux): a frontend that crashes
  // leaves no guest running on behind it. Without setpriv the guest outlives a crash.
  const proc = SETPRIV === undefined
    ? spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  let console = ''
  const keep = (c: Buffer): void => { console = (console + c.toString('utf8')).slice(-8000) }
  proc.stdout.on('data', keep)
  proc.stderr.on('data', keep)
  const exit = new Promise<DomainExit>((resolve) => {
    proc.once('error', (e) => { keep(Buffer.from(`\n${e.message}`)); resolve({ code: null, signal: null }) })
    proc.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  const failed = (why: string): MetaosError => {
    const tail = console.replace(/\r/g, '').split('\n').filter((l) => l.trim() !== '').slice(-15).join('\n')
    // QEMU says "Could not set up host forwarding rule" for a taken port (its words are all there is
    // to tell it by): ADDRESS_IN_USE, and the manager's restart retries on another port.
    const taken = /host forwarding rule|Address already in use/i.test(tail)
    return new MetaosError(taken ? 'ADDRESS_IN_USE' : 'TRANSPORT_ERROR', `VM domain ${name}: ${why}\n${tail}`)
  }
  return { proc, exit, console: () => console, failed }
}

/** What a booted guest is driven through. */
interface Booted { readonly qmp: QmpClient, readonly control: Control, readonly bus: HypervisorBusHost | undefined, readonly cpu: CgroupLimits, readonly ready: GuestReady }

interface Running { readonly name: string, readonly qemu: Qemu, readonly booted: Booted, readonly state: string, readonly plan: VmPlan, readonly target: TargetService | undefined, readonly logger: Logger }

/** A running VM domain's exit and controls: stop (drain through the guest agent), kill, pause and resume (QMP), setLimits. */
function vmControls (r: Running): Pick<DomainInstance, 'exited' | 'stop' | 'kill' | 'pause' | 'resume' | 'setLimits'> {
  const { qemu, state, target, logger } = r
  const { qmp, control, bus, cpu } = r.booted
  const proc = qemu.proc
  let guestExit: DomainExit | undefined
  control.on('exit', (x) => { guestExit = x })
  let withdrawn = false
  /** Bye once, when the domain goes on purpose; a kill or a crash says nothing (as a killed process would not). */
  const withdraw = async (bye: boolean): Promise<void> => {
    if (withdrawn || target === undefined) return
    withdrawn = true
    if (bye) await target.stop().catch(() => {})
    else await target.udp.close().catch(() => {})
  }
  const exited = qemu.exit.then(async (x) => {
    await withdraw(false)
    qmp.close(); control.close(); await bus?.close()
    await cpu.release()
    await rm(state, { recursive: true, force: true })
    logger.info({ domain: r.name, qemu: x, guest: guestExit }, 'VM domain exited')
    logger.debug({ domain: r.name, console: qemu.console() }, 'VM domain console (last 8000 characters)')
    // The domain's own exit when the guest said it; QEMU's otherwise (a kill, a crash).
    return guestExit ?? x
  })
  const alive = (): boolean => proc.exitCode === null && proc.signalCode === null
  let inForce: DomainLimits = { ...(r.plan.limits.cpuPercent === undefined ? {} : { cpuPercent: r.plan.limits.cpuPercent }) }
  return {
    exited,
    stop: async (graceMs) => {
      await withdraw(true)
      if (alive()) {
        // A paused guest cannot drain: it runs again first.
        await qmp.execute('cont').catch(() => {})
        control.send({ op: 'stop', graceMs })
        const t = setTimeout(() => { void qmp.execute('quit').catch(() => {}); setTimeout(() => { if (alive()) proc.kill('SIGKILL') }, 5000).unref() }, graceMs + 5000)
        await exited.finally(() => { clearTimeout(t) })
      }
      return await exited
    },
    kill: async () => { if (alive()) proc.kill('SIGKILL'); return await exited },
    pause: async () => { if (alive()) await qmp.execute('stop') },
    resume: async () => { if (alive()) await qmp.execute('cont') },
    setLimits: async (l) => {
      if (!alive()) return { applied: false, mechanism: 'none', reason: 'the domain has exited' }
      const outcome = await resize(l, inForce, qmp, cpu, r.plan.memoryMiB)
      if (outcome.applied) inForce = { ...l }
      return outcome
    },
  }
}

/** Memory by the balloon (up to the RAM the guest booted with), CPU by the QEMU process's cgroup quota. */
async function resize (l: DomainLimits, inForce: DomainLimits, qmp: QmpClient, cpu: CgroupLimits, memoryMiB: number): Promise<LimitsOutcome> {
  const notes: string[] = []
  let applied = true
  let mechanism: LimitsOutcome['mechanism'] = 'none'
  if (l.memoryBytes !== undefined || inForce.memoryBytes !== undefined) {
    // The balloon takes back what the guest may use, up to the RAM it booted with.
    const target = Math.min(l.memoryBytes ?? memoryMiB * 2 ** 20, memoryMiB * 2 ** 20)
    if (target < MIN_GUEST_MIB * 2 ** 20) { applied = false; notes.push(`memory: at least ${MIN_GUEST_MIB} MiB`) } else {
      try { await qmp.execute('balloon', { value: target }); notes.push(`memory: balloon at ${target} bytes of ${memoryMiB} MiB`) } catch (e) { applied = false; notes.push(`memory: ${(e as Error).message}`) }
    }
  }
  if (l.cpuPercent !== undefined || inForce.cpuPercent !== undefined) {
    const c = await cpu.set(l.cpuPercent === undefined ? {} : { cpuPercent: l.cpuPercent })
    mechanism = c.mechanism
    if (!c.applied) { applied = false; notes.push(`cpu: ${c.reason ?? ''}`) }
  }
  return { applied, mechanism, ...(notes.length === 0 ? {} : { reason: notes.join('; ') }) }
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
