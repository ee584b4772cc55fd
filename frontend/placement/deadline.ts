// A call with a deadline: what the dispatchers use to tell a hung domain from a slow one. The call
// itself goes on (a domain may answer later); its late outcome is swallowed, never unhandled.
// One promise and one timer per call, settled by whichever comes first (no Promise.race, whose
// extra promises and finally were a visible share of the supervised dispatcher's per-call cost).
import type { MetaosError } from '../../soap-runtime/errors.js'

export async function withDeadline<T> (call: Promise<T>, ms: number, expired: () => MetaosError): Promise<T> {
  return await new Promise<T>((resolve, reject) => {
    let done = false
    const timer = setTimeout(() => { if (!done) { done = true; reject(expired()) } }, ms)
    call.then((v) => {
      if (done) return
      done = true
      clearTimeout(timer)
      resolve(v)
    }, (e: unknown) => {
      if (done) return // late: swallowed
      done = true
      clearTimeout(timer)
      reject(e)
    })
  })
}
