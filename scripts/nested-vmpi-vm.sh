#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# scripts/nested-vmpi.sh's two halves.
#   outer KDIR MODS: in the test VM: vmpi_host's device vmpi0 on vhost_vdpa,
#     vmpi-perf server on its host side, and QEMU with
#     -device vhost-vdpa-device-pci booting kernel tree KDIR, whose init
#     runs the inner half; then the results.
#   inner MODS: in the nested guest (MODS: vmpi.ko and vmpi_guest.ko
#     built for KDIR): vmpi_guest binds the PCI device; vmpi-perf
#     client, both ways.
# Prints `ok ...` / `not ok ...` lines; exits non-zero on a failure.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
perf=$root/target/release/vmpi-perf

if [ "$1" = inner ]; then
	insmod "$2/vmpi.ko" && insmod "$2/vmpi_guest.ko" || exit 1
	lspci -n 2>/dev/null | grep -i '1af4:107f' && echo "ok nested guest: PCI 1af4:107f present"
	for _ in $(seq 600); do
		[ "$(cat /sys/class/misc/vmpi0/link 2>/dev/null)" = up ] && break
		sleep 0.5
	done
	echo "nested guest: $(grep -H . /sys/class/misc/vmpi0/{role,transport,link} 2>&1 | tr '\n' ' ')"
	[ "$(cat /sys/class/misc/vmpi0/link 2>/dev/null)" = up ] || { echo "not ok nested guest: link up"; exit 1; }
	echo "ok nested guest: vmpi_guest bound the device, link up"
	rc=0
	"$perf" client --dev /dev/vmpi0 --name perf --size 0,1000,65535 --count 20 || rc=1
	"$perf" client --dev /dev/vmpi0 --name perf --size 0,1000,65535 --count 20 --down || rc=1
	echo "nested guest: $(grep -H . /sys/class/misc/vmpi0/{rx_sdus,tx_sdus,drops_*} | tr '\n' ' ')"
	exit $rc
fi

# outer
kdir=$2
# A 1 GiB guest's pinned RAM can take more IOTLB entries (one per
# physically contiguous run) than vhost_vdpa's default 2048.
modprobe -a vdpa vringh vhost_iotlb || exit 1
modprobe vhost_vdpa max_iotlb_entries=262144 || exit 1
insmod "$root/vmpi.ko" && insmod "$root/vmpi_host.ko" || exit 1
vdpa dev add mgmtdev vmpi name vmpi0 || exit 1
for _ in $(seq 50); do [ -c /dev/vhost-vdpa-0 ] && break; sleep 0.2; done
h=$(basename "$(dirname "$(grep -lx vmpi0 /sys/class/misc/vmpi*/transport)")")
"$perf" server --dev "/dev/$h" --name perf &
server=$!
cmd=$(printf '%q ' "$root/scripts/nested-vmpi-vm.sh" inner "$3" | base64 -w0)
append="console=ttyS0 panic=-1 root=rvio-root rootfstype=9p"
append+=" rootflags=trans=virtio,version=9p2000.L,msize=512000,cache=loose ro"
append+=" init=$root/scripts/vm-init.sh rvio.root=$root rvio.cwd=$root"
append+=" rvio.mods=$kdir/.rvio-mods/lib/modules rvio.cmd=$cmd"
# vhost_vdpa pins the guest's RAM (the device's PA mode) within QEMU's
# RLIMIT_MEMLOCK, 8 MiB by default: a larger guest's map is refused, QEMU
# starts the device anyway, and the device cannot read the guest's rings
# (the nested run of 2026-11-29; docs/vmpi-vmm.md, section 4). libvirt
# raises the limit for vDPA devices; so does this.
ulimit -l unlimited || exit 1
echo "outer: booting the nested guest ($(date +%T))"
start=$(date +%s)
# shellcheck disable=SC2086 # RVIO_NESTED_QEMU_ARGS: words
timeout 3000 "${RVIO_NESTED_QEMU:-qemu-system-x86_64}" ${RVIO_NESTED_QEMU_ARGS:-} \
	-name rvio-nested -machine q35 -accel tcg -cpu max,la57=off \
	-smp 1 -m 512M -nodefaults -display none -no-reboot \
	-kernel "$kdir/arch/x86/boot/bzImage" -append "$append" \
	-fsdev local,id=r,path=/,readonly=on,security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=r,mount_tag=rvio-root \
	-chardev file,id=con,path=/tmp/nested.console -serial chardev:con \
	-chardev file,id=out,path=/tmp/nested.out -serial chardev:out \
	-chardev file,id=ret,path=/tmp/nested.ret -serial chardev:ret \
	-device vhost-vdpa-device-pci,vhostdev=/dev/vhost-vdpa-0,disable-legacy=on </dev/null
qrc=$?
echo "outer: nested guest done after $(($(date +%s) - start)) s, QEMU exit $qrc"
tr -d '\r' </tmp/nested.out
echo "-- nested guest console (vmpi, virtio, errors):"
tr -d '\r' </tmp/nested.console | grep -iE 'vmpi|virtio|error|warn|bug|panic' | head -40
rc=$(tr -dc 0-9 </tmp/nested.ret 2>/dev/null)
kill $server 2>/dev/null
echo "host side: $(grep -H . /sys/class/misc/"$h"/{link,rx_sdus,tx_sdus,drops_*} | tr '\n' ' ')"
rmmod vmpi_host 2>/dev/null; rmmod vmpi 2>/dev/null
if [ "$rc" = 0 ]; then echo "ok nested guest through vhost-vdpa-device-pci"; else echo "not ok nested guest (status ${rc:-none})"; exit 1; fi
