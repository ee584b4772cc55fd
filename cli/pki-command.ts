// `metaos pki`: the private CA of security/pki.ts on the command line (docs/security-pki.md). Each
// subcommand prints one JSON line on stdout saying what it wrote; errors go to stderr. Owns the
// argument parsing only: every file is written by security/pki.ts.
import { initCa, issueClientCertificate, issueDomainCertificate, listCertificates, P12_PASSWORD, PKI_FORMS, renewCrl, revokeCertificate } from '../security/pki.js'
import { flag, matching, oneOf, parseOptions, text, UsageError } from './options.js'
import { ipAddress, positive } from './option-kinds.js'

const DEFAULT_DIR = './metaos-pki'
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

const name = matching(PKI_FORMS.name, 'a name of 1-64 of A-Z a-z 0-9 . _ -', ['no/slash', 'x'.repeat(65)])
const dir = { kind: text('the CA directory') }
const days = { kind: positive }
const keyType = { kind: oneOf(['ec', 'rsa']) }

/** The options of each subcommand (test/cli/cli-usage.test.ts feeds each a bad value); --dir defaults to ./metaos-pki. */
export const SUBCOMMAND_OPTIONS = {
  init: { dir, name: { kind: text('the CA\'s common name') }, days, 'key-type': keyType, force: flag },
  'issue-domain': {
    dir,
    name: { kind: name, required: true },
    epr: { kind: matching(PKI_FORMS.uri, 'an absolute URI such as urn:uuid:…', ['not a uri']) },
    dns: { kind: matching(PKI_FORMS.dns, 'a DNS name', ['no_underscore', '-x.example']), multiple: true },
    ip: { kind: ipAddress, multiple: true },
    days,
    'key-type': keyType,
  },
  'issue-client': { dir, identity: { kind: name, required: true }, days, 'key-type': keyType },
  revoke: { dir, serial: { kind: matching(/^[0-9A-Fa-f]+$/, 'a certificate serial in hex', ['xyz']) }, name: { kind: text('a domain name or client identity') } },
  crl: { dir },
  list: { dir, json: flag },
} as const

function print (o: object): void { process.stdout.write(JSON.stringify(o) + '\n') }

export async function main (argv: string[]): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP)
    return sub === undefined ? 2 : 0
  }
  const help = SUB_HELP[sub]
  if (help === undefined) throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}: one of ${Object.keys(SUB_HELP).join(', ')}`)
  switch (sub) {
    case 'init': {
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS.init, help, `pki ${sub}`)
      if (v === undefined) return 0
      const r = await initCa(v.dir ?? DEFAULT_DIR, { ...(v.name === undefined ? {} : { name: v.name }), ...(v.days === undefined ? {} : { days: v.days }), ...(v['key-type'] === undefined ? {} : { keyType: v['key-type'] }), force: v.force === true })
      print({ event: 'ca', ...r })
      return 0
    }
    case 'issue-domain': {
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS['issue-domain'], help, `pki ${sub}`)
      if (v === undefined) return 0
      const r = await issueDomainCertificate(v.dir ?? DEFAULT_DIR, {
        name: v.name,
        ...(v.epr === undefined ? {} : { epr: v.epr }),
        ...(v.dns === undefined ? {} : { dns: v.dns }),
        ...(v.ip === undefined ? {} : { ip: v.ip }),
        ...(v.days === undefined ? {} : { days: v.days }),
        ...(v['key-type'] === undefined ? {} : { keyType: v['key-type'] }),
      })
      print({ event: 'issued', kind: 'domain', name: v.name, ...r, notAfter: r.notAfter.toISOString() })
      return 0
    }
    case 'issue-client': {
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS['issue-client'], help, `pki ${sub}`)
      if (v === undefined) return 0
      const r = await issueClientCertificate(v.dir ?? DEFAULT_DIR, { identity: v.identity, ...(v.days === undefined ? {} : { days: v.days }), ...(v['key-type'] === undefined ? {} : { keyType: v['key-type'] }) })
      print({ event: 'issued', kind: 'client', identity: v.identity, ...r, notAfter: r.notAfter.toISOString() })
      return 0
    }
    case 'revoke': {
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS.revoke, help, `pki ${sub}`)
      if (v === undefined) return 0
      if ((v.serial === undefined) === (v.name === undefined)) throw new UsageError('give either --serial or --name', 'pki revoke')
      const r = await revokeCertificate(v.dir ?? DEFAULT_DIR, v.serial === undefined ? { name: v.name! } : { serial: v.serial })
      print({ event: 'revoked', ...r })
      return 0
    }
    case 'crl': {
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS.crl, help, `pki ${sub}`)
      if (v === undefined) return 0
      const r = await renewCrl(v.dir ?? DEFAULT_DIR)
      print({ event: 'crl', crlPath: r.crlPath, nextUpdate: r.nextUpdate.toISOString() })
      return 0
    }
    default: { // list
      const v = parseOptions(rest, SUBCOMMAND_OPTIONS.list, help, `pki ${sub}`)
      if (v === undefined) return 0
      const certs = listCertificates(v.dir ?? DEFAULT_DIR)
      if (v.json === true) { print(certs); return 0 }
      for (const c of certs) {
        process.stdout.write(`${c.kind.padEnd(6)} ${c.name.padEnd(24)} ${c.serial} ${c.notAfter.slice(0, 10)} ${c.revoked ? 'REVOKED' : 'valid  '}${c.epr === undefined ? '' : ' ' + c.epr}\n`)
      }
      return 0
    }
  }
}
