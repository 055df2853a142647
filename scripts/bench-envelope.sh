#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench-envelope`: guest-to-guest UDP and TCP goodput through the
# envelope switch (full copies today) and through a Linux bridge between
# veth pairs, side by side in one test-VM run
# (scripts/bench-envelope-vm.sh), each point repeated. Writes
# results/envelope/{vm-output.txt,raw.txt,results.csv,results.md} and the
# table into results/README.md between the bench-envelope markers. A
# benchmark, not a test: the machine is emulated (TCG) and noisy; compare
# the ratios.
#
# usage: scripts/bench-envelope.sh [REPEAT]   (default 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
repeat=${1:-3}
out=results/envelope
PATH=$HOME/.cargo/bin:$PATH cargo build --release --locked -p vmpi
rm -rf "$out"
mkdir -p "$out"
scripts/vm-run.sh --timeout 3600 --name bench-envelope -- scripts/bench-envelope-vm.sh "$repeat" |
	tee "$out/vm-output.txt"
grep -E '^result ' "$out/vm-output.txt" >"$out/raw.txt" || rvio_die "bench: no results (see $out/vm-output.txt)"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!results' || echo "+changes")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
vm=$(sed -n 's/^vm: //p' "$out/vm-output.txt" | sed 's/ *$//' | paste -sd';' - | sed 's/;/, /g')
note="commit $commit, $(date -u +%Y-%m-%d), $vm, under $(cat "$RVIO_CACHE"/accel-* 2>/dev/null | head -n 1 || echo '?') on $cpu, $repeat repeats"
python3 - "$out" "$note" <<'PY'
import collections, csv, re, statistics, sys
out, note = sys.argv[1], sys.argv[2]
pts = collections.defaultdict(list)
for line in open(out + "/raw.txt"):
    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    key = (kv["proto"], int(kv["mtu"]), int(kv["size"]), kv["transport"])
    pts[key].append(float(kv["mbit_per_s"]))
with open(out + "/results.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["proto", "mtu", "size", "transport", "median_mbit_per_s", "runs"])
    for k in sorted(pts):
        w.writerow(list(k) + ["%.1f" % statistics.median(pts[k]), len(pts[k])])
rows = sorted({k[:3] for k in pts})
md = ["Goodput in Mbit/s (median of the repeats) and the ratio of the envelope switch's full-copy path to the Linux bridge; " + note + ".", "",
      "| proto | MTU | payload / frame | switch, full copy | Linux bridge | copy / bridge |", "|---|---|---|---|---|---|"]
for p, mtu, size in rows:
    c = pts.get((p, mtu, size, "copy")); b = pts.get((p, mtu, size, "bridge"))
    cm = statistics.median(c) if c else None; bm = statistics.median(b) if b else None
    what = ("%d B datagrams" % size) if p == "udp" else "48 MiB stream"
    md.append("| %s | %d | %s | %s | %s | %s |" % (p.upper(), mtu, what,
              "%.1f" % cm if cm else "-", "%.1f" % bm if bm else "-",
              "%.2f" % (cm / bm) if cm and bm else "-"))
open(out + "/results.md", "w").write("\n".join(md) + "\n")
text = open("results/README.md").read()
table = "\n".join(md)
new = re.sub(r"<!-- bench-envelope:begin -->.*<!-- bench-envelope:end -->",
             "<!-- bench-envelope:begin -->\n" + table + "\n<!-- bench-envelope:end -->", text, flags=re.S)
open("results/README.md", "w").write(new)
print(table)
PY
rvio_log "bench: results in $out/"
