// A supervised cluster on this machine: N storage domain processes serving one volume (a shared
// directory), each with a fault file, measured by a performance module, placed on by a dispatcher
// with failover, and watched by a supervisor. What the fault-injection tests, the supervision
// benchmark and demonstrations share.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from './domain-process.js'
import { createStorageProxy } from './storage-proxy.js'
import { PerformanceMappingTable } from './pmt.js'
import { PerformanceModule } from './performance-module.js'
import { Dispatcher, type DispatcherOptions } from './dispatcher.js'
import { Supervisor, type SupervisorOptions } from './supervisor.js'
import type { StorageHandler } from './storage-handler.js'
import type { FaultFile } from '../backend-storage/fault-injection.js'

export interface LocalClusterOptions {
  /** Domains to start (default 3). */
  readonly count?: number
  readonly volume?: string
  readonly probeIntervalMs?: number
  readonly dispatcher?: Omit<DispatcherOptions, 'volume'>
  readonly supervisor?: Omit<SupervisorOptions, 'pmt' | 'dispatchers'>
  /** Log level of the domain processes (default silent). */
  readonly logLevel?: string
}

export class LocalCluster {
  readonly dir: string
  /** The volume's directory. */
  readonly root: string
  readonly volume: string
  readonly domains: DomainProcess[] = []
  readonly args: string[][] = []
  readonly pmt = new PerformanceMappingTable()
  readonly perf: PerformanceModule
  readonly handlers = new Map<string, StorageHandler>()
  readonly dispatcher: Dispatcher
  readonly supervisor: Supervisor
  readonly #env: NodeJS.ProcessEnv

  private constructor (o: LocalClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'metaos-cluster-'))
    this.root = join(this.dir, 'volume')
    mkdirSync(this.root)
    this.volume = o.volume ?? 'shared'
    this.#env = { ...process.env, METAOS_LOG_LEVEL: o.logLevel ?? 'silent' }
    this.perf = new PerformanceModule({ pmt: this.pmt, ...(o.probeIntervalMs === undefined ? {} : { probeIntervalMs: o.probeIntervalMs }) })
    this.dispatcher = new Dispatcher(this.pmt, this.handlers, { ...o.dispatcher, volume: this.volume })
    this.supervisor = new Supervisor({ ...o.supervisor, pmt: this.pmt, dispatchers: [this.dispatcher] })
  }

  static async start (o: LocalClusterOptions = {}): Promise<LocalCluster> {
    const c = new LocalCluster(o)
    try {
      for (let i = 0; i < (o.count ?? 3); i++) c.args.push(['storage', '--root', c.root, '--volume', c.volume, '--name', `d${i}`, '--listen', 'http://127.0.0.1:0', '--fault-file', c.faultFile(i)])
      c.domains.push(...await Promise.all(c.args.map(async (a) => await spawnDomain(a, { env: c.#env }))))
      // A restart comes back on the same address (and, with the same name and root, the same EPR).
      c.domains.forEach((d, i) => { c.args[i]![c.args[i]!.indexOf('--listen') + 1] = `http://${new URL(d.ready.endpoints[0]!).host}` })
      for (const d of c.domains) {
        c.handlers.set(d.ready.epr, c.perf.track({ epr: d.ready.epr, endpoints: d.ready.endpoints, hosting: 'process', kernel: { sysname: 'Linux', release: '0' }, volume: c.volume }, createStorageProxy(d.ready.endpoints[0]!, { timeoutMs: 30_000 })))
      }
      // Past each domain's cold first connection before anything is placed.
      for (let i = 0; i < 3; i++) for (const epr of c.handlers.keys()) await c.perf.probe(epr)
      c.perf.start()
      c.supervisor.start()
      return c
    } catch (e) {
      await c.close()
      throw e
    }
  }

  faultFile (i: number): string { return join(this.dir, `fault-${i}.json`) }

  /** Sets a domain's injected fault (a real delay, closed listeners); `{}` clears it. */
  inject (i: number, f: FaultFile): void { writeFileSync(this.faultFile(i), JSON.stringify(f)) }

  /** Index of the domain with this EPR. */
  index (epr: string): number { return this.domains.findIndex((d) => d.ready.epr === epr) }

  pid (epr: string): number { return this.domains[this.index(epr)]!.child.pid! }

  /** Stops domain i (SIGTERM: it drains) and starts it again with the same arguments: the same EPR. */
  async restart (i: number): Promise<DomainProcess> {
    await this.domains[i]!.stop()
    this.domains[i] = await spawnDomain(this.args[i]!, { env: this.#env })
    return this.domains[i]!
  }

  async close (): Promise<void> {
    this.supervisor.stop()
    this.perf.stop()
    for (const d of this.domains) { try { process.kill(d.child.pid!, 'SIGCONT') } catch { /* gone */ } }
    await Promise.all(this.domains.map(async (d) => await d.stop(2000)))
    for (const h of this.handlers.values()) await h.close()
    rmSync(this.dir, { recursive: true, force: true })
  }
}
