#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/bench-envelope.sh boots it): guest-to-guest
# UDP and TCP goodput between two network namespaces, side by side in one
# run, through
#   envelope  two envelope netfronts and the host's envelope switch in
#             envelope mode: a grant per frame, an ENVELOPE message to
#             the receiver and its copy request, the bytes copied once,
#             from the sender's pages into the receiver's;
#   envelope-posted  the same, the receiver keeping 32 buffers posted
#             (`posted=32`): the host delivers a frame straight into one
#             (no ENVELOPE, no copy request) when one is free and fits;
#   copy      the same netfronts and switch in full-copy mode: every frame
#             sent whole to the switch and copied to the receiver;
#   bridge    a Linux bridge between two veth pairs (moves skbs, no copy,
#             no guest boundary: the reference the issue names).
# Frames of 64, 1500, 9000 and 65501 bytes: UDP payloads of 18, 1472, 8972
# and 65000 bytes at MTUs of 1500, 1500, 9000 and 65501; TCP at each MTU.
# Every measurement is one `result ...` line on standard output, and each
# group of them a `cost ...` line: the frames the sender sent, the wall
# time, and the CPU time the whole VM was busy meanwhile (/proc/stat), for
# frames per second and CPU per frame (all of the VM's CPUs: both
# guests' and the host's work). Facts about the VM are
# `vm: ...`; the switch's and sender's counters `counters: ...`.
#
# usage: scripts/bench-envelope-vm.sh [REPEAT]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
repeat=${1:-3}
perf=$root/target/release/vmpi-perf
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for n in e1 e2 b1 b2; do ip netns del $n 2>/dev/null || true; done
	ip link del br0 2>/dev/null || true
	rmmod envelope_netfront envelope_switch sriov_hook 2>/dev/null || true
	for d in d1 d2; do vdpa dev del $d 2>/dev/null || true; done
}
trap cleanup EXIT

echo "vm: kernel $(uname -r), $(grep -c processor /proc/cpuinfo) CPUs"
config=$(bash -c ". '$root/scripts/lib.sh' && rvio_kdir")/.config
echo "vm: debug options: $(for o in KASAN PROVE_LOCKING KFENCE DEBUG_KMEMLEAK; do
	grep -qs "^CONFIG_$o=y" "$config" && printf '%s ' $o; done)"

envelope_domains 2
ip link add br0 type bridge
ip link set br0 up
for i in 1 2; do
	ip netns add b$i
	ip link add vb$i netns b$i type veth peer name brp$i
	ip link set brp$i master br0
	ip link set brp$i up
	ip -n b$i addr add 10.8.1.$i/24 dev vb$i
	ip -n b$i link set vb$i up
	ip -n b$i link set lo up
done

S=/sys/kernel/envelope_switch

# Frames the sending interface of label $1 sent.
sent() {
	case $1 in
	bridge) ip netns exec b1 cat /sys/class/net/vb1/statistics/tx_packets ;;
	*) ip netns exec e1 cat /sys/class/net/ef1/statistics/tx_packets ;;
	esac
}
# Runs "$@" (a measurement of label $1, protocol $2, MTU $3, size $4,
# given as the first four words) and prints its cost line.
cost() {
	local label=$1 proto=$2 mtu=$3 size=$4 b0 p0 t0
	shift 4
	b0=$(vm_busy_ms) p0=$(sent "$label") t0=$(date +%s%3N)
	"$@"
	echo "cost transport=$label proto=$proto mtu=$mtu size=$size frames=$(($(sent "$label") - p0))" \
		"busy_ms=$(($(vm_busy_ms) - b0)) wall_ms=$(($(date +%s%3N) - t0))"
}

set_mtu() { # label mtu
	if [ "$1" != bridge ]; then
		ip -n e1 link set ef1 mtu "$2"
		ip -n e2 link set ef2 mtu "$2"
	else
		ip link set br0 mtu "$2" 2>/dev/null || true
		ip link set brp1 mtu "$2"
		ip link set brp2 mtu "$2"
		ip link set br0 mtu "$2"
		ip -n b1 link set vb1 mtu "$2"
		ip -n b2 link set vb2 mtu "$2"
	fi
}

tcp() { # label src-ns dst-ns dst-ip mtu
	ip netns exec "$3" python3 - "$4" "$1" "$5" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5401)); s.listen(1)
c, _ = s.accept(); n = 0; t0 = None
while True:
    b = c.recv(1 << 20)
    if not b: break
    if t0 is None: t0 = time.monotonic()
    n += len(b)
secs = time.monotonic() - t0
print("result transport=%s proto=tcp mtu=%s size=%d bytes=%d secs=%.3f mbit_per_s=%.1f"
      % (sys.argv[2], sys.argv[3], int(sys.argv[3]), n, secs, n * 8 / secs / 1e6), flush=True)
PY
	local srv=$!
	sleep 1
	ip netns exec "$2" python3 - "$4" <<'PY'
import socket, sys
c = socket.create_connection((sys.argv[1], 5401), timeout=60)
buf = b"\x5a" * (1 << 20)
for _ in range(48):
    c.sendall(buf)
c.close()
PY
	wait $srv
}

udp() { # label src-ns dst-ns dst-ip mtu payload
	ip netns exec "$3" "$perf" udp-server --port 5501 &
	local srv=$!
	sleep 1
	ip netns exec "$2" "$perf" udp-client --to "$4" --port 5501 --size "$6" --repeat "$repeat" |
		sed "s/transport=udp /transport=$1 proto=udp mtu=$5 /"
	kill $srv 2>/dev/null || true
	wait $srv 2>/dev/null || true
}

for label in envelope envelope-posted copy bridge; do
	if [ $label = bridge ]; then src=b1 dst=b2 ip=10.8.1.2; else src=e1 dst=e2 ip=10.8.0.2; fi
	case $label in
	envelope-posted) envelope_reattach 2 posted=32 ;;
	copy) envelope_reattach 2 "" ;;
	esac
	if [ $label != bridge ]; then
		echo "${label%-posted}" >$S/mode
		# The netfronts take the new table (a new generation).
		sleep 1
		grep -E "^(copied|bounce)_bytes" $S/stats | sed "s/^/counters: before $label: /"
	fi
	for m in "1500 18" "1500 1472" "9000 8972" "65501 65000"; do
		set -- $m
		set_mtu $label "$1"
		echo "== $label UDP payload $2 at MTU $1" >&2
		cost $label udp "$1" "$2" udp $label $src $dst $ip "$1" "$2"
	done
	for mtu in 1500 9000 65501; do
		set_mtu $label $mtu
		echo "== $label TCP at MTU $mtu" >&2
		cost $label tcp $mtu $mtu eval 'for r in $(seq "$repeat"); do tcp $label $src $dst $ip $mtu; done'
	done
	if [ $label != bridge ]; then
		grep -E "^(copied|bounce)_bytes" $S/stats | sed "s/^/counters: after $label: /"
		ip netns exec e1 ethtool -S ef1 | grep -E "tx_envelopes|tx_fallback|tx_grant_done" |
			tr -s ' ' | sed "s/^/counters: $label: ef1/"
		ip netns exec e2 ethtool -S ef2 | grep -E "rx_envelopes|rx_copy_ok|rx_delivered|rx_posted" |
			tr -s ' ' | sed "s/^/counters: $label: ef2/"
		grep -E "^(envelopes|deliveries) " $S/stats | sed "s/^/counters: $label: switch /"
	fi
done
echo "== bench done" >&2
