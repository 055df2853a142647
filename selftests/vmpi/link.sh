#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# VMPI end to end in one kernel: vmpi_host's vDPA device bound to
# virtio_vdpa, driven by vmpi_guest, both registered with the core (vmpi).
# The two sides exchange HELLO over the virtqueues (guest txq -> host, host
# -> guest rxq) and each reports the link up in sysfs; resets on either
# side (driver reload, device delete, module unload, a queue the host's
# device stops with DEVICE_NEEDS_RESET) bring it up again, or remove it,
# with no kernel report.
source "$(dirname "$0")/../lib.sh"

core_ko=$(rvio_ko vmpi)
host_ko=$(rvio_ko vmpi_host)
guest_ko=$(rvio_ko vmpi_guest)

cleanup() {
	for d in vmpi0 vmpi1; do vdpa dev del $d 2>/dev/null; done
	rmmod vmpi_guest 2>/dev/null
	rmmod vmpi_host 2>/dev/null
	rmmod vmpi 2>/dev/null
	modprobe -r virtio_vdpa 2>/dev/null
}
rvio_on_exit cleanup

virtio_of() { vdpa_virtio_of "$1"; }
link_up() { vmpi_link_up "$1"; }
bound() { [ "$(basename "$(readlink -f "/sys/bus/virtio/devices/$(virtio_of "$1")/driver")")" = vmpi_guest ]; }

ktap_print_header
[ -f "$core_ko" ] && [ -f "$host_ko" ] && [ -f "$guest_ko" ] ||
	ktap_exit_fail_msg "vmpi modules not built: run 'make' at the top of the repository"
ktap_set_plan 8
rvio_clean_slate || ktap_exit_fail_msg "cannot remove the modules an earlier test left loaded"
modprobe -r vhost_vdpa 2>/dev/null

if modprobe -a vdpa vringh vhost_iotlb virtio_vdpa && insmod "$core_ko" && insmod "$host_ko" &&
	insmod "$guest_ko"; then
	ktap_test_pass "vmpi, vmpi_host and vmpi_guest load"
else
	ktap_exit_fail_msg "vmpi, vmpi_host or vmpi_guest did not load"
fi

if vdpa dev add mgmtdev vmpi name vmpi0 && wait_for bound vmpi0 && WAIT_SECS=20 wait_for link_up vmpi0; then
	ktap_test_pass "vmpi_guest binds the device and HELLO brings the link up on both sides"
else
	klog_since_mark | grep vmpi | sed 's/^/# /'
	ktap_test_fail "vmpi_guest binds the device and HELLO brings the link up on both sides"
fi

if vdpa dev add mgmtdev vmpi name vmpi1 && WAIT_SECS=20 wait_for link_up vmpi1; then
	ktap_test_pass "a second device comes up on its own"
else
	ktap_test_fail "a second device comes up on its own"
fi

# A queue the host's device stops (as for a bad ring; here through its
# fault injection file in debugfs): DEVICE_NEEDS_RESET and a configuration
# interrupt, after which vmpi_guest resets the device, and the link comes
# up again over new rings.
klog_mark
v1=$(virtio_of vmpi1)
brk=/sys/kernel/debug/vmpi_host/vmpi1/break_queue
reset_logged() {
	klog_since_mark | grep -q "$v1: the device needs a reset: resetting it in 0 ms" &&
		klog_since_mark | grep -q "$v1: reset by its driver"
}
needs_reset() { (($(cat "/sys/bus/virtio/devices/$v1/status") & 0x40)); }
what="a queue stopped by the host (NEEDS_RESET): vmpi_guest resets the device, the link comes up again"
if [ ! -e "$brk" ]; then
	ktap_test_skip "$what (no $brk: debugfs not mounted?)"
# (The guest may have reset it before the shell looks: the log says it did.)
elif [ -n "$v1" ] && echo 1 >"$brk" && WAIT_SECS=20 wait_for reset_logged &&
	! needs_reset && WAIT_SECS=20 wait_for link_up vmpi1; then
	ktap_test_pass "$what"
else
	ktap_print_msg "status $(cat "/sys/bus/virtio/devices/$v1/status" 2>&1)"
	klog_since_mark | grep -E 'vmpi|virtio' | sed 's/^/# /'
	ktap_test_fail "$what"
fi
# Asked again within 10 s of that reset: the guest waits 250 ms first (a
# device that breaks at every start is not reset in a loop).
klog_mark
backoff_logged() {
	klog_since_mark | grep -q "$v1: the device needs a reset: resetting it in 250 ms" &&
		klog_since_mark | grep -q "$v1: reset by its driver"
}
what="asked again at once: the reset waits 250 ms, and the link comes up again"
if [ ! -e "$brk" ]; then
	ktap_test_skip "$what (no $brk)"
elif echo 1 >"$brk" && WAIT_SECS=20 wait_for backoff_logged && ! needs_reset &&
	WAIT_SECS=20 wait_for link_up vmpi1; then
	ktap_test_pass "$what"
else
	klog_since_mark | grep -E 'vmpi|virtio' | sed 's/^/# /'
	ktap_test_fail "$what"
fi

# The guest driver goes away (remove: reset, detach buffers) and comes back.
klog_mark
v0=$(virtio_of vmpi0)
if [ -n "$v0" ] && vmpi_core_dev guest "$v0" >/dev/null &&
	rmmod vmpi_guest && ! vmpi_core_dev guest "$v0" >/dev/null &&
	[ "$(cat /sys/class/misc/"$(vmpi_core_dev host vmpi0)"/link)" = down ] &&
	insmod "$guest_ko" && WAIT_SECS=20 wait_for link_up vmpi0 &&
	WAIT_SECS=20 wait_for link_up vmpi1; then
	ktap_test_pass "reloading vmpi_guest resets and brings both links up again"
else
	klog_since_mark | grep vmpi | sed 's/^/# /'
	ktap_test_fail "reloading vmpi_guest resets and brings both links up again"
fi

gone() { [ ! -e /sys/bus/vdpa/devices/vmpi0 ]; }
if vdpa dev del vmpi0 && wait_for gone && [ -n "$(virtio_of vmpi1)" ] && bound vmpi1; then
	ktap_test_pass "vdpa dev del under the bound guest driver removes only that device"
else
	ktap_test_fail "vdpa dev del under the bound guest driver removes only that device"
fi

# Host module unloaded while the guest driver is bound to its device.
if rmmod vmpi_host && [ -z "$(ls /sys/bus/vdpa/devices/)" ] && rmmod vmpi_guest &&
	! compgen -G '/sys/class/misc/vmpi*' >/dev/null && rmmod vmpi; then
	ktap_test_pass "rmmod vmpi_host under a bound guest, then vmpi_guest and vmpi: every /dev/vmpiN gone"
else
	ktap_test_fail "rmmod vmpi_host under a bound guest, then vmpi_guest and vmpi: every /dev/vmpiN gone"
fi

ktap_finished
