#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI as a VMM sees it: vmpi-vmm (vmpi/vmm/) opens /dev/vhost-vdpa-N and
# drives it as QEMU's vhost-vdpa-device does, with a VMPI guest driver in
# userspace instead of a guest. First the control, vdpa_sim_net in PA
# mode (the mode VMPI's device uses), then VMPI's host side with host
# applications on its /dev/vmpiN (vmpi_vmm.py): the link, flows by name
# both ways, SDUs of 0 to 65535 bytes, a remap, a reset and a kill during
# traffic, maps of scattered pages, and the nested guest's failure; then,
# with vhost_vdpa's max_iotlb_entries raised, large guests' maps, and every
# page of them given back by the device once their VMMs are gone.
source "$(dirname "$0")/../lib.sh"

vmm=$RVIO_ROOT/target/release/vmpi-vmm
py=$(dirname "$0")/vmpi_vmm.py

cleanup() {
	vdpa dev del vnet0 2>/dev/null
	vdpa dev del vmpi0 2>/dev/null
	rmmod vdpa_sim_net vdpa_sim vmpi_host vmpi 2>/dev/null
	modprobe -r vhost_vdpa 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
[ -x "$vmm" ] || ktap_exit_fail_msg "$vmm not built: run 'make check' (it builds it)"
rvio_clean_slate || ktap_exit_fail_msg "could not unload an earlier test's modules"
modprobe -r virtio_vdpa 2>/dev/null
ktap_set_plan 16

# The control: a vDPA device known to work with QEMU, in PA mode.
if modprobe -a vdpa vringh vhost_iotlb vhost_vdpa && modprobe vdpa_sim use_va=0 && modprobe vdpa_sim_net &&
	vdpa dev add mgmtdev vdpasim_net name vnet0 && WAIT_SECS=10 wait_for vhost_of vnet0; then
	dev=$(vhost_of vnet0)
	for shape in whole pages; do
		out=$(timeout 60 "$vmm" net-echo "$dev" --count 8 --len 1000 --map $shape 2>&1)
		rc=$?
		echo "# $out"
		# shellcheck disable=SC2015 # the result is the test's
		[ $rc = 0 ] && [[ "$out" = *"8 frames sent, 8 came back unchanged"* ]] &&
			ktap_test_pass "control: vdpa_sim_net (PA mode) loops 8 frames back unchanged through vmpi-vmm's rings, map $shape" ||
			ktap_test_fail "control: vdpa_sim_net (PA mode) loops 8 frames back unchanged through vmpi-vmm's rings, map $shape"
	done
	vdpa dev del vnet0
	rmmod vdpa_sim_net vdpa_sim
else
	ktap_test_fail "control: vdpa_sim_net (PA mode) through vhost_vdpa"
	ktap_test_fail "control: vdpa_sim_net (PA mode) through vhost_vdpa, map pages"
fi

if insmod "$(rvio_ko vmpi)" && insmod "$(rvio_ko vmpi_host)" &&
	vdpa dev add mgmtdev vmpi name vmpi0 && WAIT_SECS=10 wait_for vhost_of vmpi0 &&
	h=$(vmpi_core_dev host vmpi0); then
	ktap_print_msg "host side /dev/$h, $(vhost_of vmpi0)"
	run_py_ktap 900 python3 -S "$py" "/dev/$h" "$(vhost_of vmpi0)" "$vmm"
else
	ktap_exit_fail_msg "VMPI device vmpi0 was not bound to vhost_vdpa"
fi

# vhost_vdpa with room for a large guest's pinned RAM (as the nested run).
if vdpa dev del vmpi0 && modprobe -r vhost_vdpa && modprobe vhost_vdpa max_iotlb_entries=65536 &&
	vdpa dev add mgmtdev vmpi name vmpi0 && WAIT_SECS=10 wait_for vhost_of vmpi0 &&
	h=$(vmpi_core_dev host vmpi0); then
	run_py_ktap 600 python3 -S "$py" "/dev/$h" "$(vhost_of vmpi0)" "$vmm" limits
else
	ktap_exit_fail_msg "vhost_vdpa did not load again with max_iotlb_entries=65536"
fi
ktap_finished
