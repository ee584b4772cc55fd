// What a vulnerability feed holds once read, whatever it was read from (the operator's own JSON,
// OSV records, a Debian Security Tracker export): which kernels, runtimes or Debian kernel packages
// a vulnerability affects (ranges of versions in that target's ordering), how severe it is (0–10),
// and what it does to an affected domain. And how a domain's facts are matched against it.
import { compareIn, type Scheme } from './version-schemes.js'

/** From `introduced` (inclusive; absent = from the beginning) up to `fixed` (exclusive) or `lastAffected` (inclusive); neither = not fixed. */
export interface AffectedRange { readonly introduced?: string, readonly fixed?: string, readonly lastAffected?: string }

interface Target { readonly ranges: readonly AffectedRange[], readonly versions?: readonly string[] }
export type Affected =
  /** The kernel by its upstream version (dotted numbers). */
  | { readonly kernel: Target & { readonly sysname: string } }
  /** A runtime such as `node` by its version (SEMVER). */
  | { readonly runtime: Target & { readonly name: string } }
  /** A Debian source package of a release (only `linux`, the kernel a Debian domain reports), by Debian version. */
  | { readonly debian: Target & { readonly package: string, readonly release: string } }

export interface Vulnerability {
  readonly id: string
  readonly summary?: string
  /** `exclude`: never place on an affected domain (the supervisor isolates it); `lower`: a lower tier and a lower score. */
  readonly action: 'exclude' | 'lower'
  readonly affected: readonly Affected[]
  readonly aliases?: readonly string[]
  /** 0–10: a CVSS base score, or a Debian urgency or qualitative rating mapped to one (docs/vulnerability-feed.md). */
  readonly severity?: number
  /** Where the severity comes from ("CVSS:3.1/AV:N/…", "Debian urgency high"…). */
  readonly severityFrom?: string
  /** The file it was read from. */
  readonly source?: string
}

/** What a domain reports of itself, as far as the feed matches it. */
export interface DomainFacts {
  readonly kernel: { readonly sysname: string, readonly release: string, readonly version?: string }
  /** e.g. `node/20.20.2`. */
  readonly runtime?: string
  readonly distribution?: { readonly id: string, readonly versionId?: string, readonly codename?: string }
}

/** The severity a vulnerability counts with when its record gives none (a medium one). */
export const DEFAULT_SEVERITY = 5.5

export const DEBIAN_RELEASES: Readonly<Record<string, string>> = { 9: 'stretch', 10: 'buster', 11: 'bullseye', 12: 'bookworm', 13: 'trixie', 14: 'forky' }

export function inRanges (version: string, ranges: readonly AffectedRange[], scheme: Scheme = 'kernel'): boolean {
  const cmp = (a: string, b: string): number => compareIn(scheme, a, b)
  return ranges.some((r) => (r.introduced === undefined || r.introduced === '0' || cmp(version, r.introduced) >= 0) &&
    (r.fixed === undefined || cmp(version, r.fixed) < 0) &&
    (r.lastAffected === undefined || cmp(version, r.lastAffected) <= 0))
}

/** The Debian package version of a Debian kernel, from its `uname -v` ("#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"). */
export function debianKernelVersion (k: DomainFacts['kernel']): string | undefined {
  return /\bDebian (\d[A-Za-z0-9.+~:-]*)/.exec(k.version ?? '')?.[1]
}

/** The kernel's upstream version: from the Debian package version when there is one (a Debian release "6.1.0-28-amd64" is an ABI name), else the release. */
export function kernelUpstream (k: DomainFacts['kernel']): string {
  const deb = debianKernelVersion(k)
  return deb === undefined ? k.release : deb.replace(/^\d+:/, '').replace(/-[^-]*$/, '')
}

/** The Debian release a domain runs: what it reports, else what its kernel's version says (`+deb12u1` → bookworm). */
export function debianRelease (f: DomainFacts): string | undefined {
  if (f.distribution?.id === 'debian') return f.distribution.codename ?? DEBIAN_RELEASES[f.distribution.versionId ?? '']
  const n = /deb(\d+)u?\d*/.exec(debianKernelVersion(f.kernel) ?? '')?.[1]
  return n === undefined ? undefined : DEBIAN_RELEASES[n]
}

/** Whether one affected entry covers the domain. A version the target's ordering cannot read is not matched. */
export function covers (a: Affected, f: DomainFacts): boolean {
  const test = (version: string, t: Target, scheme: Scheme): boolean => {
    try {
      return (t.versions?.some((v) => compareIn(scheme, version, v) === 0) ?? false) || inRanges(version, t.ranges, scheme)
    } catch { return false }
  }
  if ('kernel' in a) return a.kernel.sysname.toLowerCase() === f.kernel.sysname.toLowerCase() && test(kernelUpstream(f.kernel), a.kernel, 'kernel')
  if ('runtime' in a) {
    const [name, version] = (f.runtime ?? '').split('/')
    return a.runtime.name === name && version !== undefined && version !== '' && test(version, a.runtime, 'semver')
  }
  const deb = debianKernelVersion(f.kernel)
  return a.debian.package === 'linux' && deb !== undefined && debianRelease(f) === a.debian.release && test(deb, a.debian, 'dpkg')
}
