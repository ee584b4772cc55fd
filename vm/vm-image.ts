// The boot files of a VM domain, from vm/build-image.sh (which builds them offline, or finds them
// in its cache by the hash of their inputs).
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { MetaosError } from '../soap-runtime/errors.js'
import { packageFile } from '../wsdl/package-root.js'

export interface VmImage {
  readonly kernel: string
  readonly initrd: string
  /** The guest kernel's release (uname -r inside), when known. */
  readonly kernelRelease?: string
  readonly kernelPackage?: string
}

export interface BuildVmImageOptions {
  /** A Debian kernel package (default: the release's generic kernel). */
  readonly kernelPackage?: string
  /** Default: the script's ($METAOS_VM_CACHE or ~/.cache/metaos/vm). */
  readonly cacheDir?: string
  readonly timeoutMs?: number
}

export async function buildVmImage (o: BuildVmImageOptions = {}): Promise<VmImage> {
  const args = [packageFile('vm', 'build-image.sh'), '--json', ...(o.kernelPackage === undefined ? [] : ['--kernel', o.kernelPackage]), ...(o.cacheDir === undefined ? [] : ['--cache', o.cacheDir])]
  const out = await new Promise<string>((resolve, reject) => {
    execFile('bash', args, { timeout: o.timeoutMs ?? 600_000, maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err === null) resolve(stdout)
      else reject(new MetaosError('IO_ERROR', `vm/build-image.sh failed: ${(stderr.trim() || err.message).slice(-2000)}`, { cause: err }))
    })
  })
  const m = JSON.parse(out.trim().split('\n').pop() ?? '{}') as { dir?: string, kernelRelease?: string, kernelPackage?: string }
  if (m.dir === undefined) throw new MetaosError('IO_ERROR', `vm/build-image.sh printed no image: ${out.slice(-500)}`)
  return { kernel: join(m.dir, 'vmlinuz'), initrd: join(m.dir, 'initrd.img'), ...(m.kernelRelease === undefined ? {} : { kernelRelease: m.kernelRelease }), ...(m.kernelPackage === undefined ? {} : { kernelPackage: m.kernelPackage }) }
}
