#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Inside the test VM (scripts/bench-inline.sh boots it): where sending a
# small frame inline (as a FRAME, copied twice by the switch) stops
# paying against granting it (an envelope and one copy). Two netfronts
# through the host's switch in envelope mode at MTU 9000; for each UDP
# payload size the sender is attached with inline=0 (every frame by
# grant) and with inline=65519 (every frame inline), alternately, $1
# repeats (default 3). Prints vmpi-perf's `result` lines, the label in
# transport=.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=../selftests/lib.sh
source "$root/selftests/lib.sh"
repeat=${1:-3}
sizes=${SIZES:-18,200,400,700,1000,1472,3000,5000,8972}
perf=$root/target/release/vmpi-perf
ENVELOPE_ATTACH_OPTS=inline=0 envelope_domains 2 9000
ip netns exec e2 "$perf" udp-server --port 5501 &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
sleep 1
ip netns exec e1 ping -q -c 2 -W 5 10.8.0.2 >/dev/null
for ((r = 0; r < repeat; r++)); do
	for label in grant inline; do
		case $label in
		grant) envelope_reattach 1 inline=0 9000 ;;
		inline) envelope_reattach 1 inline=65519 9000 ;;
		esac
		ip netns exec e1 ping -q -c 1 -W 5 10.8.0.2 >/dev/null || true
		ip netns exec e1 "$perf" udp-client --to 10.8.0.2 --port 5501 --size "$sizes" --count 400 |
			sed "s/transport=udp /transport=$label /"
		ip netns exec e1 ethtool -S ef1 | grep -E ' (tx_envelopes|tx_inline|tx_frames):' | tr -s ' ' |
			sed "s/^/# $label: /"
	done
done
