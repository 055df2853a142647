#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# A netfront's grants, between two netfronts (ef1, ef2) on the envelope
# switch in envelope mode:
# - Exactly one copy: with nothing inline, no IPv6 and static neighbours,
#   every frame between them goes by grant, and the switch copies not one
#   byte through its own buffer (bounce_bytes), while it grant-copies
#   exactly the bytes the netfronts received; in full-copy mode the other
#   way round.
# - Frames for an interface that is down are dropped, counted by reason
#   (ethtool -S rx_drop_down) and in ip -s link.
# - They never outlive it, whatever the host does: with the host holding
#   each grant 30 s (vmpi_host grant_hold_ms) instead of 1 s,
#   ef2 is detached and ef1 sends to its MAC: the switch grants, nobody
#   copies, the grants stay held. Detaching ef1 then waits 5 s, resets
#   its VMPI device from the guest side (vmpi_dev_reset()), which gives
#   every grant back, and returns well before the host would have timed
#   them out; the device comes back up and serves a new netfront.
# - A reset of a running netfront's VMPI device (its sysfs `reset`), under
#   traffic: the link restarts, the netfront posts its buffers again
#   (frames are delivered into them) and traffic goes on.
# - `ip link add NAME parentdev DEV type envelope`: its errors (no parent,
#   an unknown one, one with an interface) and the kind `ip -d link`
#   shows; `ip link del` of a sender whose grants the host holds, under a
#   ping flood, returns at once (the reaper waits, and resets the device
#   after 5 s), and the device takes a new interface; a namespace deleted
#   with a netfront inside gives it back; `ip link del`/`add` churn under
#   a flood, and the module unloaded while links come and go.
# The VM's kernel-log check covers KASAN, lockdep and kmemleak.
source "$(dirname "$0")/../lib.sh"

S=/sys/kernel/envelope_switch
F=/sys/kernel/envelope_netfront
HOLD=/sys/module/vmpi_host/parameters/grant_hold_ms

cleanup() {
	for i in 1 2; do ip netns del "e$i" 2>/dev/null; done
	[ -w $HOLD ] && echo 1000 >$HOLD
	rmmod envelope_netfront envelope_switch sriov_hook 2>/dev/null
	for d in d1 d2; do vdpa dev del "$d" 2>/dev/null; done
	vmpi_unload
}
rvio_on_exit cleanup

ktap_print_header
ktap_set_plan 12
# Posted receives too: a reset gives them back, and they are posted again.
# Nothing inline: every frame to the other by grant.
ENVELOPE_ATTACH_OPTS="posted=16 inline=0" envelope_domains 2 || ktap_exit_fail_msg "cannot set up two netfronts"
echo envelope >$S/mode || ktap_exit_fail_msg "cannot set the mode"

# The /sys/class/misc/vmpiN directory of d$1's guest side.
guest_dir() {
	local v n
	v=$(vdpa_virtio_of "d$1") && n=$(vmpi_core_dev guest "$v") && echo "/sys/class/misc/$n"
}
counter() { local v; read_line v "$1" && echo "$v"; }
# (Counters are read by the shell's own `read`: every process costs a
# fifth of a second in the test VM.)
# stat_of VAR NAME: VAR set to the switch's counter NAME; fails if there
# is none.
stat_of() {
	local k v
	printf -v "$1" ''
	while read -r k v; do [ "$k" = "$2" ] && printf -v "$1" %s "$v"; done <$S/stats
	[ -n "${!1}" ]
}
held() { local n; stat_of n grants_held; echo "$n"; }
no_grant_held() { local n; stat_of n grants_held; [ "$n" = 0 ]; }
pings() { ip netns exec e1 ping -q -c "$1" -i 0.2 -W 2 -s 1000 10.8.0.2 >/dev/null 2>&1; }
# estat VAR I NAME: VAR set to the ethtool -S counter NAME of ef$I; fails
# if there is none.
estat() {
	local k v
	printf -v "$1" ''
	while read -r k v; do
		[ "$k" = "$3:" ] && printf -v "$1" %s "$v"
	done < <(ip netns exec "e$2" ethtool -S "ef$2")
	[ -n "${!1}" ]
}

if ip netns exec e1 ping -q -c 3 -i 0.2 -W 5 10.8.0.2 >/dev/null; then
	ktap_test_pass "ef1 and ef2 reach each other"
else
	ktap_test_fail "ef1 and ef2 reach each other"
fi

# Exactly one copy. IPv6's multicast and ARP's broadcast would go as
# FRAMEs: no IPv6, static neighbours. The host holds grants 5 s, so that
# none times out on a slow host (its frame would go again as a FRAME).
# rx_copied VAR: VAR set to rx_copy_bytes summed over ef1 and ef2 (empty
# if one is missing).
rx_copied() {
	local a b
	printf -v "$1" ''
	estat a 1 rx_copy_bytes && estat b 2 rx_copy_bytes && printf -v "$1" %d $((a + b))
}
# 20 pings of 1042-byte frames ef1 -> ef2, and their replies, in mode $1.
copies_in() {
	local b0 c0 r0 b1 c1 r1
	echo "$1" >$S/mode && sleep 1 || return 1
	stat_of b0 bounce_bytes && stat_of c0 copied_bytes && rx_copied r0 || return 1
	ip netns exec e1 ping -q -c 20 -i 0.1 -W 2 -s 1000 10.8.0.2 >/dev/null || return 1
	stat_of b1 bounce_bytes && stat_of c1 copied_bytes && rx_copied r1 || return 1
	ktap_print_msg "$1 mode: bounce_bytes +$((b1 - b0)), copied_bytes +$((c1 - c0)), the netfronts' rx_copy_bytes +$((r1 - r0))"
	if [ "$1" = envelope ]; then
		[ $((b1 - b0)) = 0 ] && [ $((c1 - c0)) = $((r1 - r0)) ] && [ $((c1 - c0)) -ge $((40 * 1042)) ]
	else
		[ $((c1 - c0)) = 0 ] && [ $((r1 - r0)) = 0 ] && [ $((b1 - b0)) -ge $((40 * 1042)) ]
	fi
}
for i in 1 2; do
	ip netns exec "e$i" sysctl -qw "net.ipv6.conf.ef$i.disable_ipv6=1" || ktap_exit_fail_msg "cannot turn IPv6 off"
done
ip -n e1 neigh replace 10.8.0.2 lladdr 02:00:00:00:00:02 dev ef1 &&
	ip -n e2 neigh replace 10.8.0.1 lladdr 02:00:00:00:00:01 dev ef2 &&
	echo 5000 >$HOLD || ktap_exit_fail_msg "cannot set the neighbours or the hold time"
ktap_test_result "envelope mode: not one byte through the switch's buffer, grant copies = bytes received" \
	copies_in envelope
ktap_test_result "full-copy mode: every byte through the switch's buffer, no grant copy" copies_in copy

echo envelope >$S/mode || ktap_exit_fail_msg "cannot set the mode"

# Frames for an interface that is down: copied, then dropped, and counted
# by reason (ethtool -S) and in ip -s link.
ef2_ip_dropped() { ip netns exec e2 cat /sys/class/net/ef2/statistics/rx_dropped; }
estat d0 2 rx_drop_down && i0=$(ef2_ip_dropped) && ip -n e2 link set ef2 down ||
	ktap_exit_fail_msg "cannot read ef2's counters"
ip netns exec e1 ping -q -c 5 -i 0.2 -W 1 -s 1000 10.8.0.2 >/dev/null 2>&1
estat d1 2 rx_drop_down
i1=$(ef2_ip_dropped)
ip -n e2 link set ef2 up
ktap_print_msg "5 pings to ef2 while down: rx_drop_down +$((d1 - d0)), ip -s link's rx dropped +$((i1 - i0))"
if [ $((d1 - d0)) -ge 5 ] && [ $((i1 - i0)) -ge $((d1 - d0)) ] && WAIT_SECS=20 wait_for pings 1; then
	ktap_test_pass "frames for an interface that is down are dropped and counted by reason"
else
	ktap_test_fail "frames for an interface that is down are dropped and counted by reason"
fi

# Grants nobody copies: ef2 gone, its MAC still domain 2's.
echo 30000 >$HOLD || ktap_exit_fail_msg "cannot set the hold time"
g1=$(guest_dir 1) && h1=$(counter "$g1/restarts") || ktap_exit_fail_msg "no VMPI device under ef1"
echo ef2 >$F/detach && ip -n e1 neigh replace 10.8.0.2 lladdr 02:00:00:00:00:02 dev ef1 &&
	ip netns exec e1 ping -q -c 8 -i 0.1 -W 1 -s 1000 10.8.0.2 >/dev/null 2>&1
n=$(held)
ktap_print_msg "grants held by the host: $n"
klog_mark
t0=$SECONDS
echo ef1 >$F/detach
took=$((SECONDS - t0))
ktap_print_msg "ef1's detach took $took s; the host holds grants 30 s"
if [ "${n:-0}" -gt 0 ] && [ "$took" -ge 4 ] && [ "$took" -lt 20 ] &&
	klog_since_mark | grep -q "still out after [0-9]* ms: resetting the device" &&
	[ "$(counter "$g1/restarts")" = $((h1 + 1)) ] && wait_for no_grant_held; then
	ktap_test_pass "a detach whose grants the host holds resets the device after 5 s: every grant back"
else
	klog_since_mark | grep -E "vmpi|envelope|virtio" | sed 's/^/# /'
	ktap_test_fail "a detach whose grants the host holds resets the device after 5 s: every grant back"
fi

echo 1000 >$HOLD
if WAIT_SECS=20 wait_for vmpi_link_up d1 && envelope_attach 1 posted=16 && envelope_attach 2 posted=16 &&
	ip netns exec e1 ping -q -c 3 -i 0.2 -W 5 10.8.0.2 >/dev/null; then
	ktap_test_pass "the reset device serves a new netfront"
else
	ktap_test_fail "the reset device serves a new netfront"
fi

# A reset under traffic, of a running netfront's device. The pings (10 s
# at most; `ip netns exec` execs ping: $! is ping's) go on across the reset
# and are stopped once the device has restarted and its link is up again.
g1=$(guest_dir 1) && h1=$(counter "$g1/restarts") || ktap_exit_fail_msg "no VMPI device under ef1"
ip netns exec e1 ping -q -c 50 -i 0.2 -W 2 -s 1000 10.8.0.2 >/dev/null 2>&1 &
traffic=$!
sleep 2
# Why writing $2 to $1 fails (nothing if it does not).
write_error() { (echo "$2" >"$1") 2>&1 | sed -n 's/.*write error: //p'; }
h=$(vmpi_core_dev host d1) && e2=$(write_error "$g1/reset" 2) && eh=$(write_error "/sys/class/misc/$h/reset" 1)
ktap_print_msg "reset: 2 on the guest side: $e2; 1 on the host side: $eh"
if [ "$e2" = "Invalid argument" ] && [ "$eh" = "Operation not supported" ]; then
	ktap_test_pass "reset takes only 1, and only on the guest side"
else
	ktap_test_fail "reset takes only 1, and only on the guest side"
fi
echo 1 >"$g1/reset"
wait_for eval '[ "$(counter "$g1/restarts")" -gt "$h1" ]' && WAIT_SECS=20 wait_for vmpi_link_up d1
restarted=$?
kill $traffic 2>/dev/null
wait $traffic 2>/dev/null
if [ $restarted = 0 ] && WAIT_SECS=20 wait_for pings 2 && estat r0 1 rx_delivered && pings 10 &&
	estat r1 1 rx_delivered &&
	ktap_print_msg "frames delivered into ef1's posted buffers by 10 pings after the reset: $((r1 - r0))" &&
	[ "$r1" -gt "$r0" ] && [ "$(counter "$g1/restarts")" = $((h1 + 1)) ]; then
	ktap_test_pass "a running netfront's device reset under traffic: the link restarts, traffic goes on"
else
	ktap_test_fail "a running netfront's device reset under traffic: the link restarts, traffic goes on"
fi

# `ip link add NAME parentdev DEV type envelope` and `ip link del`.
# Why "$@" fails (its error line; nothing if it does not).
ip_error() { "$@" 2>&1 >/dev/null | head -n 1; }
v1=$(vdpa_virtio_of d1) || ktap_exit_fail_msg "no virtio device of d1"
e_none=$(ip_error ip link add ef9 type envelope)
e_unknown=$(ip_error ip link add ef9 parentdev nosuch0 type envelope)
e_taken=$(ip_error ip link add ef9 parentdev "$v1" type envelope)
kind=$(ip -n e1 -d link show ef1 | grep -o "envelope")
ktap_print_msg "no parentdev: $e_none; unknown: $e_unknown; taken: $e_taken; kind: $kind"
if [[ $e_none == *"parent device is required"* ]] && [[ $e_unknown == *"no such parent device"* ]] &&
	[[ $e_taken == *"has an interface already"* ]] && [ "$kind" = envelope ] && ! ip link show ef9 2>/dev/null; then
	ktap_test_pass "ip link add refuses no parent, an unknown one, a taken one; ip -d link shows the kind"
else
	ktap_test_fail "ip link add refuses no parent, an unknown one, a taken one; ip -d link shows the kind"
fi

# ip link del of a sender whose grants the host holds (30 s: ef2 is gone,
# nobody copies), under a ping flood, returns at once; the rest is the
# reaper's (it resets the device after 5 s), and the device is free again
# for `ip link add`. The flood (nothing answers it) runs until the del has
# returned, then is stopped; its deadline only bounds it.
echo 30000 >$HOLD && ip -n e2 link del ef2 && h1=$(counter "$g1/restarts") &&
	ip -n e1 neigh replace 10.8.0.2 lladdr 02:00:00:00:00:02 dev ef1 || ktap_exit_fail_msg "cannot delete ef2"
ip netns exec e1 ping -q -f -w 20 -W 1 -s 1400 10.8.0.2 >/dev/null 2>&1 &
traffic=$!
sleep 2
n=$(held)
flooding=no
kill -0 $traffic 2>/dev/null && flooding=yes
t0=$SECONDS
ip -n e1 link del ef1
took=$((SECONDS - t0))
kill $traffic 2>/dev/null
wait $traffic 2>/dev/null
ktap_print_msg "grants held by the host: $n; ip link del ef1 under a ping flood (running: $flooding) took $took s"
if [ "${n:-0}" -gt 0 ] && [ $flooding = yes ] && [ "$took" -lt 4 ] && ! ip -n e1 link show ef1 2>/dev/null &&
	WAIT_SECS=30 wait_for no_grant_held && wait_for eval '[ "$(counter "$g1/restarts")" -gt "$h1" ]' &&
	[ "$(counter "$g1/restarts")" = $((h1 + 1)) ] &&
	echo 1000 >$HOLD && WAIT_SECS=20 wait_for vmpi_link_up d1 && WAIT_SECS=20 wait_for envelope_attach 1 &&
	envelope_attach 2 && ip -d -n e1 link show ef1 | grep -q "envelope" &&
	ip netns exec e1 ping -q -c 3 -i 0.2 -W 5 10.8.0.2 >/dev/null; then
	ktap_test_pass "ip link del with grants held returns at once; the device, reset, takes an interface again"
else
	ktap_test_fail "ip link del with grants held returns at once; the device, reset, takes an interface again"
fi
ip netns del e1
if wait_for ip link show ef1 >/dev/null && ip -d link show ef1 | grep -q envelope; then
	ktap_test_pass "a namespace deleted with a netfront inside gives it back"
else
	ktap_test_fail "a namespace deleted with a netfront inside gives it back"
fi

# Churn: ef2 deleted and made again $CHURN times (RVIO_NETFRONT_CHURN, 2
# by default) under a ping flood of its own; then the module unloaded
# while another loop adds and deletes a link over d1 (until the rmmod has
# returned, 20 rounds at most): every interface goes, and the module loads
# again.
CHURN=${RVIO_NETFRONT_CHURN:-2}
v1=$(vdpa_virtio_of d1) && v2=$(vdpa_virtio_of d2) && ip link del ef1 ||
	ktap_exit_fail_msg "cannot delete ef1"
churn() {
	local i
	for ((i = 0; i < CHURN; i++)); do
		ip -n e2 link del ef2 &&
			WAIT_SECS=20 wait_for ip -n e2 link add ef2 address 02:00:00:00:00:02 parentdev "$v2" type envelope &&
			ip -n e2 -batch - <<-EOF || return 1
				addr add 10.8.0.2/24 dev ef2
				link set ef2 up
				neigh replace 10.8.0.1 lladdr 02:00:00:00:00:01 dev ef2
			EOF
	done
}
ip -n e2 neigh replace 10.8.0.1 lladdr 02:00:00:00:00:01 dev ef2
ip netns exec e2 ping -q -f -W 1 -s 1400 10.8.0.1 >/dev/null 2>&1 &
flood=$!
churn
churned=$?
kill $flood 2>/dev/null
wait $flood 2>/dev/null
stop=$(mktemp -u)
(for _ in $(seq 20); do
	[ -e "$stop" ] && break
	ip link add efx parentdev "$v1" type envelope 2>/dev/null
	ip link del efx 2>/dev/null
done) &
adder=$!
sleep 1
rmmod envelope_netfront
unloaded=$?
touch "$stop"
wait $adder
rm -f "$stop"
ktap_print_msg "churn: status $churned; rmmod during ip link add/del: status $unloaded"
if [ "$churned" = 0 ] && [ "$unloaded" = 0 ] && ! ip -d link show | grep -q envelope &&
	! ip -n e2 link show ef2 2>/dev/null && insmod "$(rvio_ko envelope_netfront)" &&
	ip link add efy parentdev "$v1" type envelope && ip -d link show efy | grep -q envelope; then
	ktap_test_pass "ip link del and add under a flood, $CHURN times; rmmod while links come and go: all gone, loads again"
else
	ktap_test_fail "ip link del and add under a flood, $CHURN times; rmmod while links come and go: all gone, loads again"
fi

ktap_finished
