#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI flows by application name in one kernel (vmpi_host + virtio_vdpa +
# vmpi_guest on the core vmpi): registration, allocation from the guest
# and acceptance on the host, unknown names, a timed-out allocation, the
# ioctls' errors, credit without drops, close and reopen, 64 flows with
# interleaved traffic, and the guest driver going away under a flow
# (vmpi_flow.py).
source "$(dirname "$0")/../lib.sh"

core_ko=$(rvio_ko vmpi)
host_ko=$(rvio_ko vmpi_host)
guest_ko=$(rvio_ko vmpi_guest)
flow=$(dirname "$0")/vmpi_flow.py

cleanup() {
	vdpa dev del vmpi0 2>/dev/null
	rmmod vmpi_guest vmpi_host vmpi 2>/dev/null
	modprobe -r virtio_vdpa 2>/dev/null
}
trap cleanup EXIT

ktap_print_header
[ -f "$core_ko" ] && [ -f "$host_ko" ] && [ -f "$guest_ko" ] ||
	ktap_exit_fail_msg "vmpi modules not built: run 'make' at the top of the repository"
modprobe -r vhost_vdpa 2>/dev/null
modprobe -a vdpa vringh vhost_iotlb virtio_vdpa && insmod "$core_ko" && insmod "$host_ko" &&
	insmod "$guest_ko" && vdpa dev add mgmtdev vmpi name vmpi0 &&
	WAIT_SECS=20 wait_for vmpi_link_up vmpi0 ||
	ktap_exit_fail_msg "VMPI device vmpi0 did not come up"
h=$(vmpi_core_dev host vmpi0)
g=$(vmpi_core_dev guest "$(vdpa_virtio_of vmpi0)")
ktap_print_msg "host side /dev/$h, guest side /dev/$g"

ktap_set_plan 34
run_py_ktap 300 python3 "$flow" "/dev/$h" "/dev/$g" "$guest_ko"
ktap_finished
