#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# QEMU's igb (an 82576 with SR-IOV) as a real PCI PF under the igb driver:
# enable VFs through sriov_numvfs, configure one through `ip link`, and
# record what the driver refuses. Needs the VM started with --igb
# (`make check` does; vm-run.sh then sets RVIO_EXPECT_IGB=1 and a missing
# device is a failure); skipped otherwise.
source "$(dirname "$0")/../lib.sh"

pf=$(igb_pci)

cleanup() {
	[ -n "$pf" ] && [ -w $pf/sriov_numvfs ] && echo 0 >$pf/sriov_numvfs 2>/dev/null
	modprobe -r igbvf igb 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
if [ -z "$pf" ] && [ "${RVIO_EXPECT_IGB:-0}" = 1 ]; then
	ktap_exit_fail_msg "no 82576 (igb) PCI device although the VM was started with --igb"
elif [ -z "$pf" ]; then
	ktap_skip_all "no 82576 (igb) PCI device in this VM: start it with scripts/vm-run.sh --igb"
	exit "$KSFT_SKIP"
fi
ktap_set_plan 7

ifname=
if modprobe igb && wait_for [ -d $pf/net ] && ifname=$(ls $pf/net | head -n 1) && [ -n "$ifname" ]; then
	ktap_print_msg "igb binds $(basename $pf) as $ifname"
	ktap_test_pass "igb binds the 82576 PF"
else
	ktap_exit_fail_msg "igb did not bind the 82576 at $(basename $pf)"
fi

total=$(cat $pf/sriov_totalvfs 2>/dev/null)
ktap_print_msg "sriov_totalvfs = ${total:-none}"
ktap_test_result "the PF offers VFs (sriov_totalvfs >= 2)" [ "${total:-0}" -ge 2 ]

vfs_ok() {
	[ -e $pf/virtfn0 ] && [ -e $pf/virtfn1 ] && [ ! -e $pf/virtfn2 ] &&
		[ "$(cat $pf/virtfn0/device)" = 0x10ca ] && [ "$(cat $pf/virtfn1/device)" = 0x10ca ]
}
if echo 2 >$pf/sriov_numvfs && wait_for vfs_ok; then
	ktap_test_pass "sriov_numvfs = 2 creates two 82576 VFs (8086:10ca)"
else
	ktap_test_fail "sriov_numvfs = 2 creates two 82576 VFs (8086:10ca)"
fi

mac=02:52:56:00:01:01
if ip link set dev "$ifname" vf 0 mac $mac &&
	ip link show dev "$ifname" | grep -E "^ +vf 0 " | grep -q "link/ether $mac"; then
	ktap_test_pass "ip link set vf 0 mac shows in ip link show"
else
	ip link show dev "$ifname" | sed 's/^/# /'
	ktap_test_fail "ip link set vf 0 mac shows in ip link show"
fi

# The VF driver learns its MAC from the PF over the 82576 mailbox, so a VF
# configured through the PF comes up with that address. igb answers the
# mailbox only while the PF is up ("PF still in reset state" otherwise).
vf_ifname() { ls $pf/virtfn0/net 2>/dev/null | head -n 1; }
has_vf_ifname() { [ -n "$(vf_ifname)" ]; }
vfif=
if ip link set dev "$ifname" up && modprobe igbvf && wait_for has_vf_ifname && vfif=$(vf_ifname) &&
	[ "$(cat /sys/class/net/$vfif/address)" = $mac ]; then
	ktap_print_msg "VF 0 is $vfif"
	ktap_test_pass "igbvf binds VF 0 with the MAC set through the PF"
else
	ktap_print_msg "VF 0 interface '${vfif}', address '$(cat /sys/class/net/$vfif/address 2>/dev/null)'"
	ktap_test_fail "igbvf binds VF 0 with the MAC set through the PF"
fi

# igb has no ndo_set_vf_link_state: the SR-IOV hook must pass this through.
expect_fail_with "Operation not supported" ip link set dev "$ifname" vf 0 state enable
ktap_test_result "vf state is refused with EOPNOTSUPP (igb has no ndo_set_vf_link_state)" [ $? = 0 ]

if echo 0 >$pf/sriov_numvfs && [ ! -e $pf/virtfn0 ] && modprobe -r igbvf; then
	ktap_test_pass "sriov_numvfs = 0 removes the VFs (igbvf bound), igbvf unloads"
else
	ktap_test_fail "sriov_numvfs = 0 removes the VFs (igbvf bound), igbvf unloads"
fi

ktap_finished
