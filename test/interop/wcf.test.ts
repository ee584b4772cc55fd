// Interop with a real peer: WCF as Mono 6.8 ships it (System.ServiceModel), a C# client compiled
// with mcs at test time (test/interop/wcf/StorageClient.cs): a hand-written service contract with
// message contracts and XmlSerializer format, over ChannelFactory + BasicHttpBinding (SOAP 1.1) and
// over a SOAP 1.2 CustomBinding. Open(CreateNew)/Write/Seek/Read/Close, then Open on a missing
// file; the test checks the bytes on disk (SHA-256), the ServiceTiming header and the fault code.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestDomain } from '../helpers/domain.js'
import { monoTools, parseLines, runPeer } from '../helpers/run-peer.js'

const here = dirname(fileURLToPath(import.meta.url))
const source = [resolve(here, 'wcf/StorageClient.cs'), resolve(here, '../../../test/interop/wcf/StorageClient.cs')].find((f) => existsSync(f))




const { mcs, mono, assemblyDir, missing } = monoTools()
if (mcs === undefined || mono === undefined) {
  t.plan(0, missing)
} else {
  t.test('WCF (Mono) client calls the domain', async (t) => {
    t.ok(source, 'test/interop/wcf/StorageClient.cs found')
    t.ok(assemblyDir, 'System.ServiceModel.dll found')
    const d = await startTestDomain(t)
    const dir = mkdtempSync(join(tmpdir(), 'metaos-wcf-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

    const refs = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir!, a)}`)
    const cc = await runPeer(mcs, ['-nologo', '-warnaserror-', '-out:StorageClient.exe', ...refs, source!], { cwd: dir, timeout: 120_000 })
    t.equal(cc.code, 0, 'mcs compiles the client', { output: cc.output })
    t.notMatch(cc.output, /error/i, 'no compiler error')
    if (cc.code !== 0) return

    for (const binding of ['soap11', 'soap12'] as const) {
      await t.test(binding === 'soap11' ? 'BasicHttpBinding (SOAP 1.1)' : 'CustomBinding (SOAP 1.2, no addressing)', async (t) => {
        const data = randomBytes(1500)
        data[0] = 0; data[1] = 0xff; data[2] = 0x3c; data[3] = 0x26 // NUL, 0xFF, '<', '&'
        const path = `wcf-${binding}.bin`
        const r = await runPeer(mono, [join(dir, 'StorageClient.exe'), d.http, binding, path, data.toString('hex'), 'no-such-file.bin'], { cwd: dir, timeout: 120_000 })
        const out = parseLines(r.stdout)
        const info = { stdout: r.stdout, stderr: r.stderr.slice(0, 4000) }
        t.equal(out.error, undefined, 'the round trip raised no exception', info)
        t.equal(out.messageVersion?.startsWith(binding === 'soap11' ? 'Soap11' : 'Soap12'), true, `the client speaks ${binding}`)
        t.match(out['open.handle'], /^\S{16,}$/, 'Open returned a handle')
        t.equal(out['open.length'], '0')
        t.equal(out['open.position'], '0')
        t.equal(out['write.written'], String(data.length))
        t.equal(out['write.position'], String(data.length))
        t.equal(out['seek.position'], '0')
        t.equal(out['read.hex'], data.toString('hex'), 'Read returned the bytes written')
        t.equal(out['read.eof'], 'true', 'a short read reports eof')
        t.equal(out.close, 'ok')
        for (const op of ['open', 'write', 'read', 'close']) {
          t.match(out[`${op}.timing`], /^\d+$/, `WCF bound the ServiceTiming header of ${op}`)
        }
        const disk = readFileSync(join(d.root, path))
        t.equal(createHash('sha256').update(disk).digest('hex'), createHash('sha256').update(data).digest('hex'), 'SHA-256 of the file on disk is that of the bytes written')
        t.notOk(readdirSync(d.root).includes('no-such-file.bin'), 'opening a missing file created nothing')

        // Faults are sent with HTTP 500 in both SOAP versions: WCF reads a fault only from a 500
        // (Mono's HttpRequestChannel, dotnet/wcf's ValidateRequestReplyResponse), so a 400 would lose it.
        t.equal(r.code, 0, 'client exits 0', info)
        t.equal(out['fault.kind'], 'typed', 'the fault arrives as FaultException<StorageFault>')
        t.equal(out['fault.code'], 'FILE_NOT_FOUND', 'fault detail code')
        t.match(out['fault.message'], /no-such-file\.bin/)
        t.equal(out['fault.soapCode'], binding === 'soap11' ? 'Client' : 'Sender', 'a caller error is a Client/Sender fault')
      })
    }
  })
}
