#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A guest whose driver does not use grants (vmpi_guest grants=0: no
# VMPI_F_GRANT on its device) beside one that does, both netfronts on the
# envelope switch in envelope mode: the host answers grants to the first
# UNDELIVERED at once (its driver could not copy them), the sender sends
# those frames as FRAMEs, and traffic flows both ways with no grant
# waiting for its timeout.
source "$(dirname "$0")/../lib.sh"

S=/sys/kernel/envelope_switch
F=/sys/kernel/envelope_netfront
P=/sys/module/vmpi_guest/parameters

cleanup() {
	for i in 1 2; do ip netns del "ns$i" 2>/dev/null; done
	rmmod envelope_netfront envelope_switch sriov_hook 2>/dev/null
	for d in d1 d2; do vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan 4
vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_netfront)" ||
	ktap_exit_fail_msg "cannot load VMPI"
insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" && insmod "$(rvio_ko envelope_netfront)" ||
	ktap_exit_fail_msg "cannot load the envelope modules"
nsx() { local n=$1; shift; ip netns exec "ns$n" "$@"; }
# d2's guest side without grants, d1's with them.
add() {
	echo "$2" >$P/grants && vdpa dev add mgmtdev vmpi name "$1" && WAIT_SECS=20 wait_for vmpi_link_up "$1"
}
add d2 0 && add d1 1 || ktap_exit_fail_msg "cannot add d1, d2"
setup() {
	local i
	for i in 1 2; do
		echo "d$i domain=$i" >$S/domains && echo "$(vdpa_virtio_of "d$i") name=ef$i" >$F/attach &&
			ip link set "ef$i" address "02:00:00:00:00:0$i" &&
			echo "02:00:00:00:00:0$i domain=$i" >$S/table &&
			ip netns add "ns$i" && ip link set "ef$i" netns "ns$i" &&
			nsx $i ip addr add "10.9.0.$i/24" dev "ef$i" && nsx $i ip link set "ef$i" up || return 1
	done
}
ktap_check "netfronts ef1 (grants) and ef2 (a driver without them) attached" setup
# 1042-byte frames: above the netfront's inline size.
pings() {
	nsx 1 ping -c 5 -i 0.2 -s 1000 -W 2 -q 10.9.0.2 >/dev/null &&
		nsx 2 ping -c 5 -i 0.2 -s 1000 -W 2 -q 10.9.0.1 >/dev/null
}
ktap_check "ping both ways, with no loss" pings
st() { nsx "$1" ethtool -S "ef$1" | sed -n "s/^ *$2: //p"; }
echo "# ef1: tx_envelopes $(st 1 tx_envelopes) undelivered $(st 1 tx_grant_undelivered) timeout $(st 1 tx_grant_timeout) fallback $(st 1 tx_fallback)"
echo "# ef2: tx_envelopes $(st 2 tx_envelopes) fallback $(st 2 tx_fallback)"
undelivered() {
	[ "$(st 1 tx_grant_undelivered)" -ge 5 ] && [ "$(st 1 tx_fallback)" -ge 5 ] && [ "$(st 1 tx_grant_timeout)" = 0 ]
}
ktap_check "ef1's grants to ef2 complete UNDELIVERED at once and go as FRAMEs (none times out)" undelivered
no_grants() { [ "$(st 2 tx_envelopes)" = 0 ]; }
ktap_check "ef2, without grants, sends no envelope" no_grants
ktap_finished
