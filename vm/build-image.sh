#!/usr/bin/env bash
# Builds the boot files of a VM domain — a Debian kernel and an initramfs holding busybox, this
# machine's Node.js with its libraries, the project (dist/, wsdl/, production node_modules) and
# vm/init.sh — offline, from Debian packages and what this machine has. The guest kernel is a
# parameter: any Debian linux-image package with 9p and virtio modules (the -cloud- flavour lacks
# 9p, which shares the volume with the host).
#
# Reproducible and cached: the output directory is named by the hash of every input (kernel
# package, node binary and libraries, busybox, dist/*.js, wsdl/, package files, init.sh, this
# script); files in the archive are sorted, owned by root, dated SOURCE_DATE_EPOCH. A second run
# with the same inputs only hashes and prints the path. Safe to run concurrently (flock).
# Expects dist/ to be built (npm run build); it does not compile.
set -euo pipefail

usage () {
  cat <<'EOF'
usage: bash vm/build-image.sh [--kernel PACKAGE] [--cache DIR] [--force] [--json] [--fetch-only]

Builds (or finds in the cache) a VM domain's kernel and initramfs; prints the image directory
(vmlinuz, initrd.img, manifest.json).

  --kernel PACKAGE  a Debian kernel package, e.g. linux-image-6.1.0-56-amd64 (default: what
                    linux-image-amd64 depends on, the newest generic kernel of the release)
  --cache DIR       where kernel packages and images are kept
                    (default ${XDG_CACHE_HOME:-$HOME/.cache}/metaos/vm, or $METAOS_VM_CACHE)
  --force           rebuild even when the cache has the image
  --json            print the manifest instead of the directory
  --fetch-only      only download the kernel package into the cache (the one step that needs the
                    package registry; .ci/run and tests do it before they cut the network off)
                    and print its path
  --help            this text
EOF
}

die () { echo "build-image: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${METAOS_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metaos/vm}
kernel_pkg=''
force=0
json=0
fetch_only=0
while [ $# -gt 0 ]; do
  case "$1" in
    --kernel) [ $# -ge 2 ] || die "--kernel needs a package name"; kernel_pkg=$2; shift 2 ;;
    --kernel=*) kernel_pkg=${1#--kernel=}; shift ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a directory"; cache=$2; shift 2 ;;
    --force) force=1; shift ;;
    --json) json=1; shift ;;
    --fetch-only) fetch_only=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

command -v apt-get >/dev/null 2>&1 || die "apt-get is missing: the guest kernel comes from a Debian package"
if [ "$fetch_only" = 0 ]; then
  for tool in cpio gzip dpkg-deb sha256sum ldd; do command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (Debian: apt-get install cpio)"; done
  busybox=/bin/busybox
  [ -x "$busybox" ] || die "busybox is missing (Debian: apt-get install busybox-static)"
  ldd "$busybox" >/dev/null 2>&1 && die "$busybox is dynamically linked: install busybox-static"
  node_bin=$(readlink -f "$(command -v node)")
  [ -f "$repo/dist/cli/metaos.js" ] && [ -f "$repo/dist/vm/guest-agent.js" ] || die "$repo/dist is missing or stale: build first (npm run build)"
fi

mkdir -p "$cache/debs" "$cache/images"
exec 9>"$cache/.lock"
command -v flock >/dev/null 2>&1 && { flock -w 900 9 || die "another build holds $cache/.lock for 15 minutes"; }

# The concrete package behind the metapackage, so the cache key names a kernel version.
if [ -z "$kernel_pkg" ]; then
  kernel_pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
  [ -n "$kernel_pkg" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-get update?); pass --kernel"
fi
case "$kernel_pkg" in linux-image-[0-9]*) ;; *) die "--kernel must name a versioned package like linux-image-6.1.0-56-amd64, not $kernel_pkg" ;; esac

deb=$(ls "$cache/debs/${kernel_pkg}_"*.deb 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$deb" ]; then
  # apt-get download writes into the current directory as the _apt user when it can.
  dl=$(mktemp -d "$cache/debs/.dl-XXXXXX")
  chmod 0755 "$dl"
  (cd "$dl" && apt-get download "$kernel_pkg" >"$dl/log" 2>&1) || { cat "$dl/log" >&2; rm -rf "$dl"; die "apt-get download $kernel_pkg failed"; }
  mv "$dl"/*.deb "$cache/debs/"
  rm -rf "$dl"
  deb=$(ls "$cache/debs/${kernel_pkg}_"*.deb | sort -V | tail -1)
fi
if [ "$fetch_only" = 1 ]; then echo "$deb"; exit 0; fi

# The libraries node loads, as ldd resolves them here.
libs=$(ldd "$node_bin" | awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u)

inputs_hash () {
  {
    echo "kernel $kernel_pkg"; sha256sum "$deb" | cut -d' ' -f1
    sha256sum "$node_bin" "$busybox" $libs | awk '{print $1}'
    (cd "$repo" && find dist -name '*.js' -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$repo" && find wsdl -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$repo" && sha256sum package.json package-lock.json)
    (cd "$here" && sha256sum build-image.sh init.sh)
    sha256sum "$repo/docker/build-images.sh" | cut -d' ' -f1
  } | sha256sum | cut -c1-16
}
hash=$(inputs_hash)
out=$cache/images/$hash

if [ "$force" = 1 ] || [ ! -f "$out/manifest.json" ]; then
  work=$(mktemp -d "$cache/images/.build-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  root=$work/root
  mkdir -p "$root"/{bin,dev,proc,sys,tmp,run,data,etc,lib64,usr/bin} "$work/k"
  dpkg-deb -x "$deb" "$work/k"
  kver=$(ls "$work/k/lib/modules")
  [ "$(echo "$kver" | wc -l)" = 1 ] || die "$deb holds several module trees"
  vmlinuz=$(ls "$work/k/boot/vmlinuz-"*)
  # The modules the guest needs and what they depend on, by the package's own modules.dep.
  mods=$work/k/lib/modules/$kver
  # A package ships no modules.dep (its postinst runs depmod): busybox's depmod writes one.
  [ -f "$mods/modules.dep" ] || "$busybox" depmod -b "$work/k" "$kver"
  wanted='virtio_pci virtio_console virtio_net virtio_balloon 9pnet_virtio 9p'
  need=$(awk -v want="$wanted" '
    BEGIN { n = split(want, w, " ") }
    { sub(":", "", $1); dep[$1] = ""; for (i = 2; i <= NF; i++) dep[$1] = dep[$1] " " $i
      m = $1; sub(/.*\//, "", m); sub(/\.ko(\.[a-z]+)?$/, "", m); path[m] = $1 }
    function add (p,   k, d, parts) { if (p in seen) return; seen[p] = 1; print p; k = split(dep[p], parts, " "); for (d = 1; d <= k; d++) add(parts[d]) }
    END { for (i = 1; i <= n; i++) { if (!(w[i] in path)) { missing = missing " " w[i]; continue } add(path[w[i]]) } if (missing != "") { print "MISSING" missing > "/dev/stderr"; exit 3 } }
  ' "$mods/modules.dep") || die "$kernel_pkg lacks modules the guest needs (a -cloud- kernel has no 9p): pick a generic kernel"
  for m in $need; do mkdir -p "$root/lib/modules/$kver/$(dirname "$m")"; cp "$mods/$m" "$root/lib/modules/$kver/$m"; done
  case "$need" in *.ko.xz*|*.ko.zst*|*.ko.gz*) die "compressed modules are not handled yet" ;; esac
  grep -F -f <(printf '%s:\n' $need) "$mods/modules.dep" > "$root/lib/modules/$kver/modules.dep"
  echo "$wanted" | tr ' ' '\n' > "$root/etc/metaos-modules"

  cp "$busybox" "$root/bin/busybox"
  cp "$node_bin" "$root/usr/bin/node"
  for l in $libs; do mkdir -p "$root$(dirname "$l")"; cp -L "$l" "$root$l"; done
  # Node reads no config; the domain's EPR and logs need a hostname and little else.
  printf 'root:x:0:0:root:/:/bin/sh\n' > "$root/etc/passwd"
  printf 'root:x:0:\n' > "$root/etc/group"
  printf '127.0.0.1 localhost\n' > "$root/etc/hosts"
  install -m 0755 "$here/init.sh" "$root/init"
  stage=$work/stage
  mkdir -p "$stage"
  bash "$repo/docker/build-images.sh" --stage-only "$stage" >/dev/null
  mv "$stage/app" "$root/app"

  mkdir -p "$work/out"
  cp "$vmlinuz" "$work/out/vmlinuz"
  epoch=${SOURCE_DATE_EPOCH:-0}
  (cd "$root" && find . -print0 | xargs -0 touch -h -d "@$epoch" && find . -print0 | LC_ALL=C sort -z | cpio --null --reproducible -o -H newc -R 0:0 --quiet) | gzip -n -1 > "$work/out/initrd.img"
  size=$(stat -c %s "$work/out/initrd.img")
  cat > "$work/out/manifest.json" <<EOF
{"kernelPackage":"$kernel_pkg","kernelRelease":"$kver","deb":"$(basename "$deb")","node":"$("$node_bin" --version)","inputs":"$hash","initrdBytes":$size}
EOF
  rm -rf "$out"
  mv "$work/out" "$out"
  # Older images (other inputs) beyond the four newest go: each is ~55 MB.
  ls -1dt "$cache/images/"*/ 2>/dev/null | tail -n +5 | while read -r old; do [ "${old%/}" != "$out" ] && rm -rf "$old"; done
fi

if [ "$json" = 1 ]; then sed "s#^{#{\"dir\":\"$out\",#" "$out/manifest.json"; else echo "$out"; fi
