// Request ids: the token that links a client's call to the service's log lines for it. The client
// sends one in `X-Request-Id`; the host keeps the caller's when it is a sane token, else makes one,
// and echoes it in the response.
import { randomBytes } from 'node:crypto'

/** The HTTP header that links a frontend's call to the service's log lines. */
export const REQUEST_ID_HEADER = 'X-Request-Id'
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,64}$/

// 8 hex digits drawn once per process, then a counter: unique within the process, and across
// processes but for a 1 in 2^32 chance per pair. An id links log lines; it is no secret, so it
// need not be random per call (a randomUUID per call was ~2 µs of a 512 B Write's client time).
const PROCESS_PREFIX = randomBytes(4).toString('hex')
let counter = Math.floor(Math.random() * 0x1_0000_0000)

/** A fresh request id: 16 hex digits (this process's 8, then a counter's). */
export function newRequestId (): string {
  counter = (counter + 1) >>> 0
  return PROCESS_PREFIX + counter.toString(16).padStart(8, '0')
}

/** The caller's request id when it is a sane token (it goes into logs and a response header), else a fresh one. */
export function requestIdOf (h: string | string[] | undefined): string {
  if (typeof h === 'string' && REQUEST_ID.test(h)) return h
  return newRequestId()
}
