#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/profile-envelope.sh boots it): where the
# time of guest-to-guest traffic through two envelope netfronts and the
# host's envelope switch goes. Sends $2 MiB (default 24) at MTU $1
# (default 1500) from one netfront's namespace to the other's and samples
# every CPU with perf (cpu-clock) meanwhile; prints the time, perf's flat
# profile (by symbol, then by module) and the netfront's and switch's
# counters. With $3 = children, it records call graphs and prints
# inclusive time by symbol instead. $4 (default 0): buffers the receiving
# netfront keeps posted (its `posted=` of `attach`). $5: `tcp` (default, a
# stream) or `udp` (datagrams of MTU - 28 bytes, vmpi-perf). $6: the
# switch's mode, `envelope` (default) or `copy` (full copies).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
mtu=${1:-1500} mib=${2:-24} mode=${3:-flat} proto=${5:-tcp} switch_mode=${6:-envelope}
S=/sys/kernel/envelope_switch
ENVELOPE_ATTACH_OPTS=posted=${4:-0} envelope_domains 2 "$mtu"
echo "$switch_mode" >$S/mode
sleep 1
echo 0 >/proc/sys/kernel/kptr_restrict
cd /tmp
graph=()
[ "$mode" = children ] && graph=(-g)
if [ "$proto" = udp ]; then
	perf_bin=$root/target/release/vmpi-perf
	size=$((mtu - 28))
	ip netns exec e2 "$perf_bin" udp-server --port 5501 &
	sleep 1
	perf record -q -a "${graph[@]}" -e cpu-clock -F 2000 -o /tmp/perf.data -- \
		ip netns exec e1 "$perf_bin" udp-client --to 10.8.0.2 --port 5501 --size "$size" \
		--count $((mib * 1048576 / size))
else
	ip netns exec e2 python3 -c '
import socket
s = socket.socket(); s.bind(("10.8.0.2", 5401)); s.listen(1); c, _ = s.accept()
while c.recv(1 << 20): pass' &
	sleep 1
	perf record -q -a "${graph[@]}" -e cpu-clock -F 2000 -o /tmp/perf.data -- \
		ip netns exec e1 python3 -c '
import socket, sys, time
c = socket.create_connection(("10.8.0.2", 5401)); b = b"x" * (1 << 20); t = time.monotonic()
for _ in range(int(sys.argv[1])): c.sendall(b)
c.close(); s = time.monotonic() - t
print("sent %s MiB in %.1f s: %.1f Mbit/s" % (sys.argv[1], s, int(sys.argv[1]) * 8.388608 / s))' "$mib"
fi
if [ "$mode" = children ]; then
	perf report -i /tmp/perf.data --stdio --children --sort sym -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -90 || true
fi
perf report -i /tmp/perf.data --stdio --no-children --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$' | head -45 || true
echo "== by module"
perf report -i /tmp/perf.data --stdio --no-children --sort dso 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15 || true
echo "== counters"
ip netns exec e1 ethtool -S ef1
cat $S/domains
grep -E '^(bounce|copied)_bytes ' $S/stats
