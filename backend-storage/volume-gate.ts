// Letting go of the volume for a moment, and taking it again. A VM domain's live migration
// (vm/vm-migration.ts) needs the guest to unmount its 9p share — QEMU refuses to migrate a guest
// that has a 9p export mounted — so the storage domain holds every new operation at this gate,
// waits for those under way, and closes its descriptors while keeping its handles (ids, positions,
// access: StorageEngine.releaseDescriptors); taking the volume again reopens each handle's file and
// lets the held operations through. A caller sees one slow call, never an error.
export class VolumeGate {
  #held: Promise<void> | undefined
  #open: (() => void) | undefined
  #inflight = 0
  #idle: (() => void) | undefined

  get closed (): boolean { return this.#held !== undefined }

  /** Runs `fn` when the gate is open (waiting while it is closed). */
  async pass<T> (fn: () => Promise<T>): Promise<T> {
    while (this.#held !== undefined) await this.#held
    this.#inflight++
    try { return await fn() } finally { if (--this.#inflight === 0) this.#idle?.() }
  }

  /** Closes the gate; resolves once no operation is under way. */
  async close (): Promise<void> {
    if (this.#held === undefined) this.#held = new Promise((resolve) => { this.#open = resolve })
    if (this.#inflight > 0) await new Promise<void>((resolve) => { this.#idle = resolve })
    this.#idle = undefined
  }

  /** Opens it: the held operations go on. */
  open (): void {
    const go = this.#open
    this.#held = undefined
    this.#open = undefined
    go?.()
  }
}
