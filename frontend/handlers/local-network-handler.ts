// The local network handler: socket syscalls go straight to this process's kernel, running the
// network service's own implementation (the one a network domain serves), so the same semantics
// and fault codes. The application's own kernel admits any destination, so the allow-list is
// allowAll(). Service time is the engine's time; there is no channel. Owns the in-process engine
// only; knows nothing of NetSocket.
import { NetworkEngine } from '../../backend-network/network-engine.js'
import { networkImplementation } from '../../backend-network/network-implementation.js'
import { allowAll } from '../../security/allow-list.js'
import type { Invocation } from '../../soap-runtime/client.js'
import { InProcessService } from '../../service-domain/in-process.js'
import { localFacts } from '../../service-domain/domain-facts.js'
import { NETWORK_CONTRACT } from '../../wsdl/network-contract.js'
import type { NetworkOperations } from '../../wsdl/generated/network-service.js'
import type { NetworkHandler, NetworkOp } from './network-handler.js'

const CALLER = 'local'

export class LocalNetworkHandler implements NetworkHandler {
  readonly destination = 'local'
  // The application's own sockets: any destination, and no idle reaping (a local socket lives until closed, as with node:net).
  readonly #engine = new NetworkEngine(allowAll(), { idleMs: 2 ** 31 - 1 })
  readonly #service: InProcessService<NetworkOperations>

  constructor () {
    const facts = localFacts()
    this.#service = new InProcessService(NETWORK_CONTRACT, networkImplementation(this.#engine, () => ({ ...facts(), allow: { rule: ['*'] } })), CALLER)
  }

  async invoke<K extends NetworkOp> (operation: K, input: NetworkOperations[K]['input']): Promise<Invocation<NetworkOperations[K]['output']>> {
    return await this.#service.invoke(operation, input)
  }

  /** Open sockets, listeners and buffered bytes of the in-process engine (to see that nothing leaks). */
  get stats (): NetworkEngine['stats'] { return this.#engine.stats }

  async close (): Promise<void> { await this.#engine.closeAll() }
}
