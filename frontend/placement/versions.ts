// Comparing kernel releases and runtime versions ("6.1.0-28-cloud-amd64", "20.11.1"): numerically,
// part by part, non-numeric parts as 0. Shared by the rules engine and the vulnerability feed.
export function compareVersions (a: string, b: string): number {
  const x = a.split(/[.+-]/).map((p) => Number.parseInt(p, 10))
  const y = b.split(/[.+-]/).map((p) => Number.parseInt(p, 10))
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (Number.isNaN(x[i] ?? 0) ? 0 : (x[i] ?? 0)) - (Number.isNaN(y[i] ?? 0) ? 0 : (y[i] ?? 0))
    if (d !== 0) return Math.sign(d)
  }
  return 0
}
