#!/usr/bin/env bash
# Runs the benchmark suites whose results docs/benchmarks.md shows, each writing its JSON (with the
# command and the machine) into docs/benchmarks/, then renders the page and its charts
# (benchmarks/render-docs.ts). With suite names, only those run again; the others keep their last
# recorded results. Nothing else should run on the machine meanwhile: the numbers are its.
#
#   bash benchmarks/record-docs.sh                 # all: ~1 h on 2 cores (the paper suite ~40 min)
#   bash benchmarks/record-docs.sh peers char      # just these
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks
mkdir -p "$out"
npm run --silent build
bench () { node dist/cli/metaos.js bench "$@"; }
all=(paper peers char placement network containers supervision vm security swarm coordination)
for suite in "${@:-${all[@]}}"; do
  echo "== $suite" >&2
  case "$suite" in
    paper) bench --suite paper --json "$out/paper.json" ;;
    peers) bench --suite peers --json "$out/peers.json" ;;
    # METAOS_BENCH_BASELINE=DIST: another build's dist (e.g. main's) measured beside this one.
    char) bench --suite char --file-size 4m --cache 512 --rounds 3 ${METAOS_BENCH_BASELINE:+--baseline "$METAOS_BENCH_BASELINE"} --json "$out/char.json" ;;
    placement) bench --suite placement --json "$out/placement.json" ;;
    network) bench --suite network --json "$out/network.json" ;;
    containers) bash docker/build-images.sh >/dev/null && bench --suite containers --json "$out/containers.json" ;;
    supervision) bench --suite supervision --json "$out/supervision.json" ;;
    # Emulated guests answer a call in tens of ms: blocks of 4 KB on 1 MB files, beside a process domain.
    vm) bench --suite paper --hostings process-bus,vm-http,vm-bus --sizes 1m --caches 4k --modes block --runs 5 --json "$out/vm.json" ;;
    # TLS and authentication on Write round trips: one domain per configuration, ratios to http.
    security) bench --suite security --seconds 4 --rounds 8 --json "$out/security.json" ;;
    # A local swarm of three nodes (root, docker.io): same node vs another node, and a host lost.
    swarm) bench --suite swarm --rounds 6 --json "$out/swarm.json" ;;
    # Open, Close and 4 KiB Writes with and without --coordination (etcds of 1 and 3 members on loopback, data on disk and on tmpfs), ABBA.
    coordination) bench --suite coordination --etcd-tmpfs --json "$out/coordination.json" ;;
    *) echo "record-docs: unknown suite $suite (${all[*]})" >&2; exit 2 ;;
  esac
done
node dist/benchmarks/render-docs.js
