#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The demo `make demo` runs inside the test VM: VMPI's host and guest sides
# in one kernel (vmpi_host's vDPA device bound to virtio_vdpa and driven by
# vmpi_guest, both on the core vmpi), the link coming up, and SDUs crossing
# both ways through /dev/vmpiN.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"

echo "== kernel: $(uname -r), $(grep -c processor /proc/cpuinfo) CPUs"
config=$(bash -c ". '$root/scripts/lib.sh' && rvio_kdir")/.config
echo "== debug options: $(for o in KASAN PROVE_LOCKING KFENCE DEBUG_KMEMLEAK; do
	grep -qs "^CONFIG_$o=y" "$config" && printf '%s ' $o; done)"
mark=$(dmesg | wc -l)

echo "== load: vdpa, virtio_vdpa, then vmpi (core), vmpi_host, vmpi_guest"
modprobe -a vdpa vringh vhost_iotlb virtio_vdpa
insmod "$root/vmpi.ko"
insmod "$root/vmpi_host.ko"
insmod "$root/vmpi_guest.ko"
echo "== vdpa dev add mgmtdev vmpi name vmpi0"
vdpa dev add mgmtdev vmpi name vmpi0
WAIT_SECS=20 wait_for vmpi_link_up vmpi0 || { echo "link did not come up"; exit 1; }
for d in /sys/class/misc/vmpi*; do
	echo "   /dev/$(basename "$d"): $(cat "$d/role") side of $(cat "$d/transport"), link $(cat "$d/link")"
done
h=$(vmpi_core_dev host vmpi0)
g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")

echo "== SDUs of 0 to 65535 bytes, host to guest and back, through raw channel 5"
python3 "$root/selftests/vmpi/vmpi_raw_io.py" "/dev/$h" "/dev/$g" | grep -E '^(not )?ok - .*(to|poll)' | sed 's/^/   /'
echo "   host counters: rx_sdus $(cat /sys/class/misc/"$h"/rx_sdus), tx_sdus $(cat /sys/class/misc/"$h"/tx_sdus)"

vdpa dev del vmpi0
rmmod vmpi_guest vmpi_host vmpi
echo "== kernel log:"
dmesg | tail -n +$((mark + 1)) | grep -E 'vmpi' | sed 's/^/   /'
echo "== demo ok"
