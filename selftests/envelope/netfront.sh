#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The envelope netfront (envelope_netfront.ko) end to end, over the three
# guests of netfront_lib.sh and the host's switch (envelope_switch.ko)
# between them: ping between every pair, TCP and UDP by grants delivered
# into posted buffers (ef1, ef3) and by envelopes (ef2) (the switch's
# default mode: the counters prove the path and the one copy), frames
# inline, MTUs up to 65000, VLAN isolation, the counters (ip -s link,
# ethtool -S), detaching and re-attaching, a device removed and the
# modules unloaded with traffic flowing. Ordering at the bounds, full-copy
# mode, route changes and the uplink: netfront_routes.sh.
source "$(dirname "$0")/netfront_lib.sh"

netfront_start 27

drv() {
	local k v d=""
	while read -r k v; do [ "$k" = driver: ] && d=$v; done < <(nsx 1 ethtool -i ef1)
	[ "$d" = envelope_netfront ]
}
ktap_check "ethtool -i names the driver" drv

tables_now() { [ "${ES[1:table_entries]}" = 3 ] && [ "${ES[2:domain]}" = 2 ] && [ "${ES[3:table_entries]}" = 3 ]; }
tables() { WAIT_SECS=5 wait_for snapshot tables_now; }
ktap_check "each netfront holds the host's table (3 entries, its domain)" tables

# The netfronts' fronts file, one reading, shows each I:KEY=VALUE given
# on ef$I's line (domain= and entries= are what ethtool -S calls domain
# and table_entries; the shell reads the file: it is polled, and ethtool
# in a namespace costs half a second).
fronts_show() {
	local l a n=0
	while read -r l; do
		for a; do
			[[ $l == "ef${a%%:*} "* && " $l " == *" ${a#*:} "* ]] && n=$((n + 1))
		done
	done <$F/fronts
	[ $n = $# ]
}

# A table of 200 entries (remote MACs of domain 2, route uplink; a TABLE
# message of 2.4 KB) reaches every netfront's replica, and shrinks back.
big_table() {
	local i m rc=0
	for ((i = 0; i < 197; i++)); do
		printf -v m '02:00:00:02:%02x:%02x' $((i >> 8)) $((i & 255))
		echo "$m domain=2 route=uplink" >$S/table || rc=1
	done
	WAIT_SECS=10 wait_for fronts_show 1:entries=200 3:entries=200 ||
		{ ktap_print_msg "fronts: $(tr '\n' ';' <$F/fronts)"; rc=1; }
	for ((i = 0; i < 197; i++)); do
		printf -v m '02:00:00:02:%02x:%02x' $((i >> 8)) $((i & 255))
		echo "$m del" >$S/table || rc=1
	done
	# Shrunk back: polled in the fronts file, then ethtool -S once.
	WAIT_SECS=10 wait_for fronts_show 1:entries=3 2:domain=2 3:entries=3 && tables || rc=1
	return $rc
}
ktap_check "a table of 200 entries reaches every netfront, and shrinks back to 3" big_table

pings() {
	local a b
	for a in 1 2 3; do
		for b in 1 2 3; do
			[ $a = $b ] && continue
			# 1042-byte frames: above the netfront's inline size.
			nsx $a ping -q -c 2 -i 0.2 -s 1000 -W 5 "10.9.0.$b" >/dev/null || { ktap_print_msg "ping ef$a -> 10.9.0.$b failed"; return 1; }
		done
	done
}
ktap_check "ping between every pair, both ways (ARP broadcast switched)" pings

# (The functions run by `snapshot` read its ES and SS.)
by_envelope() {
	local i
	for i in 1 2 3; do
		ktap_print_msg "ef$i: tx_envelopes ${ES[$i:tx_envelopes]} tx_grant_done ${ES[$i:tx_grant_done]}" \
			"tx_fallback ${ES[$i:tx_fallback]} rx_envelopes ${ES[$i:rx_envelopes]} rx_copy_ok ${ES[$i:rx_copy_ok]}" \
			"rx_delivered ${ES[$i:rx_delivered]}"
		[ "${ES[$i:tx_envelopes]}" -gt 0 ] && [ "${ES[$i:rgrant]}" -gt 0 ] || return 1
	done
	[ "${SS[envelopes]}" -gt 0 ] && [ "${SS[deliveries]}" -gt 0 ]
}
ktap_check "the pings went by grant: each netfront granted frames and received others' (ethtool -S)" snapshot by_envelope
# (32 asked: as many as fit in half the copyq's descriptors, 21 buffers
# of 8 KiB without indirect descriptors.)
posted_now() {
	[ "${ES[1:rx_posted]}" -ge 16 ] && [ "${ES[3:rx_posted]}" -ge 16 ] && [ "${ES[2:rx_posted]}" = 0 ] &&
		[ "${SS[posted]}" = $((ES[1:rx_posted] + ES[3:rx_posted])) ]
}
posted_buffers() {
	WAIT_SECS=5 wait_for snapshot posted_now
	snapshot posted_seen $?
}
posted_seen() {
	ktap_print_msg "rx_posted: ef1 ${ES[1:rx_posted]}, ef2 ${ES[2:rx_posted]}, ef3 ${ES[3:rx_posted]};" \
		"switch: posted ${SS[posted]}, deliveries ${SS[deliveries]}, delivered ${SS[delivered]}"
	[ "$1" = 0 ] && [ "${ES[1:rx_delivered]}" -gt 0 ] && [ "${ES[3:rx_delivered]}" -gt 0 ] &&
		[ "${ES[2:rx_delivered]}" = 0 ] && [ "${ES[2:rx_copy_ok]}" -gt 0 ] &&
		[ "${SS[deliveries]}" = "${SS[delivered]}" ]
}
ktap_check "posted buffers: ef1 and ef3 keep buffers posted and get frames in them; ef2 (posted=0) by ENVELOPE" \
	posted_buffers
# Small frames (at most 256 bytes) go inline, as FRAMEs, even to an
# envelope route.
inline() {
	local e n e1 n1
	counters 1:tx_envelopes 1:tx_inline && read -r e n <<<"${C[*]}"
	nsx 1 ping -q -c 3 -i 0.2 -s 56 -W 5 10.9.0.2 >/dev/null || return 1
	counters 1:tx_envelopes 1:tx_inline && read -r e1 n1 <<<"${C[*]}"
	[ "$e1" = "$e" ] && [ $((n1 - n)) -ge 3 ]
}
ktap_check "98-byte pings go inline: tx_inline grows, tx_envelopes does not" inline

offloads_on() {
	local k
	k=$'\n'$(nsx 1 ethtool -k ef1)
	[[ $k == *$'\n''tcp-segmentation-offload: on'* && $k == *$'\n''tx-checksumming: on'* &&
		$k == *$'\n''scatter-gather: on'* ]]
}
ktap_check "offloads on: scatter-gather, checksum, TSO" offloads_on

traffic_marks() {
	tso0=${ES[1:tx_tso]} rtso0=${ES[2:rx_tso]}
	env1=${ES[1:tx_envelopes]} env3=${ES[3:tx_envelopes]} ok1=${ES[1:rgrant]} ok2=${ES[2:rgrant]}
	dl1=${ES[1:rx_delivered]} cb0=${SS[copied_bytes]} bb0=${SS[bounce_bytes]}
	sum3 gto0 tx_grant_timeout
}
snapshot traffic_marks
ktap_check "TCP 1 MiB ns1 -> ns2 and UDP datagrams of 1 to 60000 bytes ns3 -> ns1, byte for byte" \
	python3 -S "$here/netfront_traffic.py"
traffic_by_envelope() {
	local t1 t3 r1 r2 d1
	t1=$((ES[1:tx_envelopes] - env1)) t3=$((ES[3:tx_envelopes] - env3))
	r1=$((ES[1:rgrant] - ok1)) r2=$((ES[2:rgrant] - ok2)) d1=$((ES[1:rx_delivered] - dl1))
	ktap_print_msg "TCP: ef1 granted $t1 frames, ef2 copied $r2; UDP: ef3 granted $t3, ef1 received $r1 ($d1 into posted buffers)"
	[ "$t1" -gt 20 ] && [ "$r2" -gt 20 ] && [ "$t3" -ge 70 ] && [ "$r1" -ge 70 ] && [ "$d1" -ge 20 ]
}
ktap_check "TCP and UDP went by grant (tx_envelopes of the senders; ef2 copied, ef1 got them in posted buffers)" \
	snapshot traffic_by_envelope
# Quiet now: the switch's counters of the domains' grants against the
# netfronts' (a frame still in flight: read again).
# The traffic's bytes went by grant: through the switch's buffer (as
# FRAMEs) went only the small frames that go inline (TCP's ACKs), under
# 5 % of the bytes grant-copied meanwhile. (A grant the receiver did not
# copy within the hold time goes again as a FRAME: on a host so loaded
# that a netfront falls a second behind, more bytes do. Only then is the
# 5 % not required, and that is said.)
one_copy_now() {
	local cb rb done gd cok rok bb gto
	cb=${SS[copied_bytes]} done=${SS[completions_done]} cok=${SS[copies_ok]}
	sum3 rb rx_copy_bytes; sum3 gd tx_grant_done; sum3 rok rgrant; sum3 gto tx_grant_timeout
	bb=$((SS[bounce_bytes] - bb0)) gto=$((gto - gto0))
	ACCOUNT="switch: copied_bytes $cb ($((cb - cb0)) in the traffic) bounce_bytes +$bb completions_done $done copies_ok $cok;"
	ACCOUNT="$ACCOUNT netfronts: rx_copy_bytes $rb tx_grant_done $gd rx_copy_ok + rx_delivered $rok;"
	ACCOUNT="$ACCOUNT $gto grants timed out (sent again as FRAMEs)"
	[ $((cb - cb0)) -gt 1000000 ] && { [ $((bb * 20)) -lt $((cb - cb0)) ] || [ "$gto" -gt 0 ]; } &&
		[ "$cb" = "$rb" ] && [ "$done" = "$gd" ] && [ "$cok" = "$rok" ]
}
one_copy() {
	WAIT_SECS=5 wait_for snapshot one_copy_now
	local rc=$?
	ktap_print_msg "$ACCOUNT"
	return $rc
}
ktap_check "one copy: the traffic's bytes grant-copied once (as many as the netfronts received), not through the switch's buffer" \
	one_copy
# (Every one arrives unless grants timed out: their FRAMEs, sent again
# late to a receiver that fell behind, may find its queue full.)
tso_used() {
	local t r gto
	sum3 gto tx_grant_timeout
	t=$((ES[1:tx_tso] - tso0)) r=$((ES[2:rx_tso] - rtso0)) gto=$((gto - gto0))
	ktap_print_msg "TCP ns1 -> ns2: $t TSO frames sent by ef1, $r received by ef2; $gto grants timed out"
	[ "$t" -gt 10 ] && { [ "$r" = "$t" ] || { [ "$gto" -gt 0 ] && [ "$r" -ge $((t * 9 / 10)) ]; }; }
}
ktap_check "TCP went in TSO frames (ethtool -S tx_tso, rx_tso), none lost unless grants timed out" snapshot tso_used

# TCP and UDP between every pair, both ways (the large transfers above go
# ns1 -> ns2 and ns3 -> ns1), byte for byte: all six at once.
pairs() { python3 -S "$here/netfront_traffic.py" pairs 64 18 1000 1472; }
ktap_check "TCP (64 KiB) and UDP (18 to 1472 bytes) between every pair, both ways" pairs

mtus() {
	local i m
	for m in 9000 65000; do
		for i in 1 2 3; do ip -n "ns$i" link set "ef$i" mtu $m || return 1; done
		nsx 1 ping -q -c 2 -i 0.2 -W 5 -M do -s $((m - 28)) 10.9.0.2 >/dev/null ||
			{ ktap_print_msg "ping of $m bytes failed"; return 1; }
	done
	# Frames of 64 bytes to 65515 (the largest MTU's) both ways, unfragmented.
	local sizes="18 1472 8972 30000 65473"
	for i in 1 2 3; do ip -n "ns$i" link set "ef$i" mtu 65501 || return 1; done
	local rc=0
	python3 -S "$here/netfront_traffic.py" udp ns1 ns2 10.9.0.2 $sizes -- udp ns2 ns1 10.9.0.1 $sizes ||
		{ ktap_print_msg "UDP at MTU 65501 failed"; rc=1; }
	for i in 1 2 3; do ip -n "ns$i" link set "ef$i" mtu 1500; done
	[ $rc = 0 ] || return 1
	! ip -n ns1 link set ef1 mtu 65502 2>/dev/null
}
ktap_check "MTU 9000 and 65000: unfragmented pings; MTU 65501: UDP frames of 64 to 65515 bytes both ways; above 65501 refused" mtus

# ef1's posted buffers take the MTU's size as they come back: a burst of
# small datagrams cycles them at MTU 9000, then a frame of that MTU is
# delivered into one. (They were posted again at their old size, so
# frames of the new MTU went by ENVELOPE for good.)
posted_resized() {
	local i d0 e0 d e rc=0
	for i in 1 2 3; do ip -n "ns$i" link set "ef$i" mtu 9000 || rc=1; done
	python3 -S "$here/netfront_traffic.py" order ns2 ns1 10.9.0.1 120 1200 || rc=1
	counters 1:rx_delivered 1:rx_envelopes && read -r d0 e0 <<<"${C[*]}"
	nsx 2 ping -q -c 1 -W 5 -M do -s 8972 10.9.0.1 >/dev/null || rc=1
	counters 1:rx_delivered 1:rx_envelopes && read -r d e <<<"${C[*]}"
	d=$((d - d0)) e=$((e - e0))
	ktap_print_msg "a 9014-byte frame to ef1 at MTU 9000: $d delivered into a posted buffer, $e by ENVELOPE"
	for i in 1 2 3; do ip -n "ns$i" link set "ef$i" mtu 1500 || rc=1; done
	[ $rc = 0 ] && [ "$d" -ge 1 ] && [ "$e" = 0 ]
}
ktap_check "posted buffers take a new MTU's size: a frame of MTU 9000 is delivered into one" posted_resized

isolated() {
	echo "$(mac 3) domain=3 vlan=20" >$S/table &&
		! nsx 1 ping -q -c 2 -i 0.2 -W 2 10.9.0.3 >/dev/null 2>&1 &&
		echo "$(mac 3) domain=3" >$S/table &&
		nsx 1 ping -q -c 2 -i 0.2 -W 5 10.9.0.3 >/dev/null
}
ktap_check "VLAN isolation: ef3 moved to VLAN 20 is unreachable, and reachable again on VLAN 0" isolated

counted() {
	local tx rx etx erx e2 e3
	# (ip -j's stats64: {"rx":{"bytes":N,"packets":N,...},"tx":{...}},
	# taken apart by the shell.)
	local j re='"stats64":\{"rx":\{"bytes":[0-9]+,"packets":([0-9]+),.*\},"tx":\{"bytes":[0-9]+,"packets":([0-9]+),'
	j=$(ip -n ns1 -s -j link show ef1) && [[ $j =~ $re ]] && rx=${BASH_REMATCH[1]} tx=${BASH_REMATCH[2]}
	# Frames sent: FRAMEs and granted frames the receiver copied.
	counters 1:tx_frames 1:tx_grant_done 1:rx_frames 1:rgrant && read -r etx e2 erx e3 <<<"${C[*]}"
	etx=$((etx + e2)) erx=$((erx + e3))
	ktap_print_msg "ef1: ip -s link tx $tx rx $rx; ethtool -S tx_frames + tx_grant_done $etx, rx_frames + rx_copy_ok + rx_delivered $erx"
	# ethtool read last: a frame may have come and gone in between.
	[ "$tx" -gt 100 ] && [ "$rx" -gt 100 ] && [ "$etx" -ge "$tx" ] && [ "$erx" -ge "$rx" ] &&
		[ $((etx - tx)) -lt 10 ] && [ $((erx - rx)) -lt 10 ]
}
ktap_check "counters: ip -s link and ethtool -S agree" counted

reattach() {
	echo ef2 >$F/detach || return 1
	! ip -n ns2 link show ef2 >/dev/null 2>&1 && netfront_reattach 2 &&
		WAIT_SECS=5 wait_for nsx 1 ping -q -c 1 -W 2 10.9.0.2 >/dev/null
}
ktap_check "detach removes ef2; attached again it carries traffic" reattach

# ef3 detached while its device stays: its posted buffers come back (a
# cancel), the detach does not hang; attached again with posted=64 it
# posts what the copyq's descriptor budget lets it (half the ring), and
# stops at the first refusal (it once went on posting buffers the
# transport refused, for up to a minute, in the attach).
# The host holds what the netfronts posted.
posted_all() { local p; sum3 p rx_posted && [ "${SS[posted]}" = "$p" ]; }
# (ef2, attached again with the default, posts none.)
cancelled() {
	local p0 p3 r3
	# (The reading in which they agreed.)
	WAIT_SECS=5 wait_for snapshot posted_all || return 1
	p0=${SS[posted]} p3=${ES[3:rx_posted]}
	timeout 30 sh -c "echo ef3 >$F/detach" || return 1
	ktap_print_msg "posted at the host: $p0 with ef3's $p3, $(sstat posted) after its detach"
	[ "$p3" -gt 0 ] && [ "$(sstat posted)" = $((p0 - p3)) ] &&
		netfront_reattach 3 posted=64 &&
		WAIT_SECS=5 wait_for snapshot posted_all && WAIT_SECS=5 wait_for nsx 1 ping -q -c 1 -s 1000 -W 2 10.9.0.3 >/dev/null &&
		counters 3:rx_posted 3:rx_posted_refused && read -r p3 r3 <<<"${C[*]}" &&
		ktap_print_msg "ef3 attached again with posted=64 holds $p3; $r3 refused" &&
		[ "$p3" -gt 0 ] && [ "$p3" -lt 64 ] && [ "$r3" -gt 0 ] && [ "$r3" -le $((64 - p3)) ]
}
ktap_check "detach with buffers posted: the host gives them back (cancel); posted=64 stops at the copyq's budget" cancelled

fw() { echo "$2" >"$F/$1"; }
errors() {
	expect_fail_with "File exists" fw attach "$(vdpa_virtio_of d1)" &&
		expect_fail_with "No such device" fw attach virtio999 &&
		expect_fail_with "Invalid argument" fw attach "virtio1 name=a/b" &&
		expect_fail_with "No such file or directory" fw detach nosuch
}
ktap_check "attach and detach errors: EEXIST, ENODEV, EINVAL, ENOENT" errors

# d3 goes away while ns1 pings it: ef3 and domain 3 go, the rest works;
# the switch keeps domain 3's grant counters (it granted frames to ns1).
# The pings run until ef3 and domain 3 are seen gone, then are stopped
# (`ip netns exec` execs ping: $! is ping's; -w only bounds it).
g3=$(sstat grants)
ip netns exec ns1 ping -q -i 0.05 -c 200 -w 12 10.9.0.3 >/dev/null 2>&1 &
pinger=$!
sleep 1
vdpa dev del d3
gone() { ! ip -n ns3 link show ef3 >/dev/null 2>&1 && ! grep -q "^d3 " $S/domains; }
gone_soon() {
	WAIT_SECS=10 wait_for gone || return 1
	ktap_print_msg "the switch's grants: $g3 before, $(sstat grants) after"
	[ "$(sstat grants)" -ge "$g3" ]
}
ktap_check "vdpa dev del d3 during traffic: ef3 and domain 3 removed, its grant counters kept" gone_soon
kill $pinger 2>/dev/null
wait $pinger 2>/dev/null
talk() { nsx 1 ping -q -c 2 -i 0.2 -W 5 10.9.0.2 >/dev/null; }
ktap_check "after it, ns1 and ns2 still talk" talk

# The switch unloaded under a ping flood between ns1 and ns2 (grants held,
# copies running, frames queued to it), then loaded and configured again:
# the two talk by envelope again. The flood runs until rmmod has returned,
# then is stopped (-w only bounds it).
switch_reload() {
	local p rc e0
	ip netns exec ns1 ping -q -f -s 1000 -w 6 10.9.0.2 >/dev/null 2>&1 &
	p=$!
	sleep 1
	rmmod envelope_switch
	rc=$?
	kill $p 2>/dev/null
	wait $p 2>/dev/null
	[ $rc = 0 ] && insmod "$(rvio_ko envelope_switch)" &&
		echo "d1 domain=1" >$S/domains && echo "d2 domain=2" >$S/domains &&
		echo "$(mac 1) domain=1" >$S/table && echo "$(mac 2) domain=2" >$S/table &&
		wait_for took_table || return 1
	counters 1:tx_envelopes && e0=${C[0]}
	WAIT_SECS=20 wait_for talk && nsx 1 ping -q -c 3 -i 0.2 -s 1000 -W 5 10.9.0.2 >/dev/null &&
		counters 1:tx_envelopes && [ "${C[0]}" -gt "$e0" ]
}
ktap_check "rmmod envelope_switch during a ping flood; loaded again, ns1 and ns2 talk by envelope" switch_reload

# A VM migrating in (docs/envelope.md section 3): under a new switch (the
# module reloaded: a new epoch) ef2's MAC is promised to domain 2 (route
# incoming, a remote MAC until claimed) while ef2 is down; brought up, ef2
# announces itself (a gratuitous ARP) and its domain takes the MAC; ns1
# reaches ns2 by envelope again.
announced() { [ "$(sstat announces)" -ge 1 ]; }
claimed() { table_has "$(mac 2) domain=2 route=envelope vlan=0"; }
migrate_in() {
	local e0
	ip -n ns2 link set ef2 down && rmmod envelope_switch && insmod "$(rvio_ko envelope_switch)" &&
		echo "d1 domain=1" >$S/domains && echo "d2 domain=2" >$S/domains &&
		echo "$(mac 1) domain=1" >$S/table && echo "$(mac 2) domain=2 route=incoming" >$S/table &&
		wait_for took_table && sleep 1 && [ "$(sstat announce_moves)" = 0 ] &&
		table_has "$(mac 2) domain=2 route=incoming vlan=0" || return 1
	# ef1, up, announced itself under the new switch at once.
	WAIT_SECS=10 wait_for announced || return 1
	ip -n ns2 link set ef2 up && WAIT_SECS=10 wait_for claimed && [ "$(sstat announce_moves)" = 1 ] || return 1
	counters 1:tx_envelopes && e0=${C[0]}
	nsx 1 ping -q -c 3 -i 0.2 -s 1000 -W 5 10.9.0.2 >/dev/null && counters 1:tx_envelopes && [ "${C[0]}" -gt "$e0" ]
}
ktap_check "migration in: a new switch promises ef2's MAC; ef2, brought up, announces itself and its domain takes it" migrate_in

# Unload both modules with traffic flowing: the flood runs until rmmod has
# returned, then is stopped. (`ip netns exec`, not nsx: it execs ping, so
# $! is ping's; killing nsx's shell would leave ping running. -w only
# bounds it.)
ip netns exec ns1 ping -q -f -w 8 10.9.0.2 >/dev/null 2>&1 &
pinger=$!
sleep 1
ktap_check "rmmod envelope_netfront during a ping flood" rmmod envelope_netfront
kill $pinger 2>/dev/null
wait $pinger 2>/dev/null
ktap_check "rmmod envelope_switch" rmmod envelope_switch
ktap_finished

