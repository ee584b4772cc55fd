// Interoperability over HTTPS with authentication, against a real foreign client: python-zeep
// (security_zeep_client.py) loads the WSDL from an https:// storage domain of a private CA
// (verifying it against ca.crt), then round-trips 600 KiB as an identity of the access policy with
// a WS-Security UsernameToken (PasswordDigest, then PasswordText) and with a client certificate
// (mutual TLS) alone; a wrong password and no credentials at all get the UNAUTHORIZED StorageFault
// and create nothing. The Python side prints JSON; the assertions (and the SHA-256 on disk) are here.
import { createCipheriv, createHash } from 'node:crypto'
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { startSecureDomain } from '../helpers/secure-domain.js'
import { partMissing } from '../helpers/require-part.js'

const PYTHON = '/usr/bin/python3' // the system Python, which has zeep (not pyenv's python3 on PATH)
const SCRIPT = fileURLToPath(new URL('./security_zeep_client.py', import.meta.url))
const SIZE = 600 * 1024
const USER = 'alice'
const PASSWORD = 'alice-password'

function payload (size: number): Buffer {
  const key = createHash('sha256').update('metaos-interop-security-zeep').digest()
  const c = createCipheriv('aes-256-ctr', key, Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()])
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

interface Trip { address: string, written: number, seek: number, readLength: number, readSha256: string }
interface Refusal { fault: { message: string, code: string, storageFaultCode: string | null, storageFaultMessage: string | null } | null }
interface Result {
  error?: string
  traceback?: string
  digest: Trip
  text: Trip
  cert: Trip
  wrong: Refusal
  none: Refusal
  untrusted: string
}

let zeepMissing: string | false = false
try {
  execFileSync(PYTHON, ['-c', 'import zeep, lxml, requests'], { stdio: 'pipe', timeout: 10_000 })
} catch (e) {
  zeepMissing = partMissing('zeep', `${PYTHON} cannot import zeep, lxml and requests (${(e as Error).message.split('\n')[0]})`, 'apt-get install python3-zeep')
}

t.test('zeep over https: UsernameToken (digest, text), client certificate, refusals', { skip: zeepMissing }, async (t) => {
  const { dir, root, url, caCertPath, client, security } = await startSecureDomain(t, { prefix: 'metaos-sec-zeep-', identity: USER, password: PASSWORD })
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+\//)
  const data = payload(SIZE)
  const payloadFile = join(dir, 'payload.bin')
  writeFileSync(payloadFile, data)

  const run = await new Promise<{ result: Result | undefined, stdout: string, stderr: string, error: Error | null }>((resolve) => {
    execFile(PYTHON, [SCRIPT, `${url}?wsdl`, caCertPath, USER, PASSWORD, client.certPath, client.keyPath, payloadFile],
      { timeout: 50_000, maxBuffer: 4 << 20, env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' } }, (error, stdout, stderr) => {
        let result: Result | undefined
        try { result = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Result } catch { result = undefined }
        resolve({ result, stdout, stderr, error })
      })
  })
  const r = run.result
  if (r === undefined || r.error !== undefined || run.error !== null) {
    t.fail('zeep client failed', { error: r?.error ?? run.error?.message, traceback: r?.traceback, stdout: run.stdout, stderr: run.stderr.slice(0, 4000) })
    return
  }

  for (const kind of ['digest', 'text', 'cert'] as const) {
    const trip = r[kind]
    t.equal(trip.address, url, `${kind}: the WSDL's soap:address is the https address`)
    t.equal(trip.written, SIZE, `${kind}: Write accepted every byte`)
    t.equal(trip.seek, 0)
    t.equal(trip.readLength, SIZE)
    t.equal(trip.readSha256, sha256(data), `${kind}: SHA-256 of what zeep read back`)
    t.equal(sha256(readFileSync(join(root, `${kind}.bin`))), sha256(data), `${kind}: SHA-256 of the file in the domain root`)
  }

  for (const kind of ['wrong', 'none'] as const) {
    const f = r[kind].fault
    if (f === null) { t.fail(`${kind}: Open without valid credentials did not fault`); continue }
    t.equal(f.code, 's:Client', `${kind}: a Client fault`)
    t.equal(f.storageFaultCode, 'UNAUTHORIZED', `${kind}: StorageFault/code is UNAUTHORIZED`)
    t.notOk(existsSync(join(root, `${kind}.bin`)), `${kind}: no file was created`)
  }
  t.match(r.wrong.fault?.storageFaultMessage, /wrong password/)
  t.match(r.none.fault?.storageFaultMessage, /needs authentication/)
  t.equal(r.untrusted, 'SSLError', 'a session that does not trust the private CA refuses the domain')

  // Exactly the two refused calls were refused: every other request of the three round trips and the WSDL fetches passed.
  t.equal([...security.authenticator!.refused.values()].reduce((a, b) => a + b, 0), 2, 'the authenticator refused two calls')
})
