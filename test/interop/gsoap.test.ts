// Interop with a real peer: gSOAP (Debian packages gsoap + libgsoap-dev).
// 1. wsdl2h and soapcpp2 accept the checked-in WSDL and the one the domain serves at ?wsdl.
// 2. A C++ client generated from the served WSDL (test/interop/gsoap/client.cpp over the generated
//    proxies, compiled with g++ and libgsoap++) does Open/Write/Seek/Read/Close and opens a missing
//    file, over the SOAP 1.1 and the SOAP 1.2 binding; the test checks the bytes read, the bytes on
//    disk, the ServiceTiming header and the StorageFault code.
// Everything generated goes to a temporary directory; nothing generated is checked in.
import t from 'tap'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startTestDomain } from '../helpers/domain.js'
import { which } from '../helpers/which.js'
import { parseLines, runPeer } from '../helpers/run-peer.js'
import { partMissing } from '../helpers/require-part.js'

const here = dirname(fileURLToPath(import.meta.url))
// Works from test/interop (tap runs the .ts) and from dist/test/interop (compiled copy).
const sourceDir = [resolve(here, 'gsoap'), resolve(here, '../../../test/interop/gsoap')].find((d) => existsSync(join(d, 'client.cpp')))
const wsdlFile = [resolve(here, '../../wsdl/StorageService.wsdl'), resolve(here, '../../../wsdl/StorageService.wsdl')].find((f) => existsSync(f))
const NS = 'urn:metaos:storage:v1'



/** Lines `key=value` → object. */

/** Warnings other than the one wsdl2h always prints for a WSDL with a SOAP 1.1 and a SOAP 1.2 binding. */
function unexpectedWarnings (output: string): string[] {
  return output.split('\n').filter((l) => /warning/i.test(l) && !/service bindings found, but collected as one service/.test(l))
}

const wsdl2h = which('wsdl2h')
const soapcpp2 = which('soapcpp2')
if (wsdl2h === undefined || soapcpp2 === undefined) {
  t.plan(0, partMissing('gSOAP', 'wsdl2h or soapcpp2 is not on PATH', 'apt-get install gsoap libgsoap-dev'))
} else {
  const importDir = ['/usr/share/gsoap/import', '/usr/local/share/gsoap/import'].find((d) => existsSync(join(d, 'soap12.h'))) ?? '/usr/share/gsoap/import'
  const defaultTypemap = ['/usr/share/gsoap/WS/typemap.dat', '/usr/local/share/gsoap/WS/typemap.dat'].find((f) => existsSync(f))

  t.test('wsdl2h and soapcpp2 accept the checked-in WSDL', async (t) => {
    t.ok(wsdlFile, 'wsdl/StorageService.wsdl found')
    const dir = mkdtempSync(join(tmpdir(), 'metaos-gsoap-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

    const w = await runPeer(wsdl2h, ['-o', 'storage.h', wsdlFile!], { cwd: dir })
    t.equal(w.code, 0, 'wsdl2h exits 0', { output: w.output })
    t.notMatch(w.output, /error/i, 'wsdl2h reports no error')
    t.same(unexpectedWarnings(w.output), [], 'wsdl2h warns only that the two bindings are collected as one service')
    const header = readFileSync(join(dir, 'storage.h'), 'utf8')
    for (const op of ['Open', 'Read', 'Write', 'Seek', 'Flush', 'SetLength', 'GetLength', 'Close', 'Delete', 'GetFileInfo', 'ListDirectory', 'Batch', 'GetDomainInfo']) {
      t.match(header, new RegExp(`int __ns1__${op}\\(`), `operation ${op} is declared`)
    }
    t.match(header, /LONG64\*\s+ns1__ServiceTiming/, 'ServiceTiming is a SOAP header (xsd:long)')
    t.match(header, /_ns1__StorageFault\*\s+ns1__StorageFault/, 'StorageFault is a fault detail')
    t.match(header, /"urn:metaos:storage:v1\/Open"/, 'soapAction of Open')

    const s = await runPeer(soapcpp2, ['-j', '-C', '-x', `-I${importDir}`, 'storage.h'], { cwd: dir })
    t.equal(s.code, 0, 'soapcpp2 exits 0', { output: s.output })
    t.notMatch(s.output, /error/i, 'soapcpp2 reports no error')
    t.same(unexpectedWarnings(s.output), [], 'soapcpp2 reports no warning')
    t.match(s.output, /Compilation successful/)
    t.ok(existsSync(join(dir, 'soapStorageSoap11BindingProxy.h')), 'C++ proxy class generated')
  })

  t.test('generated C++ client calls the domain (SOAP 1.1 and 1.2)', async (t) => {
    const d = await startTestDomain(t)
    const dir = mkdtempSync(join(tmpdir(), 'metaos-gsoap-'))
    t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })

    // Generate from the WSDL the domain serves (its soap:address is the live endpoint).
    // The schema namespace gets the prefix `st`, and -N gives each binding its own proxy class.
    const typemap = (defaultTypemap !== undefined ? readFileSync(defaultTypemap, 'utf8') : '') + `\nst = "${NS}"\n`
    writeFileSync(join(dir, 'typemap.dat'), typemap)
    const w = await runPeer(wsdl2h, ['-t', 'typemap.dat', '-Nsvc', '-o', 'storage.h', `${d.http}?wsdl`], { cwd: dir })
    t.equal(w.code, 0, 'wsdl2h on ?wsdl exits 0', { output: w.output })
    t.notMatch(w.output, /error/i, 'wsdl2h reports no error')
    t.same(unexpectedWarnings(w.output), [], 'wsdl2h reports no warning')
    const s = await runPeer(soapcpp2, ['-j', '-C', '-x', `-I${importDir}`, 'storage.h'], { cwd: dir })
    t.equal(s.code, 0, 'soapcpp2 exits 0', { output: s.output })
    t.notMatch(s.output, /error/i, 'soapcpp2 reports no error')
    t.same(unexpectedWarnings(s.output), [], 'soapcpp2 reports no warning')
    const proxy11 = readFileSync(join(dir, 'soapStorageSoap11BindingProxy.cpp'), 'utf8')
    t.ok(proxy11.includes(`"${d.http}"`), 'the served WSDL carries the live endpoint as soap:address')
    t.ok(existsSync(join(dir, 'soapStorageSoap12BindingProxy.cpp')), 'SOAP 1.2 proxy generated')

    const gxx = which('g++')
    const haveHeader = ['/usr/include/stdsoap2.h', '/usr/local/include/stdsoap2.h'].some((f) => existsSync(f))
    if (gxx === undefined || !haveHeader || sourceDir === undefined) {
      const why = gxx === undefined ? 'g++ is not on PATH' : !haveHeader ? 'stdsoap2.h does not exist (libgsoap-dev)' : 'test/interop/gsoap/client.cpp does not exist'
      t.pass('the C++ client', { skip: partMissing('the gSOAP C++ toolchain', `cannot build the C++ client: ${why}`, 'apt-get install g++ pkg-config libgsoap-dev') })
      return
    }
    // Compile flags must match how libgsoap++ was built (Debian: -DWITH_IPV6 -DWITH_DOM): they change struct soap.
    let cflags = ['-DWITH_IPV6', '-DWITH_DOM']
    let libs = ['-lgsoap++']
    if (which('pkg-config') !== undefined) {
      const c = await runPeer('pkg-config', ['--cflags', 'gsoap++'], { cwd: dir })
      const l = await runPeer('pkg-config', ['--libs', 'gsoap++'], { cwd: dir })
      if (c.code === 0 && l.code === 0) {
        cflags = c.stdout.trim().split(/\s+/).filter(Boolean)
        libs = l.stdout.trim().split(/\s+/).filter(Boolean)
      }
    }
    const sources = [join(sourceDir, 'client.cpp'), 'soapC.cpp', 'soapStorageSoap11BindingProxy.cpp', 'soapStorageSoap12BindingProxy.cpp']
    const cc = await runPeer(gxx, ['-O0', '-w', ...cflags, '-I.', '-o', 'client', ...sources, ...libs], { cwd: dir, timeout: 150_000 })
    t.equal(cc.code, 0, 'g++ builds the client', { output: cc.output })
    if (cc.code !== 0) return

    for (const version of ['1.1', '1.2'] as const) {
      await t.test(`SOAP ${version}`, async (t) => {
        const data = randomBytes(777)
        data[0] = 0; data[1] = 0xff; data[2] = 0x3c // NUL, 0xFF and '<' survive the trip
        const path = `gsoap-${version.replace('.', '')}.bin`
        const r = await runPeer(join(dir, 'client'), [d.http, version, path, data.toString('hex'), 'no-such-file.bin'], { cwd: dir, timeout: 60_000 })
        const out = parseLines(r.stdout)
        t.equal(r.code, 0, 'client exits 0', { stdout: r.stdout, stderr: r.stderr })
        t.equal(out['response.soapVersion'], version === '1.1' ? '1' : '2', `the domain answered in SOAP ${version}`)
        t.match(out['open.handle'], /^\S{16,}$/, 'Open returned a handle')
        t.equal(out['open.length'], '0')
        t.equal(out['open.position'], '0')
        t.equal(out['write.written'], String(data.length))
        t.equal(out['write.position'], String(data.length))
        t.equal(out['seek.position'], '0')
        t.equal(out['read.hex'], data.toString('hex'), 'Read returned the bytes written')
        t.equal(out['read2.size'], '0', 'a read at the end returns no bytes')
        t.equal(out['read2.eof'], 'true', 'and eof')
        t.equal(out.close, 'ok')
        for (const op of ['open', 'write', 'read', 'close', 'fault']) {
          t.match(out[`${op}.timing`], /^\d+$/, `gSOAP parsed the ServiceTiming header of ${op}`)
        }
        t.equal(out['fault.code'], 'FILE_NOT_FOUND', 'the StorageFault detail is typed and carries FILE_NOT_FOUND')
        t.match(out['fault.message'], /no-such-file\.bin/)
        t.equal(out['fault.soapVersion'], version === '1.1' ? '1' : '2', 'the fault is in the request\'s SOAP version')
        t.match(out['fault.soapCode'], version === '1.1' ? /:Client$/ : /:Sender$/, 'a caller error is a Client/Sender fault')
        const disk = readFileSync(join(d.root, path))
        t.equal(createHash('sha256').update(disk).digest('hex'), createHash('sha256').update(data).digest('hex'), 'the bytes on disk are the bytes written')
        t.notOk(readdirSync(d.root).includes('no-such-file.bin'), 'opening a missing file created nothing')
      })
    }
  })
}
