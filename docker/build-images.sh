#!/usr/bin/env bash
# Builds the domain images metaos/storage:dev and metaos/network:dev (and, offline, their base
# metaos/node-base:20 through build-base-image.sh). Stages a minimal build context — dist/*.js,
# wsdl/, package.json, the production node_modules (pino, soap and their dependencies),
# docker/healthcheck.mjs — so no dev tool and no source is sent to the daemon.
# Idempotent: each image carries the hash of its inputs (label org.metaos.inputs); an image whose
# hash matches is kept, so a second run costs a few hashes. Safe to run concurrently (flock).
# Expects dist/ to be built (npm run build); it does not compile.
set -euo pipefail

usage () {
  cat <<'EOF'
usage: bash docker/build-images.sh [--base-image IMAGE] [--storage-tag T] [--network-tag T]
                                   [--force] [--stage-only DIR]

Builds metaos/storage:dev and metaos/network:dev from dist/ (run `npm run build` first).

  --base-image IMAGE  the base of both images (default metaos/node-base:20, built offline from
                      this machine's Node.js by docker/build-base-image.sh when missing); with a
                      registry: --base-image node:20-bookworm-slim
  --storage-tag T     default metaos/storage:dev
  --network-tag T     default metaos/network:dev
  --force             rebuild both images even when up to date (the base is kept; rebuild it with
                      docker/build-base-image.sh --force)
  --stage-only DIR    only write the build context into DIR (for docker build, compose, CI)
  --help              this text

Prints one line per image: "image TAG ID SIZE_BYTES built|up-to-date".
EOF
}

die () { echo "build-images: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
base_image=${METAOS_BASE_IMAGE:-metaos/node-base:20}
storage_tag=metaos/storage:dev
network_tag=metaos/network:dev
force=0
stage_only=''
while [ $# -gt 0 ]; do
  case "$1" in
    --base-image) [ $# -ge 2 ] || die "--base-image needs a value"; base_image=$2; shift 2 ;;
    --base-image=*) base_image=${1#--base-image=}; shift ;;
    --storage-tag) [ $# -ge 2 ] || die "--storage-tag needs a value"; storage_tag=$2; shift 2 ;;
    --network-tag) [ $# -ge 2 ] || die "--network-tag needs a value"; network_tag=$2; shift 2 ;;
    --force) force=1; shift ;;
    --stage-only) [ $# -ge 2 ] || die "--stage-only needs a directory"; stage_only=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
# A metaos/node-base tag is built offline here when missing; any other base is pulled by docker build.
case "$base_image" in metaos/node-base:*) offline_base=1 ;; *) offline_base=0 ;; esac

[ -f "$repo/dist/cli/metaos.js" ] || die "$repo/dist/cli/metaos.js is missing: build first (npm run build)"
[ -f "$repo/package-lock.json" ] || die "$repo/package-lock.json is missing"

# Writes the build context into $1: app/ (what /app holds) and empty/ (an empty directory).
stage_context () {
  local ctx=$1 app=$1/app
  mkdir -p "$app/dist" "$app/docker" "$ctx/empty"
  (cd "$repo/dist" && find . -name '*.js' -type f -print0 | tar --null -T - -cf -) | tar -xf - -C "$app/dist"
  cp -r "$repo/wsdl" "$app/wsdl"
  cp "$repo/package.json" "$repo/package-lock.json" "$app/"
  cp "$here/healthcheck.mjs" "$app/docker/"
  cp "$here/storage.Dockerfile" "$here/network.Dockerfile" "$ctx/"
  # Production dependencies: npm ci from the lock file (the npm cache first); with no registry at
  # all, the same packages copied from this checkout's node_modules (npm ls names them).
  if ! (cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >"$ctx/npm.log" 2>&1); then
    echo "build-images: npm ci --omit=dev failed (see below); copying the production packages from $repo/node_modules" >&2
    tail -n 5 "$ctx/npm.log" >&2 || true
    rm -rf "$app/node_modules"
    local paths
    # Sorted, a package comes before the packages nested in it.
    paths=$(cd "$repo" && npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2 | sort -u) || die "npm ls --omit=dev failed in $repo: install the dependencies (npm ci)"
    for p in $paths; do
      local rel=${p#"$repo"/}
      mkdir -p "$app/$(dirname "$rel")"
      cp -r "$p" "$app/$rel"
      # A package's own nested node_modules are copied when npm ls lists them, not with the parent.
      rm -rf "${app:?}/$rel/node_modules"
    done
  fi
  rm -f "$ctx/npm.log" "$app/node_modules/.package-lock.json"
  [ -d "$app/node_modules/pino" ] && [ -d "$app/node_modules/soap" ] || die "the staged node_modules lacks pino or soap"
}

if [ -n "$stage_only" ]; then
  mkdir -p "$stage_only"
  [ -z "$(ls -A "$stage_only")" ] || die "$stage_only is not empty"
  stage_context "$stage_only"
  echo "build context staged in $stage_only: docker build -f $stage_only/storage.Dockerfile --build-arg BASE_IMAGE=$base_image $stage_only"
  exit 0
fi

command -v docker >/dev/null 2>&1 || die "docker is not installed (Debian: apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "the Docker daemon${DOCKER_HOST:+ at $DOCKER_HOST} is not reachable (\`docker info\` fails): start one, e.g. the tests' engine in a network namespace of its own: bash docker/netns-dockerd.sh up, then DOCKER_HOST=unix:///run/metaos-dockerd/docker.sock"
# Without the buildx plugin (Debian's docker.io has none) the classic builder is the one that works.
if ! docker buildx version >/dev/null 2>&1; then export DOCKER_BUILDKIT=0; fi

# One build at a time on this machine: tests may call this script in parallel.
lock=${TMPDIR:-/tmp}/metaos-build-images.lock
exec 9>"$lock"
command -v flock >/dev/null 2>&1 && { flock -w 900 9 || die "another build holds $lock for 15 minutes"; }

if [ "$offline_base" = 1 ]; then
  bash "$here/build-base-image.sh" --tag "$base_image" >/dev/null
fi
base_id=$(docker image inspect -f '{{.Id}}' "$base_image" 2>/dev/null || echo "pull:$base_image")

# Hash of every input of an image: what changes it changes the hash.
inputs_hash () {
  local dockerfile=$1
  {
    echo "base $base_id"
    (cd "$repo" && find dist -name '*.js' -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$repo" && find wsdl -type f -print0 | sort -z | xargs -0 sha256sum)
    (cd "$repo" && sha256sum package.json package-lock.json)
    (cd "$here" && sha256sum healthcheck.mjs build-images.sh "$dockerfile")
  } | sha256sum | cut -d' ' -f1
}

ctx=''
cleanup () { if [ -n "$ctx" ]; then rm -rf "$ctx"; fi; }
trap cleanup EXIT

for kind in storage network; do
  if [ "$kind" = storage ]; then tag=$storage_tag; else tag=$network_tag; fi
  hash=$(inputs_hash "$kind.Dockerfile")
  have=$(docker image inspect -f '{{ index .Config.Labels "org.metaos.inputs" }}' "$tag" 2>/dev/null || true)
  state=up-to-date
  if [ "$force" = 1 ] || [ "$have" != "$hash" ]; then
    if [ -z "$ctx" ]; then
      ctx=$(mktemp -d "${TMPDIR:-/tmp}/metaos-context-XXXXXX")
      stage_context "$ctx"
    fi
    old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
    log=$ctx/build-$kind.log
    if ! docker build -q -f "$ctx/$kind.Dockerfile" --build-arg "BASE_IMAGE=$base_image" \
        --label "org.metaos.inputs=$hash" --label "org.metaos.base=$base_image" -t "$tag" "$ctx" >"$log" 2>&1; then
      cat "$log" >&2
      die "docker build of $tag failed"
    fi
    new=$(docker image inspect -f '{{.Id}}' "$tag")
    # The image this one replaces is of no use any more (unless a container still runs it).
    if [ -n "$old" ] && [ "$old" != "$new" ]; then docker rmi "$old" >/dev/null 2>&1 || true; fi
    state=built
  fi
  echo "image $tag $(docker image inspect -f '{{.Id}} {{.Size}}' "$tag") $state"
done
