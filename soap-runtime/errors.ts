// The one error catalogue of metaos. Its codes are the fault codes of the WSDL contracts
// (DESIGN.md §2) and the `code` of every typed error an application sees. docs/errors.md is
// checked against it by test/project/errors-doc.test.ts. Owns codes and the error class; knows no transport.

export interface ErrorSpec {
  /** Who is at fault: 'Sender' (the caller's request) or 'Receiver' (the domain). */
  readonly side: 'Sender' | 'Receiver'
  readonly description: string
}

export const ERRORS = {
  FILE_NOT_FOUND: { side: 'Sender', description: 'The path does not exist (Open with Open/Truncate, Delete, a missing directory).' },
  ALREADY_EXISTS: { side: 'Sender', description: 'CreateNew on a path that exists.' },
  ACCESS_DENIED: { side: 'Sender', description: 'The kernel refused (permissions), the path is a directory where a file is needed, or the handle lacks the access the call needs.' },
  PATH_OUTSIDE_ROOT: { side: 'Sender', description: 'The path is absolute, climbs out of the root with "..", or reaches outside it through a symlink.' },
  INVALID_HANDLE: { side: 'Sender', description: 'The handle is unknown, closed, reaped as idle, or owned by another caller.' },
  INVALID_ARGUMENT: { side: 'Sender', description: 'A value breaks the schema or the call\'s rules: missing, extra or repeated elements, a bad number, enum, boolean or base64, a NUL byte in a path, a negative count or offset, a mode/access pair .NET would refuse.' },
  SHARING_VIOLATION: { side: 'Sender', description: 'Another open handle\'s FileShare does not admit this access (or this FileShare does not admit an existing handle\'s access).' },
  IO_ERROR: { side: 'Receiver', description: 'The kernel failed the operation for another reason (EIO, ENOSPC…); the message says which.' },
  QUOTA_EXCEEDED: { side: 'Receiver', description: 'A limit of the domain was reached: open handles per caller or in all, or disk quota.' },
  MESSAGE_TOO_LARGE: { side: 'Sender', description: 'The request is over the domain\'s message size limit, or a Read asks for more than its per-call limit.' },
  MALFORMED_MESSAGE: { side: 'Sender', description: 'Not a SOAP message: not well-formed XML, a DTD, too deep, no Envelope/Body, an unknown operation, a broken MTOM package, a header the domain must but cannot understand.' },
  UNAUTHORIZED: { side: 'Sender', description: 'The caller is not authenticated or not allowed to do this.' },
  DOMAIN_DRAINING: { side: 'Receiver', description: 'The domain is shutting down and takes no new work; retry on another domain of the same volume.' },
  DOMAIN_FENCED: { side: 'Receiver', description: 'With coordination (--coordination etcd://…): the domain\'s lease expired (it stopped renewing: partitioned, paused or etcd lost quorum), so it refuses handle operations; the stream moves to a domain that holds a lease, or fails if none can take it. A dispatcher also fails a stream with it when the domain of the stream stopped answering and cannot be killed (fenced) before the takeover: the stream is not moved rather than risk two writers.' },
  STALE_EPOCH: { side: 'Sender', description: 'The operation (or Open) carries an older stream epoch than the domain knows — the stream has moved to another domain since (failover or migration), and this domain no longer owns it; or, with coordination, an Open names an epoch the stream directory does not hold.' },
  COORDINATION_UNAVAILABLE: { side: 'Receiver', description: 'With coordination: etcd has no quorum (or cannot be reached) within the deadline, so the domain cannot register an open or renew its lease; nothing was done. Open streams keep writing until their domain\'s lease runs out.' },
  NOT_RUN_AFTER_FAILURE: { side: 'Sender', description: 'Inside a Batch: an earlier operation of the same Batch on the same handle (file handle, socket or listener) failed, so this one was not run; the handle stays as the failure left it. The failed operation has its own fault; the message names it.' },
  // Network service codes (NetworkFault), beside the shared ones above.
  CONNECTION_REFUSED: { side: 'Receiver', description: 'The destination refused the connection (ECONNREFUSED): nothing listens there.' },
  CONNECTION_RESET: { side: 'Receiver', description: 'The peer reset the connection (ECONNRESET, EPIPE); what was not yet received is lost, as with a local socket.' },
  HOST_UNREACHABLE: { side: 'Receiver', description: 'No route to the destination (EHOSTUNREACH, ENETUNREACH).' },
  NAME_NOT_RESOLVED: { side: 'Sender', description: 'The host name does not resolve (ENOTFOUND) as the domain sees it.' },
  ADDRESS_IN_USE: { side: 'Sender', description: 'Listen on an address and port something already listens on (EADDRINUSE): a network domain\'s Listen, or a domain started on a port already taken (spawnDomain, the DomainManager, `metaos up`).' },
  DESTINATION_NOT_ALLOWED: { side: 'Sender', description: 'The domain\'s allow-list does not admit this destination (or listening address): the domain is not an open proxy.' },
  // Frontend-side codes: raised in the application's process, never sent by a domain.
  TRANSPORT_ERROR: { side: 'Receiver', description: 'The frontend could not reach the domain or lost the connection (ECONNREFUSED, ENOENT on a socket, a reset); the message carries the system error.' },
  NO_ELIGIBLE_DOMAIN: { side: 'Receiver', description: 'No known domain can take the syscall: every one is isolated, draining, of another volume, excluded by the vulnerability feed or by a rule, or none is known. The message says, for each domain, why it is out (`metaos pmt --explain` prints it too, and exits 3).' },
  TIMED_OUT: { side: 'Receiver', description: 'The domain did not answer within the call\'s timeout; or (a network fault) a connection could not be made within the Connect\'s timeoutMs.' },
  PROTOCOL_ERROR: { side: 'Receiver', description: 'The domain\'s answer was not a valid response of the contract (wrong HTTP status without a fault, unparsable body).' },
  INVALID_CONFIG: { side: 'Sender', description: 'The configuration file (METAOS_CONFIG) or a file it names is unreadable or breaks its schema: the message names the file, the key and what the key accepts; unknown keys are refused.' },
  STREAM_CLOSED: { side: 'Sender', description: 'A FileStream (or NetDatagramSocket) method was called after close().' },
  STREAM_BUSY: { side: 'Sender', description: 'A FileStream method was called while another one on the same stream had not finished; await each call (the Node stream adapters do).' },
  NOT_SUPPORTED: { side: 'Sender', description: 'The FileStream cannot do this with its access (reading a write-only stream, writing a read-only one).' },
  CONNECTION_LOST: { side: 'Receiver', description: 'The network domain serving a connection failed (died, hung, drained): a TCP connection cannot move to another kernel, so it is lost, as it would be if the application\'s own kernel had failed. New connections go to a healthy domain.' },
  VOLUME_UNAVAILABLE: { side: 'Receiver', description: 'Every domain of the stream\'s volume failed or is gone: the stream could not be moved to a healthy one. Everything acknowledged before is on the volume; the message names the volume and the last failure.' },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS
/** Codes a domain sends in a StorageFault detail (the WSDL's FaultCode enumeration). */
export const FAULT_CODES = [
  'FILE_NOT_FOUND', 'ALREADY_EXISTS', 'ACCESS_DENIED', 'PATH_OUTSIDE_ROOT', 'INVALID_HANDLE',
  'INVALID_ARGUMENT', 'SHARING_VIOLATION', 'IO_ERROR', 'QUOTA_EXCEEDED', 'MESSAGE_TOO_LARGE',
  'MALFORMED_MESSAGE', 'UNAUTHORIZED', 'DOMAIN_DRAINING', 'NOT_RUN_AFTER_FAILURE',
  'DOMAIN_FENCED', 'STALE_EPOCH', 'COORDINATION_UNAVAILABLE',
] as const satisfies readonly ErrorCode[]
export type FaultCode = (typeof FAULT_CODES)[number]
/** Codes a network domain sends in a NetworkFault detail (NetworkService.wsdl's FaultCode enumeration). */
export const NETWORK_FAULT_CODES = [
  'CONNECTION_REFUSED', 'CONNECTION_RESET', 'HOST_UNREACHABLE', 'NAME_NOT_RESOLVED', 'ADDRESS_IN_USE',
  'TIMED_OUT', 'DESTINATION_NOT_ALLOWED', 'INVALID_HANDLE', 'INVALID_ARGUMENT', 'QUOTA_EXCEEDED',
  'MESSAGE_TOO_LARGE', 'MALFORMED_MESSAGE', 'UNAUTHORIZED', 'DOMAIN_DRAINING', 'IO_ERROR', 'NOT_RUN_AFTER_FAILURE',
  'DOMAIN_FENCED', 'COORDINATION_UNAVAILABLE',
] as const satisfies readonly ErrorCode[]

export class MetaosError extends Error {
  readonly code: ErrorCode
  /** For faults received from a domain: the SOAP fault code (e.g. "soap:Client"). */
  readonly faultCode?: string
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown, faultCode?: string }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'MetaosError'
    this.code = code
    if (options?.faultCode !== undefined) this.faultCode = options.faultCode
  }
}

export function isErrorCode (s: string): s is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERRORS, s)
}

/** Maps a Node.js system error (fs) to the catalogue; anything unknown is IO_ERROR with the errno. */
export function fromSystemError (err: unknown, what: string): MetaosError {
  if (err instanceof MetaosError) return err
  const e = err as NodeJS.ErrnoException
  const code: ErrorCode = (() => {
    switch (e?.code) {
      case 'ENOENT': case 'ENOTDIR': return 'FILE_NOT_FOUND'
      case 'EEXIST': return 'ALREADY_EXISTS'
      case 'EACCES': case 'EPERM': case 'EISDIR': case 'EROFS': return 'ACCESS_DENIED'
      case 'ELOOP': return 'PATH_OUTSIDE_ROOT'
      case 'EBADF': return 'INVALID_HANDLE'
      case 'EINVAL': case 'ENAMETOOLONG': case 'EFBIG': return 'INVALID_ARGUMENT'
      case 'EDQUOT': return 'QUOTA_EXCEEDED'
      default: return 'IO_ERROR'
    }
  })()
  // The kernel's message names the domain's real paths: keep it out of what callers see.
  return new MetaosError(code, `${what}: ${e?.code ?? String(err)}`, { cause: err })
}
