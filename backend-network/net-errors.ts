// Socket errors as NetworkFault codes (DESIGN.md §3, soap-runtime/errors.ts), and the argument
// checks every network operation shares. The kernel's errno stays in the message so an operator
// can tell EHOSTUNREACH from ENETUNREACH; nothing else of the domain's state leaks into it.
import { MetaosError, type ErrorCode } from '../soap-runtime/errors.js'

export function fromNetError (err: unknown, what: string): MetaosError {
  if (err instanceof MetaosError) return err
  const e = err as NodeJS.ErrnoException | undefined
  const code: ErrorCode = (() => {
    switch (e?.code) {
      case 'ECONNREFUSED': return 'CONNECTION_REFUSED'
      case 'ECONNRESET': case 'EPIPE': case 'ECONNABORTED': return 'CONNECTION_RESET'
      case 'EHOSTUNREACH': case 'ENETUNREACH': case 'EHOSTDOWN': case 'ENETDOWN': return 'HOST_UNREACHABLE'
      case 'ENOTFOUND': case 'EAI_AGAIN': case 'EAI_NONAME': case 'EAI_NODATA': case 'ENODATA': return 'NAME_NOT_RESOLVED'
      case 'EADDRINUSE': return 'ADDRESS_IN_USE'
      case 'ETIMEDOUT': return 'TIMED_OUT'
      // A datagram over the path's limit: the caller's message, not the domain, is at fault.
      case 'EMSGSIZE': return 'MESSAGE_TOO_LARGE'
      // Out of descriptors: a limit of the domain, like maxSockets.
      case 'EMFILE': case 'ENFILE': case 'ENOBUFS': return 'QUOTA_EXCEEDED'
      default: return 'IO_ERROR'
    }
  })()
  return new MetaosError(code, `${what}: ${e?.code ?? (e as Error | undefined)?.message ?? String(err)}`, { cause: err })
}

export function invalid (message: string): MetaosError {
  return new MetaosError('INVALID_ARGUMENT', message)
}

export function checkInt (name: string, v: number, min: number, max: number): number {
  if (!Number.isSafeInteger(v) || v < min || v > max) throw invalid(`${name} ${v} is not between ${min} and ${max}`)
  return v
}

export function checkTimeout (v: number, maxWaitMs: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`timeoutMs ${v} is negative or not an integer`)
  if (v > maxWaitMs) throw invalid(`timeoutMs ${v} is over the domain's limit of ${maxWaitMs} ms`)
  return v
}

export function checkMaxBytes (v: number, maxReceiveBytes: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`maxBytes ${v} is negative or not an integer`)
  if (v > maxReceiveBytes) throw new MetaosError('MESSAGE_TOO_LARGE', `maxBytes ${v} is over the per-call limit of ${maxReceiveBytes} bytes`)
  return v
}

export function checkHost (host: string): string {
  const h = host.trim()
  if (h === '') throw invalid('host is empty')
  if (h.length > 255) throw invalid(`host of ${h.length} characters is longer than a DNS name can be`)
  return h
}

export const handleClosed = (): MetaosError => new MetaosError('INVALID_HANDLE', 'unknown, closed or foreign handle')

export const EMPTY = Buffer.alloc(0)
