#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Where the netfront's inline threshold belongs: UDP goodput between two
# netfronts with every frame to the envelope route granted (inline=0)
# against every frame sent inline as a FRAME (inline=65519), payloads of
# 18 to 8972 bytes at MTU 9000, side by side in one test-VM run
# (scripts/bench-inline-vm.sh). Prints the medians and their ratio per
# size; writes results/inline/raw.txt. A benchmark, not a test.
#
# usage: scripts/bench-inline.sh [REPEAT]   (default 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
repeat=${1:-3}
out=results/inline
rvio_bench_vm bench-inline "$out" 2400 result scripts/bench-inline-vm.sh "$repeat"
python3 - "$out/raw.txt" <<'PY'
import collections, statistics, sys
pts = collections.defaultdict(list)
for line in open(sys.argv[1]):
    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    pts[(int(kv["size"]), kv["transport"])].append(float(kv["mbit_per_s"]))
print("| UDP payload | frame | grant Mbit/s | inline Mbit/s | grant / inline |")
print("|---|---|---|---|---|")
for size in sorted({s for s, _ in pts}):
    g = statistics.median(pts[(size, "grant")]) if pts[(size, "grant")] else 0
    i = statistics.median(pts[(size, "inline")]) if pts[(size, "inline")] else 0
    print("| %d | %d | %.1f | %.1f | %s |" % (size, size + 42, g, i, "%.2f" % (g / i) if i else "-"))
PY
