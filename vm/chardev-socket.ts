// QEMU creates its server sockets (`-qmp unix:…,server=on`, `-chardev socket,…,server=on`) once it
// has started: until then connecting fails with ENOENT or ECONNREFUSED, the normal state of a
// booting VM. Both the QMP client and the control port wait for them the same way.
import { connect, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { MetaosError } from '../soap-runtime/errors.js'

/** Connects to `path`, retrying every 25 ms while it is not there yet; TRANSPORT_ERROR (naming `what`) otherwise or after `timeoutMs`. */
export async function connectWhenListening (path: string, what: string, timeoutMs = 10_000): Promise<Socket> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect(path)
        s.once('connect', () => { s.off('error', reject); resolve(s) })
        s.once('error', reject)
      })
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw new MetaosError('TRANSPORT_ERROR', `${what} ${path}: ${(e as Error).message}`, { cause: e })
      await sleep(25)
    }
  }
}
