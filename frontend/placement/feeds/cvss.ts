// The CVSS v3 base score from a vector string ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), as
// the FIRST specification defines it (v3.1 §7.1 and Appendix A's Roundup; v3.0 rounds up to one
// decimal directly). Only the base metrics count; temporal and environmental ones may follow and are
// ignored. INVALID_ARGUMENT names what is wrong with a vector.
import { MetaosError } from '../../../soap-runtime/errors.js'

const WEIGHTS: Record<string, Record<string, number>> = {
  AV: { N: 0.85, A: 0.62, L: 0.55, P: 0.2 },
  AC: { L: 0.77, H: 0.44 },
  UI: { N: 0.85, R: 0.62 },
  C: { H: 0.56, L: 0.22, N: 0 },
  I: { H: 0.56, L: 0.22, N: 0 },
  A: { H: 0.56, L: 0.22, N: 0 },
}
/** Privileges Required weighs more when the scope changes. */
const PR: Record<string, { U: number, C: number }> = { N: { U: 0.85, C: 0.85 }, L: { U: 0.62, C: 0.68 }, H: { U: 0.27, C: 0.5 } }
const BASE = ['AV', 'AC', 'PR', 'UI', 'S', 'C', 'I', 'A'] as const
const OPTIONAL = new Set(['E', 'RL', 'RC', 'CR', 'IR', 'AR', 'MAV', 'MAC', 'MPR', 'MUI', 'MS', 'MC', 'MI', 'MA'])

/** v3.1 Appendix A: the smallest number of one decimal ≥ x, computed on integers so that 4.000000000000001 is 4.0. */
export function roundup31 (x: number): number {
  const i = Math.round(x * 100000)
  return i % 10000 === 0 ? i / 100000 : (Math.floor(i / 10000) + 1) / 10
}

/** The base score (0.0–10.0) of a CVSS v3.0 or v3.1 vector. */
export function cvss3BaseScore (vector: string): number {
  const bad = (why: string): never => { throw new MetaosError('INVALID_ARGUMENT', `CVSS vector "${vector.slice(0, 80)}": ${why}`) }
  const parts = vector.trim().split('/')
  const version = /^CVSS:(3\.[01])$/.exec(parts[0] ?? '')?.[1]
  if (version === undefined) bad('must start with CVSS:3.0/ or CVSS:3.1/')
  const m = new Map<string, string>()
  for (const p of parts.slice(1)) {
    const [k, v, extra] = p.split(':')
    if (k === undefined || v === undefined || extra !== undefined || v === '') bad(`"${p}" is not METRIC:VALUE`)
    if (m.has(k!)) bad(`${k!} is given twice`)
    if (!(BASE as readonly string[]).includes(k!) && !OPTIONAL.has(k!)) bad(`unknown metric ${k!}`)
    m.set(k!, v!)
  }
  for (const k of BASE) if (!m.has(k)) bad(`the base metric ${k} is missing`)
  const scope = m.get('S')
  if (scope !== 'U' && scope !== 'C') bad('S must be U or C')
  const w = (k: string): number => WEIGHTS[k]![m.get(k)!] ?? bad(`${k}:${m.get(k)!} is not a value of ${k}`)
  const pr = PR[m.get('PR')!]?.[scope as 'U' | 'C'] ?? bad(`PR:${m.get('PR')!} is not a value of PR`)
  const iss = 1 - (1 - w('C')) * (1 - w('I')) * (1 - w('A'))
  const impact = scope === 'U' ? 6.42 * iss : 7.52 * (iss - 0.029) - 3.25 * Math.pow(iss - 0.02, 15)
  const exploitability = 8.22 * w('AV') * w('AC') * pr * w('UI')
  if (impact <= 0) return 0
  const raw = scope === 'U' ? Math.min(impact + exploitability, 10) : Math.min(1.08 * (impact + exploitability), 10)
  return version === '3.1' ? roundup31(raw) : Math.ceil(raw * 10 - 1e-9) / 10
}
