#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""The envelope switch seen from three domains' netfront side (switch.sh
sets it up): each guest side of a VMPI device binds raw channel 1 of its
/dev/vmpiN and speaks the envelope channel (docs/envelope.md section 2) as
a netfront does. Prints `ok - ...` / `not ok - ...` lines and exits 1 on
any failure.

usage: switch_frames.py GUEST1 GUEST2 GUEST3   (domains 1, 2, 3)"""
import os
import select
import struct
import sys
import time

from vmpi_uapi import bind, recv

S = "/sys/kernel/envelope_switch/"
FRAME, ENVELOPE, TABLE, TABLE_REQ = 1, 2, 3, 4
failed = 0


def result(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if not ok:
        failed += 1


def mac(n):
    return bytes([2, 0, 0, 0, 0, n])


def hdr(t):
    return bytes([t, 1, 0, 0])


def frame_msg(dst, src, payload):
    return hdr(FRAME) + bytes(12) + dst + src + b"\x08\x00" + payload


def quiet(fd, secs=0.3):
    """Reads what is pending; returns the SDUs."""
    got = []
    while select.select([fd], [], [], secs)[0]:
        got.append(os.read(fd, 65536))
    return got


def table_of(sdu):
    """(generation, your_domain, [(mac, domain, route, vlan)], epoch) of a TABLE."""
    assert sdu[0] == TABLE, "type %d" % sdu[0]
    gen, epoch, you, count = struct.unpack_from("<IIHH", sdu, 4)
    entries = []
    for i in range(count):
        m, d, r, z, v = struct.unpack_from("<6sHBBH", sdu, 16 + 12 * i)
        entries.append((m[5], d, r, v))
    return gen, you, entries, epoch


def ask_table(fd):
    quiet(fd)
    os.write(fd, hdr(TABLE_REQ))
    return table_of(recv(fd, 5))


def stats():
    return dict(l.split() for l in open(S + "stats").read().splitlines())


def sysw(f, line):
    with open(S + f, "w") as fh:
        fh.write(line + "\n")


g = [os.open(p, os.O_RDWR) for p in sys.argv[1:4]]
for fd in g:
    bind(fd, 1)
    quiet(fd)

# Each domain's view: only the VLANs its own MACs are on.
views = [ask_table(fd) for fd in g]
epoch = int(stats()["epoch"])
result([v[1] for v in views] == [1, 2, 3] and epoch != 0 and all(v[3] == epoch for v in views),
       "TABLE_REQ: each netfront learns its domain (1, 2, 3) and the switch's epoch")
want = [
    [(1, 1, 0, 10), (2, 2, 0, 10)],
    [(1, 1, 0, 10), (2, 2, 0, 10), (3, 3, 0, 20), (0x21, 2, 1, 20)],
    [(3, 3, 0, 20), (0x21, 2, 1, 20)],
]
result([v[2] for v in views] == want, "TABLE: each domain sees exactly the entries on its VLANs, with routes")
if [v[2] for v in views] != want:
    print("# got %r" % [v[2] for v in views])
gen0 = views[0][0]

# Frames are switched by the table, byte for byte, to exactly one domain.
bad = []
for n in (46, 1500, 9000, 65519 - 14):
    m = frame_msg(mac(2), mac(1), os.urandom(n))
    os.write(g[0], m)
    try:
        got = recv(g[1], 5)
    except TimeoutError as e:
        bad.append("%d: %s" % (n, e))
        continue
    if got != m:
        bad.append("%d: %d bytes arrived, differ" % (n, len(got)))
    if quiet(g[2], 0.1):
        bad.append("%d: d3 got it too" % n)
m = frame_msg(mac(1), mac(2), os.urandom(100))
os.write(g[1], m)
if quiet(g[0], 1) != [m]:
    bad.append("d2 to d1 did not arrive once")
for b in bad:
    print("# " + b)
result(not bad, "FRAME: d1 to d2 (60 to 65519-byte frames) and d2 to d1, byte for byte, to that domain only")

# Broadcast: the source MAC's VLAN decides who gets it.
os.write(g[1], frame_msg(b"\xff" * 6, mac(2), b"vlan 10"))
a1, a3 = quiet(g[0], 1), quiet(g[2], 0.3)
os.write(g[1], frame_msg(b"\xff" * 6, mac(0x21), b"vlan 20"))
b1, b3 = quiet(g[0], 0.3), quiet(g[2], 1)
# Multicast and unknown unicast are flooded the same way.
os.write(g[1], frame_msg(b"\x01\x00\x5e\x00\x00\x01", mac(2), b"multicast, vlan 10"))
c1, c3 = quiet(g[0], 1), quiet(g[2], 0.3)
os.write(g[1], frame_msg(mac(0x77), mac(0x21), b"unknown, vlan 20"))
u1, u3 = quiet(g[0], 0.3), quiet(g[2], 1)
result(len(a1) == 1 and not a3 and not b1 and len(b3) == 1 and len(c1) == 1 and not c3
       and not u1 and len(u3) == 1,
       "broadcast, multicast, unknown unicast: reach exactly the other domains on the source MAC's VLAN")

# Refused: a spoofed source, another VLAN, messages a netfront may not send.
s0 = stats()
os.write(g[0], frame_msg(mac(2), mac(2), b"spoof"))
os.write(g[0], frame_msg(mac(3), mac(1), b"other vlan"))
os.write(g[0], frame_msg(mac(1), mac(1), b"to myself"))
os.write(g[0], hdr(9))
os.write(g[0], hdr(ENVELOPE) + bytes(28))
os.write(g[0], hdr(TABLE) + bytes(12))
got = quiet(g[1], 0.5) + quiet(g[2], 0.3) + quiet(g[0], 0.3)
s1 = stats()
delta = {k: int(s1[k]) - int(s0[k]) for k in ("drops_bad_src", "drops_vlan", "drops_loop", "bad_msg")}
result(not got and delta == {"drops_bad_src": 1, "drops_vlan": 1, "drops_loop": 1, "bad_msg": 3},
       "refused and counted: spoofed source, other VLAN, loop, 3 bad messages; nothing delivered")
if got or delta != {"drops_bad_src": 1, "drops_vlan": 1, "drops_loop": 1, "bad_msg": 3}:
    print("# delivered %d, counters %r" % (len(got), delta))

# A table change reaches every netfront with a new generation.
sysw("table", "02:00:00:00:00:11 domain=1 vlan=10")
t1 = [table_of(s) for s in quiet(g[0], 1)]
t2 = [table_of(s) for s in quiet(g[1], 1)]
result(len(t1) == 1 and t1[0][0] == gen0 + 1 and (0x11, 1, 0, 10) in t1[0][2] and len(t2) == 1 and t2[0][0] == gen0 + 1,
       "table write: pushed to the netfronts with generation %d" % (gen0 + 1))
quiet(g[2])

# Full-copy mode: the same table, every envelope route pushed as copy.
sysw("mode", "copy")
t1 = [table_of(s) for s in quiet(g[0], 1)]
sysw("mode", "envelope")
t1b = [table_of(s) for s in quiet(g[0], 1)]
result(len(t1) == 1 and all(e[2] == 1 for e in t1[0][2]) and len(t1b) == 1 and any(e[2] == 0 for e in t1b[0][2]),
       "mode copy: routes pushed as copy; mode envelope: back")
for fd in g:
    quiet(fd)

d = {l.split()[0]: dict(kv.split("=") for kv in l.split()[1:]) for l in open(S + "domains").read().splitlines()}
counts = [(int(d[n]["frames_in"]), int(d[n]["frames_out"])) for n in ("d1", "d2", "d3")]
result(counts == [(7, 3), (5, 4), (0, 2)], "domains: frames_in and frames_out counted per domain")
if counts != [(7, 3), (5, 4), (0, 2)]:
    print("# (in, out) of d1, d2, d3: %r" % counts)

# Announcements (docs/envelope.md section 3): a domain takes a MAC the
# table promises to it (route incoming: a VM migrating in) by announcing
# it, and nothing else.
def announce(src, op=1, ethertype=b"\x08\x06", ip=b"\x0a\x00\x00\x31"):
    body = b"\x00\x01\x08\x00\x06\x04" + struct.pack(">H", op) + src + ip + bytes(6) + ip
    return hdr(FRAME) + bytes(12) + b"\xff" * 6 + src + ethertype + body + bytes(18)


def entry(n):
    for l in open(S + "table").read().splitlines()[1:]:
        if l.startswith("02:00:00:00:00:%02x " % n):
            return l
    return None


sysw("table", "02:00:00:00:00:31 domain=1 vlan=10 route=incoming")
sysw("table", "02:00:00:00:00:32 domain=2 vlan=10 route=incoming")
sysw("table", "02:00:00:00:00:33 domain=1 vlan=10 route=uplink")
for fd in g:
    quiet(fd)
s0, gen1 = stats(), int(stats()["generation"])
os.write(g[2], announce(mac(0x31)))  # d3, not promised it (and on VLAN 20)
os.write(g[0], announce(mac(0x32)))  # d1: promised to d2
os.write(g[0], announce(mac(2)))  # d1: d2's own MAC
os.write(g[0], announce(mac(0x33)))  # d1: a remote MAC (a host outside) naming d1
os.write(g[0], announce(mac(0x31), ip=bytes(4)))  # an ARP probe: no announcement
got = quiet(g[0], 0.3) + quiet(g[1], 0.5) + quiet(g[2], 0.3)
s1 = stats()
delta = {k: int(s1[k]) - int(s0[k]) for k in ("announces", "announce_moves", "announce_refused", "drops_bad_src")}
want = {"announces": 4, "announce_moves": 0, "announce_refused": 4, "drops_bad_src": 5}
result(not got and delta == want and int(s1["generation"]) == gen1
       and entry(0x31).endswith("route=incoming vlan=10") and entry(0x33).endswith("route=uplink vlan=10")
       and entry(2) == "02:00:00:00:00:02 domain=2 route=envelope vlan=10",
       "announce: another domain's MAC, one promised to another domain, a remote one, a probe: refused, nothing moves or is delivered")
if got or delta != want:
    print("# delivered %d, counters %r" % (len(got), delta))
os.write(g[0], announce(mac(0x31), op=2))  # a gratuitous ARP reply from d1
t1 = [table_of(s) for s in quiet(g[0], 1) if s[0] == TABLE]
rest = [table_of(s) if s[0] == TABLE else s for s in quiet(g[1], 1)]
t2 = [r for r in rest if isinstance(r, tuple)]
flooded = [r for r in rest if not isinstance(r, tuple)]
s2 = stats()
result(entry(0x31) == "02:00:00:00:00:31 domain=1 route=envelope vlan=10"
       and len(t1) == 1 and (0x31, 1, 0, 10) in t1[0][2] and t1[0][0] == gen1 + 1
       and len(t2) == 1 and (0x31, 1, 0, 10) in t2[0][2] and len(flooded) == 1
       and int(s2["announce_moves"]) - int(s1["announce_moves"]) == 1,
       "announce: d1's gratuitous ARP moves the incoming MAC promised to it into d1 (route envelope), pushed; the ARP reaches d2")
os.write(g[1], announce(mac(0x32), op=3, ethertype=b"\x80\x35", ip=bytes(4)))  # QEMU's RARP, from d2
quiet(g[0], 1)
result(entry(0x32) == "02:00:00:00:00:32 domain=2 route=envelope vlan=10",
       "announce: d2's RARP (as QEMU sends after a migration) moves the MAC promised to d2")
for fd in g:
    quiet(fd)
s3, gen3 = stats(), int(stats()["generation"])
os.write(g[0], announce(mac(0x31)))
quiet(g[1], 1)
s4 = stats()
result(int(s4["generation"]) == gen3 and int(s4["announces"]) - int(s3["announces"]) == 1
       and s4["announce_moves"] == s3["announce_moves"],
       "announce: a domain announcing its own MAC changes nothing")
for fd in g:
    quiet(fd)


# The rate limit (docs/envelope.md section 3, step 7): d3 attached again
# at 1000 bytes a second sends 200 frames of 1014 bytes (1078 with the
# per-frame cost) at once to d2's MAC on VLAN 20. A full bucket (65583
# bytes, the floor: 60 frames) and what refills meanwhile (about a frame
# a second) pass, the rest is dropped and counted; 1.5 s later a frame
# passes again.
def domains():
    return {l.split()[0]: dict(kv.split("=") for kv in l.split()[1:])
            for l in open(S + "domains").read().splitlines()}


sysw("domains", "d3 del")
sysw("domains", "d3 domain=3 rate=1000")
sysw("table", "02:00:00:00:00:03 domain=3 vlan=20")
for fd in g:
    quiet(fd)
r0, out0 = int(stats()["drops_rate"]), int(domains()["d2"]["frames_out"])
t0 = time.monotonic()
got = []
for i in range(200):
    os.write(g[2], frame_msg(mac(0x21), mac(3), struct.pack("<I", i) + bytes(996)))
    got += quiet(g[1], 0)  # d2's raw channel holds 64
secs = time.monotonic() - t0
# The switch may take a while over d3's 200 (TCG): until it has them all,
# or no more come (a burst can overflow its port's queue of 64 before the
# switch runs: those never reach the rate limit).
seen = -1
while time.monotonic() < t0 + 20:
    got += quiet(g[1], 0.5)
    now_in = int(domains()["d3"]["frames_in"])
    if now_in in (200, seen):
        break
    seen = now_in
elapsed = time.monotonic() - t0
got = [x for x in got + quiet(g[1], 1) if x[0] == FRAME]
dropped = int(stats()["drops_rate"]) - r0
passed = int(domains()["d2"]["frames_out"]) - out0
in3 = int(domains()["d3"]["frames_in"])
time.sleep(1.5)
os.write(g[2], frame_msg(mac(0x21), mac(3), bytes(1000)))
later = [x for x in quiet(g[1], 1) if x[0] == FRAME]
print("# rate: 200 frames written in %.2f s, %d reached the switch in %.2f s; %d passed (%d read by d2),"
      " %d dropped; 1.5 s later %d passed" % (secs, in3, elapsed, passed, len(got), dropped, len(later)))
result(in3 >= 100 and passed + dropped == in3 and len(got) == passed and 60 <= passed <= 62 + elapsed
       and len(later) == 1,
       "rate: a domain limited to 1000 B/s gets a bucket's worth through, the rest counted in drops_rate; later it passes again")
sys.exit(1 if failed else 0)
