// Debian version ordering, as dpkg compares (lib/dpkg/version.c: verrevcmp): [epoch:]upstream[-revision],
// the epoch numerically, then the upstream version and the revision each by alternating runs of
// non-digits (letters before other characters, `~` before everything, even the end) and digits
// (numerically). An absent revision equals "0" ("1.0" = "1.0-0"), an absent epoch is 0.
import { MetaosError } from '../../../soap-runtime/errors.js'

export interface DebianVersion { readonly epoch: number, readonly upstream: string, readonly revision: string }

/** Splits a Debian version; INVALID_ARGUMENT when it is not one (dpkg's parseversion rules, trimmed). */
export function parseDebianVersion (v: string): DebianVersion {
  const s = v.trim()
  const colon = s.indexOf(':')
  let epoch = 0
  if (colon >= 0) {
    const e = s.slice(0, colon)
    if (!/^\d{1,9}$/.test(e)) throw new MetaosError('INVALID_ARGUMENT', `"${v}": the epoch must be a number`)
    epoch = Number(e)
  }
  const rest = s.slice(colon + 1)
  const hyphen = rest.lastIndexOf('-')
  const upstream = hyphen >= 0 ? rest.slice(0, hyphen) : rest
  const revision = hyphen >= 0 ? rest.slice(hyphen + 1) : ''
  if (upstream === '' || !/^\d/.test(upstream)) throw new MetaosError('INVALID_ARGUMENT', `"${v}": the version must start with a digit`)
  if (!/^[A-Za-z0-9.+~:-]+$/.test(upstream) || !/^[A-Za-z0-9.+~]*$/.test(revision)) throw new MetaosError('INVALID_ARGUMENT', `"${v}": invalid character in a Debian version`)
  return { epoch, upstream, revision }
}

const isDigit = (c: string): boolean => c >= '0' && c <= '9'
const isAlpha = (c: string): boolean => (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')

/** dpkg's order(): digits 0, letters their code, `~` −1, the end 0, anything else its code + 256. */
function order (c: string): number {
  if (c === '' || isDigit(c)) return 0
  if (isAlpha(c)) return c.charCodeAt(0)
  if (c === '~') return -1
  return c.charCodeAt(0) + 256
}

/** dpkg's verrevcmp(): <0, 0 or >0. */
export function verrevcmp (a: string, b: string): number {
  let i = 0
  let j = 0
  const at = (s: string, k: number): string => (k < s.length ? s[k]! : '')
  while (i < a.length || j < b.length) {
    let firstDiff = 0
    while ((i < a.length && !isDigit(a[i]!)) || (j < b.length && !isDigit(b[j]!))) {
      const ac = order(at(a, i))
      const bc = order(at(b, j))
      if (ac !== bc) return ac - bc
      i++
      j++
    }
    while (at(a, i) === '0') i++
    while (at(b, j) === '0') j++
    while (isDigit(at(a, i)) && isDigit(at(b, j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j)
      i++
      j++
    }
    if (isDigit(at(a, i))) return 1
    if (isDigit(at(b, j))) return -1
    if (firstDiff !== 0) return firstDiff
  }
  return 0
}

/** Compares two Debian versions as `dpkg --compare-versions` does: −1, 0 or 1. */
export function compareDebianVersions (a: string, b: string): number {
  const x = parseDebianVersion(a)
  const y = parseDebianVersion(b)
  if (x.epoch !== y.epoch) return Math.sign(x.epoch - y.epoch)
  return Math.sign(verrevcmp(x.upstream, y.upstream) || verrevcmp(x.revision, y.revision))
}
