#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# What the host's copy batch per work pass (vmpi_host copy_batch) does to
# guest-to-guest UDP through envelopes: batches of 1, 4, 16 and 64 side
# by side in one test-VM run (scripts/bench-batch-vm.sh), the receiver
# without and with posted buffers. Prints, per case, the median goodput,
# the ratio to batch 64, the VM's CPU time and the host's work passes per
# frame; writes results/batch/ (vm-output.txt, raw.txt, results.md). A
# benchmark, not a test.
#
# usage: scripts/bench-batch.sh [REPEAT]   (default 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
repeat=${1:-3}
out=results/batch
rvio_bench_vm bench-batch "$out" 3000 'result|cost' scripts/bench-batch-vm.sh "$repeat"
python3 - "$out/raw.txt" <<'PY' | tee "$out/results.md"
import collections, statistics, sys
mbit = collections.defaultdict(list)
cost = collections.defaultdict(lambda: [0, 0, 0, 0])
for line in open(sys.argv[1]):
    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    _, posted, _, batch = kv["transport"].split("-")
    if line.startswith("result "):
        mbit[(int(posted), int(kv["size"]), int(batch))].append(float(kv["mbit_per_s"]))
    else:
        c = cost[(int(posted), int(batch))]
        c[0] += int(kv["frames"])
        c[1] += int(kv["busy_ms"])
        c[2] += int(kv["passes"])
        c[3] += int(kv["passes_full"])
print("| posted | UDP payload | batch | Mbit/s (median) | / batch 64 | VM CPU µs per frame (both sizes) | host passes per frame | passes that reached the batch |")
print("|---|---|---|---|---|---|---|---|")
for posted, size, batch in sorted(mbit):
    m = statistics.median(mbit[(posted, size, batch)])
    ref = mbit.get((posted, size, 64))
    r = "%.2f" % (m / statistics.median(ref)) if ref else "-"
    f, ms, p, full = cost[(posted, batch)]
    print("| %d | %d | %d | %.1f | %s | %s | %s | %s |" % (posted, size, batch, m, r,
          "%.0f" % (ms * 1000 / f) if f else "-", "%.2f" % (p / f) if f else "-",
          "%.1f %%" % (100 * full / p) if p else "-"))
PY
