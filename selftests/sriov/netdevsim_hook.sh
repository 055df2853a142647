#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The SR-IOV hook on a netdevsim PF with 4 VFs: attach, a policy applied
# through the driver (each attribute checked in `ip link show`), `ip link
# set ... vf` changes that break the policy refused with the documented
# errno and a rate-limited log line while allowed ones pass, routes for
# the forwarding table, detach restoring the driver exactly, re-attach
# re-applying the policy, netdevsim unloaded while attached, and rmmod of
# the hook while attached. The VM's kernel-log check covers KASAN, lockdep
# and kmemleak.
source "$(dirname "$0")/../lib.sh"

hook_ko=$(rvio_ko sriov_hook)
probe_ko=$(rvio_ko sriov_route_probe)
copier_ko=$(rvio_ko ops_copier)
id=$((500 + RANDOM % 100))
sysdev=/sys/bus/netdevsim/devices/netdevsim$id
cleanup() {
	rmmod ops_copier sriov_route_probe sriov_hook 2>/dev/null
	[ -e $sysdev ] && echo $id >/sys/bus/netdevsim/del_device
	modprobe -r netdevsim 2>/dev/null
}
rvio_on_exit cleanup

ktap_print_header
[ -f "$hook_ko" ] && [ -f "$probe_ko" ] && [ -f "$copier_ko" ] || ktap_exit_fail_msg "sriov_hook.ko not built: run 'make' at the top of the repository"
pf=$(nsim_pf $id 4) || ktap_exit_fail_msg "cannot create a netdevsim PF with 4 VFs"
rvio_clean_slate && insmod "$hook_ko" || ktap_exit_fail_msg "cannot load sriov_hook"
ktap_print_msg "netdevsim PF $pf with 4 VFs"
ktap_set_plan 26

H=/sys/kernel/sriov_hook
attached_has() { grep -q "^$pf num_vfs=4 " $H/attached; }
ktap_check "attach: the PF is listed with its 4 VFs" eval 'hook_w attach "$pf" && attached_has'

mac=02:52:56:00:10:01
hook_w policy "$pf 0 domain=1 mac=$mac vlans=10,20 max_rate=100 spoofchk=on trust=off"
ktap_check "policy of VF 0 accepted and read back" \
	grep -qx "$pf 0 domain=1 mac=$mac vlans=10,20 max_rate=100 spoofchk=on trust=off" $H/policy
# VF $1's `ip link show` line, read once, holds every other argument (a
# substring); if not, says which and prints the line.
vf_has() {
	local vf=$1 line s
	shift
	line=$(vf_line "$pf" "$vf") || { ktap_print_msg "no line of VF $vf in ip link show $pf"; return 1; }
	for s; do
		[[ $line == *"$s"* ]] || { ktap_print_msg "VF $vf: no '$s' in: $line"; return 1; }
	done
}
shows() { vf_has 0 "$@"; }
applied() { shows "link/ether $mac" "vlan 10," "max_tx_rate 100Mbps" "spoof checking on" "trust off"; }
ktap_check "the policy is applied through the driver: MAC, VLAN 10, rate cap, spoof checking, trust" applied

klog_mark
refused() {
	local want=$1
	shift
	expect_fail_with "$want" ip link set dev "$pf" vf "$@"
}
ktap_check "another MAC on VF 0: EPERM" refused "Operation not permitted" 0 mac 02:52:56:00:10:02
ktap_check "VF 0's domain MAC on VF 1: EADDRINUSE" refused "Address already in use" 1 mac $mac
ktap_check "a VLAN outside the policy: EPERM" refused "Operation not permitted" 0 vlan 30
ktap_check "an allowed VLAN id as an 802.1ad S-VLAN: EPERM" refused "Operation not permitted" 0 vlan 10 proto 802.1ad
ktap_check "a rate above the cap: ERANGE" refused "Numerical result out of range" 0 max_tx_rate 200
ktap_check "no rate limit under a cap: ERANGE" refused "Numerical result out of range" 0 max_tx_rate 0
ktap_check "spoof checking off: EPERM" refused "Operation not permitted" 0 spoofchk off
ktap_check "trust on: EPERM" refused "Operation not permitted" 0 trust on
ktap_check "refused changes left the VF as the policy set it" applied

allowed() {
	ip link set dev "$pf" vf 0 vlan 20 && ip link set dev "$pf" vf 0 max_tx_rate 50 &&
		ip link set dev "$pf" vf 0 state disable && ip link set dev "$pf" vf 1 mac 02:52:56:00:10:11 &&
		shows "vlan 20," "max_tx_rate 50Mbps" "link-state disable" &&
		vf_has 1 "link/ether 02:52:56:00:10:11"
}
ktap_check "changes within the policy, and on an unassigned VF, pass" allowed
counted() {
	grep "^$pf " $H/attached | sed 's/^/# /'
	grep -q "^$pf num_vfs=4 accepted=4 refused=8$" $H/attached
}
ktap_check "the hook counted 4 accepted and 8 refused requests" counted
logged() { klog_since_mark | grep -q "sriov_hook: $pf vf 0: refused: spoof checking must stay on"; }
ktap_check "a refusal is logged with its reason" logged

ktap_check "routes: the domain's MAC goes directly through VF 0" \
	grep -qx "$mac domain=1 vf $pf 0" $H/routes
# The in-kernel lookup (rvio_sriov_route) of sriov_route_probe says $1
# for the policy's MAC, and ENOENT for a MAC without a policy.
probe_says() {
	klog_mark
	insmod "$probe_ko" && rmmod sriov_route_probe &&
		klog_since_mark | grep -q "sriov_route_probe: $mac: domain 1 $1\$" &&
		klog_since_mark | grep -q "sriov_route_probe: 02:52:56:00:99:99: error -2\$" ||
		{ klog_since_mark | grep sriov_route_probe | sed 's/^/# /'; return 1; }
}
ktap_check "in-kernel route lookup: direct via VF 0; ENOENT for a MAC without policy" \
	probe_says "direct via $pf vf 0"
ktap_check "numvfs on a PF that is not PCI: EOPNOTSUPP" \
	expect_fail_with "Operation not supported" hook_w numvfs "$pf 2"
software_without_vf() {
	echo 0 >$sysdev/sriov_numvfs && grep -qx "$mac domain=1 software" $H/routes &&
		echo 4 >$sysdev/sriov_numvfs && grep -qx "$mac domain=1 vf $pf 0" $H/routes
}
ktap_check "without the VF the route falls back to software and keeps the entry" software_without_vf

restored() {
	hook_w detach "$pf" && [ -z "$(cat $H/attached)" ] && grep -qx "$mac domain=1 software" $H/routes &&
		ip link set dev "$pf" vf 0 trust on && ip link set dev "$pf" vf 0 mac 02:52:56:00:10:02 &&
		shows "trust on" "link/ether 02:52:56:00:10:02"
}
ktap_check "detach: the driver takes every change again, the route is software" restored
ktap_check "re-attach applies the policy again" eval 'hook_w attach "$pf" && applied'
# A PF driver that copies the hooked ops table and points the PF at its
# copy (ops_copier.ko): the setters still find the hook and its policy.
copied() {
	insmod "$copier_ko" ifname="$pf" || return 1
	expect_fail_with "Operation not permitted" ip link set dev "$pf" vf 0 spoofchk off &&
		ip link set dev "$pf" vf 0 vlan 20 && shows "vlan 20," &&
		ip link set dev "$pf" vf 0 vlan 10 && applied
	local ok=$?
	rmmod ops_copier && return $ok
}
ktap_check "through a PF driver's copy of the hooked ops: the policy still holds" copied
klog_mark
renamed() {
	ip link set dev "$pf" name rvio-renamed0 && [ -z "$(cat $H/attached)" ] &&
		klog_since_mark | grep -q "sriov_hook: $pf unregistered or renamed: detached" &&
		ip link set dev rvio-renamed0 vf 0 trust on && ip link set dev rvio-renamed0 name "$pf" &&
		hook_w attach "$pf" && applied
}
ktap_check "a renamed PF is detached (policies name PFs); attached again under its name" renamed

klog_mark
gone() {
	echo $id >/sys/bus/netdevsim/del_device && modprobe -r netdevsim && [ -z "$(cat $H/attached)" ] &&
		klog_since_mark | grep -q "sriov_hook: $pf unregistered or renamed: detached" &&
		grep -qx "$mac domain=1 software" $H/routes
}
ktap_check "netdevsim unloaded while attached: detached, the policy and route stay" gone
ktap_check "in-kernel route lookup after the PF went: software" probe_says "software, was $pf vf 0"

unload() {
	pf=$(nsim_pf $id 2) && hook_w attach "$pf" && rmmod sriov_hook && [ ! -e $H ] &&
		ip link set dev "$pf" vf 0 trust on && ip link set dev "$pf" vf 0 mac $mac
}
ktap_check "rmmod sriov_hook while attached: the driver works as before" unload
ktap_finished
