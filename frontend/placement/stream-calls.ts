// What the storage dispatcher knows of a stream's calls: which stream a call works on, the call as
// the domain must see it (its own handle in place of the virtual one), how much data it moves (for
// the hang deadline), and the position the domain acknowledged (the checkpoint a replay starts from).
import { MetaosError } from '../../soap-runtime/errors.js'
import type { StorageOperations } from '../../wsdl/generated/storage-service.js'
import type { StorageOp } from '../handlers/storage-handler.js'
import type { StreamEntry } from './affinity-table.js'
import type { SyscallContext } from './rules-engine.js'

type BatchInput = StorageOperations['Batch']['input']
type BatchOp = BatchInput['op'][number]

/** What a stream is (re)placed as: an Open of its path, of its size when it has one. */
export function reopening (s: StreamEntry): SyscallContext {
  return { op: 'Open', path: s.path, ...(s.bytes === undefined ? {} : { bytes: s.bytes }) }
}

/** The stream a call works on: its handle (a Batch: all its handle operations must name the same one). */
export function streamOf (op: string, input: unknown): string | undefined {
  const handle = (input as { handle?: string }).handle
  if (handle !== undefined || op !== 'Batch') return handle
  let h: string | undefined
  for (const o of (input as BatchInput).op) {
    const inner = Object.values(o)[0] as { handle?: string }
    if (inner.handle === undefined) continue
    if (h !== undefined && inner.handle !== h) throw new MetaosError('NOT_SUPPORTED', 'a Batch through the dispatcher works on one stream at a time')
    h = inner.handle
  }
  return h
}

/** The call with the domain's own handle in place of the virtual one, and the stream's epoch. */
export function withHandle<K extends StorageOp> (op: K, input: StorageOperations[K]['input'], real: string, epoch: number): StorageOperations[K]['input'] {
  // A Write, the call a stream makes most, built field by field (one shape; a spread of any input is generic and slower).
  if (op === 'Write') return { handle: real, data: (input as StorageOperations['Write']['input']).data, epoch } satisfies Required<StorageOperations['Write']['input']> as StorageOperations[K]['input']
  if (op !== 'Batch') return { ...(input as object), handle: real, epoch } as StorageOperations[K]['input']
  const ops = (input as BatchInput).op.map((o): BatchOp => {
    const [name, inner] = Object.entries(o)[0] as [string, { handle?: string }]
    return (inner.handle === undefined ? o : { [name]: { ...inner, handle: real, epoch } }) as BatchOp
  })
  return { op: ops } as StorageOperations[K]['input']
}

/** The bytes a call moves (Write's data, Read's count, a Batch's sum). */
export function bytesMoved (op: string, input: unknown): number {
  if (op === 'Write') return (input as StorageOperations['Write']['input']).data.length
  if (op === 'Read') return (input as StorageOperations['Read']['input']).count
  if (op !== 'Batch') return 0
  let bytes = 0
  for (const o of (input as BatchInput).op) bytes += 'Write' in o ? o.Write.data.length : 'Read' in o ? o.Read.count : 0
  return bytes
}

/** Follows the position the domain acknowledged (the checkpoint a replay starts from). */
export function advance (s: StreamEntry, op: string, input: unknown, output: unknown): void {
  if (op !== 'Batch') { advanceOne(s, op, input, output); return }
  // A Batch: each operation's result (a fault moved nothing), in order.
  const ops = (input as BatchInput).op
  ;(output as StorageOperations['Batch']['output']).result.forEach((r, i) => {
    if ('StorageFault' in r) return
    const [name, inner] = Object.entries(ops[i]!)[0]!
    advanceOne(s, name, inner, Object.values(r)[0])
  })
}

function advanceOne (s: StreamEntry, op: string, input: unknown, output: unknown): void {
  switch (op) {
    case 'Write': s.written = true; s.position = (output as { position: number }).position; break
    case 'Seek': s.position = (output as { position: number }).position; break
    case 'Read': s.position += (output as { data: Buffer }).data.length; break
    case 'SetLength': s.position = Math.min(s.position, (input as { length: number }).length); break
    default: break
  }
}
