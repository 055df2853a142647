#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# vDPA in one kernel, as VMPI's tests use it: a vdpa_sim_net device created
# with the vdpa tool and bound to virtio_vdpa shows up as a virtio-net
# interface, and goes away again with `vdpa dev del`.
source "$(dirname "$0")/../lib.sh"

dev=rvio_env_vdpa0
cleanup() {
	vdpa dev del $dev 2>/dev/null
	modprobe -r virtio_vdpa vdpa_sim_net 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan 4

ktap_test_result "vdpa_sim_net and virtio_vdpa load" modprobe -a vdpa_sim_net virtio_vdpa

# The simulator's MAC is all zeroes unless given, and virtio_net will not
# open an interface with that address.
mac=02:52:56:00:02:01
if vdpa mgmtdev show 2>/dev/null | grep -q vdpasim_net &&
	vdpa dev add mgmtdev vdpasim_net name $dev mac $mac; then
	ktap_test_pass "vdpa dev add mgmtdev vdpasim_net mac $mac"
else
	ktap_test_fail "vdpa dev add mgmtdev vdpasim_net mac $mac"
fi

netdev_of_vdpa() { ls /sys/bus/vdpa/devices/$dev/virtio*/net 2>/dev/null | head -n 1; }
ifname=
has_netdev() { [ -n "$(netdev_of_vdpa)" ]; }
wait_for has_netdev && ifname=$(netdev_of_vdpa)
driver=$(basename "$(readlink -f /sys/class/net/$ifname/device/driver 2>/dev/null)")
if [ -n "$ifname" ] && [ "$driver" = virtio_net ] &&
	[ "$(cat /sys/class/net/$ifname/address)" = $mac ] && ip link set "$ifname" up; then
	ktap_print_msg "interface $ifname, driver $driver, on $(basename "$(readlink -f /sys/class/net/$ifname/device/..)")"
	ktap_test_pass "a virtio-net interface with that MAC appears through virtio_vdpa and comes up"
else
	ktap_print_msg "interface '${ifname}', driver '${driver}', address '$(cat /sys/class/net/$ifname/address 2>/dev/null)'"
	ktap_test_fail "a virtio-net interface with that MAC appears through virtio_vdpa and comes up"
fi

vdpa dev del $dev
gone() { [ -n "$ifname" ] && [ ! -e /sys/class/net/$ifname ]; }
ktap_test_result "vdpa dev del removes the interface" wait_for gone

ktap_finished
