#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the `result ...` lines of a bench-vmpi run (DIR/raw.txt) into
DIR/results.csv, DIR/results.md (medians, spreads and VMPI's ratios to the
baselines) and DIR/goodput.png (if matplotlib is installed), and prints the
Markdown. The ratios compare SDU rates of the same size (equal to goodput
ratios for sizes above 0).

usage: scripts/bench-report.py DIR 'NOTE (commit, machine)'"""
import collections
import csv
import statistics
import sys

out, note = sys.argv[1], sys.argv[2]
runs = collections.defaultdict(list)  # (transport, dir, size) -> [(rate, mbit, lost)]
memory = collections.defaultdict(list)  # side -> [KiB per idle device]
for line in open(out + "/raw.txt"):
    if line.startswith("memory "):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        memory[f["side"]].append(int(f["kib_per_device"]))
        continue
    if not line.startswith("result "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    key = (f["transport"], f["dir"], int(f["size"]))
    runs[key].append((float(f["sdus_per_s"]), float(f["mbit_per_s"]), int(f["count"]) - int(f["received"])))

series = [("vmpi", "up"), ("vmpi", "down"), ("udp", "up"), ("udp", "down"), ("virtio-net", "loop")]
# VMPI with other ring features (vmpi_guest parameters), and their labels.
variants = [("vmpi-no-event-idx", "EVENT_IDX declined (`event_idx=0`)"),
            ("vmpi-indirect", "INDIRECT_DESC used (`indirect_desc=1`)")]
sizes = sorted({k[2] for k in runs if k[0] not in dict(variants)})


def med(key, i):
    v = [r[i] for r in runs.get(key, [])]
    return statistics.median(v) if v else None


with open(out + "/results.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["transport", "dir", "size", "repeats", "sdus_per_s_median", "sdus_per_s_min", "sdus_per_s_max",
                "mbit_per_s_median", "mbit_per_s_min", "mbit_per_s_max", "lost"])
    for t, d in series + [(v, d) for v, _ in variants for d in ("up", "down")]:
        for s in sorted({k[2] for k in runs}):
            r = runs.get((t, d, s))
            if not r:
                continue
            w.writerow([t, d, s, len(r), round(med((t, d, s), 0)), round(min(x[0] for x in r)),
                        round(max(x[0] for x in r)), round(med((t, d, s), 1), 2), round(min(x[1] for x in r), 2),
                        round(max(x[1] for x in r), 2), sum(x[2] for x in r)])


def cell(key):
    r = runs.get(key)
    if not r:
        return "-"
    m = med(key, 1)
    spread = (max(x[1] for x in r) - min(x[1] for x in r)) / m * 100 if m else 0
    lost = sum(x[2] for x in r)
    return "%.1f ±%.0f%%%s" % (m, spread / 2, " (lost %d)" % lost if lost else "")


def ratio(a, b):
    x, y = med(a, 0), med(b, 0)
    return "%.2f" % (x / y) if x and y else "-"


lines = [
    "Goodput in Mbit/s (median of the repeats, ± half the spread) and VMPI's SDU-rate ratio to each "
    "baseline at the same size; %s." % note,
    "",
    "| SDU bytes | VMPI g→h | VMPI h→g | UDP veth → | UDP veth ← | virtio-net loop | VMPI/UDP → | VMPI/UDP ← | VMPI/virtio-net |",
    "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
]
short = []
for s in sizes:
    vu, vd = ("vmpi", "up", s), ("vmpi", "down", s)
    r1, r2, r3 = ratio(vu, ("udp", "up", s)), ratio(vd, ("udp", "down", s)), ratio(vu, ("virtio-net", "loop", s))
    lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s |" % (
        s, cell(vu), cell(vd), cell(("udp", "up", s)), cell(("udp", "down", s)), cell(("virtio-net", "loop", s)),
        r1, r2, r3))
    want = 2.0 if s <= 1500 else 1.3
    for r in (r1, r2, r3):
        if r != "-" and float(r) < want:
            short.append(s)
            break
lines.append("")
if short:
    lines.append("Below the target (VMPI ≥ 2× both baselines at SDU ≤ 1500, ≥ 1.3× above) at sizes: %s."
                 % ", ".join(map(str, short)))
else:
    lines.append("VMPI meets the target (≥ 2× both baselines at SDU ≤ 1500, ≥ 1.3× above) at every size measured.")
for label, what in variants:
    vsizes = sorted({k[2] for k in runs if k[0] == label})
    if not vsizes:
        continue
    lines += ["", "Ring features: VMPI's goodput as negotiated by default (EVENT_IDX used, INDIRECT_DESC "
              "declined: the sweep above) and with %s, in the same VM run, and the SDU-rate ratio "
              "default/variant:" % what, "",
              "| SDU bytes | g→h default | g→h variant | ratio → | h→g default | h→g variant | ratio ← |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in vsizes:
        on_u, off_u = ("vmpi", "up", s), (label, "up", s)
        on_d, off_d = ("vmpi", "down", s), (label, "down", s)
        lines.append("| %d | %s | %s | %s | %s | %s | %s |" % (
            s, cell(on_u), cell(off_u), ratio(on_u, off_u), cell(on_d), cell(off_d), ratio(on_d, off_d)))
if memory:
    def kib(side):
        v = memory.get(side)
        return "%d KiB (%d to %d)" % (statistics.median(v), min(v), max(v)) if v else "-"
    lines += ["", "Memory of one idle VMPI device, measured (the drop in MemFree over 16 devices, median of "
              "%d runs; this kernel's debug options add their metadata): host side %s, guest side %s."
              % (max(len(v) for v in memory.values()), kib("host"), kib("guest"))]
md = "\n".join(lines) + "\n"
open(out + "/results.md", "w").write(md)
print(md)

try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("(no matplotlib: goodput.png not drawn)")
    sys.exit(0)
fig, ax = plt.subplots(figsize=(8, 5))
for (t, d), style in zip(series, ["o-", "s-", "^--", "v--", "x:"]):
    xs = [s for s in sizes if (t, d, s) in runs]
    if xs:
        ax.plot(xs, [med((t, d, s), 1) for s in xs], style, label="%s %s" % (t, d))
ax.set_xscale("symlog", linthresh=4096)
ax.set_xlabel("SDU size (bytes)")
ax.set_ylabel("goodput (Mbit/s)")
ax.set_title("VMPI vs baselines (%s)" % note, fontsize=8)
ax.grid(True, alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(out + "/goodput.png", dpi=110)
