// A private certificate authority in one directory (docs/security-pki.md): the CA, domain and client
// certificates it issues, their revocation list and an index.json of what was issued. Owns the
// files of that directory; reading identities out of certificates is security/certificate-identity.ts
// (re-exported here). Knows nothing of TLS servers or SOAP (the transports decide what an identity may do).
import type { Extension, JsonGeneralName, X509Certificate as PeculiarCertificate } from '@peculiar/x509'
import { execFile } from 'node:child_process'
import { createPrivateKey, KeyObject, randomBytes, randomUUID, webcrypto } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { MetaosError } from '../soap-runtime/errors.js'

export { certificateIdentity, identityFromPeerCertificate, type CertificateIdentity } from './certificate-identity.js'

export interface IssuedCertificate { readonly certPath: string, readonly keyPath: string, readonly serial: string, readonly notAfter: Date }
export type KeyType = 'ec' | 'rsa'

/** The password of every client .p12 (documented): PKCS#12 files without one are refused by some loaders. */
export const P12_PASSWORD = 'metaos'
const OPENSSL = '/usr/bin/openssl'
const CRL_DAYS = 30
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1'
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2'
const DAY_MS = 86_400_000
const NAME = /^[A-Za-z0-9._-]{1,64}$/
const DNS_NAME = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s,"]+$/
/** The forms the CA accepts (names, DNS names, EPRs), for the command line's own checks. */
export const PKI_FORMS = { name: NAME, dns: DNS_NAME, uri: URI } as const

interface IndexEntry { kind: 'domain' | 'client', name: string, serial: string, notAfter: string, revoked: boolean, revokedAt?: string, epr?: string }
interface Index { version: 1, ca: { name: string, serial: string, notAfter: string, keyType: KeyType }, crlNumber: number, certificates: IndexEntry[] }

const subtle = webcrypto.subtle
type X509Lib = typeof import('@peculiar/x509')
let x509: Promise<X509Lib> | undefined
/**
 * @peculiar/x509 is loaded on first issue, not on import: domains import this module only to read
 * identities (node:crypto), and should pay neither its load time (~150 ms: benchmarks/micro/
 * x509-cost.ts) nor its global Reflect polyfill (tsyringe, its DI container, needs
 * `Reflect.getMetadata`; it must be loaded before it).
 */
async function lib (): Promise<X509Lib> {
  x509 ??= import('reflect-metadata').then(async () => await import('@peculiar/x509'))
  return await x509
}
type CryptoKey = webcrypto.CryptoKey
type CryptoKeyPair = webcrypto.CryptoKeyPair
type Algorithm = webcrypto.Algorithm
type EcdsaParams = webcrypto.EcdsaParams

// One issuing operation at a time per directory in this process, so index.json's
// read-modify-write cannot lose an entry (another process is not excluded: run one `metaos pki`).
const queues = new Map<string, Promise<unknown>>()
async function exclusive<T> (dir: string, f: () => Promise<T>): Promise<T> {
  const prev = queues.get(dir) ?? Promise.resolve()
  const next = prev.catch(() => {}).then(f)
  queues.set(dir, next)
  try { return await next } finally { if (queues.get(dir) === next) queues.delete(dir) }
}

function checkName (what: string, v: string): string {
  if (!NAME.test(v)) throw new MetaosError('INVALID_ARGUMENT', `${what} must be 1-64 characters of A-Z a-z 0-9 . _ - (got ${JSON.stringify(v)})`)
  return v
}
function checkDays (v: number | undefined, dflt: number): number {
  const d = v ?? dflt
  if (!Number.isInteger(d) || d < 1 || d > 36500) throw new MetaosError('INVALID_ARGUMENT', `days must be an integer from 1 to 36500 (got ${String(v)})`)
  return d
}
function checkKeyType (v: string | undefined): KeyType {
  if (v === undefined || v === 'ec' || v === 'rsa') return v ?? 'ec'
  throw new MetaosError('INVALID_ARGUMENT', `key type must be ec or rsa (got ${JSON.stringify(v)})`)
}

/** 16 random bytes, positive, first byte never 0 (so the DER INTEGER is minimal and exactly 16 bytes). */
function newSerial (): string {
  const b = randomBytes(16)
  b[0] = (b[0]! & 0x7f) | 0x40
  return b.toString('hex')
}

function algorithms (keyType: KeyType): { gen: webcrypto.RsaHashedKeyGenParams | webcrypto.EcKeyGenParams, sign: Algorithm | EcdsaParams } {
  return keyType === 'ec'
    ? { gen: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams }
    : { gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } as Algorithm }
}

async function newKeys (keyType: KeyType): Promise<CryptoKeyPair> {
  return await subtle.generateKey(algorithms(keyType).gen, true, ['sign', 'verify']) as CryptoKeyPair
}

function keyPem (key: CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string
}

/** Writes through a temporary file and a rename, so a reader sees the old file or the new one. */
async function writeAtomic (path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    await writeFile(tmp, data, { mode, flag: 'wx' })
    await chmod(tmp, mode) // the umask may have narrowed (or not) what writeFile asked for
    await rename(tmp, path)
  } catch (e) { await rm(tmp, { force: true }); throw e }
}

function readIndex (dir: string): Index {
  const p = join(dir, 'index.json')
  if (!existsSync(p)) throw new MetaosError('FILE_NOT_FOUND', `no CA in ${dir} (${p} is missing): run \`metaos pki init --dir ${dir}\``)
  return JSON.parse(readFileSync(p, 'utf8')) as Index
}
async function writeIndex (dir: string, index: Index): Promise<void> {
  await writeAtomic(join(dir, 'index.json'), JSON.stringify(index, null, 2) + '\n')
}

interface Ca { cert: PeculiarCertificate, pem: string, key: CryptoKey, keyType: KeyType }
async function loadCa (dir: string): Promise<Ca> {
  const certFile = join(dir, 'ca.crt')
  const keyFile = join(dir, 'ca.key')
  if (!existsSync(keyFile) || !existsSync(certFile)) throw new MetaosError('FILE_NOT_FOUND', `no CA in ${dir}: run \`metaos pki init --dir ${dir}\``)
  const pem = await readFile(certFile, 'utf8')
  const keyPemText = await readFile(keyFile, 'utf8')
  const keyType = createPrivateKey(keyPemText).asymmetricKeyType === 'rsa' ? 'rsa' : 'ec'
  const der = createPrivateKey(keyPemText).export({ type: 'pkcs8', format: 'der' })
  const key = await subtle.importKey('pkcs8', der, algorithms(keyType).gen, false, ['sign'])
  return { cert: new (await lib()).X509Certificate(pem), pem, key, keyType }
}

function pem (label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '')
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`
}

/** The CRL number extension (RFC 5280 §5.2.3): a non-negative INTEGER that grows with each CRL. */
function crlNumber (x: X509Lib, n: number): Extension {
  let hex = n.toString(16)
  if (hex.length % 2 === 1) hex = '0' + hex
  if (parseInt(hex.slice(0, 2), 16) >= 0x80) hex = '00' + hex
  const body = Buffer.from(hex, 'hex')
  return new x.Extension('2.5.29.20', false, Buffer.concat([Buffer.from([0x02, body.length]), body]))
}

async function writeCrl (dir: string, ca: Ca, index: Index): Promise<{ crlPath: string, nextUpdate: Date }> {
  const x = await lib()
  index.crlNumber += 1
  const now = new Date()
  const nextUpdate = new Date(now.getTime() + CRL_DAYS * DAY_MS)
  const crl = await x.X509CrlGenerator.create({
    issuer: ca.cert.subjectName,
    thisUpdate: now,
    nextUpdate,
    signingAlgorithm: algorithms(ca.keyType).sign,
    signingKey: ca.key,
    extensions: [await x.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey), crlNumber(x, index.crlNumber)],
    entries: index.certificates.filter(c => c.revoked).map(c => ({ serialNumber: c.serial, revocationDate: new Date(c.revokedAt ?? now) })),
  })
  const crlPath = join(dir, 'crl.pem')
  await writeAtomic(crlPath, pem('X509 CRL', crl.rawData)) // the label OpenSSL (and so Node's tls) reads; the library writes "CRL"
  return { crlPath, nextUpdate }
}

export async function initCa (dir: string, o: { name?: string, days?: number, keyType?: KeyType, force?: boolean } = {}): Promise<{ caCertPath: string, crlPath: string }> {
  const name = o.name ?? 'metaos private CA'
  if (name.length < 1 || name.length > 64 || /[\p{Cc}]/u.test(name)) throw new MetaosError('INVALID_ARGUMENT', 'the CA name must be 1-64 printable characters')
  const days = checkDays(o.days, 3650)
  const keyType = checkKeyType(o.keyType)
  return await exclusive(dir, async () => {
    await mkdir(dir, { recursive: true })
    if (existsSync(join(dir, 'ca.key')) && o.force !== true) throw new MetaosError('ALREADY_EXISTS', `${join(dir, 'ca.key')} exists: a CA is already there (force replaces it, and every certificate it issued stops being trusted)`)
    const x = await lib()
    const keys = await newKeys(keyType)
    const now = Date.now()
    const cert = await x.X509CertificateGenerator.createSelfSigned({
      serialNumber: newSerial(),
      name: [{ CN: [name] }, { O: ['metaos'] }],
      notBefore: new Date(now - 5 * 60_000),
      notAfter: new Date(now + days * DAY_MS),
      keys,
      signingAlgorithm: algorithms(keyType).sign,
      extensions: [
        new x.BasicConstraintsExtension(true, 0, true), // signs leaves only: no intermediate CA below it
        new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign, true),
        await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    })
    const pem = cert.toString('pem') + '\n'
    await writeAtomic(join(dir, 'ca.key'), keyPem(keys.privateKey), 0o600)
    await writeAtomic(join(dir, 'ca.crt'), pem)
    const index: Index = { version: 1, ca: { name, serial: cert.serialNumber.toLowerCase(), notAfter: cert.notAfter.toISOString(), keyType }, crlNumber: 0, certificates: [] }
    const { crlPath } = await writeCrl(dir, { cert, pem, key: keys.privateKey, keyType }, index)
    await writeIndex(dir, index)
    return { caCertPath: join(dir, 'ca.crt'), crlPath }
  })
}

interface LeafSpec { kind: 'domain' | 'client', name: string, days: number, keyType: KeyType, names: JsonGeneralName[], usages: string[] }

async function issueLeaf (dir: string, s: LeafSpec, epr?: string): Promise<IssuedCertificate> {
  const x = await lib()
  const ca = await loadCa(dir)
  const index = readIndex(dir)
  const keys = await newKeys(s.keyType)
  const now = Date.now()
  const serial = newSerial()
  const cert = await x.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [s.name] }],
    issuer: ca.cert.subjectName,
    notBefore: new Date(now - 5 * 60_000), // tolerates a peer whose clock is a little behind
    notAfter: new Date(Math.min(now + s.days * DAY_MS, ca.cert.notAfter.getTime())),
    publicKey: keys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: algorithms(ca.keyType).sign,
    extensions: [
      new x.BasicConstraintsExtension(false, undefined, true),
      new x.KeyUsagesExtension(s.keyType === 'rsa' ? x.KeyUsageFlags.digitalSignature | x.KeyUsageFlags.keyEncipherment : x.KeyUsageFlags.digitalSignature, true),
      new x.ExtendedKeyUsageExtension(s.usages),
      new x.SubjectAlternativeNameExtension(s.names),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
    ],
  })
  const folder = join(dir, s.kind === 'domain' ? 'domains' : 'clients')
  await mkdir(folder, { recursive: true })
  const keyPath = join(folder, `${s.name}.key`)
  const certPath = join(folder, `${s.name}.crt`)
  await writeAtomic(keyPath, keyPem(keys.privateKey), 0o600)
  await writeAtomic(certPath, cert.toString('pem') + '\n' + ca.pem) // leaf, then the CA: the chain a TLS peer is sent
  index.certificates.push({ kind: s.kind, name: s.name, serial, notAfter: cert.notAfter.toISOString(), revoked: false, ...(epr === undefined ? {} : { epr }) })
  await writeIndex(dir, index)
  return { certPath, keyPath, serial, notAfter: cert.notAfter }
}

export async function issueDomainCertificate (dir: string, o: { name: string, epr?: string, dns?: string[], ip?: string[], days?: number, keyType?: KeyType }): Promise<IssuedCertificate & { epr: string }> {
  const name = checkName('a domain name', o.name)
  const days = checkDays(o.days, 825)
  const keyType = checkKeyType(o.keyType)
  if (o.epr !== undefined && !URI.test(o.epr)) throw new MetaosError('INVALID_ARGUMENT', `the EPR must be an absolute URI such as urn:uuid:… (got ${JSON.stringify(o.epr)})`)
  for (const d of o.dns ?? []) if (d.length > 253 || !DNS_NAME.test(d)) throw new MetaosError('INVALID_ARGUMENT', `not a DNS name: ${JSON.stringify(d)}`)
  for (const a of o.ip ?? []) if (isIP(a) === 0) throw new MetaosError('INVALID_ARGUMENT', `not an IP address: ${JSON.stringify(a)}`)
  return await exclusive(dir, async () => {
    // Re-issuing keeps the domain's EPR: its identity outlives any one key.
    const previous = readIndex(dir).certificates.filter(c => c.kind === 'domain' && c.name === name && c.epr !== undefined).at(-1)
    const epr = o.epr ?? previous?.epr ?? `urn:uuid:${randomUUID()}`
    const host = hostname()
    const dns = [...new Set(['localhost', ...(DNS_NAME.test(host) ? [host] : []), ...(o.dns ?? [])])]
    const ips = [...new Set(['127.0.0.1', '::1', ...(o.ip ?? [])])]
    const names: JsonGeneralName[] = [{ type: 'url', value: epr }, ...dns.map(value => ({ type: 'dns' as const, value })), ...ips.map(value => ({ type: 'ip' as const, value }))]
    const issued = await issueLeaf(dir, { kind: 'domain', name, days, keyType, names, usages: [SERVER_AUTH, CLIENT_AUTH] }, epr)
    return { ...issued, epr }
  })
}

export async function issueClientCertificate (dir: string, o: { identity: string, days?: number, keyType?: KeyType }): Promise<IssuedCertificate & { p12Path?: string }> {
  const identity = checkName('an identity', o.identity)
  const days = checkDays(o.days, 825)
  const keyType = checkKeyType(o.keyType)
  return await exclusive(dir, async () => {
    const issued = await issueLeaf(dir, { kind: 'client', name: identity, days, keyType, names: [{ type: 'url', value: `metaos:identity:${identity}` }], usages: [CLIENT_AUTH] })
    if (!existsSync(OPENSSL)) return issued
    const p12Path = join(dir, 'clients', `${identity}.p12`)
    const tmp = `${p12Path}.${process.pid}.tmp`
    // SHA1-3DES and a SHA-1 MAC rather than OpenSSL 3's AES/PBKDF2 default: Mono's and older
    // .NET/Java PKCS#12 readers only know the legacy algorithms, and 3DES needs no legacy provider.
    try {
      await promisify(execFile)(OPENSSL, ['pkcs12', '-export', '-in', issued.certPath, '-inkey', issued.keyPath, '-name', identity,
        '-keypbe', 'PBE-SHA1-3DES', '-certpbe', 'PBE-SHA1-3DES', '-macalg', 'sha1', '-passout', `pass:${P12_PASSWORD}`, '-out', tmp])
      await chmod(tmp, 0o600)
      await rename(tmp, p12Path)
    } catch (e) {
      await rm(tmp, { force: true })
      throw e
    }
    return { ...issued, p12Path }
  })
}

export async function revokeCertificate (dir: string, o: { serial?: string, name?: string }): Promise<{ crlPath: string, serial: string }> {
  if ((o.serial === undefined) === (o.name === undefined)) throw new MetaosError('INVALID_ARGUMENT', 'give a serial or a name (one of them)')
  return await exclusive(dir, async () => {
    const ca = await loadCa(dir)
    const index = readIndex(dir)
    let entry: IndexEntry | undefined
    if (o.serial !== undefined) {
      const serial = o.serial.toLowerCase().replace(/:/g, '')
      entry = index.certificates.find(c => c.serial === serial)
      if (entry === undefined) throw new MetaosError('FILE_NOT_FOUND', `no certificate with serial ${o.serial} was issued by the CA in ${dir}`)
    } else {
      // The newest unrevoked certificate of that name; refuse to guess between a domain and a client.
      const live = index.certificates.filter(c => c.name === o.name && !c.revoked)
      if (new Set(live.map(c => c.kind)).size > 1) throw new MetaosError('INVALID_ARGUMENT', `both a domain and a client are named ${o.name}: revoke by serial (${live.map(c => c.serial).join(', ')})`)
      entry = live.at(-1)
      if (entry === undefined) throw new MetaosError('FILE_NOT_FOUND', `no unrevoked certificate named ${String(o.name)} in ${dir}`)
    }
    if (!entry.revoked) { entry.revoked = true; entry.revokedAt = new Date().toISOString() }
    const { crlPath } = await writeCrl(dir, ca, index)
    await writeIndex(dir, index)
    return { crlPath, serial: entry.serial }
  })
}

/** Signs a fresh CRL with the same revoked serials: a CRL is only good until its nextUpdate (30 days). */
export async function renewCrl (dir: string): Promise<{ crlPath: string, nextUpdate: Date }> {
  return await exclusive(dir, async () => {
    const ca = await loadCa(dir)
    const index = readIndex(dir)
    const written = await writeCrl(dir, ca, index)
    await writeIndex(dir, index)
    return written
  })
}

export function listCertificates (dir: string): Array<{ kind: 'domain' | 'client', name: string, serial: string, notAfter: string, revoked: boolean, epr?: string }> {
  return readIndex(dir).certificates.map(c => ({ kind: c.kind, name: c.name, serial: c.serial, notAfter: c.notAfter, revoked: c.revoked, ...(c.epr === undefined ? {} : { epr: c.epr }) }))
}
