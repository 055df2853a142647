#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# `make bench-envelope`: guest-to-guest UDP and TCP goodput, frames per
# second and CPU per frame through the envelope switch with envelopes
# (and with frames delivered into buffers the receiver posted), the
# same switch with full copies, and a Linux bridge between veth pairs,
# side by side in one test-VM run (scripts/bench-envelope-vm.sh), each
# point repeated. Writes results/envelope/{vm-output.txt,raw.txt,
# results.csv,results.md,goodput.png} and the tables into
# results/README.md between the bench-envelope markers. A
# benchmark, not a test: the machine is emulated (TCG) and noisy; compare
# the ratios.
#
# usage: scripts/bench-envelope.sh [REPEAT]   (default 3)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$RVIO_ROOT"
repeat=${1:-3}
out=results/envelope
rvio_want_matplotlib
rvio_bench_vm bench-envelope "$out" 3600 'result|cost' scripts/bench-envelope-vm.sh "$repeat"
commit=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . ':!results' || echo "+changes")
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
vm=$(sed -n 's/^vm: //p' "$out/vm-output.txt" | sed 's/ *$//' | paste -sd';' - | sed 's/;/, /g')
note="commit $commit, $(date -u +%Y-%m-%d), $vm, under $(cat "$RVIO_CACHE"/accel-* 2>/dev/null | head -n 1 || echo '?') on $cpu, $repeat repeats"
python3 - "$out" "$note" <<'PY'
import collections, csv, re, statistics, sys
out, note = sys.argv[1], sys.argv[2]
pts = collections.defaultdict(list)
cost = {}
for line in open(out + "/raw.txt"):
    kv = dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)
    key = (kv["proto"], int(kv["mtu"]), int(kv["size"]), kv["transport"])
    if line.startswith("result "):
        pts[key].append(float(kv["mbit_per_s"]))
    else:
        cost[key] = (int(kv["frames"]), int(kv["busy_ms"]), int(kv["wall_ms"]))
with open(out + "/results.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["proto", "mtu", "size", "transport", "median_mbit_per_s", "runs",
                "frames", "frames_per_s", "cpu_us_per_frame"])
    for k in sorted(pts):
        fr, busy, wall = cost.get(k, (0, 0, 0))
        w.writerow(list(k) + ["%.1f" % statistics.median(pts[k]), len(pts[k]), fr,
                              "%.0f" % (fr / wall * 1000) if wall else "",
                              "%.1f" % (busy * 1000 / fr) if fr else ""])
rows = sorted({k[:3] for k in pts})
med = lambda k: statistics.median(pts[k]) if pts.get(k) else None
fmt = lambda v: "%.1f" % v if v else "-"
ratio = lambda a, b: "%.2f" % (a / b) if a and b else "-"
md = ["Goodput in Mbit/s (median of the repeats) through the envelope switch with envelopes "
      "(a grant, an ENVELOPE message and a copy request per frame; one copy), the same with the receiver "
      "keeping 32 buffers posted (`posted=32`: frames delivered straight into them), the same switch with "
      "full copies, and a Linux bridge between veth pairs, with the ratios; " + note + ".", "",
      "| proto | MTU | payload / stream | envelope | envelope, posted buffers | full copy | Linux bridge "
      "| envelope / copy | posted / envelope | envelope / bridge |",
      "|---|---|---|---|---|---|---|---|---|---|"]
TRANSPORTS = ("envelope", "envelope-posted", "copy", "bridge")
for p, mtu, size in rows:
    e, n, c, b = (med((p, mtu, size, t)) for t in TRANSPORTS)
    what = ("%d B datagrams" % size) if p == "udp" else "48 MiB stream"
    md.append("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        p.upper(), mtu, what, fmt(e), fmt(n), fmt(c), fmt(b), ratio(e, c), ratio(n, e), ratio(e, b)))
md += ["", "Cost per frame: frames per second the sender sent, and the VM's busy CPU time (all CPUs: "
       "both guests' and the host's work) per frame sent, in microseconds.", "",
       "| proto | MTU | payload / stream | envelope frames/s | posted frames/s | copy frames/s | bridge frames/s "
       "| envelope µs/frame | posted µs/frame | copy µs/frame | bridge µs/frame |",
       "|---|---|---|---|---|---|---|---|---|---|---|"]
for p, mtu, size in rows:
    cells = []
    for t in TRANSPORTS:
        fr, busy, wall = cost.get((p, mtu, size, t), (0, 0, 0))
        cells.append(("%.0f" % (fr / wall * 1000) if wall and fr else "-",
                      "%.1f" % (busy * 1000 / fr) if fr else "-"))
    what = ("%d B datagrams" % size) if p == "udp" else "48 MiB stream"
    md.append("| %s | %d | %s | %s | %s |" % (p.upper(), mtu, what,
              " | ".join(c[0] for c in cells), " | ".join(c[1] for c in cells)))
open(out + "/results.md", "w").write("\n".join(md) + "\n")
text = open("results/README.md").read()
table = "\n".join(md)
new = re.sub(r"<!-- bench-envelope:begin -->.*<!-- bench-envelope:end -->",
             "<!-- bench-envelope:begin -->\n" + table + "\n<!-- bench-envelope:end -->", text, flags=re.S)
open("results/README.md", "w").write(new)
print(table)
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(no matplotlib: goodput.png not drawn)")
    sys.exit(0)
labels = ["%s %d%s" % (p.upper(), mtu, "" if p == "tcp" else " / %d B" % size) for p, mtu, size in rows]
fig, ax = plt.subplots(figsize=(10, 4.5))
width = 0.2
for i, t in enumerate(TRANSPORTS):
    ax.bar([x + (i - 1.5) * width for x in range(len(rows))],
           [med((p, mtu, size, t)) or 0 for p, mtu, size in rows], width, label=t)
ax.set_xticks(range(len(rows)))
ax.set_xticklabels(labels, rotation=20, ha="right")
ax.set_ylabel("Mbit/s (median)")
ax.set_yscale("log")
ax.set_title("Guest-to-guest goodput: envelope switching, full copies, Linux bridge")
ax.legend()
fig.tight_layout()
fig.savefig(out + "/goodput.png", dpi=110)
PY
rvio_log "bench: results in $out/"
