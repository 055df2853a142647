#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# netdevsim as an SR-IOV PF: VFs through sriov_numvfs, VF MAC and VLAN
# through `ip link set DEV vf N ...`, as the SR-IOV hook's tests will use it.
source "$(dirname "$0")/../lib.sh"

id=$((700 + RANDOM % 200))
sysdev=/sys/bus/netdevsim/devices/netdevsim$id
cleanup() {
	[ -e $sysdev ] && echo $id >/sys/bus/netdevsim/del_device
	modprobe -r netdevsim 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan 6

ifname=
if modprobe netdevsim && echo "$id 1" >/sys/bus/netdevsim/new_device &&
	wait_for [ -d $sysdev/net ] && ifname=$(ls $sysdev/net | head -n 1) && [ -n "$ifname" ]; then
	ktap_print_msg "netdevsim device $id, port $ifname"
	ktap_test_pass "netdevsim device with one port"
else
	ktap_exit_fail_msg "cannot create a netdevsim device"
fi

if echo 2 >$sysdev/sriov_numvfs && [ "$(cat $sysdev/sriov_numvfs)" = 2 ]; then
	ktap_test_pass "sriov_numvfs = 2"
else
	ktap_test_fail "sriov_numvfs = 2"
fi

vf_line() { ip link show dev "$ifname" | grep -E "^ +vf $1 "; }
mac=02:52:56:00:00:01
if ip link set dev "$ifname" vf 0 mac $mac && vf_line 0 | grep -q "link/ether $mac"; then
	ktap_test_pass "ip link set vf 0 mac shows in ip link show"
else
	ip link show dev "$ifname" | sed 's/^/# /'
	ktap_test_fail "ip link set vf 0 mac shows in ip link show"
fi

if ip link set dev "$ifname" vf 1 vlan 10 && vf_line 1 | grep -q "vlan 10"; then
	ktap_test_pass "ip link set vf 1 vlan shows in ip link show"
else
	ip link show dev "$ifname" | sed 's/^/# /'
	ktap_test_fail "ip link set vf 1 vlan shows in ip link show"
fi

expect_fail_with "Invalid argument" ip link set dev "$ifname" vf 2 mac 02:52:56:00:00:02
ktap_test_result "a VF index past sriov_numvfs is refused with EINVAL" [ $? = 0 ]

if echo 0 >$sysdev/sriov_numvfs && echo $id >/sys/bus/netdevsim/del_device &&
	modprobe -r netdevsim; then
	ktap_test_pass "VFs, device and module go away"
else
	ktap_test_fail "VFs, device and module go away"
fi

ktap_finished
