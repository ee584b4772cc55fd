// Request ids: the token that links a client's call to the service's log lines for it. The client
// sends one in `X-Request-Id`; the host keeps the caller's when it is a sane token, else makes one,
// and echoes it in the response.
import { randomUUID } from 'node:crypto'

/** The HTTP header that links a frontend's call to the service's log lines. */
export const REQUEST_ID_HEADER = 'X-Request-Id'
const REQUEST_ID = /^[A-Za-z0-9._:@-]{1,64}$/

/** A fresh request id: 16 hex digits (64 random bits). */
export function newRequestId (): string {
  return randomUUID().replaceAll('-', '').slice(0, 16)
}

/** The caller's request id when it is a sane token (it goes into logs and a response header), else a fresh one. */
export function requestIdOf (h: string | string[] | undefined): string {
  if (typeof h === 'string' && REQUEST_ID.test(h)) return h
  return newRequestId()
}
