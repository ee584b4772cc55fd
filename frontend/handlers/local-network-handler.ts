// The local network handler: socket syscalls go straight to this process's kernel through the same
// engine a network domain runs (so the same semantics and fault codes). The application's own
// kernel admits any destination, so the allow-list is allowAll(). Service time is the engine's
// time; there is no channel. Owns the in-process engine only; knows nothing of NetSocket.
import { hostname, machine, release, type, version } from 'node:os'
import { batchOutputs, runBatch } from '../../soap-runtime/batch.js'
import type { Invocation } from '../../soap-runtime/client.js'
import { MetaosError, NETWORK_FAULT_CODES } from '../../soap-runtime/errors.js'
import { NetworkEngine } from '../../backend-network/network-engine.js'
import { allowAll } from '../../security/allow-list.js'
import { NetworkServiceDescriptor, type NetworkOperations } from '../../wsdl/generated/network-service.js'
import type { NetworkHandler, NetworkOp } from './network-handler.js'

const CALLER = 'local'

export class LocalNetworkHandler implements NetworkHandler {
  readonly destination = 'local'
  // The application's own sockets: any destination, and no idle reaping (a local socket lives until closed, as with node:net).
  readonly #engine = new NetworkEngine(allowAll(), { idleMs: 2 ** 31 - 1 })
  readonly #started = Date.now()
  readonly #outputs = batchOutputs(NetworkServiceDescriptor)

  async invoke<K extends NetworkOp> (operation: K, input: NetworkOperations[K]['input']): Promise<Invocation<NetworkOperations[K]['output']>> {
    const t0 = process.hrtime.bigint()
    const output = await this.#execute(operation, input)
    const micros = Number((process.hrtime.bigint() - t0) / 1000n)
    return { output: output as NetworkOperations[K]['output'], serviceMicros: micros, totalMicros: micros }
  }

  /** Open sockets, listeners and buffered bytes of the in-process engine (to see that nothing leaks). */
  get stats (): NetworkEngine['stats'] { return this.#engine.stats }

  async #execute (operation: string, input: any): Promise<unknown> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const e = this.#engine
    switch (operation) {
      case 'Connect': return await e.connect(input, CALLER)
      case 'Send': return await e.send(input, CALLER)
      case 'Receive': return await e.receive(input, CALLER)
      case 'SendTo': return await e.sendTo(input, CALLER)
      case 'ReceiveFrom': return await e.receiveFrom(input, CALLER)
      case 'Listen': return await e.listen(input, CALLER)
      case 'Accept': return await e.accept(input, CALLER)
      case 'Shutdown': return await e.shutdown(input, CALLER)
      case 'Close': return await e.close(input, CALLER)
      case 'ResolveHost': return await e.resolveHost(input)
      case 'Batch': return await runBatch({ outputs: this.#outputs, faultElement: 'NetworkFault', faultCodes: NETWORK_FAULT_CODES, maxOps: 1024 }, input.op, async (op, i) => await this.#execute(op, i))
      case 'GetDomainInfo': return {
        domainId: `local:${hostname()}`,
        hosting: 'process',
        kernel: { sysname: type(), release: release(), version: version(), machine: machine() },
        runtime: `node/${process.versions.node}`,
        transports: { transport: [] },
        allow: { rule: ['*'] },
        uptime: (Date.now() - this.#started) / 1000,
      }
    }
    throw new MetaosError('INVALID_ARGUMENT', `NetworkService has no operation ${operation}`)
  }

  async close (): Promise<void> { await this.#engine.closeAll() }
}
