// How versions compare, per ecosystem: SEMVER (semver.org §11: numeric parts, then a pre-release
// below its release, build metadata ignored; a missing minor or patch counts as 0, a leading "v" is
// allowed), Debian (dpkg's ordering, dpkg-version.ts) and the Linux kernel (dotted numbers: the
// leading "6.1.119" of "6.1.119-rc1", compared part by part, missing parts 0).
import { MetaosError } from '../../../soap-runtime/errors.js'
import { compareDebianVersions, parseDebianVersion } from './dpkg-version.js'
import { compareVersions } from '../versions.js'

export type Scheme = 'semver' | 'dpkg' | 'kernel'

const SEMVER = /^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$/

export function compareSemver (a: string, b: string): number {
  const x = parseSemver(a)
  const y = parseSemver(b)
  for (let i = 0; i < 3; i++) if (x.core[i] !== y.core[i]) return x.core[i]! < y.core[i]! ? -1 : 1
  if (x.pre.length === 0 || y.pre.length === 0) return x.pre.length === y.pre.length ? 0 : x.pre.length === 0 ? 1 : -1
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i]
    const q = y.pre[i]
    if (p === undefined) return -1
    if (q === undefined) return 1
    const pn = /^\d+$/.test(p)
    const qn = /^\d+$/.test(q)
    if (pn && qn) { const d = BigInt(p) - BigInt(q); if (d !== 0n) return d < 0n ? -1 : 1; continue }
    if (pn !== qn) return pn ? -1 : 1
    if (p !== q) return p < q ? -1 : 1
  }
  return 0
}

function parseSemver (v: string): { core: bigint[], pre: string[] } {
  const m = SEMVER.exec(v.trim())
  if (m === null) throw new MetaosError('INVALID_ARGUMENT', `"${v.slice(0, 80)}" is not a semantic version`)
  return { core: [m[1], m[2], m[3]].map((n) => BigInt(n ?? '0')), pre: m[4] === undefined ? [] : m[4].split('.') }
}

/** The kernel's dotted numbers: "6.1.0-28-cloud-amd64" → [6, 1, 0]. */
export function kernelNumbers (v: string): number[] {
  const m = /^v?(\d+(?:\.\d+)*)/.exec(v.trim())
  if (m === null) throw new MetaosError('INVALID_ARGUMENT', `"${v.slice(0, 80)}" is not a kernel version (dotted numbers)`)
  return m[1]!.split('.').map(Number)
}

export function compareKernel (a: string, b: string): number {
  const x = kernelNumbers(a)
  const y = kernelNumbers(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return Math.sign(d)
  }
  return 0
}

/** In the scheme's order. SEMVER falls back to dotted numbers for what is not a semantic version ("20.20.2.1" in an operator's range): records read from outside were checked at load (checkVersion). */
export function compareIn (scheme: Scheme, a: string, b: string): number {
  if (scheme === 'semver') return SEMVER.test(a.trim()) && SEMVER.test(b.trim()) ? compareSemver(a, b) : compareVersions(a, b)
  return scheme === 'dpkg' ? compareDebianVersions(a, b) : compareKernel(a, b)
}

/** Throws INVALID_ARGUMENT when `v` is not a version of the scheme ("0", OSV's "from the beginning", always is). */
export function checkVersion (scheme: Scheme, v: string): void {
  if (v === '0') return
  if (scheme === 'semver') parseSemver(v)
  else if (scheme === 'dpkg') parseDebianVersion(v)
  else kernelNumbers(v)
}
