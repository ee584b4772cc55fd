#!/bin/busybox sh
# PID 1 of a VM domain's guest (vm/build-image.sh puts it at /init of the initramfs). Mounts the
# kernel's file systems, loads the virtio modules, brings up loopback (with a multicast route, for
# the domain's WS-Discovery on the guest's own loopback) and the user-mode network, mounts the
# volume shared by the host over 9p at /data, then runs the guest agent (vm/guest-agent.ts), which
# runs the domain and bridges the hypervisor bus. When the agent exits, the guest powers off:
# QEMU runs with -no-reboot, so a reboot ends it.
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run

say () { echo "metaos-init: $*" > /dev/console; }

for m in $(cat /etc/metaos-modules); do modprobe "$m" 2>/dev/null || say "modprobe $m failed"; done

ip link set lo up
ip route add 224.0.0.0/4 dev lo
if [ -e /sys/class/net/eth0 ]; then
  # QEMU's user-mode network: the guest is 10.0.2.15, the host side 10.0.2.2 (restrict=on: no way out).
  ip addr add 10.0.2.15/24 dev eth0
  ip link set eth0 up
  ip route add default via 10.0.2.2 dev eth0
fi

# The volume: a 9p share tagged metaos-data, when the host gives one.
for tag in /sys/bus/virtio/drivers/9pnet_virtio/*/mount_tag; do
  [ -e "$tag" ] || continue
  if [ "$(tr -d '\0' < "$tag")" = metaos-data ]; then
    mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,cache=none,access=client metaos-data /data || say "mount of the volume failed"
  fi
done

# The hostname is part of the domain's EPR: the host chooses it (kernel command line).
for word in $(cat /proc/cmdline); do
  case "$word" in metaos.hostname=*) hostname "${word#metaos.hostname=}" ;; esac
done

cd /app
# Each virtio port's blocking read holds a thread of libuv's pool: room for them and for the rest.
export UV_THREADPOOL_SIZE=8
/usr/bin/node /app/dist/vm/guest-agent.js
say "agent exited with $?"
sync
reboot -f
