#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Route "direct via VF" end to end, on QEMU's igb (an 82576 SR-IOV PF):
# the SR-IOV hook gives VF 0 to domain 1 and VF 1 to domain 2 with their
# MACs, the switch then pushes those MACs as route vf, and netfronts ef1
# and ef2 take their VFs (igbvf's interfaces, moved into ns1 and ns2):
# frames between them leave by one VF and arrive on the other (the NIC
# switches them), not through the host's switch. ef3 has no VF and reaches
# them through the switch. Then a VF going down, a route flip under
# traffic that loses nothing, the VFs removed while in use, and taken
# again by themselves as they come back (auto). Needs the VM started with
# --igb (`make check` does); skipped otherwise.
source "$(dirname "$0")/netfront_lib.sh"

# QEMU's igb PF (an 82576, 8086:10c9), if the VM has one: lib.sh's
# igb_pci, with the shell's `read` (its two cats a device cost seconds in
# the test VM).
pci=""
for dev in /sys/bus/pci/devices/*; do
	read_line vendor "$dev/vendor" && read_line device "$dev/device" && [ "$vendor" = 0x8086 ] &&
		[ "$device" = 0x10c9 ] && { pci=$dev; break; }
done
vf_cleanup() {
	[ -n "$pci" ] && [ -w $pci/sriov_numvfs ] && echo 0 >$pci/sriov_numvfs 2>/dev/null
	netfront_cleanup
	modprobe -r igbvf igb 2>/dev/null
}
if [ -z "$pci" ] && [ "${RVIO_EXPECT_IGB:-0}" != 1 ]; then
	ktap_print_header
	ktap_skip_all "no 82576 (igb) PCI device in this VM: start it with scripts/vm-run.sh --igb"
	exit "$KSFT_SKIP"
fi
netfront_start 11
rvio_on_exit vf_cleanup
[ -n "$pci" ] || ktap_exit_fail_msg "no 82576 (igb) PCI device although the VM was started with --igb"

# ethtool -S counter $2 of ef$1 now (one reading of ef$1), $3 earlier:
# the difference is at least $4.
grown() { counters "$1:$2" && [ $((C[0] - $3)) -ge "$4" ]; }
vfif() {
	local n
	for n in "$pci/virtfn$1"/net/*; do [ -e "$n" ] && { echo "${n##*/}"; return 0; }; done
	return 1
}
has_vfif() { local n; for n in "$pci/virtfn$1"/net/*; do [ -e "$n" ] && return 0; done; return 1; }
via_vf() { table_has "02:00:00:00:00:0$1 domain=$1 route=envelope vlan=0 via=vf"; }
# ef$1's line in the fronts file ends in " vf=$2" (read by the shell: polled).
fronts_has() {
	local l
	while IFS= read -r l; do [[ $l == "ef$1 "*" vf=$2" ]] && return 0; done <$F/fronts
	return 1
}
# Interface $2 in ns$1 has its carrier (LOWER_UP).
lower_up() { [[ $(ip -n "ns$1" -o link show "$2") == *LOWER_UP* ]]; }
vf_setup() {
	local i
	modprobe igb && wait_for [ -d $pci/net ] && pf=$(ls $pci/net | head -n 1) && [ -n "$pf" ] &&
		ip link set "$pf" up && echo "$pf" >$H/attach || return 1
	# Policies first: the hook applies them to the VFs as it enables
	# them; igbvf binds them after that, with their MACs.
	modprobe -r igbvf && echo 1 >$pci/sriov_drivers_autoprobe &&
		hook_w policy "$pf 0 domain=1 mac=$(mac 1)" && hook_w policy "$pf 1 domain=2 mac=$(mac 2)" &&
		hook_w numvfs "$pf 2" && modprobe igbvf &&
		wait_for has_vfif 0 && wait_for has_vfif 1 || return 1
	vf0=$(vfif 0) vf1=$(vfif 1)
	ktap_print_msg "igb PF $pf, VFs $vf0 and $vf1"
	ip -batch - <<-EOF || return 1
		link set $vf0 netns ns1
		link set $vf1 netns ns2
	EOF
	wait_for via_vf 1 && wait_for via_vf 2 && WAIT_SECS=5 wait_for took_table
}
ktap_check "igb VFs 0 and 1 given domains 1 and 2 by policy, moved to ns1 and ns2; the switch routes their MACs via=vf" vf_setup

w_vf() { printf '%s\n' "$1" >$F/vf; }
vf_errors() {
	expect_fail_with "Invalid argument" w_vf "ef1" &&
		expect_fail_with "Invalid argument" w_vf "ef1 a/b" &&
		expect_fail_with "No such file or directory" w_vf "nosuch0 $vf0" &&
		expect_fail_with "No such device" w_vf "ef1 nosuch0" &&
		expect_fail_with "No such device" w_vf "ef1 $vf1" &&
		expect_fail_with "Invalid argument" w_vf "ef1 ef1" &&
		expect_fail_with "Invalid argument" w_vf "ef1 lo" &&
		expect_fail_with "No such file or directory" w_vf "ef1 -" &&
		ip -n ns1 -batch - <<-EOF &&
			link set ef1 down
			link set ef1 address 02:00:00:00:01:01
		EOF
		expect_fail_with "Cannot assign requested address" w_vf "ef1 $vf0" &&
		ip -n ns1 -batch - <<-EOF
			link set ef1 address 02:00:00:00:00:01
			link set ef1 up
		EOF
}
ktap_check "vf: EINVAL (malformed, itself, loopback), ENOENT (no such netfront, none to let go), ENODEV (no such interface in its namespace), EADDRNOTAVAIL (another MAC)" vf_errors

take() {
	ip -n ns1 link set "$vf0" up && expect_fail_with "Device or resource busy" w_vf "ef1 $vf0" &&
		ip -n ns1 link set "$vf0" down &&
		w_vf "ef1 $vf0" && w_vf "ef2 $vf1" && fronts_has 1 "$vf0" && fronts_has 2 "$vf1" &&
		[[ $(ip -n ns1 -o link show "$vf0") == *"master ef1 "*"state UP"* ]] &&
		[[ $(ip -n ns2 -o link show "$vf1") == *"master ef2 "* ]] &&
		expect_fail_with "Device or resource busy" w_vf "ef1 $vf0" &&
		ip -n ns1 link set ef1 down &&
		expect_fail_with "Device or resource busy" ip -n ns1 link set ef1 address 02:00:00:00:01:01 &&
		ip -n ns1 link set ef1 up
}
ktap_check "ef1 and ef2 take their VFs: fronts shows vf=, ip link shows master and up; EBUSY for a VF that is up, a second one, and a MAC change" take

# $1: ping count and TCP KiB ns1 -> ns2; true if both went by VF.
by_vf_seen() {
	local T1 R1 F1 E1 T2 R2
	counters 1:tx_vf 1:rx_vf 1:tx_frames 1:tx_envelopes 2:tx_vf 2:rx_vf && read -r T1 R1 F1 E1 T2 R2 <<<"${C[*]}"
	T1=$((T1 - t1)) R1=$((R1 - r1)) F1=$((F1 - f1)) E1=$((E1 - e1)) T2=$((T2 - t2)) R2=$((R2 - r2))
	ktap_print_msg "ef1: tx_vf +$T1, rx_vf +$R1, FRAMEs +$F1, grants +$E1; ef2: tx_vf +$T2, rx_vf +$R2"
	[ "$T1" -gt 15 ] && [ "$R2" -gt 15 ] && [ "$T2" -gt 5 ] && [ "$R1" -gt 5 ] && [ "$E1" = 0 ] && [ "$F1" -lt 10 ]
}
by_vf() {
	local t1 r2 t2 r1 f1 e1 rc=0
	counters 1:tx_vf 2:rx_vf 2:tx_vf 1:rx_vf 1:tx_frames 1:tx_envelopes && read -r t1 r2 t2 r1 f1 e1 <<<"${C[*]}"
	nsx 1 ping -q -c 5 -i 0.2 -W 5 10.9.0.2 >/dev/null &&
		python3 -S "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 "$1" || rc=1
	by_vf_seen && [ $rc = 0 ]
}
ktap_check "ping and 1 MiB TCP between ns1 and ns2 leave by one VF and arrive on the other (tx_vf, rx_vf): no grant, no FRAME but ARP" by_vf 1024

# A larger MTU than the VFs' (1500): TSO frames whose segments would not
# fit the VF go through the switch, and the stream completes.
big_mtu() {
	local b1 t1 b t rc=0
	ip -n ns1 link set ef1 mtu 9000 && ip -n ns2 link set ef2 mtu 9000 || return 1
	counters 1:tx_vf_fallback 1:tx_vf && read -r b1 t1 <<<"${C[*]}"
	python3 -S "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 1024 || rc=1
	counters 1:tx_vf_fallback 1:tx_vf && read -r b t <<<"${C[*]}"
	ktap_print_msg "MTU 9000: ef1 tx_vf_fallback +$((b - b1)), tx_vf +$((t - t1))"
	[ $((b - b1)) -gt 10 ] || rc=1
	ip -n ns1 link set ef1 mtu 1500 && ip -n ns2 link set ef2 mtu 1500 || rc=1
	return $rc
}
ktap_check "MTU 9000 over VFs of MTU 1500: 1 MiB TCP completes, its large segments through the switch (tx_vf_fallback)" big_mtu

no_vf_peer() {
	local b3 b t rc=0
	counters 3:tx_vf_fallback && b3=${C[0]}
	nsx 3 ping -q -c 3 -i 0.2 -W 5 10.9.0.1 >/dev/null &&
		python3 -S "$here/netfront_traffic.py" tcp ns3 ns1 10.9.0.1 256 || rc=1
	counters 3:tx_vf_fallback 3:tx_vf && read -r b t <<<"${C[*]}"
	[ $rc = 0 ] && [ $((b - b3)) -gt 3 ] && [ "$t" = 0 ]
}
ktap_check "ef3, with no VF, reaches ef1's route vf through the switch (tx_vf_fallback)" no_vf_peer

# (Frames to a domain whose own VF is down are lost: its route says vf.
# So one way, ns1 -> ns2, with ARP answered in advance.)
vf_down() {
	local b1 t1 r2 b t r rc=0
	ip -n ns1 -batch - <<-EOF || return 1
		neigh replace 10.9.0.2 lladdr 02:00:00:00:00:02 dev ef1 nud permanent
		link set $vf0 down
	EOF
	counters 1:tx_vf_fallback 1:tx_vf 2:rx_frames && read -r b1 t1 r2 <<<"${C[*]}"
	python3 -S "$here/netfront_traffic.py" udp ns1 ns2 10.9.0.2 1 1000 1472 64 || rc=1
	counters 1:tx_vf_fallback 1:tx_vf 2:rx_frames && read -r b t r <<<"${C[*]}"
	ktap_print_msg "VF down: ef1 tx_vf_fallback +$((b - b1)), tx_vf +$((t - t1)); ef2 rx_frames +$((r - r2))"
	[ $((b - b1)) -ge 4 ] && [ $((t - t1)) = 0 ] && [ $((r - r2)) -ge 4 ] || rc=1
	ip -n ns1 link set "$vf0" up && wait_for lower_up 1 "$vf0" || rc=1
	counters 1:tx_vf && t1=${C[0]}
	ip -n ns1 neigh del 10.9.0.2 dev ef1
	nsx 1 ping -q -c 3 -i 0.2 -W 5 10.9.0.2 >/dev/null && grown 1 tx_vf "$t1" 3 || rc=1
	return $rc
}
ktap_check "ef1's VF down: its UDP datagrams to ns2 go through the switch (tx_vf_fallback, ef2 rx_frames); up again: ping by VF" vf_down

# Numbered UDP datagrams ns1 -> ns2 while VF 1's policy is cleared (ef2's
# MAC back to route envelope: grants) and set again (route vf): every
# datagram sent arrives.
not_via_vf() { table_has "02:00:00:00:00:02 domain=2 route=envelope vlan=0"; }
flip_vf() {
	hook_w policy "$pf 1 clear" && wait_for not_via_vf && WAIT_SECS=5 wait_for took_table && sleep 0.5 &&
		hook_w policy "$pf 1 domain=2 mac=$(mac 2)" && wait_for via_vf 2 && WAIT_SECS=5 wait_for took_table &&
		sleep 0.5
}
flips() {
	local t1 e1 t e
	counters 1:tx_vf 1:tx_envelopes && read -r t1 e1 <<<"${C[*]}"
	numbered_udp flip_vf || return 1
	counters 1:tx_vf 1:tx_envelopes && read -r t e <<<"${C[*]}"
	t=$((t - t1)) e=$((e - e1))
	ktap_print_msg "ef1 sent $t by VF, $e by grant"
	numbered_all && [ "$t" -gt 0 ] && [ "$e" -gt 0 ]
}
ktap_check "ef2's route flips from vf to envelope and back under UDP traffic from ns1: no datagram lost" flips

# The VFs go (numvfs 0) while in use: the netfronts let go of them, and
# traffic goes on by the routes the switch falls back to.
vfs_gone() {
	local rc=0 pid
	klog_mark
	python3 -S "$here/netfront_traffic.py" tcp ns2 ns1 10.9.0.1 2048 &
	pid=$!
	sleep 1
	hook_w numvfs "$pf 0" || rc=1
	wait $pid || rc=1
	grep -q " vf=" $F/fronts && rc=1
	wait_for eval '! via_vf 1 && ! via_vf 2' && WAIT_SECS=5 wait_for took_table &&
		nsx 1 ping -q -c 2 -i 0.2 -W 5 10.9.0.2 >/dev/null || rc=1
	klog_since_mark | grep -E "lets go of|WARNING|BUG" | sed 's/^/# /'
	! klog_since_mark | grep -qE "WARNING|BUG" && [ $rc = 0 ]
}
ktap_check "the VFs removed while 2 MiB TCP runs between ns2 and ns1: the netfronts let go, the stream completes through the switch, no WARN" vfs_gone

# Auto mode: the VFs come back and are moved in, and the netfronts take
# them by themselves; then let go by a write and by detaching.
auto_take() {
	w_vf "ef1 auto" && w_vf "ef2 auto" && grep -q "^ef1 .* vf_auto$" $F/fronts || return 1
	modprobe -r igbvf && hook_w numvfs "$pf 2" && modprobe igbvf && wait_for has_vfif 0 && wait_for has_vfif 1 || return 1
	vf0=$(vfif 0) vf1=$(vfif 1)
	ip -batch - <<-EOF && wait_for fronts_has 1 "$vf0 vf_auto" && wait_for fronts_has 2 "$vf1 vf_auto" || return 1
		link set $vf0 netns ns1
		link set $vf1 netns ns2
	EOF
	local t1 l
	counters 1:tx_vf && t1=${C[0]}
	wait_for lower_up 1 "$vf0" && wait_for lower_up 2 "$vf1" &&
		nsx 1 ping -q -c 3 -i 0.2 -W 5 10.9.0.2 >/dev/null && grown 1 tx_vf "$t1" 3 || return 1
	w_vf "ef1 -" && l=$(ip -n ns1 -o link show "$vf0") && [[ $l != *master* && $l == *"state DOWN"* ]] &&
		! grep -q "^ef1 .*vf" $F/fronts &&
		expect_fail_with "No such file or directory" w_vf "ef1 -" &&
		echo ef2 >$F/detach && ! ip -n ns2 -o link show "$vf1" | grep -q master
}
ktap_check "auto: VFs back and moved in are taken by themselves, ping by VF; let go (down, no master) by a write (ef1 -) and by detaching ef2" auto_take
ktap_finished
