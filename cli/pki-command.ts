// `metaos pki`: the private CA of security/pki.ts on the command line (docs/security-pki.md). Each
// subcommand prints one JSON line on stdout saying what it wrote; errors go to stderr. Owns the
// argument parsing only: every file is written by security/pki.ts.
import { parseArgs } from 'node:util'
import { MetaosError } from '../soap-runtime/errors.js'
import { initCa, issueClientCertificate, issueDomainCertificate, listCertificates, P12_PASSWORD, renewCrl, revokeCertificate, type KeyType } from '../security/pki.js'

const DIR_HELP = '  --dir DIR           the CA directory (default ./metaos-pki)'
const KEY_HELP = '  --key-type TYPE     ec (ECDSA P-256, default) or rsa (RSA-2048, for old TLS stacks such as Mono)'

const HELP = `usage: metaos pki <subcommand> [--dir DIR] [options]

A private certificate authority for metaos domains and their clients.

subcommands:
  init           make the CA: ca.crt, ca.key (0600), an empty crl.pem, index.json
  issue-domain   a domain certificate (serverAuth + clientAuth), its EPR in the SubjectAltName
  issue-client   a client certificate (clientAuth) for an identity, and a .p12 of it
  revoke         revoke a certificate by serial or name and rewrite crl.pem
  crl            sign a fresh crl.pem (a CRL is good for 30 days: renew it before)
  list           what the CA issued

metaos pki <subcommand> --help shows its options. See docs/security-pki.md.
`

const SUB_HELP: Record<string, string> = {
  init: `usage: metaos pki init [--dir DIR] [--name NAME] [--days N] [--key-type ec|rsa] [--force]

Makes a private CA in DIR: ca.crt, ca.key (mode 0600), crl.pem (empty, valid 30 days), index.json.

${DIR_HELP}
  --name NAME         the CA's common name (default "metaos private CA")
  --days N            validity in days (default 3650)
${KEY_HELP}
  --force             replace an existing CA (what it issued stops being trusted)
  --help              this text

Prints {"event":"ca","caCertPath":…,"crlPath":…}.
`,
  'issue-domain': `usage: metaos pki issue-domain --name NAME [--epr URI] [--dns NAME]... [--ip ADDR]... [options]

Issues DIR/domains/NAME.crt (the certificate, then the CA) and NAME.key (0600). The certificate's
SubjectAltName holds the domain's EPR as a URI, localhost, this host's name and 127.0.0.1, ::1.

${DIR_HELP}
  --name NAME         domain name, the subject's CN (1-64 of A-Z a-z 0-9 . _ -; required)
  --epr URI           the domain's EPR (default: the one of the last certificate of NAME, else a
                      new urn:uuid:…)
  --dns NAME          another DNS name (repeatable)
  --ip ADDR           another IP address (repeatable)
  --days N            validity in days (default 825)
${KEY_HELP}
  --help              this text

Prints {"event":"issued","kind":"domain","name":…,"certPath":…,"keyPath":…,"serial":…,"notAfter":…,"epr":…}.
`,
  'issue-client': `usage: metaos pki issue-client --identity NAME [options]

Issues DIR/clients/NAME.crt (the certificate, then the CA), NAME.key (0600) and, when
/usr/bin/openssl exists, NAME.p12 (PKCS#12, password "${P12_PASSWORD}", for Mono/WCF and Python).
The certificate's CN is NAME and its SubjectAltName the URI metaos:identity:NAME.

${DIR_HELP}
  --identity NAME     the client's identity (1-64 of A-Z a-z 0-9 . _ -; required)
  --days N            validity in days (default 825)
${KEY_HELP}
  --help              this text

Prints {"event":"issued","kind":"client","identity":…,"certPath":…,"keyPath":…,"p12Path":…,"serial":…,"notAfter":…}.
`,
  revoke: `usage: metaos pki revoke (--serial HEX | --name NAME) [--dir DIR]

Marks a certificate revoked in index.json and rewrites DIR/crl.pem. Servers must reload the CRL.

${DIR_HELP}
  --serial HEX        the certificate's serial (as \`metaos pki list\` shows it)
  --name NAME         the newest unrevoked certificate of this domain name or client identity
  --help              this text

Prints {"event":"revoked","serial":…,"crlPath":…}.
`,
  crl: `usage: metaos pki crl [--dir DIR]

Signs a fresh DIR/crl.pem with the same revoked serials, valid 30 days.

${DIR_HELP}
  --help              this text

Prints {"event":"crl","crlPath":…,"nextUpdate":…}.
`,
  list: `usage: metaos pki list [--dir DIR] [--json]

Lists the certificates the CA issued: kind, name, serial, expiry, revoked, EPR.

${DIR_HELP}
  --json              one JSON line: an array of {kind,name,serial,notAfter,revoked,epr?}
  --help              this text
`,
}

function days (v: string | undefined): number | undefined {
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw new MetaosError('INVALID_ARGUMENT', `--days must be a positive integer (got ${JSON.stringify(v)})`)
  return Number(v)
}
function keyType (v: string | undefined): KeyType | undefined {
  if (v === undefined || v === 'ec' || v === 'rsa') return v
  throw new MetaosError('INVALID_ARGUMENT', `--key-type must be ec or rsa (got ${JSON.stringify(v)})`)
}
function print (o: object): void { process.stdout.write(JSON.stringify(o) + '\n') }

export async function main (argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP)
    return sub === undefined ? 2 : 0
  }
  const help = SUB_HELP[sub]
  if (help === undefined) { process.stderr.write(`metaos pki: unknown subcommand "${sub}"\n\n${HELP}`); return 2 }
  const { values } = parseArgs({
    args: rest,
    options: {
      dir: { type: 'string', default: './metaos-pki' },
      name: { type: 'string' },
      epr: { type: 'string' },
      dns: { type: 'string', multiple: true },
      ip: { type: 'string', multiple: true },
      identity: { type: 'string' },
      serial: { type: 'string' },
      days: { type: 'string' },
      'key-type': { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    strict: true,
  })
  if (values.help === true) { process.stdout.write(help); return 0 }
  // Options that mean nothing to this subcommand are refused rather than silently ignored.
  const allowed: Record<string, string[]> = {
    init: ['name', 'days', 'key-type', 'force'],
    'issue-domain': ['name', 'epr', 'dns', 'ip', 'days', 'key-type'],
    'issue-client': ['identity', 'days', 'key-type'],
    revoke: ['serial', 'name'],
    crl: [],
    list: ['json'],
  }
  const extra = Object.keys(values).filter(k => k !== 'dir' && !(allowed[sub] ?? []).includes(k))
  if (extra.length > 0) { process.stderr.write(`metaos pki ${sub}: --${extra[0]!} is not an option of ${sub}\n\n${help}`); return 2 }
  const dir = values.dir
  const kt = keyType(values['key-type'])
  const d = days(values.days)
  switch (sub) {
    case 'init': {
      const r = await initCa(dir, { ...(values.name === undefined ? {} : { name: values.name }), ...(d === undefined ? {} : { days: d }), ...(kt === undefined ? {} : { keyType: kt }), force: values.force === true })
      print({ event: 'ca', ...r })
      return 0
    }
    case 'issue-domain': {
      if (values.name === undefined) { process.stderr.write(`metaos pki issue-domain: --name is required\n\n${help}`); return 2 }
      const r = await issueDomainCertificate(dir, {
        name: values.name,
        ...(values.epr === undefined ? {} : { epr: values.epr }),
        ...(values.dns === undefined ? {} : { dns: values.dns }),
        ...(values.ip === undefined ? {} : { ip: values.ip }),
        ...(d === undefined ? {} : { days: d }),
        ...(kt === undefined ? {} : { keyType: kt }),
      })
      print({ event: 'issued', kind: 'domain', name: values.name, ...r, notAfter: r.notAfter.toISOString() })
      return 0
    }
    case 'issue-client': {
      if (values.identity === undefined) { process.stderr.write(`metaos pki issue-client: --identity is required\n\n${help}`); return 2 }
      const r = await issueClientCertificate(dir, { identity: values.identity, ...(d === undefined ? {} : { days: d }), ...(kt === undefined ? {} : { keyType: kt }) })
      print({ event: 'issued', kind: 'client', identity: values.identity, ...r, notAfter: r.notAfter.toISOString() })
      return 0
    }
    case 'revoke': {
      if ((values.serial === undefined) === (values.name === undefined)) { process.stderr.write(`metaos pki revoke: give --serial or --name\n\n${help}`); return 2 }
      const r = await revokeCertificate(dir, values.serial === undefined ? { name: values.name! } : { serial: values.serial })
      print({ event: 'revoked', ...r })
      return 0
    }
    case 'crl': {
      const r = await renewCrl(dir)
      print({ event: 'crl', crlPath: r.crlPath, nextUpdate: r.nextUpdate.toISOString() })
      return 0
    }
    default: { // list
      const certs = listCertificates(dir)
      if (values.json === true) { print(certs); return 0 }
      for (const c of certs) {
        process.stdout.write(`${c.kind.padEnd(6)} ${c.name.padEnd(24)} ${c.serial} ${c.notAfter.slice(0, 10)} ${c.revoked ? 'REVOKED' : 'valid  '}${c.epr === undefined ? '' : ' ' + c.epr}\n`)
      }
      return 0
    }
  }
}
