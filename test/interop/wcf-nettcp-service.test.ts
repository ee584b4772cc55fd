// Interop with WCF as Mono 6.8 ships it over net.tcp, the other direction of wcf-nettcp.test.ts:
// metaos's own client calls a WCF SERVICE. test/interop/wcf-nettcp/NetTcpStorageService.cs (compiled
// with mcs at test time, with the contracts of wcf/StorageClient.cs and NetTcpStorageClient.cs) is
// metaos's StorageService contract over FileStreams, self-hosted by ServiceHost with
// NetTcpBinding(SecurityMode.None) (binary, [MC-NBFX]/[MC-NBFSE]) and with a CustomBinding of
// TextMessageEncoding(Soap12WSAddressing10) + TcpTransport. A metaos FileStream opened on each
// endpoint writes 1 MiB, seeks, reads it back (SHA-256 equal, and the file under the service's
// root holds the same bytes), closes; opening a missing file rejects with FILE_NOT_FOUND; Delete
// removes the file. A relay on the way keeps what metaos sends: its preamble names the encoding,
// and the binary Write carries the data as they are.
import t from 'tap'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { connect, createServer, type Server } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FileStream, closeSharedProxies, createStorageProxy } from '../../index.js'
import { KnownEncoding, RecordReader, RecordType } from '../../soap-runtime/nmf/records.js'
import { monoTools, runPeer } from '../helpers/run-peer.js'
import { tempDir } from '../helpers/temp-dir.js'

const here = dirname(fileURLToPath(import.meta.url))
const find = (f: string): string | undefined => [resolve(here, f), resolve(here, '../../../test/interop', f)].find((p) => existsSync(p))
const sources = [find('wcf/StorageClient.cs'), find('wcf-nettcp/NetTcpStorageClient.cs'), find('wcf-nettcp/NetTcpStorageService.cs')]
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

/** A TCP relay to the port `upstream()` names when a client connects; keeps the bytes its clients send. */
async function relay (upstream: () => number): Promise<{ server: Server, endpoint: string, sent: Buffer[] }> {
  const sent: Buffer[] = []
  const server = createServer((client) => {
    const up = connect(upstream(), '127.0.0.1')
    client.on('data', (c: Buffer) => { sent.push(c); up.write(c) })
    up.on('data', (c: Buffer) => { client.write(c) })
    client.on('close', () => { up.destroy() }).on('error', () => {})
    up.on('close', () => { client.destroy() }).on('error', () => {})
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  return { server, endpoint: `net.tcp://127.0.0.1:${(server.address() as { port: number }).port}/storage`, sent }
}

function knownEncoding (bytes: Buffer): number | undefined {
  const reader = new RecordReader({ maxEnvelopeBytes: 4 << 20 })
  reader.push(bytes.subarray(0, 4096))
  for (let r = reader.next(); r !== undefined; r = reader.next()) if (r.type === RecordType.KnownEncoding) return r.value
  return undefined
}

/** The service's ready line: its endpoints' addresses and where they listen. */
interface Ready { binary: string, text: string, listen: { binary: string, text: string } }

const { mcs, mono, assemblyDir, missing } = monoTools()
if (mcs === undefined || mono === undefined) {
  t.plan(0, missing)
} else {
  t.test('metaos calls a WCF (Mono) storage service on net.tcp', async (t) => {
    t.ok(sources.every((s) => s !== undefined), 'the C# sources are found')
    t.ok(assemblyDir, 'System.ServiceModel.dll found')
    const dir = tempDir(t, 'metaos-wcf-nettcp-service-')
    const root = join(dir, 'root')
    mkdirSync(root)
    const refs = ['System.ServiceModel.dll', 'System.Runtime.Serialization.dll', 'System.Xml.dll'].map((a) => `-r:${join(assemblyDir!, a)}`)
    const cc = await runPeer(mcs, ['-nologo', '-out:NetTcpStorageService.exe', '-main:Metaos.Interop.NetTcpServiceProgram', ...refs, ...sources as string[]], { cwd: dir, timeout: 120_000 })
    t.equal(cc.code, 0, 'mcs compiles the service', { output: cc.output })
    if (cc.code !== 0) return

    // metaos calls through relays that keep what it sends. Its Via and To name the relay, so the
    // service's endpoints have the relays' addresses and listen on ports of their own (listenUri).
    let listen: Ready['listen'] | undefined
    const relays = { binary: await relay(() => Number(new URL(listen!.binary).port)), text: await relay(() => Number(new URL(listen!.text).port)) }
    t.teardown(() => { relays.binary.server.close(); relays.text.server.close() })
    const service = spawn(mono, [join(dir, 'NetTcpStorageService.exe'), root, '0', '0', relays.binary.endpoint, relays.text.endpoint], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] })
    let stderr = ''
    service.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
    t.teardown(async () => {
      await closeSharedProxies()
      if (service.exitCode !== null) return
      const exited = new Promise((resolve) => service.once('exit', resolve))
      service.stdin.end()
      const kill = setTimeout(() => { service.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(kill)
    })
    const ready = await new Promise<Ready | undefined>((resolve) => {
      let out = ''
      service.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s
        const line = out.split('\n').find((l) => l.includes('"ready"'))
        if (line !== undefined) resolve(JSON.parse(line) as Ready)
      })
      service.once('exit', () => { resolve(undefined) })
    })
    t.ok(ready, 'the service says it is ready', { stderr })
    if (ready === undefined) return
    listen = ready.listen
    t.equal(ready.binary, relays.binary.endpoint, 'the binary endpoint has the relay\'s address')

    for (const mode of ['binary', 'text'] as const) {
      await t.test(mode === 'binary' ? 'NetTcpBinding(SecurityMode.None): binary, the default' : 'CustomBinding(TextMessageEncoding(Soap12WSAddressing10), TcpTransport): text', async (t) => {
        const r = relays[mode]
        const text = mode === 'text' ? createStorageProxy(r.endpoint, { encoding: 'text' }) : undefined
        if (text !== undefined) t.teardown(async () => { await text.close() })
        const destination = text ?? r.endpoint
        const path = `wcf-service-${mode}.bin`
        const data = randomBytes(1 << 20)

        const fs = await FileStream.open(path, { destination, mode: 'CreateNew', access: 'ReadWrite', share: 'None' })
        await fs.write(data)
        t.equal(await fs.seek(0, 'Begin'), 0, 'Seek to 0')
        const back = Buffer.alloc(data.length + 100)
        let n = 0
        for (let k = -1; k !== 0 && n < back.length;) { k = await fs.read(back, n); n += k }
        t.equal(n, data.length, 'Read returns as many bytes as were written')
        t.equal(sha(back.subarray(0, n)), sha(data), 'SHA-256 of the bytes read back equals the bytes written')
        t.ok(fs.stats.serviceMicros > 0, 'the ServiceTiming headers were read')
        await fs.close()
        t.equal(sha(readFileSync(join(root, path))), sha(data), 'the file under the service\'s root holds the bytes')

        await t.rejects(FileStream.open('no-such-file.bin', { destination, mode: 'Open', access: 'Read' }), { code: 'FILE_NOT_FOUND' }, 'a missing file: the StorageFault\'s code')
        const proxy = text ?? createStorageProxy(r.endpoint)
        if (text === undefined) t.teardown(async () => { await proxy.close() })
        await proxy.invoke('Delete', { path })
        t.notOk(existsSync(join(root, path)), 'Delete removed the file')

        const up = Buffer.concat(r.sent)
        t.equal(knownEncoding(up), mode === 'binary' ? KnownEncoding.Soap12BinarySession : KnownEncoding.Soap12Utf8, `metaos's preamble names the ${mode} encoding`)
        if (mode === 'binary') t.ok(up.includes(data.subarray(0, 4096)), 'Write\'s bytes went as they are (a Bytes record, no base64)')
      })
    }
  })
}
