# Sourced by docker/netns-dockerd.sh (the tests' engine) and docker/swarm/local-swarm.sh (a node):
# a dockerd with a containerd of its own inside a network namespace, every link, address and
# iptables rule made there, nothing ever pulled. An engine keeps its runtime files under RUN (its
# socket is RUN/docker.sock) and its images and containers under DATA.

# `ip netns exec` mounts the namespace's own sysfs over /sys, hiding the cgroups dockerd needs and
# securityfs (AppArmor): they are bind-mounted aside first and moved back inside.
engine_sys_mounts=(fs/cgroup kernel/security)

# engine_configure RUN DATA: the engine's daemon.json and containerd.toml.
engine_configure () {
  local run=$1 data=$2
  mkdir -p "$run/containerd" "$data"
  echo '{}' >"$run/daemon.json"
  cat >"$run/containerd.toml" <<EOF
version = 2
root = "$data/containerd"
state = "$run/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$run/containerd/containerd.sock"
[ttrpc]
  address = "$run/containerd/containerd.sock.ttrpc"
[debug]
  address = "$run/containerd/debug.sock"
EOF
}

# engine_stash_sys RUN: outside the network namespace (in the engine's own mount namespace).
engine_stash_sys () {
  local run=$1 m
  for m in "${engine_sys_mounts[@]}"; do
    if mountpoint -q "/sys/$m"; then mkdir -p "$run/sys/$m"; mount --rbind "/sys/$m" "$run/sys/$m"; fi
  done
}

# engine_exec RUN DATA CGROUP_PARENT: inside the network namespace, becomes the engine's dockerd.
# cgroupfs under a parent of the engine's own, whatever the host's default, so that whoever stops
# it finds every container's processes there.
engine_exec () {
  local run=$1 data=$2 parent=$3 m
  for m in "${engine_sys_mounts[@]}"; do
    if [ -d "$run/sys/$m" ] && mountpoint -q "$run/sys/$m"; then mount --move "$run/sys/$m" "/sys/$m"; fi
  done
  containerd --config "$run/containerd.toml" >"$run/containerd.log" 2>&1 &
  for _ in $(seq 1 100); do [ -S "$run/containerd/containerd.sock" ] && break; sleep 0.1; done
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 exec dockerd --config-file "$run/daemon.json" \
    --containerd "$run/containerd/containerd.sock" --data-root "$data/docker" --exec-root "$run/exec" \
    --pidfile "$run/docker.pid" -H "unix://$run/docker.sock" \
    --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$parent" >"$run/dockerd.log" 2>&1
}
