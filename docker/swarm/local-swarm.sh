#!/usr/bin/env bash
# A Docker Swarm of N nodes on this one machine, for tests, CI and the demo (DESIGN.md §9,
# docs/swarm.md). Each node is a dockerd (with a containerd of its own) in a network namespace of
# its own and a UTS namespace naming it node1, node2…; the nodes and a "client" namespace are
# linked by veth pairs to a bridge in a "switch" namespace. Their addresses exist only inside those
# namespaces: nothing is added to the root namespace (no link, address, route or iptables rule),
# and with no default route anywhere nothing leaves the machine.
#
#   bash docker/swarm/local-swarm.sh up [--nodes N] [--managers M] [--images-from DOCKER_HOST [--no-build]]
#   bash docker/swarm/local-swarm.sh kill-node NAME      # a host crash: SIGKILL, cable pulled
#   bash docker/swarm/local-swarm.sh cut-link NAME       # only the cable pulled: the node runs on
#   bash docker/swarm/local-swarm.sh restore-link NAME   # the cable back
#   bash docker/swarm/local-swarm.sh identities PKI_DIR  # each node's storage identity in place
#   bash docker/swarm/local-swarm.sh down                # removes all of it; idempotent
#
# Needs root, iproute2 (ip netns), util-linux (unshare), Debian's docker.io (dockerd, containerd,
# runc, docker) and the kernel's bridge, veth, vxlan and overlayfs. The kernel needs no IPVS: the
# stack uses endpoint_mode dnsrr and host-mode ports (no routing mesh).
set -euo pipefail
# dockerd, ip and containerd live in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

name=${METAOS_SWARM_NAME:-metaos-swarm}
run_dir=${METAOS_SWARM_DIR:-/run/$name}
data_dir=${METAOS_SWARM_DATA:-/var/lib/$name}
net=${METAOS_SWARM_NET:-10.231.0}
pool=${METAOS_SWARM_POOL:-10.232.0.0/16}
heartbeat=${METAOS_SWARM_HEARTBEAT:-2s}
images=(metaos/storage:dev metaos/network:dev)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
self=$here/$(basename "${BASH_SOURCE[0]}")
repo=$(cd "$here/../.." && pwd)

usage () {
  cat <<EOF
usage: bash docker/swarm/local-swarm.sh up [--nodes N] [--managers M] [--images-from DOCKER_HOST [--no-build]]
       bash docker/swarm/local-swarm.sh kill-node NAME
       bash docker/swarm/local-swarm.sh cut-link NAME | restore-link NAME
       bash docker/swarm/local-swarm.sh identities PKI_DIR
       bash docker/swarm/local-swarm.sh down

up         N nodes (default 3; at most 50), M of them managers (default 3, or 1 with fewer than 3
           nodes), labelled zone=a, b, c… and kernel=\$(uname -r); the images ${images[*]}
           loaded into every node; prints one line
           {"event":"ready","nodes":[{"name","netns","docker","address","role","zone"},…],
            "client":{"netns","address"},"shared":DIR}
           built with docker/build-images.sh in node1's dockerd (no other dockerd is used), or
           --images-from DOCKER_HOST: built in that dockerd (e.g. the tests' engine,
           docker/netns-dockerd.sh) and taken from it; --no-build: taken as they are there
kill-node  NAME (node2, or its namespace): SIGKILL its dockerd, containerd, shims and
           containers, and take its switch port down
cut-link   NAME: take its switch port down (a pulled cable, a partition): its processes run
           on, and nothing reaches them nor leaves them until restore-link NAME puts it back up
identities PKI_DIR: each node's storage identity (make-secrets.sh PKI_DIR --node nodeI) copied
           to DATA/identity/nodeI, uid 10001, mode 0400: the stack's METAOS_IDENTITY_DIR; prints
           {"event":"identities","dir":DIR,"nodes":["node1",…]}
down       stops and removes every node, namespace, link, directory of this swarm

Environment (defaults): METAOS_SWARM_NAME ($name: prefix of the namespaces),
METAOS_SWARM_DIR (/run/NAME: sockets, pids, logs), METAOS_SWARM_DATA (/var/lib/NAME: the nodes'
data roots, the shared directory), METAOS_SWARM_NET (10.231.0: the switch's /24),
METAOS_SWARM_POOL (10.232.0.0/16: the overlay networks' pool), METAOS_SWARM_HEARTBEAT (2s).
EOF
}

die () { echo "local-swarm: $*" >&2; exit 1; }
say () { echo "local-swarm: $*" >&2; }

node_ns () { echo "$name-node$1"; }
node_dir () { echo "$run_dir/node$1"; }
node_sock () { echo "$run_dir/node$1/docker.sock"; }
node_addr () { echo "$net.$((10 + $1))"; }
dk () { local i=$1; shift; docker -H "unix://$(node_sock "$i")" "$@"; }
zone_of () { local letters=abcdefghijklmnopqrstuvwxyz; echo "${letters:$(( ($1 - 1) % 26 )):1}"; }

# The namespaces of this swarm, whatever state is left (for down).
our_namespaces () { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${name//./\\.}-(node[0-9]+|switch|client)\$" || true; }

# PIDs of a node: every process in its network namespace (dockerd, containerd, shims, docker-proxy)
# and every process in its containers' cgroups (--cgroup-parent /NAME-nodeI, in every hierarchy).
node_pids () {
  local ns=$1
  { ip netns pids "$ns" 2>/dev/null || true
    for h in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
      if [ -d "$h" ]; then find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null || true; fi
    done
  } | sort -un
}

# containerd 1.6 puts each shim's socket in /run/containerd/s/ (sha256 of address/namespace/id):
# a killed shim leaves it behind; remove the ones of this node's shims.
shim_sockets () {
  local pid args addr id ns
  for pid in $(ip netns pids "$1" 2>/dev/null || true); do
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    case "$args" in *containerd-shim*) ;; *) continue ;; esac
    addr=$(sed -n 's/.* -address \([^ ]*\).*/\1/p' <<<"$args"); id=$(sed -n 's/.* -id \([^ ]*\).*/\1/p' <<<"$args")
    ns=$(sed -n 's/.* -namespace \([^ ]*\).*/\1/p' <<<"$args")
    if [ -n "$addr" ] && [ -n "$id" ]; then echo "/run/containerd/s/$(printf '%s' "$addr/$ns/$id" | sha256sum | cut -d' ' -f1)"; fi
  done
  return 0
}

kill_ns () {
  local ns=$1 pids socks round
  socks=$(shim_sockets "$ns")
  for round in $(seq 1 50); do
    pids=$(node_pids "$ns")
    [ -z "$pids" ] && break
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    sleep 0.1
  done
  [ -z "$(node_pids "$ns")" ] || say "processes of $ns survived SIGKILL: $(node_pids "$ns" | tr '\n' ' ')"
  for s in $socks; do rm -f "$s"; done
  for h in /sys/fs/cgroup/*/"$ns" /sys/fs/cgroup/"$ns"; do
    if [ -d "$h" ]; then find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

cmd_down () {
  local ns
  for ns in $(our_namespaces); do
    case "$ns" in *-node*) kill_ns "$ns" ;; esac
  done
  for ns in $(our_namespaces); do
    # The client may still run a test's process: end it with its namespace.
    case "$ns" in *-client) for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null || true; done ;; esac
    ip netns del "$ns" 2>/dev/null || true
  done
  # The nodes' mounts live in their own mount namespaces, gone with their processes; this
  # catches any that reached this one.
  local m
  for m in $(awk '{print $5}' /proc/self/mountinfo | grep -E "^($run_dir|$data_dir)(/|\$)" | sort -r); do umount -l "$m" 2>/dev/null || true; done
  # Only what up made (the directories may be given by the caller and hold other things).
  local dir
  for dir in "$run_dir" "$data_dir"; do
    [ -d "$dir" ] || continue
    rm -rf "$dir"/node[0-9]* "$dir/shared" "$dir/identity" "$dir/images.tar" "$dir/.metaos-swarm"
    rmdir "$dir" 2>/dev/null || true
  done
  echo "{\"event\":\"down\",\"name\":\"$name\"}"
}

cmd_kill_node () {
  local n=${1:-}
  [ -n "$n" ] || die "kill-node needs a node name (node2, or $name-node2)"
  n=${n#"$name-"}
  [[ "$n" =~ ^node([0-9]+)$ ]] || die "no node named $1 (node1, node2…)"
  local i=${BASH_REMATCH[1]} ns
  ns=$(node_ns "$i")
  ip netns list | awk '{print $1}' | grep -qx "$ns" || die "no node $n in swarm $name (no namespace $ns)"
  local before
  before=$(node_pids "$ns" | wc -l)
  # A crashed host answers nothing: its switch port goes down first, so its peers time out as with
  # a real crash (killed first, its kernel would reset their connections meanwhile).
  ip -n "$name-switch" link set "p$i" down 2>/dev/null || true
  kill_ns "$ns"
  echo "{\"event\":\"killed\",\"node\":\"$n\",\"netns\":\"$ns\",\"processes\":$before}"
}

# The node's cable: its port on the switch, down (cut) or up (restored). Its processes run on.
cmd_link () {
  local state=$1 n=${2:-}
  [ -n "$n" ] || die "$3 needs a node name (node2, or $name-node2)"
  n=${n#"$name-"}
  [[ "$n" =~ ^node([0-9]+)$ ]] || die "no node named $2 (node1, node2…)"
  local i=${BASH_REMATCH[1]}
  ip -n "$name-switch" link show "p$i" >/dev/null 2>&1 || die "no node $n in swarm $name (no port p$i on $name-switch)"
  ip -n "$name-switch" link set "p$i" "$state"
  echo "{\"event\":\"$4\",\"node\":\"$n\",\"port\":\"p$i\",\"state\":\"$state\"}"
}

# ---------------------------------------------------------------------------------------------
# identities: what an operator does on each node of a real swarm (docs/swarm.md, "Identities")

# Copies PKI_DIR/nodes/nodeI/storage.{crt,key} (docker/swarm/make-secrets.sh --node nodeI) to
# DATA/identity/nodeI/, owned by the images' user: the stack mounts METAOS_IDENTITY_DIR/<node> in
# that node's storage task. Here every node's directory is on one file system; each task still
# mounts its own node's only.
cmd_identities () {
  local pki=${1:-} i nodes out=''
  [ -n "$pki" ] || die "identities needs the directory make-secrets.sh wrote"
  nodes=$(our_namespaces | sed -n "s/^${name//./\\.}-node\([0-9]*\)\$/\1/p" | sort -n)
  [ -n "$nodes" ] || die "swarm $name is not up"
  for i in $nodes; do
    local from=$pki/nodes/node$i to=$data_dir/identity/node$i
    [ -f "$from/storage.crt" ] && [ -f "$from/storage.key" ] || die "no identity for node$i in $pki (make-secrets.sh $pki --node node$i)"
    install -d -m 0755 "$data_dir/identity"
    install -d -o 10001 -g 10001 -m 0500 "$to"
    install -o 10001 -g 10001 -m 0400 "$from/storage.crt" "$from/storage.key" "$to/"
    out+="${out:+,}\"node$i\""
  done
  echo "{\"event\":\"identities\",\"dir\":\"$data_dir/identity\",\"nodes\":[$out]}"
}

# ---------------------------------------------------------------------------------------------
# up

link_ns () { # namespace, switch port name, address
  local ns=$1 port=$2 addr=$3
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  ip -n "$name-switch" link add "$port" type veth peer name eth0 netns "$ns"
  ip -n "$name-switch" link set "$port" master br0 up
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
}

start_node () { # index
  local i=$1 d ns
  d=$(node_dir "$i"); ns=$(node_ns "$i")
  mkdir -p "$d/containerd" "$data_dir/node$i"
  echo '{}' >"$d/daemon.json"
  cat >"$d/containerd.toml" <<EOF
version = 2
root = "$data_dir/node$i/containerd"
state = "$d/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$d/containerd/containerd.sock"
[ttrpc]
  address = "$d/containerd/containerd.sock.ttrpc"
[debug]
  address = "$d/containerd/debug.sock"
EOF
  # A mount and UTS namespace of the node's own (slave: no mount reaches this one), then its
  # network namespace: see node_outer and node_inner.
  setsid unshare --mount --propagation slave --uts bash "$self" _node-outer "$i" </dev/null >"$d/start.log" 2>&1 &
}

# `ip netns exec` mounts a sysfs of the namespace over /sys, hiding what is mounted under /sys:
# the cgroups dockerd needs, and securityfs (AppArmor, which dockerd looks for there). They are
# bind-mounted aside first, and moved back inside.
sys_mounts=(fs/cgroup kernel/security)
node_outer () {
  local i=$1 d m
  d=$(node_dir "$i")
  for m in "${sys_mounts[@]}"; do
    if mountpoint -q "/sys/$m"; then mkdir -p "$d/sys/$m"; mount --rbind "/sys/$m" "$d/sys/$m"; fi
  done
  hostname "node$i"
  exec ip netns exec "$(node_ns "$i")" bash "$self" _node-inner "$i"
}

# A containerd of its own (dockerd would share a system one whose socket it finds) and dockerd,
# inside the node's network namespace: every link, address and iptables rule they make is made there.
node_inner () {
  local i=$1 d
  d=$(node_dir "$i")
  local m
  for m in "${sys_mounts[@]}"; do
    if [ -d "$d/sys/$m" ] && mountpoint -q "$d/sys/$m"; then mount --move "$d/sys/$m" "/sys/$m"; fi
  done
  containerd --config "$d/containerd.toml" >"$d/containerd.log" 2>&1 &
  for _ in $(seq 1 100); do [ -S "$d/containerd/containerd.sock" ] && break; sleep 0.1; done
  # No registry: a task's image is the one loaded, never pulled. cgroupfs, whatever the host's
  # default: the containers' cgroups are then under the node's parent, where kill-node finds them.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec dockerd --config-file "$d/daemon.json" \
    --containerd "$d/containerd/containerd.sock" --data-root "$data_dir/node$i/docker" --exec-root "$d/exec" \
    --pidfile "$d/docker.pid" -H "unix://$(node_sock "$i")" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$(node_ns "$i")" >"$d/dockerd.log" 2>&1
}

wait_node () {
  local i=$1
  for _ in $(seq 1 600); do
    dk "$i" info >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  tail -n 20 "$(node_dir "$i")/dockerd.log" >&2 || true
  die "node$i's dockerd did not answer within 60 s (log: $(node_dir "$i")/dockerd.log)"
}

cmd_up () {
  local nodes=3 managers='' build=1 source=''
  while [ $# -gt 0 ]; do
    case "$1" in
      --nodes) [ $# -ge 2 ] || die "--nodes needs a number"; nodes=$2; shift 2 ;;
      --managers) [ $# -ge 2 ] || die "--managers needs a number"; managers=$2; shift 2 ;;
      --no-build) build=0; shift ;;
      --images-from) [ $# -ge 2 ] || die "--images-from needs a DOCKER_HOST (unix:///…)"; source=$2; shift 2 ;;
      *) usage >&2; exit 2 ;;
    esac
  done
  [[ "$nodes" =~ ^[0-9]+$ ]] && [ "$nodes" -ge 1 ] && [ "$nodes" -le 50 ] || { echo "local-swarm: --nodes must be 1..50" >&2; exit 2; }
  [ -n "$managers" ] || { if [ "$nodes" -ge 3 ]; then managers=3; else managers=1; fi; }
  [[ "$managers" =~ ^[0-9]+$ ]] && [ "$managers" -ge 1 ] && [ "$managers" -le "$nodes" ] || { echo "local-swarm: --managers must be 1..$nodes" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || die "needs root (network namespaces, dockerd)"
  local c
  for c in ip unshare setsid dockerd containerd runc docker sha256sum; do
    command -v "$c" >/dev/null 2>&1 || die "$c is missing (Debian: apt-get install iproute2 util-linux docker.io)"
  done
  [ -z "$(our_namespaces)" ] || die "swarm $name is already up (namespaces $(our_namespaces | tr '\n' ' ')): run down first, or set METAOS_SWARM_NAME"
  for c in "$run_dir" "$data_dir"; do
    if [ -e "$c/.metaos-swarm" ] || compgen -G "$c/node[0-9]*" >/dev/null; then die "$c holds an earlier swarm's leftovers: run down first"; fi
  done
  up_done=0
  trap '[ "$up_done" = 1 ] || { say "up failed: removing what was made"; cmd_down >/dev/null; }' EXIT

  # The images: built in the dockerd --images-from names and taken from it, else built in node1's
  # (below). A dockerd of the root namespace is never used unless named.
  local builder=node1
  if [ -n "$source" ]; then
    builder=source
    if [ "$build" = 1 ]; then DOCKER_HOST=$source bash "$repo/docker/build-images.sh" >&2; fi
    docker -H "$source" image inspect "${images[@]}" >/dev/null 2>&1 || die "the dockerd at $source lacks ${images[*]} (DOCKER_HOST=$source bash docker/build-images.sh)"
  fi
  [ "$build" = 1 ] || [ -n "$source" ] || die "--no-build needs --images-from (the dockerd that has the images)"

  mkdir -p "$run_dir" "$data_dir"
  touch "$run_dir/.metaos-swarm" "$data_dir/.metaos-swarm"
  ip netns add "$name-switch"
  ip -n "$name-switch" link set lo up
  ip -n "$name-switch" link add br0 type bridge
  ip -n "$name-switch" link set br0 up
  local i
  for i in $(seq 1 "$nodes"); do link_ns "$(node_ns "$i")" "p$i" "$(node_addr "$i")"; done
  link_ns "$name-client" pc "$net.200"
  for i in $(seq 1 "$nodes"); do start_node "$i"; done
  for i in $(seq 1 "$nodes"); do wait_node "$i"; done
  say "$nodes dockerds answer"

  if [ "$builder" = node1 ]; then
    say "building the images in node1's dockerd"
    DOCKER_HOST="unix://$(node_sock 1)" bash "$repo/docker/build-images.sh" >&2
  fi
  # No registry: every node gets the images by docker save | docker load. From --images-from's
  # dockerd they are saved by id and tagged in the nodes: another build may move the tags meanwhile.
  local tarball=$data_dir/images.tar pids=() ids=() tag_cmds=''
  if [ "$builder" = source ]; then
    for c in "${images[@]}"; do ids+=("$(docker -H "$source" image inspect -f '{{.Id}}' "$c")"); done
    docker -H "$source" save -o "$tarball" "${ids[@]}"
    for c in $(seq 0 $((${#images[@]} - 1))); do tag_cmds+=" ${ids[$c]}=${images[$c]}"; done
  else
    dk 1 save -o "$tarball" "${images[@]}"
  fi
  for i in $(seq 1 "$nodes"); do
    if [ "$builder" = node1 ] && [ "$i" = 1 ]; then continue; fi
    ( dk "$i" load -q -i "$tarball" >/dev/null
      for pair in $tag_cmds; do dk "$i" tag "${pair%%=*}" "${pair#*=}"; done ) & pids+=($!)
  done

  dk 1 swarm init --advertise-addr "$(node_addr 1)" --listen-addr "$(node_addr 1):2377" \
    --default-addr-pool "$pool" --dispatcher-heartbeat "$heartbeat" >/dev/null
  local mtoken wtoken
  mtoken=$(dk 1 swarm join-token -q manager); wtoken=$(dk 1 swarm join-token -q worker)
  for i in $(seq 2 "$nodes"); do
    local token=$wtoken
    [ "$i" -le "$managers" ] && token=$mtoken
    dk "$i" swarm join --token "$token" --advertise-addr "$(node_addr "$i")" --listen-addr "$(node_addr "$i"):2377" "$(node_addr 1):2377" >/dev/null
  done
  for p in "${pids[@]}"; do wait "$p" || die "docker load failed"; done
  rm -f "$tarball"

  local ready=0
  for _ in $(seq 1 300); do
    ready=$(dk 1 node ls --format '{{.Status}}' | grep -c '^Ready$' || true)
    [ "$ready" = "$nodes" ] && break
    sleep 0.2
  done
  [ "$ready" = "$nodes" ] || die "only $ready of $nodes nodes are Ready"
  local kernel
  kernel=$(uname -r)
  for i in $(seq 1 "$nodes"); do
    dk 1 node update --label-add "zone=$(zone_of "$i")" --label-add "kernel=$kernel" "node$i" >/dev/null
  done
  # What the stack's storage domains serve: one directory, the same on every node (all are on
  # this machine), owned by the images' user.
  mkdir -p "$data_dir/shared"
  chown 10001:10001 "$data_dir/shared"
  up_done=1

  local out='' role
  for i in $(seq 1 "$nodes"); do
    role=worker; [ "$i" -le "$managers" ] && role=manager
    out+="${out:+,}{\"name\":\"node$i\",\"netns\":\"$(node_ns "$i")\",\"docker\":\"unix://$(node_sock "$i")\",\"address\":\"$(node_addr "$i")\",\"role\":\"$role\",\"zone\":\"$(zone_of "$i")\"}"
  done
  echo "{\"event\":\"ready\",\"nodes\":[$out],\"client\":{\"netns\":\"$name-client\",\"address\":\"$net.200\"},\"shared\":\"$data_dir/shared\"}"
}

case "${1:-}" in
  up) shift; cmd_up "$@" ;;
  down) shift; cmd_down ;;
  kill-node) shift; cmd_kill_node "$@" ;;
  cut-link) shift; cmd_link down "${1:-}" cut-link link-cut ;;
  restore-link) shift; cmd_link up "${1:-}" restore-link link-restored ;;
  identities) shift; cmd_identities "${1:-}" ;;
  _node-outer) node_outer "$2" ;;
  _node-inner) node_inner "$2" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
