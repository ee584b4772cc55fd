// Share modes across every domain of a volume: each open is a key
// /metaos/shares/<volume>/<path>/<domain>/<registration> under its domain's lease. Registering is
// one etcd transaction: "no key of this file was modified after revision R" → create ours, else →
// read them all. The first try takes R = 0 (the file is open nowhere: one round trip); after a
// failure, the registrations read are checked against .NET's FileShare rule (file-share.ts) and
// the transaction is tried again with the revision they were read at. So two domains can never both
// register incompatible opens: etcd orders the transactions, and the second one sees the first's
// key. Registrations vanish with the lease of a domain that dies; Close deletes its own (waiting at
// most the deadline for etcd, then in the background until etcd takes it or the lease is gone).
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { MetaosError } from '../soap-runtime/errors.js'
import type { ShareRecord, ShareRegistration, ShareRegistry, ShareRequest } from './api.js'
import { CMP, TARGET, parseValue, putOp, type EtcdSession } from './etcd-session.js'
import { compatible } from './file-share.js'
import type { EtcdLease } from './lease.js'

const VOLUME = /^[A-Za-z0-9._~-]{1,100}$/

function checkRequest (volume: string, path?: string): void {
  if (!VOLUME.test(volume)) throw new MetaosError('INVALID_ARGUMENT', `volume "${volume.slice(0, 100)}" must be 1-100 characters of A-Z a-z 0-9 . _ ~ -`)
  if (path !== undefined && (path === '' || path.length > 4096 || path.includes('\0'))) throw new MetaosError('INVALID_ARGUMENT', 'a shared path must be 1-4096 characters without NUL')
}

export class EtcdShareRegistry implements ShareRegistry {
  readonly #session: EtcdSession
  readonly #lease: EtcdLease

  constructor (session: EtcdSession, lease: EtcdLease) {
    this.#session = session
    this.#lease = lease
  }

  async register (r: ShareRequest): Promise<ShareRegistration> {
    checkRequest(r.volume, r.path)
    const s = this.#session
    const end = Date.now() + s.deadlineMs
    const left = (): number => Math.max(1, end - Date.now())
    const record: ShareRecord = { volume: r.volume, path: r.path, access: r.access, share: r.share, ...(r.stream === undefined ? {} : { stream: r.stream }), owner: this.#lease.holder, id: randomBytes(12).toString('base64url'), at: Date.now() }
    const key = s.key('shares', r.volume, r.path, record.owner, record.id)
    const { key: start, range_end: rangeEnd } = s.range('shares', r.volume, r.path)
    let seen = 0n
    for (;;) {
      await this.#lease.whenValid(left())
      const lease = this.#lease.id!
      const generation = this.#lease.generation
      let res
      try {
        res = await s.txn(`registering ${r.access}/${r.share} on ${r.volume}:${r.path}`, {
          compare: [{ key: start, range_end: rangeEnd, target: TARGET.MOD, result: CMP.LESS, mod_revision: String(seen + 1n) }],
          success: [putOp(key, record, lease)],
          failure: [{ request_range: { key: start, range_end: rangeEnd } }],
        }, left())
      } catch (e) {
        // A put under a lease etcd no longer has: the lease is lost, whatever its timer says.
        if (/lease not found/i.test((e as Error).message)) { this.#lease.markLost('etcd no longer knows the lease'); continue }
        // An attempt that timed out may have registered it all the same: it must not outlive this failed Open.
        void this.#release(key, generation)
        throw e
      }
      const kvs = res.succeeded ? [] : res.responses[0]?.response_range?.kvs ?? []
      // An earlier attempt that timed out may have registered it after all: that is a success too.
      if (res.succeeded || kvs.some((kv) => kv.key.toString('utf8') === key)) return { record, release: async () => { await this.#release(key, generation) } }
      for (const kv of kvs) {
        const other = parseValue<ShareRecord>(kv)
        if (other === undefined || compatible(r.access, r.share, other) || (r.stream !== undefined && other.stream === r.stream)) continue
        const where = other.owner === record.owner ? 'on this domain' : `on domain ${other.owner}`
        throw new MetaosError('SHARING_VIOLATION', `${r.volume}:${r.path} is open ${where} with access ${other.access} and share ${other.share}`)
      }
      seen = BigInt(res.header.revision)
    }
  }

  async checkDelete (volume: string, path: string): Promise<void> {
    for (const other of await this.list(volume, path)) {
      if (other.share !== 'Delete') throw new MetaosError('SHARING_VIOLATION', `${volume}:${path} is open on domain ${other.owner} without FileShare.Delete`)
    }
  }

  async list (volume: string, path?: string): Promise<ShareRecord[]> {
    checkRequest(volume, path)
    const { kvs } = await this.#session.list('share registrations', path === undefined ? ['shares', volume] : ['shares', volume, path])
    return kvs.map((kv) => parseValue<ShareRecord>(kv)).filter((x): x is ShareRecord => x !== undefined)
  }

  /**
   * Deletes a registration: resolves once etcd took it, or its deadline passed — then it is tried
   * again every 500 ms in the background while the lease it was made under is held.
   */
  async #release (key: string, generation: number): Promise<void> {
    const once = async (): Promise<boolean> => {
      try { await this.#session.delete('releasing a share registration', key); return true } catch { return false }
    }
    if (await once()) return
    void (async () => {
      while (!this.#session.closed && this.#lease.generation === generation) {
        await sleep(500)
        if (await once()) return
      }
    })()
  }
}
