#!/usr/bin/env bash
# Writes what docker/swarm/stack.yaml takes, with `metaos pki` (docs/security-pki.md): a private CA,
# the discovery proxy's certificate (DNS discovery.metaos), the network domain's (*.network.metaos),
# a client certificate and the access policy the domains enforce — the swarm secrets — and, for
# every node, its storage domain's identity: a certificate naming that domain's own EPR (a urn:uuid
# URI) and <node>.storage.metaos, with its key, in DIR/nodes/<node>/. Those are no swarm secrets
# (a secret is the same for every task of a global service): copy each node's directory to that
# node only (docs/swarm.md, "Identities"). Idempotent: an existing CA is kept, certificates are
# re-issued with the same EPRs, the policy is rewritten.
#
#   bash docker/swarm/make-secrets.sh DIR --node NAME[=ADDR,…]... [--client NAME]
#   METAOS_PKI_DIR=DIR METAOS_IDENTITY_DIR=/etc/metaos/identity … docker stack deploy -c docker/swarm/stack.yaml metaos
set -euo pipefail

usage () {
  cat <<'EOF2'
usage: bash docker/swarm/make-secrets.sh DIR --node NAME[=ADDR,...]... [--client NAME]

Writes into DIR (made when missing): ca.crt, ca.key, crl.pem (metaos pki init, kept when present),
domains/discovery.{crt,key}, domains/network.{crt,key}, clients/NAME.{crt,key}, auth.json (mode 0600)
— the swarm secrets — and nodes/NAME/storage.{crt,key} for every --node: that node's identity.

  --node NAME[=ADDR,...]  a swarm node by its hostname (`docker node ls`, one DNS label;
                          repeatable): its storage domain's certificate names its own EPR,
                          NAME.storage.metaos, and each ADDR (an IP address or DNS name by which
                          frontends beyond the overlay reach the node's port 8443)
  --client NAME           the client identity the policy lets use volume "shared" and every
                          destination (default swarm-client)

Then on each node NAME, as root (the domains run as uid 10001):
  install -d -o 10001 -g 10001 -m 0500 /etc/metaos/identity/NAME
  install -o 10001 -g 10001 -m 0400 storage.crt storage.key /etc/metaos/identity/NAME/
with the two files of DIR/nodes/NAME only, and deploy with METAOS_IDENTITY_DIR=/etc/metaos/identity.
EOF2
}

die () { echo "make-secrets: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; -*) usage >&2; exit 2 ;; esac
dir=$1; shift
nodes=() client=swarm-client
while [ $# -gt 0 ]; do
  case "$1" in
    --node) [ $# -ge 2 ] || die "--node needs a node name"; nodes+=("$2"); shift 2 ;;
    --client) [ $# -ge 2 ] || die "--client needs a name"; client=$2; shift 2 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ ${#nodes[@]} -gt 0 ] || die "name the swarm's nodes (--node NAME, one per node): each gets an identity of its own"

# This checkout's CLI when built, else an installed `metaos`.
if [ -f "$repo/dist/cli/metaos.js" ]; then metaos=(node "$repo/dist/cli/metaos.js")
elif command -v metaos >/dev/null 2>&1; then metaos=(metaos)
else die "no metaos CLI: build this checkout (npm run build) or install metaos"; fi

mkdir -p "$dir"
[ -f "$dir/ca.crt" ] || "${metaos[@]}" pki init --dir "$dir" >/dev/null
# The proxy: the domains verify it by the name they reach it by on the overlay (its task's hostname).
"${metaos[@]}" pki issue-domain --dir "$dir" --name discovery --dns discovery.metaos >/dev/null
# One network domain (one replica): its certificate names its EPR.
"${metaos[@]}" pki issue-domain --dir "$dir" --name network --dns '*.network.metaos' >/dev/null
"${metaos[@]}" pki issue-client --dir "$dir" --identity "$client" >/dev/null

# A storage domain per node: each certificate names that domain's EPR (a new urn:uuid the first
# time, the same one when re-issued), which the domain announces and the proxy checks.
identities=''
for spec in "${nodes[@]}"; do
  node=${spec%%=*} addrs=()
  [[ "$node" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]] || die "--node $spec: a node name is one DNS label (its hostname)"
  if [ "$spec" != "$node" ]; then
    IFS=, read -r -a list <<<"${spec#*=}"
    for a in "${list[@]}"; do
      if [[ "$a" =~ ^[0-9.]+$ || "$a" == *:* ]]; then addrs+=(--ip "$a"); elif [ -n "$a" ]; then addrs+=(--dns "$a"); fi
    done
  fi
  epr=$("${metaos[@]}" pki issue-domain --dir "$dir" --name "storage-$node" --dns "$node.storage.metaos" "${addrs[@]}" | sed -n 's/.*"epr":"\([^"]*\)".*/\1/p')
  mkdir -p "$dir/nodes/$node"
  chmod 700 "$dir/nodes/$node"
  cp "$dir/domains/storage-$node.crt" "$dir/nodes/$node/storage.crt"
  install -m 0600 "$dir/domains/storage-$node.key" "$dir/nodes/$node/storage.key"
  identities+="${identities:+,}{\"node\":\"$node\",\"epr\":\"$epr\"}"
done

umask 077
cat >"$dir/auth.json" <<EOF2
{
  "\$comment": "docker/swarm/make-secrets.sh: who may use the swarm's domains (docs/security.md)",
  "identities": [
    { "name": "$client", "certificate": true, "volumes": ["shared"], "paths": ["*"], "destinations": ["0.0.0.0/0:*"] }
  ]
}
EOF2
chmod 600 "$dir/auth.json"
echo "{\"event\":\"secrets\",\"dir\":\"$dir\",\"client\":\"$client\",\"nodes\":[$identities]}"
