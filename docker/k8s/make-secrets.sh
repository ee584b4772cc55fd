#!/usr/bin/env bash
# Writes the Secrets docker/k8s/*.yaml mount, with `metaos pki` (docs/security-pki.md): a private
# CA, one certificate for every storage pod and one for the network domain (DNS
# *.NAMESPACE.pod.CLUSTER-DOMAIN: each domain listens on, and announces, its pod record
# <ip-with-dashes>.NAMESPACE.pod.CLUSTER-DOMAIN), a client certificate for frontends, the access
# policy, and DIR/secrets.yaml holding them as Secrets. Idempotent: an existing CA is kept,
# certificates are re-issued (same EPR), the policy and secrets.yaml are rewritten.
#
#   bash docker/k8s/make-secrets.sh DIR [--namespace NS] [--cluster-domain DOMAIN] [--client NAME]
#   kubectl apply -f docker/k8s/00-namespace.yaml && kubectl apply -f DIR/secrets.yaml && kubectl apply -f docker/k8s/
set -euo pipefail

usage () {
  cat <<'EOF_USAGE'
usage: bash docker/k8s/make-secrets.sh DIR [--namespace NS] [--cluster-domain DOMAIN] [--client NAME]

Writes into DIR (made when missing): ca.crt, ca.key, crl.pem (metaos pki init, kept when present),
domains/storage.{crt,key}, domains/network.{crt,key}, clients/NAME.{crt,key}, auth.json, and
secrets.yaml (mode 0600): the Secrets metaos-ca, metaos-policy, metaos-storage-tls,
metaos-network-tls and metaos-client-tls of namespace NS.

  --namespace NS            the manifests' namespace (default metaos)
  --cluster-domain DOMAIN   the cluster's DNS domain (default cluster.local)
  --client NAME             the client identity the policy lets use volume "shared" and every
                            destination (default k8s-client)
EOF_USAGE
}

die () { echo "make-secrets: $*" >&2; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; -*) usage >&2; exit 2 ;; esac
dir=$1; shift
ns=metaos domain=cluster.local client=k8s-client
while [ $# -gt 0 ]; do
  case "$1" in
    --namespace) [ $# -ge 2 ] || die "--namespace needs a name"; ns=$2; shift 2 ;;
    --cluster-domain) [ $# -ge 2 ] || die "--cluster-domain needs a domain"; domain=$2; shift 2 ;;
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
pods="*.$ns.pod.$domain"
# One certificate for every pod of the DaemonSet, so it names no EPR (a urn:uuid in it would become
# every pod's EPR, making them one domain to the frontends): each pod keeps the EPR derived from
# its own hostname, the pod's name.
"${metaos[@]}" pki issue-domain --dir "$dir" --name storage --epr urn:metaos:k8s:storage --dns "$pods" >/dev/null
# One network domain (one replica): its certificate names its EPR.
"${metaos[@]}" pki issue-domain --dir "$dir" --name network --dns "$pods" >/dev/null
"${metaos[@]}" pki issue-client --dir "$dir" --identity "$client" >/dev/null

umask 077
cat >"$dir/auth.json" <<EOF_AUTH
{
  "\$comment": "docker/k8s/make-secrets.sh: who may use the cluster's domains (docs/security.md)",
  "identities": [
    { "name": "$client", "certificate": true, "volumes": ["shared"], "paths": ["*"], "destinations": ["0.0.0.0/0:*"] }
  ]
}
EOF_AUTH
chmod 600 "$dir/auth.json"

b64 () { base64 <"$1" | tr -d '\n'; }
secret () { # NAME TYPE KEY=FILE...
  local name=$1 type=$2; shift 2
  printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: %s\n  namespace: %s\n  labels:\n    app.kubernetes.io/part-of: metaos\ntype: %s\ndata:\n' "$name" "$ns" "$type"
  for kv in "$@"; do printf '  %s: %s\n' "${kv%%=*}" "$(b64 "${kv#*=}")"; done
}
{
  echo "# docker/k8s/make-secrets.sh: the Secrets docker/k8s/*.yaml mount (docs/deploy.md). Holds private keys."
  secret metaos-ca Opaque "ca.crt=$dir/ca.crt" "crl.pem=$dir/crl.pem"
  secret metaos-policy Opaque "auth.json=$dir/auth.json"
  secret metaos-storage-tls kubernetes.io/tls "tls.crt=$dir/domains/storage.crt" "tls.key=$dir/domains/storage.key"
  secret metaos-network-tls kubernetes.io/tls "tls.crt=$dir/domains/network.crt" "tls.key=$dir/domains/network.key"
  secret metaos-client-tls kubernetes.io/tls "tls.crt=$dir/clients/$client.crt" "tls.key=$dir/clients/$client.key" "ca.crt=$dir/ca.crt"
} >"$dir/secrets.yaml"
chmod 600 "$dir/secrets.yaml"
echo "{\"event\":\"secrets\",\"dir\":\"$dir\",\"namespace\":\"$ns\",\"dns\":\"$pods\",\"client\":\"$client\",\"secrets\":\"$dir/secrets.yaml\"}"
