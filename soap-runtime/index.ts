// metaos/soap: the SOAP runtime every side of metaos uses, for integrators (docs/wsdl.md): a typed
// client over any descriptor the codegen emits and its transports (HTTP on TCP, a Unix socket or
// TLS; [MC-NMF] sessions on net.uds and net.tcp), a
// service host, WS-Security UsernameToken, endpoints, and the one error catalogue.
export { createClient, type ClientOptions, type Invocation, type SoapClient } from './client.js'
export { createHttpTransport, type HttpTransportOptions, type ClientTls, type Transport, type TransportRequest, type TransportResponse } from './http-transport.js'
export { createFramedTransport, type FramedTransportOptions } from './nmf/client-transport.js'
export { transportFor, type TransportOptions } from './transport-for.js'
export { ServiceHost, DEFAULT_HOST_LIMITS, type ServiceHostOptions, type Implementation, type CallContext, type HostTls, type HostLimits, type Authenticator, type Principal } from './service-host.js'
export { UsernameTokenVerifier, type UsernameCredentials } from './ws-security.js'
export { parseEndpoint, formatEndpoint, type Endpoint } from './endpoint.js'
export type { ServiceDescriptor, OperationDescriptor, FieldDescriptor } from './descriptor.js'
export { MetaosError, ERRORS, FAULT_CODES, NETWORK_FAULT_CODES, isErrorCode, type ErrorCode, type FaultCode } from './errors.js'
