// Storage domain processes of one volume for the placement benchmarks (placement, affinity,
// forecast), each started with a fault file (`--fault-file`: the domain polls it every 100 ms) that
// the benchmark rewrites to slow that domain down, in a temporary directory removed by close().
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnDomain, type DomainProcess } from '../domains/domain-process.js'

export interface FaultDomains {
  /** The volume's directory, shared by every domain. */
  readonly root: string
  /** In the order of the names given. */
  readonly domains: readonly DomainProcess[]
  /** Every operation of domain i waits `delayMs`, plus 0..`jitterMs` at random when given. */
  setFault: (i: number, delayMs: number, jitterMs?: number) => void
  /** Stops the domains and removes the directory. */
  close: () => Promise<void>
}

/** Starts one domain per name on volume `volume`, domain i with a delay of `delays[i]` ms (0 when not given). */
export async function startFaultDomains (prefix: string, volume: string, names: readonly string[], delays: readonly number[] = []): Promise<FaultDomains> {
  const dir = mkdtempSync(join(tmpdir(), `metaos-bench-${prefix}-`))
  const root = join(dir, 'volume')
  mkdirSync(root)
  const faultFile = (i: number): string => join(dir, `fault-${i}.json`)
  const setFault = (i: number, delayMs: number, jitterMs?: number): void => {
    writeFileSync(faultFile(i), JSON.stringify(jitterMs === undefined ? { delayMs } : { delayMs, jitterMs }))
  }
  const env = { ...process.env, METAOS_LOG_LEVEL: 'error' }
  const domains: DomainProcess[] = []
  const close = async (): Promise<void> => {
    await Promise.all(domains.map(async (d) => await d.stop()))
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    for (const [i, name] of names.entries()) {
      setFault(i, delays[i] ?? 0)
      domains.push(await spawnDomain(['storage', '--root', root, '--volume', volume, '--name', name, '--listen', 'http://127.0.0.1:0', '--fault-file', faultFile(i)], { env }))
    }
  } catch (e) {
    await close()
    throw e
  }
  return { root, domains, setFault, close }
}
