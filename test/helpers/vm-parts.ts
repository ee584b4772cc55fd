// Test helper: whether a VM domain can be built and booted here — QEMU, and the busybox-static and
// cpio that vm/build-image.sh packs the initramfs with. False when they are all there, else the
// skip reason from partMissing (under CI a failure naming what is missing).
import { existsSync } from 'node:fs'
import { which } from './which.js'
import { partMissing } from './require-part.js'

const INSTALL = 'apt-get install qemu-system-x86 busybox-static cpio'

export function vmPartsMissing (): string | false {
  if (which('qemu-system-x86_64') === undefined) return partMissing('QEMU', 'qemu-system-x86_64 is not on PATH', INSTALL)
  if (!existsSync('/bin/busybox')) return partMissing('busybox-static', '/bin/busybox does not exist (the guest\'s shell and tools)', INSTALL)
  if (which('cpio') === undefined) return partMissing('cpio', 'cpio is not on PATH (it packs the guest\'s initramfs)', INSTALL)
  return false
}
