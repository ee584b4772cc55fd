// The network service's one operation table: every operation of NetworkService.wsdl on a network
// engine, sockets owned by the caller. A network domain serves it; the frontend's local network
// handler runs it in process on an engine that admits any destination.
import type { GetDomainInfoResponse, NetworkServiceImplementation } from '../wsdl/generated/network-service.js'
import type { NetworkEngine } from './network-engine.js'

export function networkImplementation (engine: NetworkEngine, info: () => GetDomainInfoResponse): NetworkServiceImplementation {
  return {
    Connect: async (i, ctx) => await engine.connect(i, ctx.caller),
    Send: async (i, ctx) => await engine.send(i, ctx.caller),
    Receive: async (i, ctx) => await engine.receive(i, ctx.caller),
    SendTo: async (i, ctx) => await engine.sendTo(i, ctx.caller),
    ReceiveFrom: async (i, ctx) => await engine.receiveFrom(i, ctx.caller),
    Listen: async (i, ctx) => await engine.listen(i, ctx.caller),
    Accept: async (i, ctx) => await engine.accept(i, ctx.caller),
    Shutdown: async (i, ctx) => await engine.shutdown(i, ctx.caller),
    Subscribe: async (i, ctx) => engine.subscribe(i, ctx.caller, ctx.session),
    Grant: async (i, ctx) => engine.grant(i, ctx.caller),
    Close: async (i, ctx) => await engine.close(i, ctx.caller),
    ResolveHost: async (i) => await engine.resolveHost(i),
    GetDomainInfo: async () => info(),
  }
}
