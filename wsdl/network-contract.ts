// The network service's contract (wsdl/contracts.ts has the storage service's and what both share):
// its descriptor, path, WSDL, fault element and codes. Apart so that a storage domain does not load
// the network service's descriptor.
import { NetworkServiceDescriptor, NetworkFaultCodes } from './generated/network-service.js'
import { NETWORK_PATH, networkWsdl, type ServiceContract } from './contracts.js'

export const NETWORK_CONTRACT: ServiceContract = {
  descriptor: NetworkServiceDescriptor, path: NETWORK_PATH, wsdl: networkWsdl, faultElement: 'NetworkFault', faultCodes: NetworkFaultCodes, timingHeader: 'ServiceTiming',
}
