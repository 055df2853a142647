#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (from scripts/bench-vmpi-vm.sh): what one idle VMPI
# device costs on each side, measured. Creates $1 devices (default 16)
# with only vmpi_host loaded (the host side; virtio_vdpa's bare virtio
# device for each is counted there too), then loads vmpi_guest, which
# binds them all (the guest side, with its posted rxq buffers), and
# divides the drop in MemFree (caches dropped, settled) by the number of
# devices. Prints `memory side=... devices=N kib_per_device=K` lines.
# Run on a freshly booted VM with VMPI not loaded; unloads what it loaded.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
n=${1:-16}

memfree() {
	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 2
	sed -n 's/^MemFree: *\([0-9]*\) kB/\1/p' /proc/meminfo
}

links_up() {
	[ "$(grep -lx up /sys/class/misc/vmpi*/link 2>/dev/null | wc -l)" -ge $((2 * n)) ]
}

modprobe -r vhost_vdpa 2>/dev/null || true
modprobe -a vdpa vringh vhost_iotlb virtio_vdpa
insmod "$(rvio_ko vmpi)"
insmod "$(rvio_ko vmpi_host)"
m0=$(memfree)
for i in $(seq 1 "$n"); do vdpa dev add mgmtdev vmpi name "mem$i"; done
m1=$(memfree)
insmod "$(rvio_ko vmpi_guest)"
WAIT_SECS=60 wait_for links_up
m2=$(memfree)
echo "memory side=host devices=$n kib_per_device=$(((m0 - m1) / n))"
echo "memory side=guest devices=$n kib_per_device=$(((m1 - m2) / n))"
for i in $(seq 1 "$n"); do vdpa dev del "mem$i"; done
rmmod vmpi_guest vmpi_host vmpi
modprobe -r virtio_vdpa 2>/dev/null || true
