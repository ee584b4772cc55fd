#!/usr/bin/env bash
# Builds the offline base image `metaos/node-base:20` from this machine's Node.js: the node binary,
# the shared libraries it loads (ldd), CA certificates, /etc/passwd and /etc/group with the
# non-root user metaos (uid/gid 10001), /tmp (1777). No registry is needed: the root filesystem is
# a tarball given to `docker import`. It stands in for `node:20-bookworm-slim` (which users with a
# registry use instead, unchanged): same PATH, node at /usr/local/bin/node, default user root, no
# shell and no package manager (the Dockerfiles of docker/ need neither).
#
# Reproducible: files are sorted, owned by 0:0 (metaos' home by 10001), and stamped with
# SOURCE_DATE_EPOCH (default: the node binary's mtime), so the same node gives the same layer
# digest (docker import still gives each import a new creation date, hence a new image id).
# Idempotent: nothing is done when the tag exists, unless --force.
set -euo pipefail

usage () {
  cat <<'EOF'
usage: docker/build-base-image.sh [--tag IMAGE] [--node PATH] [--force]

Builds a local base image for the metaos Dockerfiles from this machine's Node.js, offline.

  --tag IMAGE   tag of the image (default $METAOS_BASE_IMAGE or metaos/node-base:20)
  --node PATH   the node binary to package (default: the `node` in PATH)
  --force       rebuild even when the tag exists
  --help        this text

Then: docker build --build-arg BASE_IMAGE=metaos/node-base:20 …  (docker/build-images.sh does it).
With a registry, use node:20-bookworm-slim (the Dockerfiles' default) and skip this script.
EOF
}

die () { echo "build-base-image: $*" >&2; exit 1; }

tag=${METAOS_BASE_IMAGE:-metaos/node-base:20}
node_bin=''
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
    --tag=*) tag=${1#--tag=}; shift ;;
    --node) [ $# -ge 2 ] || die "--node needs a value"; node_bin=$2; shift 2 ;;
    --node=*) node_bin=${1#--node=}; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

command -v docker >/dev/null 2>&1 || die "docker is not installed (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker daemon${DOCKER_HOST:+ at $DOCKER_HOST} is not reachable (\`docker info\` fails): start one, e.g. the tests' engine in a network namespace of its own (bash docker/netns-dockerd.sh up, then DOCKER_HOST=unix:///run/metaos-dockerd/docker.sock), or check DOCKER_HOST and your access to its socket"

if [ -z "$node_bin" ]; then
  node_bin=$(command -v node 2>/dev/null) || die "node is not in PATH: install Node.js 20 or pass --node /path/to/node"
fi
[ -x "$node_bin" ] || die "$node_bin is not an executable file"
node_real=$(readlink -f "$node_bin")
node_version=$("$node_real" --version 2>/dev/null) || die "$node_real --version failed: is it a Node.js binary for this machine?"
node_major=${node_version#v}; node_major=${node_major%%.*}
case "$tag" in *:"$node_major") ;; *:*) echo "build-base-image: note: tagging node $node_version as $tag" >&2 ;; esac

if [ "$force" = 0 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  have=$(docker image inspect -f '{{ index .Config.Labels "org.metaos.node-version" }}' "$tag" 2>/dev/null || true)
  if [ -n "$have" ] && [ "$have" != "$node_version" ]; then
    echo "build-base-image: warning: $tag holds node $have, this machine has $node_version (--force rebuilds it)" >&2
  fi
  echo "build-base-image: $tag exists, nothing to do (--force rebuilds it)"
  echo "image $(docker image inspect -f '{{.Id}}' "$tag") size $(docker image inspect -f '{{.Size}}' "$tag") bytes ($tag)"
  exit 0
fi

command -v ldd >/dev/null 2>&1 || die "ldd is not installed (Debian: libc-bin)"
command -v tar >/dev/null 2>&1 || die "tar is not installed"

stage=$(mktemp -d "${TMPDIR:-/tmp}/metaos-base-XXXXXX")
trap 'rm -rf "$stage"' EXIT
root=$stage/rootfs
mkdir -p "$root"

# Merged /usr (Debian 12): keep the same top-level symlinks, so the paths ldd prints resolve.
for d in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$d" ]; then
    target=$(readlink "/$d")
    mkdir -p "$root/$(dirname "/$d")" "$root/${target#/}"
    ln -s "$target" "$root/$d"
  fi
done

# Copies a host file to the same path in the image (the file itself, not a symlink), and makes the
# path it was asked by resolve to it.
copy_host_file () {
  local want=$1 real
  real=$(readlink -f "$want")
  mkdir -p "$root$(dirname "$real")"
  cp "$real" "$root$real"
  if [ "$want" != "$real" ] && [ ! -e "$root$want" ]; then
    mkdir -p "$root$(dirname "$want")"
    ln -s "$real" "$root$want"
  fi
}

mkdir -p "$root/usr/local/bin"
cp "$node_real" "$root/usr/local/bin/node"
chmod 0755 "$root/usr/local/bin/node"

# The libraries node loads: every absolute path in ldd's output (the loader included).
ldd_out=$(ldd "$node_real" 2>&1 || true)
if ! grep -q 'not a dynamic executable\|statically linked' <<<"$ldd_out"; then
  grep -q 'not found' <<<"$ldd_out" && die "ldd cannot find some libraries of $node_real:"$'\n'"$ldd_out"
  libs=$(grep -o '/[^ ]*' <<<"$ldd_out" | sort -u)
  [ -n "$libs" ] || die "ldd printed no libraries for $node_real:"$'\n'"$ldd_out"
  for lib in $libs; do copy_host_file "$lib"; done
fi

mkdir -p "$root/etc" "$root/tmp" "$root/run" "$root/home/metaos" "$root/dev" "$root/proc" "$root/sys"
chmod 1777 "$root/tmp"
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then copy_host_file /etc/ssl/certs/ca-certificates.crt; fi
cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
metaos:x:10001:10001:metaos:/home/metaos:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
metaos:x:10001:
EOF
cat >"$root/etc/nsswitch.conf" <<'EOF'
passwd: files
group: files
hosts: files dns
EOF
# Docker bind-mounts these at run time; empty files keep the mount points in place.
: >"$root/etc/hosts"; : >"$root/etc/hostname"; : >"$root/etc/resolv.conf"
chmod 0644 "$root/etc/passwd" "$root/etc/group" "$root/etc/nsswitch.conf"
mkdir -p "$root/root"; chmod 0700 "$root/root"

epoch=${SOURCE_DATE_EPOCH:-$(stat -c %Y "$node_real")}
tarball=$stage/rootfs.tar
# --sort/--mtime/--owner/--pax-option: the same inputs give the same bytes.
(cd "$root" && tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --format=posix \
  --exclude=./home/metaos -cf "$tarball" . )
# metaos' home belongs to metaos: appended with its owner, still stamped and sorted.
(cd "$root" && tar --mtime="@$epoch" --owner=10001 --group=10001 --numeric-owner \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime --format=posix \
  --no-recursion -rf "$tarball" ./home/metaos )
digest=$(sha256sum "$tarball" | cut -d' ' -f1)
old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)

id=$(docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=${node_version#v}" \
  --change "LABEL org.metaos.node-version=$node_version" \
  --change "LABEL org.metaos.rootfs-sha256=$digest" \
  --change 'LABEL org.opencontainers.image.description="metaos offline base: the Node.js of the build machine and the libraries it loads"' \
  --change 'CMD ["node"]' \
  --message "metaos offline base from $node_real $node_version" \
  "$tarball" "$tag") || die "docker import failed"
size=$(docker image inspect -f '{{.Size}}' "$tag")
# --force: the image it replaces goes too, unless something (an image built on it) still uses it.
if [ -n "$old" ] && [ "$old" != "$id" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
echo "built $tag from $node_real ($node_version), rootfs sha256 $digest"
echo "image $id size $size bytes ($tag)"
