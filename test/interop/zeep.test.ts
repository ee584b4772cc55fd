// Interoperability with a real foreign client: python-zeep loads the WSDL from a running domain's
// `?wsdl`, round-trips 1 MiB through Open/Write/Seek/Read/Close over both the SOAP 1.1 and the
// SOAP 1.2 port, and receives a typed StorageFault for a missing file. The Python side
// (zeep_client.py) prints JSON; the assertions are here.
import { createCipheriv, createHash } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startTestDomain } from '../helpers/domain.js'
import { partMissing } from '../helpers/require-part.js'

const PYTHON = '/usr/bin/python3' // the system Python, which has zeep (not pyenv's python3 on PATH)
const SCRIPT = fileURLToPath(new URL('./zeep_client.py', import.meta.url))
const SIZE = 1024 * 1024

/** Deterministic pseudo-random bytes: AES-256-CTR keystream under a fixed key. */
function payload (size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`metaos-interop-${seed}`).digest()
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()])
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface ZeepFault {
  message: string
  code: string
  detailTag: string | null
  detailXml: string | null
  storageFaultCode: string | null
  storageFaultMessage: string | null
}
interface ZeepResult {
  error?: string
  traceback?: string
  port: string
  address: string
  binding: string
  open: { handleLength: number, length: number, position: number }
  writes: Array<{ written: number, position: number }>
  seekPosition: number
  reads: number
  eofs: boolean[]
  readLength: number
  readSha256: string
  timings: Array<number | null>
  fault: ZeepFault | null
}

function runZeep (args: string[]): Promise<{ result: ZeepResult | undefined, stdout: string, stderr: string, error: Error | null }> {
  return new Promise((resolve) => {
    execFile(PYTHON, [SCRIPT, ...args], { timeout: 30_000, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (error, stdout, stderr) => {
      let result: ZeepResult | undefined
      try { result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as ZeepResult } catch { result = undefined }
      resolve({ result, stdout, stderr, error })
    })
  })
}

let zeepMissing: string | false = false
try {
  execFileSync(PYTHON, ['-c', 'import zeep, lxml'], { stdio: 'pipe', timeout: 10_000 })
} catch (e) {
  zeepMissing = partMissing('zeep', `${PYTHON} cannot import zeep and lxml (${(e as Error).message.split('\n')[0]})`, 'apt-get install python3-zeep')
}

const cases = [
  { port: 'StorageSoap11', binding: '{urn:metaos:storage:v1}StorageSoap11Binding', block: 300_000, seed: 11, soapFaultCode: 's:Client', detailTag: 'detail' },
  { port: 'StorageSoap12', binding: '{urn:metaos:storage:v1}StorageSoap12Binding', block: SIZE, seed: 12, soapFaultCode: 's:Sender', detailTag: '{http://www.w3.org/2003/05/soap-envelope}Detail' },
] as const

for (const c of cases) {
  t.test(`zeep over ${c.port}: 1 MiB round trip and a typed fault`, { skip: zeepMissing }, async (t) => {
    const d = await startTestDomain(t)
    const scratch = mkdtempSync(join(tmpdir(), 'metaos-zeep-'))
    t.teardown(() => { rmSync(scratch, { recursive: true, force: true }) })
    const data = payload(SIZE, c.seed)
    const payloadFile = join(scratch, 'payload.bin')
    writeFileSync(payloadFile, data)
    const remote = `zeep-${c.port}.bin`

    const run = await runZeep([`${d.http}?wsdl`, c.port, remote, payloadFile, String(c.block)])
    const r = run.result
    if (r === undefined || r.error !== undefined || run.error !== null) {
      t.fail('zeep client failed', { error: r?.error ?? run.error?.message, traceback: r?.traceback, stdout: run.stdout, stderr: run.stderr })
      return
    }

    // The WSDL zeep loaded names the address it was fetched from, and zeep bound the right binding.
    t.equal(r.address, d.http, 'soap:address rewritten to the requested address')
    t.equal(r.binding, c.binding)

    t.equal(r.open.length, 0, 'new file is empty')
    t.equal(r.open.position, 0)
    t.ok(r.open.handleLength >= 22, 'opaque handle of at least 128 bits')

    const blocks = Math.ceil(SIZE / c.block)
    t.equal(r.writes.length, blocks)
    let pos = 0
    for (const [i, w] of r.writes.entries()) {
      const expected = Math.min(c.block, SIZE - i * c.block)
      pos += expected
      t.same(w, { written: expected, position: pos }, `write ${i}`)
    }
    t.equal(r.seekPosition, 0, 'Seek(0, Begin)')

    // What zeep read back is what it wrote…
    t.equal(r.readLength, SIZE)
    t.equal(r.readSha256, sha256(data), 'SHA-256 of the bytes zeep read back')
    t.equal(r.eofs[r.eofs.length - 1], true, 'the last Read reports eof')
    // …and what is on disk in the domain's root.
    const onDisk = join(d.root, remote)
    t.equal(statSync(onDisk).size, SIZE)
    t.equal(sha256(readFileSync(onDisk)), sha256(data), 'SHA-256 of the file in the domain root')

    // Every response carried the ServiceTiming header, which zeep parsed as the declared xs:long.
    t.equal(r.timings.length, 1 + blocks + 1 + r.reads + 1)
    t.ok(r.timings.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0), 'ServiceTiming on every response')

    // A typed fault for the missing file.
    const f = r.fault
    if (f === null) { t.fail('Open(mode Open) of a missing file did not fault'); return }
    t.equal(f.code, c.soapFaultCode)
    t.equal(f.detailTag, c.detailTag)
    t.equal(f.storageFaultCode, 'FILE_NOT_FOUND', 'StorageFault/code')
    t.match(f.storageFaultMessage, /missing-/)
    t.match(f.detailXml, /<StorageFault xmlns="urn:metaos:storage:v1">/)
    t.notOk(f.storageFaultMessage?.includes(d.root), 'the fault does not reveal the real root')
  })
}
