#!/usr/bin/env bash
# A Docker engine in a network namespace of its own, for the container tests (docs/containers.md,
# "The tests' Docker engine"): a dockerd and a containerd of its own, with their own data root,
# exec root, pid file and socket, started inside the named network namespace NAME. Every bridge,
# veth and iptables rule they make (docker0, br-…, the containers' veths) is made there; nothing
# appears in the machine's root namespace. A client reaches it through its Unix socket (a socket
# crosses namespaces), and reaches its containers through bind-mounted Unix sockets or from inside
# the namespace (`nsenter --net=/run/netns/NAME …`, `ip netns exec NAME …`).
#
#   bash docker/netns-dockerd.sh up             # starts it, or finds it running; prints one JSON line
#   bash docker/netns-dockerd.sh status         # the JSON line when it runs; exit 1 when it does not
#   bash docker/netns-dockerd.sh down [--purge] # stops it, removes the namespace; --purge: the data root too
#
# Shared by every test file (started by the first, under a lock, and reused): the images built in
# its data root stay there between runs. Needs root, iproute2, util-linux and Debian's docker.io.
set -euo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

name=${METAOS_DOCKERD_NAME:-metaos-dockerd}
run_dir=${METAOS_DOCKERD_RUN:-/run/$name}
data_dir=${METAOS_DOCKERD_DATA:-/var/lib/$name}
lock=$run_dir.lock
sock=$run_dir/docker.sock
self=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")

usage () {
  cat <<EOF
usage: bash docker/netns-dockerd.sh up | status | down [--purge]

up      starts a dockerd (and a containerd of its own) in the network namespace $name, or finds
        it running; prints {"event":"ready","docker":"unix://SOCKET","netns":NAME,"pid":N,
        "dataRoot":DIR,"started":true|false,"seconds":S}. Use it with DOCKER_HOST=unix://SOCKET.
status  the same line when it runs (exit 0), nothing and exit 1 when it does not
down    stops its containers, dockerd and containerd, deletes the namespace and the run
        directory; --purge removes the data root (the image cache) too. Idempotent.

Environment (defaults): METAOS_DOCKERD_NAME ($name: the namespace, the cgroup parent),
METAOS_DOCKERD_RUN (/run/NAME: socket, pid files, exec root, logs),
METAOS_DOCKERD_DATA (/var/lib/NAME: the data roots of dockerd and containerd).
EOF
}

die () { echo "netns-dockerd: $*" >&2; exit 1; }

ns_exists () { [ -e "/run/netns/$name" ]; }
answers () { docker -H "unix://$sock" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
dockerd_pid () { cat "$run_dir/docker.pid" 2>/dev/null || true; }

ready_line () {
  echo "{\"event\":\"ready\",\"docker\":\"unix://$sock\",\"netns\":\"$name\",\"pid\":$(dockerd_pid),\"dataRoot\":\"$data_dir/docker\",\"started\":$1,\"seconds\":$2}"
}

# Every process of the engine: those in its network namespace (dockerd, containerd, the shims,
# docker-proxy) and those in its containers' cgroups (--cgroup-parent /NAME, in every hierarchy).
engine_pids () {
  { if ns_exists; then ip netns pids "$name" 2>/dev/null || true; fi
    for h in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
      if [ -d "$h" ]; then find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
    done
  } | sort -un
}

cmd_down () {
  local purge=0
  [ "${1:-}" = --purge ] && purge=1
  local pid round
  pid=$(dockerd_pid)
  # dockerd stops its containers (SIGTERM, then SIGKILL after their grace) and exits; containerd after.
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for round in $(seq 1 50); do
    pids=$(engine_pids)
    [ -z "$pids" ] && break
    if [ "$round" -le 20 ]; then sig=TERM; else sig=KILL; fi
    # shellcheck disable=SC2086
    kill -"$sig" $pids 2>/dev/null || true
    sleep 0.1
  done
  [ -z "$(engine_pids)" ] || echo "netns-dockerd: processes of $name survived SIGKILL: $(engine_pids | tr '\n' ' ')" >&2
  for h in /sys/fs/cgroup/*/"$name" /sys/fs/cgroup/"$name"; do
    if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
  if ns_exists; then ip netns del "$name" 2>/dev/null || true; fi
  # The engine's mounts live in its own mount namespace, gone with it; this catches any that leaked.
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($run_dir|$data_dir)(/|\$)" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$run_dir"
  if [ "$purge" = 1 ]; then rm -rf "$data_dir"; fi
  echo "{\"event\":\"down\",\"netns\":\"$name\",\"purged\":$([ "$purge" = 1 ] && echo true || echo false)}"
}

# `ip netns exec` mounts the namespace's own sysfs over /sys, hiding the cgroups dockerd needs and
# securityfs (AppArmor): they are bind-mounted aside first and moved back inside (as local-swarm.sh).
sys_mounts=(fs/cgroup kernel/security)
engine_outer () {
  local m
  for m in "${sys_mounts[@]}"; do
    if mountpoint -q "/sys/$m"; then mkdir -p "$run_dir/sys/$m"; mount --rbind "/sys/$m" "$run_dir/sys/$m"; fi
  done
  exec ip netns exec "$name" bash "$self" _inner
}

engine_inner () {
  local m
  for m in "${sys_mounts[@]}"; do
    if [ -d "$run_dir/sys/$m" ] && mountpoint -q "$run_dir/sys/$m"; then mount --move "$run_dir/sys/$m" "/sys/$m"; fi
  done
  containerd --config "$run_dir/containerd.toml" >"$run_dir/containerd.log" 2>&1 &
  for _ in $(seq 1 100); do [ -S "$run_dir/containerd/containerd.sock" ] && break; sleep 0.1; done
  # No registry: images are built or loaded here, never pulled. cgroupfs under a parent of its own,
  # where down finds every container's processes.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec dockerd --config-file "$run_dir/daemon.json" \
    --containerd "$run_dir/containerd/containerd.sock" --data-root "$data_dir/docker" --exec-root "$run_dir/exec" \
    --pidfile "$run_dir/docker.pid" -H "unix://$sock" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$name" >"$run_dir/dockerd.log" 2>&1
}

cmd_up () {
  [ "$(id -u)" = 0 ] || die "needs root (a network namespace, dockerd)"
  local c
  for c in ip unshare setsid nsenter dockerd containerd runc docker iptables; do
    command -v "$c" >/dev/null 2>&1 || die "$c is missing (Debian: apt-get install iproute2 util-linux docker.io)"
  done
  local t0
  t0=$(date +%s.%N)
  if ns_exists && answers; then ready_line false 0; return 0; fi
  # A namespace without a live engine (a crash, a reboot's stale files): start afresh, images kept.
  if ns_exists || [ -e "$run_dir" ]; then cmd_down >/dev/null; fi
  mkdir -p "$run_dir/containerd" "$data_dir"
  echo '{}' >"$run_dir/daemon.json"
  cat >"$run_dir/containerd.toml" <<EOF
version = 2
root = "$data_dir/containerd"
state = "$run_dir/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run_dir/containerd/containerd.sock"
[ttrpc]
  address = "$run_dir/containerd/containerd.sock.ttrpc"
[debug]
  address = "$run_dir/containerd/debug.sock"
EOF
  ip netns add "$name"
  ip -n "$name" link set lo up
  # A mount namespace of its own (slave: its mounts never reach this one), then the network namespace.
  setsid unshare --mount --propagation slave bash "$self" _outer </dev/null >"$run_dir/start.log" 2>&1 9>&- &
  for _ in $(seq 1 600); do answers && break; sleep 0.1; done
  if ! answers; then
    tail -n 20 "$run_dir/dockerd.log" "$run_dir/start.log" >&2 2>/dev/null || true
    cmd_down >/dev/null
    die "dockerd did not answer on $sock within 60 s (its log is above)"
  fi
  ready_line true "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

locked () {
  exec 9>"$lock"
  flock -w 300 9 || die "another netns-dockerd.sh holds $lock for 5 minutes"
  "$@"
}

case "${1:-}" in
  up) locked cmd_up ;;
  down) shift; locked cmd_down "$@" ;;
  status) if ns_exists && answers; then ready_line false 0; else exit 1; fi ;;
  _outer) engine_outer ;;
  _inner) engine_inner ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
