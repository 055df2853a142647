# SPDX-License-Identifier: GPL-2.0
# shellcheck shell=bash
#
# Shared by the envelope netfront's tests (netfront.sh, netfront_routes.sh);
# sourced, never run. netfront_start loads VMPI, the SR-IOV hook, the
# switch and the netfront, and makes three guests: VMPI devices d1, d2, d3
# (guest sides in this kernel), interfaces ef1, ef2, ef3 over them with
# MACs 02:00:00:00:00:0N, in network namespaces ns1, ns2, ns3 at
# 10.9.0.N/24; ef1 and ef3 post buffers (posted=32: frames are delivered
# into them), ef2 posts none (the default: frames reach it by ENVELOPE
# and copy).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

S=/sys/kernel/envelope_switch
F=/sys/kernel/envelope_netfront
H=/sys/kernel/sriov_hook
DOMS="d1 d2 d3"
here=$(dirname "${BASH_SOURCE[0]}")
nsim=$((700 + RANDOM % 100))

netfront_cleanup() {
	local i d
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

mac() { printf '02:00:00:00:00:%02x' "$1"; }
nsx() { local n=$1; shift; ip netns exec "ns$n" "$@"; }
# ethtool -S counter $2 of ef$1. Inside `snapshot`, from one reading of
# each interface's counters (a consistent view; and `ip netns exec ...
# ethtool` costs about a second in the test VM).
estat() {
	local f k v
	if [ -n "${ES_SNAP:-}" ]; then
		f=$ES_SNAP/$1
		[ -s "$f" ] || nsx "$1" ethtool -S "ef$1" >"$f" 2>/dev/null
		while read -r k v; do
			[ "$k" = "$2:" ] && { echo "$v"; return 0; }
		done <"$f"
		return 1
	fi
	nsx "$1" ethtool -S "ef$1" | sed -n "s/^ *$2: //p"
}
# Runs "$@" (in this shell) with estat reading each interface once.
# (Its locals are named apart: "$@" sees its caller's.)
snapshot() {
	local ES_SNAP snapshot_rc
	ES_SNAP=$(mktemp -d) || return 1
	"$@"
	snapshot_rc=$?
	rm -rf "$ES_SNAP"
	return $snapshot_rc
}
# counters I:NAME...: the ethtool -S counters NAME of ef$I (NAME rgrant:
# rgrant I) on one line, from one reading of each interface:
#   read -r a b < <(counters 1:tx_frames 2:rgrant)
counters() { snapshot counters_now "$@"; }
counters_now() {
	local a v=()
	for a; do
		case ${a#*:} in
		rgrant) v+=("$(rgrant "${a%%:*}")") ;;
		*) v+=("$(estat "${a%%:*}" "${a#*:}")") ;;
		esac
	done
	echo "${v[*]}"
}
# A counter of the switch's stats file.
sstat() {
	local k v
	while read -r k v; do [ "$k" = "$1" ] && { echo "$v"; return 0; }; done <$S/stats
	return 1
}
# ethtool -S counter $1 summed over ef1, ef2, ef3.
esum() {
	local i t=0
	for i in 1 2 3; do t=$((t + $(estat $i "$1"))); done
	echo $t
}
# Frames ef$1 received by grant: copied after an ENVELOPE, or delivered
# into a posted buffer.
rgrant() { echo $(($(estat $1 rx_copy_ok) + $(estat $1 rx_delivered))); }
# Every netfront holds the switch's table generation (from the netfront's
# fronts file: polled, and ethtool in a namespace costs half a second).
took_table() {
	local g l n=0
	g=$(sstat generation) || return 1
	while read -r l; do
		[[ " $l " = *" generation=$g "* ]] || return 1
		n=$((n + 1))
	done <$F/fronts
	[ $n -gt 0 ]
}
# The switch's mode (envelope or copy), taken by every netfront.
set_mode() { echo "$1" >$S/mode && WAIT_SECS=5 wait_for took_table; }

# numbered_udp CMD...: numbered UDP datagrams of 1200 bytes from ns1 to
# 10.9.0.2 (at most 100 a second, 6000 at most) while CMD runs, for tests
# of changes under traffic. Sets UDP_GOT (the different datagrams ns2
# received whole) and UDP_SENT; fails if CMD, the sender or the receiver
# did. 6000 sent: the sender ran out before CMD was done.
NUMBERED_RECV='
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.9.0.2", 5006))
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
NUMBERED_SEND='
import os, socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
i = 0
while not os.path.exists(sys.argv[1]) and i < 6000:
    s.sendto(i.to_bytes(4, "big") + bytes([i & 0xff]) * 1196, ("10.9.0.2", 5006)); i += 1; time.sleep(0.01)
print(i, flush=True)
'
numbered_udp() {
	local out sentf stop recv sender rc=0
	UDP_GOT="" UDP_SENT=""
	out=$(mktemp) sentf=$(mktemp) stop=$(mktemp -u)
	nsx 2 python3 -S -c "$NUMBERED_RECV" >"$out" &
	recv=$!
	if ! WAIT_SECS=30 wait_for grep -q ready "$out"; then
		kill $recv
		rm -f "$out" "$sentf"
		return 1
	fi
	nsx 1 python3 -S -c "$NUMBERED_SEND" "$stop" >"$sentf" &
	sender=$!
	sleep 0.5
	"$@" || rc=1
	touch "$stop"
	wait $sender || rc=1
	wait $recv || rc=1
	UDP_GOT=$(sed -n 2p "$out") UDP_SENT=$(cat "$sentf")
	rm -f "$out" "$sentf" "$stop"
	ktap_print_msg "ns2 got $UDP_GOT of $UDP_SENT numbered datagrams"
	[ $rc = 0 ] && [ -n "$UDP_GOT" ] && [ -n "$UDP_SENT" ]
}
# Every numbered datagram sent arrived, and the sender did not run out.
numbered_all() { [ "$UDP_GOT" = "$UDP_SENT" ] && [ "$UDP_SENT" -lt 6000 ]; }

netfront_setup() {
	local i d m
	for i in 1 2 3; do
		d=d$i m=$(mac $i)
		echo "$d domain=$i" >$S/domains || return 1
		# ef2 posts no buffer (the default): frames reach it by ENVELOPE
		# and copy; ef1 and ef3 post 32 (as many as fit: 21).
		echo "$(vdpa_virtio_of "$d") name=ef$i $([ $i != 2 ] && echo posted=32)" >$F/attach || return 1
		ip link set "ef$i" address "$m" || return 1
		echo "$m domain=$i" >$S/table || return 1
		ip netns add "ns$i" && ip link set "ef$i" netns "ns$i" || return 1
		# One ip for the three (each ip costs a quarter of a second in
		# the test VM): -batch stops at the first error, and fails.
		ip -n "ns$i" -batch - <<-EOF || return 1
			addr add 10.9.0.$i/24 dev ef$i
			link set ef$i up
			link set lo up
		EOF
	done
}

# The test's header with plan $1, then the modules and the three guests
# (the first result); exits on failure.
netfront_start() {
	local d
	rvio_on_exit netfront_cleanup
	ktap_print_header
	ktap_set_plan "$1"
	vmpi_load "$(rvio_ko sriov_hook)" "$(rvio_ko envelope_switch)" "$(rvio_ko envelope_netfront)" ||
		ktap_exit_fail_msg "cannot load VMPI"
	for d in $DOMS; do vdpa dev add mgmtdev vmpi name "$d" || ktap_exit_fail_msg "vdpa dev add $d failed"; done
	for d in $DOMS; do
		WAIT_SECS=20 wait_for vmpi_link_up "$d" || ktap_exit_fail_msg "VMPI device $d did not come up"
	done
	insmod "$(rvio_ko sriov_hook)" && insmod "$(rvio_ko envelope_switch)" &&
		insmod "$(rvio_ko envelope_netfront)" || ktap_exit_fail_msg "cannot load the envelope modules"
	ktap_check "three netfronts over d1, d2, d3 in namespaces ns1, ns2, ns3" netfront_setup
}
