#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI through QEMU's vhost-vdpa-device-pci, end to end: the test VM (the
# debug kernel) is the host, with vmpi_host's device bound to vhost_vdpa;
# a QEMU inside it boots the "nested" flavour of the kernel (no debug
# option: scripts/kconfig/nested.config) as the guest, where vmpi_guest
# binds the device as PCI 1af4:107f. vmpi-perf's client in the nested
# guest allocates a flow by name to its server on the host side and moves
# SDUs both ways (scripts/nested-vmpi-vm.sh). Not a part of `make check`:
# TCG inside TCG takes many minutes here.
#
# Stock QEMU (10.0) refuses the device: its generic vhost-vdpa device knows
# only the virtio device ids in its own tables, and VMPI's id 63 is not
# one. `make qemu` builds one with qemu/*.patch, which serves it; that is
# the default here, and RVIO_NESTED_QEMU names another.
#
# usage: [RVIO_NESTED_QEMU=qemu-system-x86_64] [RVIO_NESTED_QEMU_ARGS=...]
#        scripts/nested-vmpi.sh
#        (builds the nested kernel flavour and the patched QEMU if needed)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
RVIO_KFLAVOUR=nested scripts/build-kernel.sh
nk=$(RVIO_KFLAVOUR=nested; RVIO_KDIR_LINK=$RVIO_CACHE/kernel/current-nested; rvio_kdir)
qemu=${RVIO_NESTED_QEMU:-$(scripts/build-qemu.sh | tail -n 1)}
# The nested guest's modules, built for its kernel, kept aside (outside the
# tree: `make clean` removes every .ko in it); then the test VM's own again.
make clean >/dev/null
RVIO_KFLAVOUR=nested make >/dev/null
mkdir -p "$RVIO_CACHE/nested-vmpi"
cp vmpi.ko vmpi_guest.ko "$RVIO_CACHE/nested-vmpi/"
make clean >/dev/null
make >/dev/null
PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi
RVIO_VM_MEM=3G scripts/vm-run.sh --timeout 3400 --name nested-vmpi -- \
	env RVIO_NESTED_QEMU="$qemu" \
	RVIO_NESTED_QEMU_ARGS="${RVIO_NESTED_QEMU_ARGS:-}" scripts/nested-vmpi-vm.sh outer "$nk" "$RVIO_CACHE/nested-vmpi" |
	tr -d '\r'
