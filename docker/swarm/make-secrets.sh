#!/usr/bin/env bash
# Writes what docker/swarm/stack.yaml takes as swarm secrets, with `metaos pki` (docs/security-pki.md):
# a private CA, one certificate for every storage task (DNS *.storage.metaos: each task's hostname is
# <node>.storage.metaos), one for the network domain (*.network.metaos), a client certificate, and
# the access policy the domains enforce. Idempotent: an existing CA is kept, certificates are
# re-issued (same EPR), the policy is rewritten.
#
#   bash docker/swarm/make-secrets.sh DIR [--storage-ip IP]... [--storage-dns NAME]... [--client NAME]
#   METAOS_PKI_DIR=DIR docker stack deploy -c docker/swarm/stack.yaml metaos
set -euo pipefail

usage () {
  cat <<'EOF'
usage: bash docker/swarm/make-secrets.sh DIR [--storage-ip IP]... [--storage-dns NAME]... [--client NAME]

Writes into DIR (made when missing): ca.crt, ca.key, crl.pem (metaos pki init, kept when present),
domains/storage.{crt,key}, domains/network.{crt,key}, clients/NAME.{crt,key}, auth.json (mode 0600).

  --storage-ip IP     another address in the storage certificate (repeatable): the nodes' addresses,
                      for frontends reaching the storage tasks' host-mode ports (https://NODE-IP:8443)
  --storage-dns NAME  another DNS name in it (repeatable): the nodes' names, for the same
  --client NAME       the client identity the policy lets use volume "shared" and every
                      destination (default swarm-client)
EOF
}

die () { echo "make-secrets: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; -*) usage >&2; exit 2 ;; esac
dir=$1; shift
extra=() client=swarm-client
while [ $# -gt 0 ]; do
  case "$1" in
    --storage-ip) [ $# -ge 2 ] || die "--storage-ip needs an address"; extra+=(--ip "$2"); shift 2 ;;
    --storage-dns) [ $# -ge 2 ] || die "--storage-dns needs a name"; extra+=(--dns "$2"); shift 2 ;;
    --client) [ $# -ge 2 ] || die "--client needs a name"; client=$2; shift 2 ;;
    *) usage >&2; exit 2 ;;
  esac
done

# This checkout's CLI when built, else an installed `metaos`.
if [ -f "$repo/dist/cli/metaos.js" ]; then metaos=(node "$repo/dist/cli/metaos.js")
elif command -v metaos >/dev/null 2>&1; then metaos=(metaos)
else die "no metaos CLI: build this checkout (npm run build) or install metaos"; fi

mkdir -p "$dir"
[ -f "$dir/ca.crt" ] || "${metaos[@]}" pki init --dir "$dir" >/dev/null
# The storage certificate is shared by every task of the global service, so it must not name one
# EPR (a urn:uuid in it would become every task's EPR): its URI is not a urn:uuid, and each task
# keeps the EPR derived from its own hostname (<node>.storage.metaos).
"${metaos[@]}" pki issue-domain --dir "$dir" --name storage --epr urn:metaos:swarm:storage \
  --dns '*.storage.metaos' "${extra[@]}" >/dev/null
# One network domain (one replica): its certificate names its EPR.
"${metaos[@]}" pki issue-domain --dir "$dir" --name network --dns '*.network.metaos' >/dev/null
"${metaos[@]}" pki issue-client --dir "$dir" --identity "$client" >/dev/null

umask 077
cat >"$dir/auth.json" <<EOF
{
  "\$comment": "docker/swarm/make-secrets.sh: who may use the swarm's domains (docs/security.md)",
  "identities": [
    { "name": "$client", "certificate": true, "volumes": ["shared"], "paths": ["*"], "destinations": ["0.0.0.0/0:*"] }
  ]
}
EOF
chmod 600 "$dir/auth.json"
echo "{\"event\":\"secrets\",\"dir\":\"$dir\",\"client\":\"$client\"}"
