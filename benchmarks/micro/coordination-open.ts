// Where a coordinated Open's time goes (docs/benchmarks.md, the coordination suite): in one process,
// over an etcd of N members on loopback whose data is on tmpfs (/dev/shm) or on the temporary
// directory's disk — a bare etcd transaction through the `etcd3` client (no metaos), sent to the
// leader, to a follower and to a member at random (what the client does); then a storage domain's
// engine driven directly (no SOAP), an Open (FileShare.None Create) and its Close without
// coordination and with it. p50 of interleaved rounds, in ms. For the CPU split, run it under
// `node --cpu-prof` and sum the profile's self time by package.
//
//   npm run build && node dist/benchmarks/micro/coordination-open.js [--members N] [--disk] [--calls N] [--rounds N]
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Etcd3 } from 'etcd3'
import { connectCoordination } from '../../coordination/connect.js'
import { startStorageDomain, type StorageDomain } from '../../backend-storage/storage-domain.js'
import { fileSystemOf, startEtcdCluster } from '../etcd-cluster.js'
import { TMPFS_DIR } from '../coordination-suite.js'
import { fmt, header, median, table } from './measure.js'

const { values } = parseArgs({ options: { members: { type: 'string' }, disk: { type: 'boolean' }, calls: { type: 'string' }, rounds: { type: 'string' } } })
const members = Number(values.members ?? '1')
const calls = Number(values.calls ?? '300')
const rounds = Number(values.rounds ?? '3')
const parent = values.disk === true ? tmpdir() : TMPFS_DIR

const etcd = await startEtcdCluster(members, parent)
if (etcd === undefined) { process.stderr.write('etcd is not installed (apt-get install etcd-server)\n'); process.exit(1) }
const dir = mkdtempSync(join(tmpdir(), 'metaos-micro-coordination-'))
mkdirSync(join(dir, 'v'))
const hosts = etcd.url.slice('etcd://'.length).split(',').map((h) => `http://${h}`)
const each = hosts.map((h) => new Etcd3({ hosts: [h] }))
const anyMember = new Etcd3({ hosts })
const coordination = await connectCoordination({ url: etcd.url })
const domains: StorageDomain[] = []
try {
  const coordinated = await startStorageDomain({ root: join(dir, 'v'), name: 'c', volume: 'bench', listen: ['http://127.0.0.1:0'], coordination })
  domains.push(coordinated)
  await coordinated.lease!.whenValid()
  const plain = await startStorageDomain({ root: join(dir, 'v'), name: 'p', volume: 'bench-plain', listen: ['http://127.0.0.1:0'] })
  domains.push(plain)
  // The leader once elections settled: the member whose status names itself.
  let leader = -1
  for (let i = 0; i < 50 && leader < 0; i++) {
    const st = await Promise.all(each.map(async (c) => await c.maintenance.status()))
    leader = st.findIndex((s) => s.header.member_id === s.leader)
    if (leader < 0) await new Promise((resolve) => setTimeout(resolve, 100))
  }
  const key = (i: number): Buffer => Buffer.from(`/metaos-micro/${i % 64}`)
  const txn = (c: Etcd3) => async (i: number): Promise<void> => { await c.kv.txn({ compare: [], success: [{ request_put: { key: key(i), value: Buffer.from('x') } }] }) }
  const openClose = (d: StorageDomain) => async (i: number): Promise<void> => {
    const h = await d.engine.open({ path: `${d.volume}-${i % 64}.bin`, mode: 'Create', access: 'Write', share: 'None' }, 'micro')
    await d.engine.close({ handle: h.handle }, 'micro')
  }
  const open = (d: StorageDomain, lat: number[]) => async (i: number): Promise<void> => {
    const t0 = performance.now()
    const h = await d.engine.open({ path: `${d.volume}-o${i % 64}.bin`, mode: 'Create', access: 'Write', share: 'None' }, 'micro')
    lat.push(performance.now() - t0)
    await d.engine.close({ handle: h.handle }, 'micro')
  }
  const openPlain: number[] = []
  const openCoordinated: number[] = []
  const cases: Array<[string, (i: number) => Promise<void>, number[] | undefined]> = [
    ['bare etcd transaction, to the leader', txn(each[leader]!), undefined],
    ...(members > 1 ? [['bare etcd transaction, to a follower', txn(each[(leader + 1) % members]!), undefined] as [string, (i: number) => Promise<void>, undefined]] : []),
    ['bare etcd transaction, to any member (the client\'s way)', txn(anyMember), undefined],
    ['engine Open + Close, plain', openClose(plain), undefined],
    ['engine Open + Close, coordinated', openClose(coordinated), undefined],
    ['engine Open alone, plain', open(plain, openPlain), openPlain],
    ['engine Open alone, coordinated', open(coordinated, openCoordinated), openCoordinated],
  ]
  const samples = new Map<string, number[]>(cases.map(([name]) => [name, []]))
  for (const [, run] of cases) for (let i = 0; i < 30; i++) await run(i)
  openPlain.length = 0
  openCoordinated.length = 0
  for (let r = 0; r < rounds; r++) {
    for (const [name, run, own] of cases) {
      const lat: number[] = []
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now()
        await run(i)
        if (own === undefined) lat.push(performance.now() - t0)
      }
      samples.get(name)!.push(median(own === undefined ? lat : own.splice(0)))
    }
  }
  process.stdout.write(header('benchmarks/micro/coordination-open.ts'))
  process.stdout.write(`etcd of ${members} member(s) on loopback, data on ${fileSystemOf(parent)}; ${rounds} rounds of ${calls} calls, the median of the rounds' p50s\n\n`)
  process.stdout.write(table(['case', 'p50 ms'], cases.map(([name]) => [name, fmt(median(samples.get(name)!), 3)])))
} finally {
  for (const d of domains) await d.close(100)
  await coordination.close()
  for (const c of [...each, anyMember]) c.close()
  await etcd.stop()
  rmSync(dir, { recursive: true, force: true })
}
