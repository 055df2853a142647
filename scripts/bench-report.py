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
import re
import statistics
import sys

out, note = sys.argv[1], sys.argv[2]
runs = collections.defaultdict(list)  # (transport, dir, size) -> [(rate, mbit, lost)]
rtts = collections.defaultdict(list)  # (transport, size, flows) -> [(p50 us, p99 us)]
scale = collections.defaultdict(list)  # (transport, dir, size, flows) -> [mbit]
cpu = collections.defaultdict(list)  # (transport, dir, size) -> [busy us per SDU, one flow]
copy = []  # memcpy Mbit/s of 64 KiB blocks
memory = collections.defaultdict(list)  # side -> [KiB per idle device]
for line in open(out + "/raw.txt"):
    if line.startswith("memory "):
        f = dict(kv.split("=", 1) for kv in line.split()[1:])
        memory[f["side"]].append(int(f["kib_per_device"]))
        continue
    if not line.startswith("result "):
        continue
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    flows = int(f.get("flows", 1))
    if f["transport"] == "memcpy":
        copy.append(float(f["mbit_per_s"]))
        continue
    if f["dir"] == "rr":
        rtts[(f["transport"], int(f["size"]), flows)].append((int(f["rtt_p50_us"]), int(f["rtt_p99_us"])))
        continue
    scale[(f["transport"], f["dir"], int(f["size"]), flows)].append(float(f["mbit_per_s"]))
    if flows != 1:
        continue
    if "cpu_us_per_sdu" in f:
        cpu[(f["transport"], f["dir"], int(f["size"]))].append(float(f["cpu_us_per_sdu"]))
    key = (f["transport"], f["dir"], int(f["size"]))
    runs[key].append((float(f["sdus_per_s"]), float(f["mbit_per_s"]), int(f["count"]) - int(f["received"])))

series = [("vmpi", "up"), ("vmpi", "down"), ("udp", "up"), ("udp", "down"), ("virtio-net", "loop"),
          ("vsock-seqpacket", "up"), ("vsock-seqpacket", "down"), ("vsock-stream", "up"), ("vsock-stream", "down")]
# VMPI with other ring features (vmpi_guest parameters), and their labels.
variants = [("vmpi-no-event-idx", "EVENT_IDX declined (`event_idx=0`)"),
            ("vmpi-indirect", "INDIRECT_DESC used (`indirect_desc=1`)"),
            ("vmpi-rx4k", "rxq buffers of a page (`rx_buf_size=4096`; default: 16 KiB)"),
            ("vmpi-rx64k", "rxq buffers of 64 KiB (`rx_buf_size=65536`; default: 16 KiB)")]
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
# AF_VSOCK (issue 14's targets: >= 3x seqpacket's SDU rate up to 4000
# bytes, >= 2x at 16 KiB and 64 KiB, above stream's goodput at 64 KiB,
# both directions; round trips <= 0.5x vsock's at 64 and 1500 bytes).
vs_sizes = sorted({k[2] for k in runs if k[0].startswith("vsock-")})
if vs_sizes:
    lines += ["", "AF_VSOCK over `vsock_loopback` (both ends in one kernel: no virtqueue, which favours vsock), "
              "goodput in Mbit/s as above, and VMPI's SDU-rate ratio to vsock `SOCK_SEQPACKET` and its goodput "
              "ratio to `SOCK_STREAM`; → is guest to host for VMPI, client to server for vsock:", "",
              "| SDU bytes | VMPI → | VMPI ← | seqpacket → | seqpacket ← | stream → | stream ← | VMPI/seqpacket → "
              "| VMPI/seqpacket ← | VMPI/stream → | VMPI/stream ← |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    missed = []
    for s in vs_sizes:
        vu, vd = ("vmpi", "up", s), ("vmpi", "down", s)
        qu, qd = ("vsock-seqpacket", "up", s), ("vsock-seqpacket", "down", s)
        su, sd = ("vsock-stream", "up", s), ("vsock-stream", "down", s)
        rq = (ratio(vu, qu), ratio(vd, qd))
        rs = (ratio(vu, su), ratio(vd, sd))
        lines.append("| %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            s, cell(vu), cell(vd), cell(qu), cell(qd), cell(su), cell(sd), rq[0], rq[1], rs[0], rs[1]))
        want = 3.0 if s <= 4000 else 2.0
        if any(r != "-" and float(r) < want for r in rq) or (s == 65535 and any(r != "-" and float(r) < 1.0 for r in rs)):
            missed.append(s)
    lines.append("")
    lines.append("Goodput target (≥ 3× seqpacket up to 4000 bytes, ≥ 2× at 16 KiB and 64 KiB, above stream at "
                 "64 KiB, both directions): %s." % ("met at every size" if not missed else
                                                   "missed at " + ", ".join(map(str, missed))))
if rtts:
    def rt(t, s, n, i):
        v = [x[i] for x in rtts.get((t, s, n), [])]
        return statistics.median(v) if v else None

    def us(t, s, n, i):
        v = rt(t, s, n, i)
        return "%d" % v if v is not None else "-"
    lines += ["", "Round trips (µs, median over the repeats of each run's median and 99th percentile, over "
              "every round trip of every flow; the peer echoes):", "",
              "| SDU bytes | flows | VMPI p50 | VMPI p99 | seqpacket p50 | seqpacket p99 | stream p50 | stream p99 "
              "| VMPI/seqpacket p50 |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rmissed = []
    for s, n in sorted({(k[1], k[2]) for k in rtts}, key=lambda x: (x[1], x[0])):
        a, b = rt("vmpi", s, n, 0), rt("vsock-seqpacket", s, n, 0)
        r = "%.2f" % (a / b) if a and b else "-"
        lines.append("| %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            s, n, us("vmpi", s, n, 0), us("vmpi", s, n, 1), us("vsock-seqpacket", s, n, 0),
            us("vsock-seqpacket", s, n, 1), us("vsock-stream", s, n, 0), us("vsock-stream", s, n, 1), r))
        if s in (64, 1500) and r != "-" and float(r) > 0.5:
            rmissed.append("%d (%d flows)" % (s, n))
    lines.append("")
    lines.append("Round-trip target (≤ 0.5× vsock seqpacket's at 64 and 1500 bytes): %s." % (
        "met" if not rmissed else "missed at " + ", ".join(rmissed)))
if any(k[3] != 1 for k in scale):
    cols = [(1000, "up"), (1000, "down"), (65535, "up"), (65535, "down")]
    lines += ["", "Flows at once (goodput in Mbit/s, median; with more than one flow, all flows' SDUs over "
              "the client's time from the start of all to the end of the last; `vmpi-2dev`: the flows spread "
              "over two VMPI devices):", "",
              "| transport | flows | " + " | ".join("%d %s" % (s, "→" if d == "up" else "←") for s, d in cols) + " |",
              "|---|---:|" + "---:|" * len(cols)]
    for t, n in sorted({(k[0], k[3]) for k in scale if k[2] in (1000, 65535)
                        and (k[0] in ("vmpi", "vmpi-2dev") or k[0].startswith("vsock-"))},
                       key=lambda x: (x[0] != "vmpi", x[0], x[1])):
        row = []
        for sz, d in cols:
            v = scale.get((t, d, sz, n))
            row.append("%.1f" % statistics.median(v) if v else "-")
        lines.append("| %s | %d | %s |" % (t, n, " | ".join(row)))
if cpu:
    ts = [("vmpi", "VMPI"), ("vsock-seqpacket", "seqpacket"), ("vsock-stream", "stream")]
    lines += ["", "CPU time per SDU (µs of busy CPU of the whole VM, both ends and the kernel's work between "
              "them, from /proc/stat; median; one flow):", "",
              "| SDU bytes | " + " | ".join("%s %s" % (n, a) for _, n in ts for a in ("→", "←")) + " |",
              "|---:|" + "---:|" * (2 * len(ts))]
    for sz in sorted({k[2] for k in cpu}):
        if sz not in (250, 1000, 4000, 16384, 65535):
            continue
        row = []
        for t, _ in ts:
            for d in ("up", "down"):
                v = cpu.get((t, d, sz))
                row.append("%.0f" % statistics.median(v) if v else "-")
        lines.append("| %d | %s |" % (sz, " | ".join(row)))
if copy:
    m = statistics.median(copy)
    parts = []
    for d, a in (("up", "guest to host"), ("down", "host to guest")):
        g64, g4k = med(("vmpi", d, 65535), 1), med(("vmpi", d, 4000), 1)
        if g64:
            parts.append("%s %.1f Mbit/s, %.1f%% of it%s" % (
                a, g64, g64 / m * 100,
                "" if not g4k else (", %s the 4000-byte figure (%.1f)" % ("above" if g64 >= g4k else "below", g4k))))
    lines += ["", "The copy limit: single-thread memcpy of 64 KiB blocks in the same VM, %.0f Mbit/s (median of "
              "%d); VMPI's 64 KiB goodput %s. Target: at least a third (the limit of three copies; an SDU's "
              "bytes are copied three times guest to host: user to kernel, guest memory to the host's SDU "
              "buffer, kernel to user; three times host to guest: user to kernel, into the guest's rxq "
              "buffers, kernel to user from them)." % (m, len(copy), "; ".join(parts) or "-")]
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
try:
    failed = [re.sub(r"\S*/vmpi-perf", "vmpi-perf", l.split(": ", 1)[1].strip())
              for l in open(out + "/vm.txt") if l.startswith("measurement failed")]
except OSError:
    failed = []
if failed:
    lines += ["", "Measurements that failed in this run (no result): " + "; ".join("`%s`" % f for f in failed) + "."]
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
for (t, d), style in zip(series, ["o-", "s-", "^--", "v--", "x:", "d-.", "D-.", "+:", "1:"]):
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
