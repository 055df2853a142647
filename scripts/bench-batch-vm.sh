#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/bench-batch.sh boots it): what the host's
# copy batch (vmpi_host's copy_batch: the grants, copy requests and
# deliveries a device handles per work pass and queue before it yields)
# does to guest-to-guest UDP. Two netfronts through the switch in
# envelope mode at MTU 9000 (inline=0: every frame by grant); the
# receiver without posted buffers (every grant an ENVELOPE and a copy
# request), then with posted=32 (grants delivered into them). For each,
# $1 repeats (default 3) of every batch in $BATCHES (default 1 4 16 64)
# in turn: vmpi-perf's UDP datagrams of 1472 and 8972 bytes. Prints
# vmpi-perf's `result` lines (transport=posted-P-batch-B) and a `cost`
# line per run: frames ef1 sent, the VM's busy CPU time, and the host's
# work passes over grant queues (grant_passes) and those that reached the
# batch (grant_passes_full).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
repeat=${1:-3}
batches=${BATCHES:-1 4 16 64}
perf=$root/target/release/vmpi-perf
param=/sys/module/vmpi_host/parameters/copy_batch
ENVELOPE_ATTACH_OPTS=inline=0 envelope_domains 2 9000
tx_frames() { ip netns exec e1 cat /sys/class/net/ef1/statistics/tx_packets; }
# The switch's counters grant_passes and grant_passes_full (all devices).
passes() { awk '$1 == "grant_passes" { p = $2 } $1 == "grant_passes_full" { f = $2 } END { print p, f }' \
	/sys/kernel/envelope_switch/stats; }
srv=""
trap '[ -z "$srv" ] || kill $srv 2>/dev/null || true' EXIT
for posted in 0 32; do
	envelope_reattach 2 "inline=0 posted=$posted" 9000
	ip netns exec e1 ping -q -c 2 -W 5 10.8.0.2 >/dev/null || true
	for ((r = 0; r < repeat; r++)); do
		for b in $batches; do
			echo "$b" >$param
			label=posted-$posted-batch-$b
			# A server per run: stragglers of a run do not count in the next.
			ip netns exec e2 "$perf" udp-server --port 5501 &
			srv=$!
			sleep 1
			f0=$(tx_frames)
			read -r p0 full0 < <(passes)
			b0=$(vm_busy_ms)
			ip netns exec e1 "$perf" udp-client --to 10.8.0.2 --port 5501 --size 1472,8972 |
				sed "s/transport=udp /transport=$label /"
			b1=$(vm_busy_ms)
			read -r p1 full1 < <(passes)
			echo "cost transport=$label frames=$(($(tx_frames) - f0)) busy_ms=$((b1 - b0))" \
				"passes=$((p1 - p0)) passes_full=$((full1 - full0))"
			kill $srv 2>/dev/null || true
			wait $srv 2>/dev/null || true
			srv=""
		done
	done
done
echo 64 >$param
grep -E '^(copied_bytes|bounce_bytes|completions_timeout|waited|delivered) ' /sys/kernel/envelope_switch/stats |
	sed 's/^/# switch: /'
