#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The envelope switch (envelope_switch.ko) with three domains: VMPI devices
# d1, d2 and d3 (host sides attached to the switch, guest sides used from
# userspace through /dev/vmpiN raw channel 1, as a netfront would). The
# sysfs ABI and its errors (docs/envelope.md section 4), then
# switch_frames.py: each domain's view of the table, frames switched by
# the table, VLAN isolation, spoofing and bad messages refused; then a
# domain's device removed and the module unloaded while attached.
source "$(dirname "$0")/../lib.sh"

S=/sys/kernel/envelope_switch
DOMS="d1 d2 d3"

nsim=$((600 + RANDOM % 100))
cleanup() {
	rmmod envelope_switch 2>/dev/null
	rmmod sriov_hook 2>/dev/null
	[ -e /sys/bus/netdevsim/devices/netdevsim$nsim ] && echo $nsim >/sys/bus/netdevsim/del_device
	modprobe -r netdevsim 2>/dev/null
	for d in $DOMS; do vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan 27
vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" || ktap_exit_fail_msg "cannot load VMPI"
for d in $DOMS; do
	vdpa dev add mgmtdev vmpi name "$d" || ktap_exit_fail_msg "vdpa dev add $d failed"
done
for d in $DOMS; do
	WAIT_SECS=20 wait_for vmpi_link_up "$d" || ktap_exit_fail_msg "VMPI device $d did not come up"
done
guests=()
for d in $DOMS; do guests+=("/dev/$(vmpi_core_dev guest "$(vdpa_virtio_of "$d")")"); done
insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" ||
	ktap_exit_fail_msg "insmod sriov_hook, envelope_switch failed"

w() { echo "$2" >"$S/$1"; }
ktap_check "domains: a malformed line is EINVAL" expect_fail_with "Invalid argument" w domains "d1 domain=0"
ktap_check "domains: a device that is not VMPI's is ENODEV" expect_fail_with "No such device" w domains "nosuch domain=1"
attach_all() { w domains "d1 domain=1" && w domains "d2 domain=2" && w domains "d3 domain=3 rate=100000000"; }
ktap_check "domains: d1, d2, d3 attach as domains 1, 2, 3" attach_all
twice() { expect_fail_with "File exists" w domains "d1 domain=4" && expect_fail_with "File exists" w domains "d2 domain=1"; }
ktap_check "domains: a device or a domain id attached twice is EEXIST" twice
listed() { [ "$(grep -c "^d[123] domain=[123] vmpi=[0-9]* rate=" $S/domains)" = 3 ]; }
ktap_check "domains: the file lists the three" listed

table_ok() {
	w table "02:00:00:00:00:01 domain=1 vlan=10" && w table "02:00:00:00:00:02 domain=2 vlan=10" &&
		w table "02:00:00:00:00:03 domain=3 vlan=20" && w table "02:00:00:00:00:21 domain=2 vlan=20 route=copy"
}
ktap_check "table: four entries on two VLANs" table_ok
table_errors() {
	expect_fail_with "Invalid argument" w table "01:00:00:00:00:01 domain=1" &&
		expect_fail_with "Invalid argument" w table "02:00:00:00:00:09 domain=1 route=vf" &&
		expect_fail_with "Invalid argument" w table "02:00:00:00:00:09 domain=1 vlan=4095" &&
		expect_fail_with "No such device" w table "02:00:00:00:00:09 domain=9" &&
		expect_fail_with "File exists" w table "02:00:00:00:00:01 domain=2" &&
		expect_fail_with "No such file or directory" w table "02:00:00:00:00:09 del"
}
ktap_check "table: EINVAL, ENODEV, EEXIST and ENOENT as documented" table_errors
# 1024 entries (printf -v: no process per line), read back whole: the
# file is many pages long. The entries go again whatever the result.
table_full() {
	local i m rc=0
	for ((i = 5; i <= 1024; i++)); do
		printf -v m '02:00:00:01:%02x:%02x' $((i >> 8)) $((i & 255))
		w table "$m domain=1 vlan=99" || { rc=1; break; }
	done
	[ $rc = 0 ] && expect_fail_with "No space left on device" w table "02:00:00:02:00:00 domain=1 vlan=99" &&
		[ "$(grep -c domain= $S/table)" = 1024 ] && [ "$(wc -c <$S/table)" -gt 40000 ] &&
		[ "$(sed -n '$p' $S/table)" = "02:00:00:01:04:00 domain=1 route=envelope vlan=99" ] || rc=1
	for ((i = 5; i <= 1024; i++)); do
		printf -v m '02:00:00:01:%02x:%02x' $((i >> 8)) $((i & 255))
		w table "$m del" 2>/dev/null
	done
	[ "$(grep -c domain= $S/table)" = 4 ] && return $rc
}
ktap_check "table: 1024 entries, the 1025th is ENOSPC, all shown" table_full
sorted() { [ "$(sed -n 2p $S/table)" = "02:00:00:00:00:01 domain=1 route=envelope vlan=10" ] && grep -q "^generation [0-9]" $S/table; }
ktap_check "table: reads back sorted with its generation" sorted

# Routes "direct via VF" follow the SR-IOV hook: a netdevsim PF whose VF 0
# is domain 1's, with the MAC of domain 1's entry.
H=/sys/kernel/sriov_hook
pf=$(nsim_pf $nsim 2) || ktap_exit_fail_msg "cannot create a netdevsim PF with 2 VFs"
via_vf() { grep -q "^02:00:00:00:00:01 domain=1 route=envelope vlan=10 via=vf$" $S/table; }
no_vf() { grep -q "^02:00:00:00:00:01 domain=1 route=envelope vlan=10$" $S/table; }
vf_route() {
	echo "$pf" >$H/attach && echo "$pf 0 domain=1 mac=02:00:00:00:00:01" >$H/policy && wait_for via_vf
}
ktap_check "a VF policy for domain 1's MAC: its entry goes via=vf" vf_route
vf_gone() {
	echo "$pf 0 clear" >$H/policy && wait_for no_vf && echo "$pf" >$H/detach
}
ktap_check "the policy cleared: the entry falls back to its route, and stays" vf_gone

run_py_ktap 120 env PYTHONPATH="$(dirname "$0")/../vmpi" python3 -S "$(dirname "$0")/switch_frames.py" "${guests[@]}"

# d3's device goes away: the switch detaches domain 3 and drops its entries.
vdpa dev del d3
gone() { ! grep -q "^d3 " $S/domains && ! grep -q "domain=3 " $S/table; }
gone_soon() { WAIT_SECS=10 wait_for gone; }
ktap_check "device removed: domain 3 detached, its entries gone" gone_soon
detach_d2() {
	w domains "d2 del" && ! grep -q "^d2 " $S/domains && ! grep -q "domain=2 " $S/table &&
		expect_fail_with "No such file or directory" w domains "d2 del"
}
ktap_check "domains: del detaches d2, and its entries go" detach_d2
ktap_check "rmmod with a domain attached" rmmod envelope_switch
ktap_finished
