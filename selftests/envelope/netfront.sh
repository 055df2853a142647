#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The envelope netfront (envelope_netfront.ko) end to end: three guests'
# VMPI devices d1, d2, d3 (guest sides in this kernel), an interface ef1,
# ef2, ef3 over each, moved into network namespaces ns1, ns2, ns3, and the
# host's switch (envelope_switch.ko) between them: ping between every
# pair, TCP and UDP, by grants delivered into posted buffers (ef1, ef3,
# attached with posted=32) and by envelopes (ef2, the default posted=0) (the switch's default
# mode: the counters prove the path and the one copy) and in full-copy mode by
# FRAMEs, MTUs up to 65000, VLAN isolation, the counters (ip -s link,
# ethtool -S), detaching and re-attaching, a device removed and the
# modules unloaded with traffic flowing.
source "$(dirname "$0")/../lib.sh"

S=/sys/kernel/envelope_switch
F=/sys/kernel/envelope_netfront
DOMS="d1 d2 d3"
here=$(dirname "$0")
H=/sys/kernel/sriov_hook
nsim=$((700 + RANDOM % 100))

cleanup() {
	for i in 1 2 3; do ip netns del "ns$i" 2>/dev/null; done
	ip netns del out 2>/dev/null
	ip link del up0 2>/dev/null
	[ -e /sys/bus/netdevsim/devices/netdevsim$nsim ] && echo $nsim >/sys/bus/netdevsim/del_device
	rmmod envelope_netfront 2>/dev/null
	rmmod envelope_switch 2>/dev/null
	rmmod sriov_hook 2>/dev/null
	modprobe -r netdevsim 2>/dev/null
	for d in $DOMS d4; do vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}
trap cleanup EXIT

ktap_print_header
ktap_set_plan 32
vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_netfront)" ||
	ktap_exit_fail_msg "cannot load VMPI"
for d in $DOMS; do vdpa dev add mgmtdev vmpi name "$d" || ktap_exit_fail_msg "vdpa dev add $d failed"; done
for d in $DOMS; do WAIT_SECS=20 wait_for vmpi_link_up "$d" || ktap_exit_fail_msg "VMPI device $d did not come up"; done
insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" && insmod "$(rvio_ko envelope_netfront)" ||
	ktap_exit_fail_msg "cannot load the envelope modules"

mac() { printf '02:00:00:00:00:%02x' "$1"; }
nsx() { local n=$1; shift; ip netns exec "ns$n" "$@"; }

setup() {
	local i d
	for i in 1 2 3; do
		d=d$i
		echo "$d domain=$i" >$S/domains || return 1
		# ef2 posts no buffer (the default): frames reach it by ENVELOPE
		# and copy; ef1 and ef3 post 32 (as many as fit: 21).
		echo "$(vdpa_virtio_of "$d") name=ef$i $([ $i != 2 ] && echo posted=32)" >$F/attach || return 1
		ip link set "ef$i" address "$(mac $i)" || return 1
		echo "$(mac $i) domain=$i" >$S/table || return 1
		ip netns add "ns$i" && ip link set "ef$i" netns "ns$i" || return 1
		nsx $i ip addr add "10.9.0.$i/24" dev "ef$i" && nsx $i ip link set "ef$i" up || return 1
		nsx $i ip link set lo up
	done
}
ktap_check "three netfronts over d1, d2, d3 in namespaces ns1, ns2, ns3" setup

drv() { [ "$(nsx 1 ethtool -i ef1 | sed -n 's/^driver: //p')" = envelope_netfront ]; }
ktap_check "ethtool -i names the driver" drv

estat() { nsx "$1" ethtool -S "ef$1" | sed -n "s/^ *$2: //p"; }
tables_now() { [ "$(estat 1 table_entries)" = 3 ] && [ "$(estat 2 domain)" = 2 ] && [ "$(estat 3 table_entries)" = 3 ]; }
tables() { WAIT_SECS=5 wait_for tables_now; }
ktap_check "each netfront holds the host's table (3 entries, its domain)" tables

pings() {
	local a b
	for a in 1 2 3; do
		for b in 1 2 3; do
			[ $a = $b ] && continue
			# 1042-byte frames: above the netfront's inline size.
			nsx $a ping -q -c 2 -s 1000 -W 5 "10.9.0.$b" >/dev/null || { ktap_print_msg "ping ef$a -> 10.9.0.$b failed"; return 1; }
		done
	done
}
ktap_check "ping between every pair, both ways (ARP broadcast switched)" pings

# A counter of the switch's stats file.
sstat() { sed -n "s/^$1 //p" $S/stats; }
# ethtool -S counter $1 summed over ef1, ef2, ef3.
esum() {
	local i t=0
	for i in 1 2 3; do t=$((t + $(estat $i "$1"))); done
	echo $t
}
# Frames ef$1 received by grant: copied after an ENVELOPE, or delivered
# into a posted buffer.
rgrant() { echo $(($(estat $1 rx_copy_ok) + $(estat $1 rx_delivered))); }
by_envelope() {
	local i
	for i in 1 2 3; do
		ktap_print_msg "ef$i: tx_envelopes $(estat $i tx_envelopes) tx_grant_done $(estat $i tx_grant_done)" \
			"tx_fallback $(estat $i tx_fallback) rx_envelopes $(estat $i rx_envelopes) rx_copy_ok $(estat $i rx_copy_ok)" \
			"rx_delivered $(estat $i rx_delivered)"
		[ "$(estat $i tx_envelopes)" -gt 0 ] && [ "$(rgrant $i)" -gt 0 ] || return 1
	done
	[ "$(sstat envelopes)" -gt 0 ] && [ "$(sstat deliveries)" -gt 0 ]
}
ktap_check "the pings went by grant: each netfront granted frames and received others' (ethtool -S)" by_envelope
# (32 asked: as many as fit in half the copyq's descriptors, 21 buffers
# of 8 KiB without indirect descriptors.)
posted_now() {
	[ "$(estat 1 rx_posted)" -ge 16 ] && [ "$(estat 3 rx_posted)" -ge 16 ] && [ "$(estat 2 rx_posted)" = 0 ] &&
		[ "$(sstat posted)" = $(($(estat 1 rx_posted) + $(estat 3 rx_posted))) ]
}
posted_buffers() {
	WAIT_SECS=5 wait_for posted_now
	local rc=$?
	ktap_print_msg "rx_posted: ef1 $(estat 1 rx_posted), ef2 $(estat 2 rx_posted), ef3 $(estat 3 rx_posted);" \
		"switch: posted $(sstat posted), deliveries $(sstat deliveries), delivered $(sstat delivered)"
	[ $rc = 0 ] && [ "$(estat 1 rx_delivered)" -gt 0 ] && [ "$(estat 3 rx_delivered)" -gt 0 ] &&
		[ "$(estat 2 rx_delivered)" = 0 ] && [ "$(estat 2 rx_copy_ok)" -gt 0 ] &&
		[ "$(sstat deliveries)" = "$(sstat delivered)" ]
}
ktap_check "posted buffers: ef1 and ef3 keep buffers posted and get frames in them; ef2 (posted=0) by ENVELOPE" \
	posted_buffers
# Small frames (at most 256 bytes) go inline, as FRAMEs, even to an
# envelope route.
inline() {
	local e=$(estat 1 tx_envelopes) n=$(estat 1 tx_inline)
	nsx 1 ping -q -c 3 -i 0.2 -s 56 -W 5 10.9.0.2 >/dev/null &&
		[ "$(estat 1 tx_envelopes)" = "$e" ] && [ $(($(estat 1 tx_inline) - n)) -ge 3 ]
}
ktap_check "98-byte pings go inline: tx_inline grows, tx_envelopes does not" inline

offloads_on() {
	local k
	k=$(nsx 1 ethtool -k ef1)
	echo "$k" | grep -q '^tcp-segmentation-offload: on' && echo "$k" | grep -q '^tx-checksumming: on' &&
		echo "$k" | grep -q '^scatter-gather: on'
}
ktap_check "offloads on: scatter-gather, checksum, TSO" offloads_on

tso0=$(estat 1 tx_tso) rtso0=$(estat 2 rx_tso)
env1=$(estat 1 tx_envelopes) env3=$(estat 3 tx_envelopes) ok1=$(rgrant 1) ok2=$(rgrant 2)
dl1=$(estat 1 rx_delivered)
ktap_check "TCP 4 MiB ns1 -> ns2 and UDP datagrams of 1 to 60000 bytes ns3 -> ns1, byte for byte" \
	python3 "$here/netfront_traffic.py"
traffic_by_envelope() {
	local t1 t3 r1 r2 d1
	t1=$(($(estat 1 tx_envelopes) - env1)) t3=$(($(estat 3 tx_envelopes) - env3))
	r1=$(($(rgrant 1) - ok1)) r2=$(($(rgrant 2) - ok2)) d1=$(($(estat 1 rx_delivered) - dl1))
	ktap_print_msg "TCP: ef1 granted $t1 frames, ef2 copied $r2; UDP: ef3 granted $t3, ef1 received $r1 ($d1 into posted buffers)"
	[ "$t1" -gt 50 ] && [ "$r2" -gt 50 ] && [ "$t3" -ge 70 ] && [ "$r1" -ge 70 ] && [ "$d1" -ge 20 ]
}
ktap_check "TCP and UDP went by grant (tx_envelopes of the senders; ef2 copied, ef1 got them in posted buffers)" \
	traffic_by_envelope
# Quiet now: the switch's counters of the domains' grants against the
# netfronts' (a frame still in flight: read again).
one_copy_now() {
	local cb rb done gd cok rok
	cb=$(sstat copied_bytes) rb=$(esum rx_copy_bytes) done=$(sstat completions_done)
	gd=$(esum tx_grant_done) cok=$(sstat copies_ok) rok=$(($(esum rx_copy_ok) + $(esum rx_delivered)))
	ACCOUNT="switch: copied_bytes $cb bounce_bytes $(sstat bounce_bytes) completions_done $done copies_ok $cok;"
	ACCOUNT="$ACCOUNT netfronts: rx_copy_bytes $rb tx_grant_done $gd rx_copy_ok + rx_delivered $rok"
	[ "$(sstat bounce_bytes)" = 0 ] && [ "$cb" -gt 4000000 ] && [ "$cb" = "$rb" ] &&
		[ "$done" = "$gd" ] && [ "$cok" = "$rok" ]
}
one_copy() {
	WAIT_SECS=5 wait_for one_copy_now
	local rc=$?
	ktap_print_msg "$ACCOUNT"
	return $rc
}
ktap_check "one copy: the switch copied no byte through a buffer, and copied as many bytes as the netfronts received" \
	one_copy
tso_used() {
	local t r
	t=$(($(estat 1 tx_tso) - tso0)) r=$(($(estat 2 rx_tso) - rtso0))
	ktap_print_msg "TCP ns1 -> ns2: $t TSO frames sent by ef1, $r received by ef2"
	[ "$t" -gt 10 ] && [ "$r" = "$t" ]
}
ktap_check "TCP went in TSO frames (ethtool -S tx_tso, rx_tso), none lost" tso_used

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
tcp_in_order() {
	local w0 b0 r0 w b r
	w0=$(estat 1 tx_grant_waited) b0=$(estat 1 tx_grant_busy) r0=$(reorders)
	python3 "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 3072 2 || return 1
	w=$(($(estat 1 tx_grant_waited) - w0)) b=$(($(estat 1 tx_grant_busy) - b0)) r=$(($(reorders) - r0))
	ktap_print_msg "2 TCP connections ns1 -> ns2, 3 MiB each: $w frames waited for a grant," \
		"$b went as FRAMEs at a bound; TCP saw reordering $r times"
	[ "$w" -gt 0 ] && [ "$b" = 0 ] && [ "$r" = 0 ]
}
ktap_check "at the grant bound frames wait for a grant, in order: TCP sees no reordering" tcp_in_order

# A burst of frames to ef3 (posted=32: 21 buffers) finds its buffers all
# taken: the deliveries wait for the next ones it posts, in order, rather
# than go by ENVELOPE (and arrive after later frames).
posted_in_order() {
	local e0 d0 w0 e d w
	e0=$(estat 3 rx_envelopes) d0=$(estat 3 rx_delivered) w0=$(sstat waited)
	python3 "$here/netfront_traffic.py" order ns1 ns3 10.9.0.3 120 1200 || return 1
	e=$(($(estat 3 rx_envelopes) - e0)) d=$(($(estat 3 rx_delivered) - d0)) w=$(($(sstat waited) - w0))
	ktap_print_msg "120 datagrams ns1 -> ns3 at once: $d delivered into ef3's posted buffers ($w waited for one)," \
		"$e by ENVELOPE"
	[ "$d" -ge 120 ] && [ "$w" -gt 0 ] && [ "$e" = 0 ]
}
ktap_check "deliveries wait for a posted buffer: 120 datagrams at once to ef3 all delivered, in order" posted_in_order


# Full-copy mode: the netfronts get copy routes (a new table generation)
# and send FRAMEs; the envelope counters stay where they are.
took_table() {
	local g i
	g=$(sstat generation)
	for i in 1 2 3; do [ "$(estat $i table_generation)" = "$g" ] || return 1; done
}
set_mode() { echo "$1" >$S/mode && WAIT_SECS=5 wait_for took_table; }
copy_mode() {
	local e1 e2 ok1 ok2 s f1 f2 rc=0
	set_mode copy || return 1
	e1=$(estat 1 tx_envelopes) e2=$(estat 2 tx_envelopes) ok1=$(rgrant 1) ok2=$(rgrant 2)
	s=$(($(sstat envelopes) + $(sstat deliveries))) f1=$(estat 1 tx_frames) f2=$(estat 2 rx_frames)
	nsx 1 ping -q -c 2 -W 5 10.9.0.2 >/dev/null && python3 "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 512 || rc=1
	ktap_print_msg "copy mode: ef1 sent $(($(estat 1 tx_frames) - f1)) FRAMEs, ef2 received $(($(estat 2 rx_frames) - f2));" \
		"envelopes: ef1 $(($(estat 1 tx_envelopes) - e1)), switch $(($(sstat envelopes) + $(sstat deliveries) - s))"
	[ $rc = 0 ] && [ "$(estat 1 tx_envelopes)" = "$e1" ] && [ "$(estat 2 tx_envelopes)" = "$e2" ] &&
		[ "$(rgrant 1)" = "$ok1" ] && [ "$(rgrant 2)" = "$ok2" ] &&
		[ $(($(sstat envelopes) + $(sstat deliveries))) = "$s" ] && [ $(($(estat 1 tx_frames) - f1)) -gt 20 ] &&
		[ $(($(estat 2 rx_frames) - f2)) -gt 20 ] || rc=1
	set_mode envelope || rc=1
	return $rc
}
ktap_check "full-copy mode: ping and 512 KiB TCP by FRAMEs, no envelope; back to envelope mode" copy_mode

# A destination that never copies: domain 4 (d4, no netfront on it). ef1's
# frames to it take its share of grants (they time out after 1 s), then
# wait, then, with no place left to wait, go as FRAMEs; TCP from ns1 to
# ns2 meanwhile goes by grant as before.
sink() {
	local w0 b0 t0 ok0 w b t rc=0
	vdpa dev add mgmtdev vmpi name d4 && WAIT_SECS=20 wait_for vmpi_link_up d4 &&
		echo "d4 domain=4" >$S/domains && echo "$(mac 4) domain=4" >$S/table &&
		nsx 1 ip neigh replace 10.9.0.4 lladdr "$(mac 4)" dev ef1 nud permanent || return 1
	WAIT_SECS=5 wait_for took_table || return 1
	w0=$(estat 1 tx_grant_waited) b0=$(estat 1 tx_grant_busy) t0=$(estat 1 tx_grant_timeout) ok0=$(rgrant 2)
	nsx 1 python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(400): s.sendto(b"x" * 1200, ("10.9.0.4", 9))' || rc=1
	# (Read before the TCP run: its frames may wait too.)
	w=$(($(estat 1 tx_grant_waited) - w0)) b=$(($(estat 1 tx_grant_busy) - b0))
	python3 "$here/netfront_traffic.py" tcp ns1 ns2 10.9.0.2 1024 || rc=1
	timed_out() { [ $(($(estat 1 tx_grant_timeout) - t0)) -ge 64 ]; }
	WAIT_SECS=5 wait_for timed_out
	t=$(($(estat 1 tx_grant_timeout) - t0))
	ktap_print_msg "400 datagrams to domain 4: $w waited, $b went as FRAMEs, $t grants timed out;" \
		"ef2 received $(($(rgrant 2) - ok0)) frames by grant meanwhile"
	echo "d4 del" >$S/domains
	vdpa dev del d4
	[ $rc = 0 ] && [ "$w" -ge 64 ] && [ "$b" -gt 0 ] && [ "$t" -ge 64 ] &&
		[ $(($(rgrant 2) - ok0)) -gt 50 ]
}
ktap_check "a destination that never copies holds 64 grants and 64 waiting frames at most; TCP to another goes on by grant" sink

# Routes change under traffic and lose nothing (a grant in flight survives
# a route change; one refused goes as a FRAME): numbered UDP datagrams of
# 1200 bytes from ns1 to ns2 (at most 100 a second, until told to stop)
# while the switch goes to full-copy mode and back, ef2's entry to route
# copy and back, and via a VF of domain 2 (the SR-IOV hook on a netdevsim
# PF) and back; every datagram sent arrives.
UDP_RECV='
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.9.0.2", 5004))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22); s.settimeout(30)
print("ready", flush=True)
got = set()
try:
    while True:
        b = s.recv(2048); s.settimeout(3)
        if len(b) == 1200 and b[4:] == bytes([b[3]]) * 1196: got.add(int.from_bytes(b[:4], "big"))
except socket.timeout:
    pass
print(len(got), flush=True)
'
UDP_SEND='
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
i = 0
while not os.path.exists(sys.argv[1]) and i < 6000:
    s.sendto(i.to_bytes(4, "big") + bytes([i & 0xff]) * 1196, ("10.9.0.2", 5004)); i += 1; time.sleep(0.01)
print(i, flush=True)
'
has_vf() { grep -q "^$(mac 2) domain=2 route=envelope vlan=0 via=vf$" $S/table; }
no_vf() { grep -q "^$(mac 2) domain=2 route=envelope vlan=0$" $S/table; }
route_flips() {
	local pf e0 f0 n sent out sentf recv sender stop rc=0
	pf=$(nsim_pf $nsim 2) && echo "$pf" >$H/attach || return 1
	e0=$(estat 1 tx_envelopes) f0=$(estat 1 tx_frames)
	out=$(mktemp) sentf=$(mktemp) stop=$(mktemp -u)
	nsx 2 python3 -c "$UDP_RECV" >"$out" &
	recv=$!
	if ! wait_for grep -q ready "$out"; then
		kill $recv
		echo "$pf" >$H/detach
		return 1
	fi
	nsx 1 python3 -c "$UDP_SEND" "$stop" >"$sentf" &
	sender=$!
	sleep 0.4
	set_mode copy && sleep 0.4 && set_mode envelope && sleep 0.4 &&
		echo "$(mac 2) domain=2 route=copy" >$S/table && wait_for took_table && sleep 0.4 &&
		echo "$(mac 2) domain=2" >$S/table && wait_for took_table && sleep 0.4 &&
		echo "$pf 1 domain=2 mac=$(mac 2)" >$H/policy && wait_for has_vf && wait_for took_table && sleep 0.4 &&
		echo "$pf 1 clear" >$H/policy && wait_for no_vf && wait_for took_table && sleep 0.4 || rc=1
	touch "$stop"
	wait $sender || rc=1
	wait $recv || rc=1
	n=$(sed -n 2p "$out") sent=$(cat "$sentf")
	rm -f "$out" "$sentf" "$stop"
	echo "$pf" >$H/detach
	ktap_print_msg "ns2 got $n of $sent datagrams; ef1 sent $(($(estat 1 tx_envelopes) - e0)) by grant," \
		"$(($(estat 1 tx_frames) - f0)) as FRAMEs"
	# (6000: the sender ran out of datagrams before the last change.)
	[ $rc = 0 ] && [ -n "$n" ] && [ "$n" = "$sent" ] && [ "$sent" -lt 6000 ] &&
		[ $(($(estat 1 tx_envelopes) - e0)) -gt 0 ] && [ $(($(estat 1 tx_frames) - f0)) -gt 0 ]
}
ktap_check "routes change under UDP traffic (copy mode, route copy, via a VF, and back): no datagram lost" route_flips

mtus() {
	local i m
	for m in 9000 65000; do
		for i in 1 2 3; do nsx $i ip link set "ef$i" mtu $m || return 1; done
		nsx 1 ping -q -c 2 -W 5 -M do -s $((m - 28)) 10.9.0.2 >/dev/null ||
			{ ktap_print_msg "ping of $m bytes failed"; return 1; }
	done
	for i in 1 2 3; do nsx $i ip link set "ef$i" mtu 1500; done
	! nsx 1 ip link set ef1 mtu 65502 2>/dev/null
}
ktap_check "MTU 9000 and 65000: unfragmented pings of that size; above 65501 refused" mtus

isolated() {
	echo "$(mac 3) domain=3 vlan=20" >$S/table &&
		! nsx 1 ping -q -c 2 -W 2 10.9.0.3 >/dev/null 2>&1 &&
		echo "$(mac 3) domain=3" >$S/table &&
		nsx 1 ping -q -c 2 -W 5 10.9.0.3 >/dev/null
}
ktap_check "VLAN isolation: ef3 moved to VLAN 20 is unreachable, and reachable again on VLAN 0" isolated

uplink_setup() {
	ip link add up0 type veth peer name up1 && ip netns add out && ip link set up1 netns out &&
		ip -n out addr add 10.9.0.100/24 dev up1 && ip -n out link set up1 up && ip link set up0 up &&
		expect_fail_with "No such device" w_switch uplink nosuch0 &&
		echo up0 >$S/uplink &&
		expect_fail_with "Device or resource busy" w_switch uplink up0
}
w_switch() { echo "$2" >"$S/$1"; }
ktap_check "uplink: a veth attached (its peer in namespace out); EBUSY, ENODEV" uplink_setup

uplinked() {
	nsx 1 ping -q -c 2 -W 5 10.9.0.100 >/dev/null &&
		ip netns exec out ping -q -c 2 -W 5 10.9.0.2 >/dev/null &&
		python3 "$here/netfront_traffic.py" tcp ns1 out 10.9.0.100 2048 &&
		python3 "$here/netfront_traffic.py" tcp out ns2 10.9.0.2 2048 &&
		{ ktap_print_msg "uplink: $(cat $S/uplink)"; true; } &&
		grep -q "^up0 rx_frames=[1-9][0-9]* rx_dropped=0 tx_frames=[1-9][0-9]* tx_dropped=0$" $S/uplink
}
ktap_check "uplink: ping and 2 MiB TCP (TSO) between ns1, ns2 and a host outside, nothing dropped" uplinked

tagged() {
	echo "$(mac 3) domain=3 vlan=20" >$S/table &&
		ip -n out link add link up1 name up1.20 type vlan id 20 &&
		ip -n out addr add 10.9.20.100/24 dev up1.20 && ip -n out link set up1.20 up &&
		nsx 3 ip addr add 10.9.20.3/24 dev ef3 &&
		nsx 3 ping -q -c 2 -W 5 10.9.20.100 >/dev/null
	local rc=$?
	nsx 3 ip addr del 10.9.20.3/24 dev ef3
	echo "$(mac 3) domain=3" >$S/table
	return $rc
}
ktap_check "uplink: VLAN 20 leaves tagged and comes back to its domain" tagged

uplink_deleted() {
	timeout 20 ip link del up0 && grep -q "^up0 unregistered " $S/uplink && echo none >$S/uplink &&
		[ "$(cat $S/uplink)" = none ]
}
ktap_check "uplink deleted while attached: let go at once, then none" uplink_deleted

counted() {
	local tx rx etx erx
	read -r tx rx < <(nsx 1 ip -s -j link show ef1 |
		python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["stats64"]; print(s["tx"]["packets"], s["rx"]["packets"])')
	# Frames sent: FRAMEs and granted frames the receiver copied.
	etx=$(($(estat 1 tx_frames) + $(estat 1 tx_grant_done))) erx=$(($(estat 1 rx_frames) + $(rgrant 1)))
	ktap_print_msg "ef1: ip -s link tx $tx rx $rx; ethtool -S tx_frames + tx_grant_done $etx, rx_frames + rx_copy_ok + rx_delivered $erx"
	# ethtool read last: a frame may have come and gone in between.
	[ "$tx" -gt 500 ] && [ "$rx" -gt 100 ] && [ "$etx" -ge "$tx" ] && [ "$erx" -ge "$rx" ] &&
		[ $((etx - tx)) -lt 10 ] && [ $((erx - rx)) -lt 10 ]
}
ktap_check "counters: ip -s link and ethtool -S agree" counted

reattach() {
	echo ef2 >$F/detach || return 1
	! nsx 2 ip link show ef2 >/dev/null 2>&1 &&
		echo "$(vdpa_virtio_of d2) name=ef2" >$F/attach && ip link set ef2 address "$(mac 2)" &&
		ip link set ef2 netns ns2 && nsx 2 ip addr add 10.9.0.2/24 dev ef2 && nsx 2 ip link set ef2 up &&
		WAIT_SECS=5 wait_for nsx 1 ping -q -c 1 -W 2 10.9.0.2 >/dev/null
}
ktap_check "detach removes ef2; attached again it carries traffic" reattach

# ef3 detached while its device stays: its posted buffers come back (a
# cancel), the detach does not hang; attached again with posted=64 it
# posts what the copyq's descriptor budget lets it (half the ring).
# The host holds what the netfronts posted.
posted_all() { [ "$(sstat posted)" = "$(esum rx_posted)" ]; }
# (ef2, attached again with the default, posts none.)
cancelled() {
	local p0 p3
	WAIT_SECS=5 wait_for posted_all || return 1
	p0=$(sstat posted) p3=$(estat 3 rx_posted)
	timeout 30 sh -c "echo ef3 >$F/detach" || return 1
	ktap_print_msg "posted at the host: $p0 with ef3's $p3, $(sstat posted) after its detach"
	[ "$p3" -gt 0 ] && [ "$(sstat posted)" = $((p0 - p3)) ] &&
		echo "$(vdpa_virtio_of d3) name=ef3 posted=64" >$F/attach && ip link set ef3 address "$(mac 3)" &&
		ip link set ef3 netns ns3 && nsx 3 ip addr add 10.9.0.3/24 dev ef3 && nsx 3 ip link set ef3 up &&
		WAIT_SECS=5 wait_for posted_all && WAIT_SECS=5 wait_for nsx 1 ping -q -c 1 -s 1000 -W 2 10.9.0.3 >/dev/null &&
		ktap_print_msg "ef3 attached again with posted=64 holds $(estat 3 rx_posted)" &&
		[ "$(estat 3 rx_posted)" -gt 0 ] && [ "$(estat 3 rx_posted)" -lt 64 ]
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
g3=$(sstat grants)
nsx 1 ping -q -i 0.05 -c 200 -w 12 10.9.0.3 >/dev/null 2>&1 &
pinger=$!
sleep 1
vdpa dev del d3
gone() { ! nsx 3 ip link show ef3 >/dev/null 2>&1 && ! grep -q "^d3 " $S/domains; }
gone_soon() {
	WAIT_SECS=10 wait_for gone || return 1
	ktap_print_msg "the switch's grants: $g3 before, $(sstat grants) after"
	[ "$(sstat grants)" -ge "$g3" ]
}
ktap_check "vdpa dev del d3 during traffic: ef3 and domain 3 removed, its grant counters kept" gone_soon
wait $pinger
talk() { nsx 1 ping -q -c 2 -W 5 10.9.0.2 >/dev/null; }
ktap_check "after it, ns1 and ns2 still talk" talk

# A VM migrating in (docs/envelope.md section 3): under a new switch (the
# module reloaded: a new epoch) ef2's MAC is promised to domain 2 (route
# incoming, a remote MAC until claimed) while ef2 is down; brought up, ef2
# announces itself (a gratuitous ARP) and its domain takes the MAC; ns1
# reaches ns2 by envelope again.
took_table12() { [ "$(estat 1 table_generation)" = "$(sstat generation)" ] && [ "$(estat 2 table_generation)" = "$(sstat generation)" ]; }
announced() { [ "$(sstat announces)" -ge 1 ]; }
claimed() { grep -q "^$(mac 2) domain=2 route=envelope vlan=0$" $S/table; }
migrate_in() {
	local e0
	nsx 2 ip link set ef2 down && rmmod envelope_switch && insmod "$(rvio_ko envelope_switch)" &&
		echo "d1 domain=1" >$S/domains && echo "d2 domain=2" >$S/domains &&
		echo "$(mac 1) domain=1" >$S/table && echo "$(mac 2) domain=2 route=incoming" >$S/table &&
		wait_for took_table12 && sleep 1 && [ "$(sstat announce_moves)" = 0 ] &&
		grep -q "^$(mac 2) domain=2 route=incoming vlan=0$" $S/table || return 1
	# ef1, up, announced itself under the new switch at once.
	WAIT_SECS=10 wait_for announced || return 1
	nsx 2 ip link set ef2 up && WAIT_SECS=10 wait_for claimed && [ "$(sstat announce_moves)" = 1 ] || return 1
	e0=$(estat 1 tx_envelopes)
	nsx 1 ping -q -c 3 -s 1000 -W 5 10.9.0.2 >/dev/null && [ "$(estat 1 tx_envelopes)" -gt "$e0" ]
}
ktap_check "migration in: a new switch promises ef2's MAC; ef2, brought up, announces itself and its domain takes it" migrate_in

# Unload both modules with traffic flowing.
# (-w: ping ends by itself; killing `ip netns exec`'s shell would leave it.)
nsx 1 ping -q -f -w 8 10.9.0.2 >/dev/null 2>&1 &
pinger=$!
sleep 1
ktap_check "rmmod envelope_netfront during a ping flood" rmmod envelope_netfront
wait $pinger
ktap_check "rmmod envelope_switch" rmmod envelope_switch
ktap_finished
