#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the envelope netfront's frames go, and in which order, when their
# path is bounded or changes (the three guests of netfront_lib.sh): at the
# grant bound frames wait for a grant rather than overtake (TCP sees no
# reordering); deliveries wait for the next posted buffer; a destination
# that never copies holds its share and no more; full-copy mode; routes
# changing under UDP traffic lose nothing; the uplink (a host interface
# outside, VLAN tags).
source "$(dirname "$0")/netfront_lib.sh"

netfront_start 10

# At 64 grants out to ef2 (posted=0: every frame by ENVELOPE and copy),
# ef1's next frames to it wait for a grant to complete rather than go as
# FRAMEs, which would overtake the granted ones: TCP sees no reordering.
# The reorderings ns1's TCP detected (by SACK, timestamps, or without
# either).
reorders() {
	nsx 1 awk '/^TcpExt:/ { if (!h) { for (i = 1; i <= NF; i++) n[i] = $i; h = 1 }
		else for (i = 1; i <= NF; i++) if (n[i] ~ /^TCP(SACK|TS|Reno)Reorder$/) r += $i }
		END { print r + 0 }' /proc/net/netstat
}
# (TSO off on ef1 for it: frames of one segment, many of them in flight,
# reach the bound; TSO frames of tens of KB may not. And ef2's host device
# holds each chain it takes 1 ms (debugfs pop_delay_ms), so that ef2
# copies slower than ef1 sends whatever the machine: once the guest's work
# started on an idle CPU, ef2 kept up and ef1 never reached the bound.)
# (A grant the receiver did not finish within the hold time goes again as
# a FRAME, late: on a host so loaded that ef2 falls a second behind, TCP
# may see that. Only then is reordering allowed, and said.)
tcp_in_order() {
	local w0 b0 t0 r0 w b t r rc=0 slow=/sys/kernel/debug/vmpi_host/d2/pop_delay_ms
	nsx 1 ethtool -K ef1 tso off || return 1
	counters 1:tx_grant_waited 1:tx_grant_busy 1:tx_grant_timeout && read -r w0 b0 t0 <<<"${C[*]}"
	r0=$(reorders)
	echo 1 >$slow || rc=1
	python3 -S "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 1024 2 || rc=1
	echo 0 >$slow || rc=1
	nsx 1 ethtool -K ef1 tso on || rc=1
	[ $rc = 0 ] || return 1
	counters 1:tx_grant_waited 1:tx_grant_busy 1:tx_grant_timeout && read -r w b t <<<"${C[*]}"
	w=$((w - w0)) b=$((b - b0)) t=$((t - t0)) r=$(($(reorders) - r0))
	ktap_print_msg "2 TCP connections ns1 -> ns2, 1 MiB each: $w frames waited for a grant," \
		"$b went as FRAMEs at a bound, $t grants timed out; TCP saw reordering $r times"
	[ "$w" -gt 0 ] && [ "$b" = 0 ] && { [ "$r" = 0 ] || [ "$t" -gt 0 ]; }
}
ktap_check "at the grant bound frames wait for a grant, in order: TCP sees no reordering" tcp_in_order

# A burst of frames to ef3 (posted=32: 21 buffers) finds its buffers all
# taken: the deliveries wait for the next ones it posts, in order, rather
# than go by ENVELOPE (and arrive after later frames). (ns1 resolves ef3's
# address first: datagrams queued for ARP resolution leave interleaved
# with those sent once it has resolved, wherever they go.) With one CPU
# (make check's VMs) each frame is handled to the end before the next is
# sent, so none waits: that a delivery waits is checked with two or more
# (make check-smp), and by cargo test.
posted_in_order() {
	local e0 d0 w0 g0 e d w g rc=0
	nsx 1 ping -q -c 1 -W 5 10.9.0.3 >/dev/null || return 1
	counters 3:rx_envelopes 3:rx_delivered && read -r e0 d0 <<<"${C[*]}"
	w0=$(sstat waited) g0=$(sstat wait_gave_up)
	python3 -S "$here/netfront_traffic.py" order ns1 ns3 10.9.0.3 120 1200 || rc=1
	counters 3:rx_envelopes 3:rx_delivered && read -r e d <<<"${C[*]}"
	e=$((e - e0)) d=$((d - d0)) w=$(($(sstat waited) - w0)) g=$(($(sstat wait_gave_up) - g0))
	ktap_print_msg "120 datagrams ns1 -> ns3 at once: $d delivered into ef3's posted buffers ($w waited for one," \
		"$g given up), $e by ENVELOPE"
	[ $rc = 0 ] && [ "$d" -ge 120 ] && [ "$e" = 0 ] && { [ "$w" -gt 0 ] || [ "$(nproc)" = 1 ]; }
}
ktap_check "deliveries wait for a posted buffer: 120 datagrams at once to ef3 all delivered, in order" posted_in_order


# Full-copy mode: the netfronts get copy routes (a new table generation)
# and send FRAMEs; the envelope counters stay where they are.
copy_mode() {
	local e1 e2 ok1 ok2 s f1 f2 cb bb E1 E2 OK1 OK2 F1 F2 rc=0
	local c="1:tx_envelopes 2:tx_envelopes 1:rgrant 2:rgrant 1:tx_frames 2:rx_frames"
	set_mode copy || return 1
	# (counters reads the switch's stats into SS too, after the netfronts'.)
	# shellcheck disable=SC2086
	counters $c && read -r e1 e2 ok1 ok2 f1 f2 <<<"${C[*]}"
	cb=${SS[copied_bytes]} bb=${SS[bounce_bytes]}
	s=$((SS[envelopes] + SS[deliveries]))
	nsx 1 ping -q -c 2 -i 0.2 -W 5 10.9.0.2 >/dev/null && python3 -S "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 512 || rc=1
	# shellcheck disable=SC2086
	counters $c && read -r E1 E2 OK1 OK2 F1 F2 <<<"${C[*]}"
	ktap_print_msg "copy mode: ef1 sent $((F1 - f1)) FRAMEs, ef2 received $((F2 - f2));" \
		"envelopes: ef1 $((E1 - e1)), switch $((SS[envelopes] + SS[deliveries] - s));" \
		"switch: bounce_bytes +$((SS[bounce_bytes] - bb)), copied_bytes +$((SS[copied_bytes] - cb))"
	[ $rc = 0 ] && [ "$E1" = "$e1" ] && [ "$E2" = "$e2" ] && [ "$OK1" = "$ok1" ] && [ "$OK2" = "$ok2" ] &&
		[ $((SS[envelopes] + SS[deliveries])) = "$s" ] && [ $((F1 - f1)) -gt 5 ] &&
		[ $((F2 - f2)) -gt 5 ] && [ "${SS[copied_bytes]}" = "$cb" ] &&
		[ $((SS[bounce_bytes] - bb)) -ge $((512 << 10)) ] || rc=1
	set_mode envelope || rc=1
	return $rc
}
ktap_check "full-copy mode: ping and 512 KiB TCP by FRAMEs through the switch's buffer (bounce_bytes), no envelope, no grant copy; back to envelope mode" copy_mode

# A destination that never copies: domain 4 (d4, no netfront on it). ef1's
# frames to it take its share of grants (they time out after 1 s and are
# sent as FRAMEs then), then wait, then, with no place left to wait, go
# as FRAMEs; TCP from ns1 to ns2 meanwhile goes by grant as before.
sink() {
	local w0 b0 t0 f0 ok0 w b t f ok rc=0
	vdpa dev add mgmtdev vmpi name d4 && WAIT_SECS=20 wait_for vmpi_link_up d4 &&
		echo "d4 domain=4" >$S/domains && echo "$(mac 4) domain=4" >$S/table &&
		ip -n ns1 neigh replace 10.9.0.4 lladdr "$(mac 4)" dev ef1 nud permanent || return 1
	WAIT_SECS=5 wait_for took_table || return 1
	counters 1:tx_grant_waited 1:tx_grant_busy 1:tx_grant_timeout 1:tx_fallback 2:rgrant &&
		read -r w0 b0 t0 f0 ok0 <<<"${C[*]}"
	nsx 1 python3 -S -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(400): s.sendto(b"x" * 1200, ("10.9.0.4", 9))' || rc=1
	# (Read before the TCP run: its frames may wait too.)
	counters 1:tx_grant_waited 1:tx_grant_busy && read -r w b <<<"${C[*]}"
	w=$((w - w0)) b=$((b - b0))
	python3 -S "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 1024 || rc=1
	timed_out() { counters 1:tx_grant_timeout && [ $((C[0] - t0)) -ge 64 ]; }
	WAIT_SECS=5 wait_for timed_out
	counters 1:tx_grant_timeout 1:tx_fallback 2:rgrant && read -r t f ok <<<"${C[*]}"
	t=$((t - t0)) f=$((f - f0)) ok=$((ok - ok0))
	ktap_print_msg "400 datagrams to domain 4: $w waited, $b went as FRAMEs, $t grants timed out ($f FRAMEs in all);" \
		"ef2 received $ok frames by grant meanwhile"
	echo "d4 del" >$S/domains
	vdpa dev del d4
	[ $rc = 0 ] && [ "$w" -ge 64 ] && [ "$b" -gt 0 ] && [ "$t" -ge 64 ] && [ "$f" -ge $((b + t)) ] && [ "$ok" -gt 10 ]
}
ktap_check "a destination that never copies holds 64 grants and 64 waiting frames at most, timed-out grants go as FRAMEs; TCP to another goes on by grant" sink

# Routes change under traffic and lose nothing (a grant in flight survives
# a route change; one refused goes as a FRAME): numbered UDP datagrams of
# 1200 bytes from ns1 to ns2 (at most 100 a second, until told to stop)
# while the switch goes to full-copy mode and back, ef2's entry to route
# copy and back, and via a VF of domain 2 (the SR-IOV hook on a netdevsim
# PF) and back; every datagram sent arrives.
has_vf() { table_has "02:00:00:00:00:02 domain=2 route=envelope vlan=0 via=vf"; }
no_vf() { table_has "02:00:00:00:00:02 domain=2 route=envelope vlan=0"; }
flip_routes() {
	set_mode copy && sleep 0.4 && set_mode envelope && sleep 0.4 &&
		echo "$(mac 2) domain=2 route=copy" >$S/table && wait_for took_table && sleep 0.4 &&
		echo "$(mac 2) domain=2" >$S/table && wait_for took_table && sleep 0.4 &&
		echo "$1 1 domain=2 mac=$(mac 2)" >$H/policy && wait_for has_vf && wait_for took_table && sleep 0.4 &&
		echo "$1 1 clear" >$H/policy && wait_for no_vf && wait_for took_table && sleep 0.4
}
route_flips() {
	local pf e0 f0 e f rc=0
	pf=$(nsim_pf $nsim 2) && echo "$pf" >$H/attach || return 1
	counters 1:tx_envelopes 1:tx_frames && read -r e0 f0 <<<"${C[*]}"
	numbered_udp flip_routes "$pf" || rc=1
	echo "$pf" >$H/detach
	counters 1:tx_envelopes 1:tx_frames && read -r e f <<<"${C[*]}"
	ktap_print_msg "ef1 sent $((e - e0)) by grant, $((f - f0)) as FRAMEs"
	[ $rc = 0 ] && numbered_all && [ $((e - e0)) -gt 0 ] && [ $((f - f0)) -gt 0 ]
}
ktap_check "routes change under UDP traffic (copy mode, route copy, via a VF, and back): no datagram lost" route_flips

uplink_setup() {
	# (ip -batch: one ip for what is done here, one for what in out.)
	ip -batch - <<-EOF && ip -n out -batch - <<-EOF2 && ip link set up0 up &&
		link add up0 type veth peer name up1
		netns add out
		link set up1 netns out
	EOF
		addr add 10.9.0.100/24 dev up1
		link set up1 up
	EOF2
		expect_fail_with "No such device" w_switch uplink nosuch0 &&
		echo up0 >$S/uplink &&
		expect_fail_with "Device or resource busy" w_switch uplink up0
}
w_switch() { echo "$2" >"$S/$1"; }
ktap_check "uplink: a veth attached (its peer in namespace out); EBUSY, ENODEV" uplink_setup

uplinked() {
	nsx 1 ping -q -c 2 -i 0.2 -W 5 10.9.0.100 >/dev/null &&
		ip netns exec out ping -q -c 2 -i 0.2 -W 5 10.9.0.2 >/dev/null &&
		python3 -S "$here/netfront_traffic.py" tcp ns1 out 10.9.0.100 512 -- tcp out ns2 10.9.0.2 512 -- \
			udp ns3 out 10.9.0.100 18 1472 -- udp out ns3 10.9.0.3 18 1472 &&
		{ ktap_print_msg "uplink: $(cat $S/uplink)"; true; } &&
		grep -q "^up0 rx_frames=[1-9][0-9]* rx_dropped=0 tx_frames=[1-9][0-9]* tx_dropped=0$" $S/uplink
}
ktap_check "uplink: ping, 512 KiB TCP (TSO) and UDP between ns1, ns2, ns3 and a host outside, nothing dropped" uplinked

tagged() {
	echo "$(mac 3) domain=3 vlan=20" >$S/table &&
		ip -n out -batch - <<-EOF && ip -n ns3 addr add 10.9.20.3/24 dev ef3 &&
			link add link up1 name up1.20 type vlan id 20
			addr add 10.9.20.100/24 dev up1.20
			link set up1.20 up
		EOF
		nsx 3 ping -q -c 2 -i 0.2 -W 5 10.9.20.100 >/dev/null
	local rc=$?
	ip -n ns3 addr del 10.9.20.3/24 dev ef3
	echo "$(mac 3) domain=3" >$S/table
	return $rc
}
ktap_check "uplink: VLAN 20 leaves tagged and comes back to its domain" tagged

uplink_deleted() {
	timeout 20 ip link del up0 && grep -q "^up0 unregistered " $S/uplink && echo none >$S/uplink &&
		[ "$(cat $S/uplink)" = none ]
}
ktap_check "uplink deleted while attached: let go at once, then none" uplink_deleted

ktap_finished
