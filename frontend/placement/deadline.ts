// A call with a deadline: what the dispatchers use to tell a hung domain from a slow one. The call
// itself goes on (a domain may answer later); its late outcome is swallowed, never unhandled.
import type { MetaosError } from '../../soap-runtime/errors.js'

export async function withDeadline<T> (call: Promise<T>, ms: number, expired: () => MetaosError): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(expired()) }, ms) })
  try {
    return await Promise.race([call, deadline])
  } finally {
    clearTimeout(timer)
    call.catch(() => {})
  }
}
