// Interop with WCF as Mono 6.8 ships it over net.tcp: a C# client compiled with mcs at test time
// (test/interop/wcf-nettcp/NetTcpStorageClient.cs, with the contracts of wcf/StorageClient.cs)
// against a metaos storage domain's net.tcp endpoint. With a CustomBinding of
// TextMessageEncoding(Soap12WSAddressing10) + TcpTransport it sends SOAP 1.2 with WS-Addressing in
// [MC-NMF] duplex sessions; with NetTcpBinding(SecurityMode.None) the binary encoding ([MC-NBFX]
// records, [MC-NBFSE] session strings: Known Encoding 0x08). Each does
// Open(CreateNew)/Write/Seek/Read/Close/Delete and reads a StorageFault; the test checks the bytes
// that came back, the ServiceTiming header, the fault code and that the file is gone.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startStorageDomain } from '../../backend-storage/storage-domain.js'
import { KnownEncoding, RecordReader, RecordType } from '../../soap-runtime/nmf/records.js'
import { monoTools, parseLines, runPeer } from '../helpers/run-peer.js'
import { tempDir } from '../helpers/temp-dir.js'

const here = dirname(fileURLToPath(import.meta.url))
const find = (f: string): string | undefined => [resolve(here, f), resolve(here, '../../../test/interop', f)].find((p) => existsSync(p))
const sources = [find('wcf/StorageClient.cs'), find('wcf-nettcp/NetTcpStorageClient.cs')]

const { mcs, mono, assemblyDir, missing } = monoTools()
if (mcs === undefined || mono === undefined) {
  t.plan(0, missing)
} else {
  t.test('WCF (Mono) clients call the domain on net.tcp', async (t) => {
    t.ok(sources.every((s) => s !== undefined), 'the C# sources are found')
    t.ok(assemblyDir, 'System.ServiceModel.dll found')
    const dir = tempDir(t, 'metaos-wcf-nettcp-')
    const root = join(dir, 'root')
    mkdirSync(root)
    const d = await startStorageDomain({ root, listen: ['net.tcp://127.0.0.1:0'] })
    t.teardown(async () => { await d.close(1000) })
    const endpoint = d.endpoints[0]!
    t.match(endpoint, /^net\.tcp:\/\/127\.0\.0\.1:\d+\/storage$/)

    const refs = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir!, a)}`)
    const cc = await runPeer(mcs, ['-nologo', '-out:NetTcpStorageClient.exe', '-main:Metaos.Interop.NetTcpProgram', ...refs, ...sources as string[]], { cwd: dir, timeout: 120_000 })
    t.equal(cc.code, 0, 'mcs compiles the client', { output: cc.output })
    if (cc.code !== 0) return

    // Mono calls through a relay that keeps what it sends: the encoding its preamble names, and its bytes.
    let sent: Buffer[] = []
    const port = Number(new URL(endpoint).port)
    const relay = createServer((client) => {
      const upstream = connect(port, '127.0.0.1')
      client.on('data', (c: Buffer) => { sent.push(c); upstream.write(c) })
      upstream.on('data', (c: Buffer) => { client.write(c) })
      client.on('close', () => { upstream.destroy() }).on('error', () => {})
      upstream.on('close', () => { client.destroy() }).on('error', () => {})
    })
    await new Promise<void>((resolve) => { relay.listen(0, '127.0.0.1', resolve) })
    t.teardown(() => { relay.close() })
    const via = `net.tcp://127.0.0.1:${(relay.address() as { port: number }).port}/storage`
    const knownEncoding = (bytes: Buffer): number | undefined => {
      const reader = new RecordReader({ maxEnvelopeBytes: 1 << 20 })
      reader.push(bytes)
      for (let r = reader.next(); r !== undefined; r = reader.next()) if (r.type === RecordType.KnownEncoding) return r.value
      return undefined
    }

    for (const mode of ['text', 'binary'] as const) {
      const title = mode === 'text' ? 'CustomBinding(TextMessageEncoding(Soap12WSAddressing10), TcpTransport)' : 'NetTcpBinding(SecurityMode.None): binary'
      await t.test(title, async (t) => {
        const data = randomBytes(1500)
        data[0] = 0; data[1] = 0xff; data[2] = 0x3c; data[3] = 0x26
        const path = `wcf-nettcp-${mode}.bin`
        sent = []
        const r = await runPeer(mono, [join(dir, 'NetTcpStorageClient.exe'), via, mode, path, data.toString('hex'), 'no-such-file.bin'], { cwd: dir, timeout: 120_000 })
        const out = parseLines(r.stdout)
        const info = { stdout: r.stdout.slice(0, 4000), stderr: r.stderr.slice(0, 4000) }
        t.equal(out.error, undefined, 'the round trip raised no exception', info)
        t.equal(out.scheme, 'net.tcp')
        t.match(out.messageVersion, /Soap12.*Addressing10/, 'SOAP 1.2 with WS-Addressing 1.0')
        t.match(out['open.handle'], /^\S{16,}$/, 'Open returned a handle')
        t.equal(out['write.written'], String(data.length))
        t.equal(out['seek.position'], '0')
        t.equal(out['read.hex'], data.toString('hex'), 'Read returned the bytes written')
        t.equal(out['read.eof'], 'true')
        t.equal(out.close, 'ok')
        t.match(out['read.timing'], /^\d+$/, 'WCF bound the ServiceTiming header')
        t.equal(out['fault.kind'], 'typed', 'the fault arrives as FaultException<StorageFault>')
        t.equal(out['fault.code'], 'FILE_NOT_FOUND')
        t.equal(out['fault.soapCode'], 'Sender')
        t.equal(out.delete, 'ok', 'Delete')
        t.notOk(readdirSync(root).includes(path), 'the file is gone')
        t.equal(r.code, 0, 'the client exits 0', info)
        const up = Buffer.concat(sent)
        t.equal(knownEncoding(up), mode === 'binary' ? KnownEncoding.Soap12BinarySession : KnownEncoding.Soap12Utf8, `its preamble names the ${mode} encoding`)
        if (mode === 'binary') t.ok(up.includes(data), 'Write\'s bytes went as they are (a Bytes record, no base64)')
      })
    }
  })
}
