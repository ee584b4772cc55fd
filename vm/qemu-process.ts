// A QEMU process of a VM domain (vm/vm-driver.ts starts one per boot, vm/vm-migration.ts one per
// live migration): spawned under setpriv's parent-death signal, its exit, the last of its console,
// and errors quoting that console.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import type { DomainExit } from '../domains/driver.js'
import { MetaosError } from '../soap-runtime/errors.js'

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p))

/** A running QEMU: its process, its exit, the last of its console, and an error quoting it. */
export interface Qemu {
  readonly proc: ChildProcess
  readonly exit: Promise<DomainExit>
  console: () => string
  failed: (why: string) => MetaosError
}

export function launchQemu (binary: string, argv: string[], name: string): Qemu {
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
