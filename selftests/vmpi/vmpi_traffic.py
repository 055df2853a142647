#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Traffic through a VMPI device until it goes away: FLOWS flows from the
guest side to application "sink" on the host side, plus raw channel 7,
each with a writer and a reader thread on both sides, all blocking. Prints
`running` once traffic flows, then waits for every thread to end with an
error and prints one line per side: `host ENODEV=4 ...` (the errno names
the threads ended with, counted). Exits 1 if a thread saw an unexpected
result (a corrupt, foreign or out-of-order SDU, a lost one on a flow, a
clean end).

With RESTART (the guest side is reset meanwhile: its `reset` file), the
raw channels of both sides outlive it, and only the flows end.

usage: vmpi_traffic.py HOST_DEV GUEST_DEV FLOWS [RESTART]"""
import collections
import errno
import fcntl
import os
import struct
import sys
import threading
import time

from vmpi_uapi import accept, alloc, bind, register

host_path, guest_path, nflows = sys.argv[1], sys.argv[2], int(sys.argv[3])
restart = sys.argv[4:] == ["RESTART"]
ends = {"host": collections.Counter(), "guest": collections.Counter()}
bad = []
# The next sequence number each reader wants, by tag.
progress = {}
lock = threading.Lock()
started = threading.Barrier(4 * (nflows + 1) + 1)


def writer(side, fd, tag):
    started.wait()
    n = 0
    try:
        while True:
            os.write(fd, tag + struct.pack("<I", n) + bytes(n % 3000))
            n += 1
    except OSError as e:
        with lock:
            ends[side][errno.errorcode[e.errno]] += 1


def sdu_error(sdu, tag, want, raw):
    """Why SDU is not the one `writer` sends with sequence number `want` (on
    a raw channel, which may drop, any later one), or None."""
    if sdu[:len(tag)] != tag or len(sdu) < len(tag) + 4:
        return "foreign or short SDU %r" % sdu[:12]
    n = struct.unpack("<I", sdu[len(tag):len(tag) + 4])[0]
    if n < want or (n != want and not raw):
        return "SDU %d where %d was due" % (n, want)
    if sdu[len(tag) + 4:] != bytes(n % 3000):
        return "SDU %d: %d payload bytes, not its %d zeros" % (n, len(sdu) - len(tag) - 4, n % 3000)
    return None


def reader(side, fd, tag, raw):
    started.wait()
    n = 0
    try:
        while True:
            sdu = os.read(fd, 65536)
            # A flow is lossless and in order; a raw channel in order.
            err = sdu_error(sdu, tag, n, raw)
            if err:
                with lock:
                    bad.append("%s %r: %s" % (side, tag, err))
                return
            n = struct.unpack("<I", sdu[len(tag):len(tag) + 4])[0] + 1
            progress[tag] = n
    except OSError as e:
        with lock:
            ends[side][errno.errorcode[e.errno]] += 1


reg = os.open(host_path, os.O_RDWR)
register(reg, "sink")
pairs = []
for i in range(nflows):
    g = os.open(guest_path, os.O_RDWR | os.O_NONBLOCK)
    try:
        alloc(g, "sink", "traffic", 10000)
    except BlockingIOError:
        pass
    h = os.open(host_path, os.O_RDWR)
    accept(h, "sink")
    fcntl.fcntl(g, fcntl.F_SETFL, 0)
    alloc(g, "sink", "traffic", 10000)
    pairs.append((g, h, False))
g = os.open(guest_path, os.O_RDWR)
h = os.open(host_path, os.O_RDWR)
bind(g, 7)
bind(h, 7)
pairs.append((g, h, True))
# (thread, side, raw)
threads = []
for i, (g, h, raw) in enumerate(pairs):
    for side, w, r in (("guest", g, h), ("host", h, g)):
        tag = b"%s%d:" % (side.encode(), i)
        other = "host" if side == "guest" else "guest"
        threads.append((threading.Thread(target=writer, args=(side, w, tag), daemon=True), side, raw))
        threads.append((threading.Thread(target=reader, args=(other, r, tag, raw), daemon=True), other, raw))
for t, _, _ in threads:
    t.start()
started.wait()
print("running", flush=True)
# (The host's raw channel outlives a guest that goes; both outlive a reset.)
survives = lambda side, raw: raw and (restart or side == "host")
for t, side, raw in threads:
    if not survives(side, raw):
        t.join()
if restart:
    # The flows ended with the reset: the raw channels carry SDUs after it.
    raw_tags = [b"%s%d:" % (s.encode(), len(pairs) - 1) for s in ("guest", "host")]
    before = {t: progress.get(t, 0) for t in raw_tags}
    # Polled: as soon as both moved, 10 s at most (a slow VM).
    moved_by = lambda: sum(1 for t in raw_tags if progress.get(t, 0) > before[t])
    end = time.monotonic() + 10
    while moved_by() < len(raw_tags) and time.monotonic() < end:
        time.sleep(0.1)
    moved = moved_by()
    print("raw channels carrying SDUs after the flows ended: %d of %d" % (moved, len(raw_tags)), flush=True)
# Those that survive run on: 3 s for them to end (they should not).
deadline = time.monotonic() + 3
for t, side, raw in threads:
    if survives(side, raw):
        t.join(max(0, deadline - time.monotonic()))
for side in ("host", "guest"):
    print(side, " ".join("%s=%d" % kv for kv in sorted(ends[side].items())), flush=True)
for side in ("host", "guest"):
    alive = sum(1 for t, s, _ in threads if s == side and t.is_alive())
    print("%s raw threads still running: %d" % (side, alive), flush=True)
for b in bad[:5]:
    print("# " + b)
sys.exit(1 if bad else 0)
