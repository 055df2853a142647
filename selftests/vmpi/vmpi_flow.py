#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Flows by application name between the host and guest sides of one VMPI
device (two /dev/vmpiN in one kernel): registration, allocation and
acceptance, an unknown name, an allocation that times out, the ioctls'
errors, credit (back-pressure without drops), close and reopen, 64 flows
at once with interleaved traffic both ways, closed from both ends at once
and allocated again without a control message dropped, readers of idle
flows not woken by a busy one, writers blocked on a full send queue not
woken at each SDU sent. Prints `ok - ...` /
`not ok - ...` lines (flows.sh turns them into KTAP); exits 1 on any
failure.

usage: vmpi_flow.py HOST_DEV GUEST_DEV GUEST_KO"""
import errno
import fcntl
import os
import select
import subprocess
import sys
import threading
import time

from vmpi_uapi import NAME_MAX, accept, alloc, errno_of, name, recv, register

# Flow credit: a window of 16 * (65535 + 64) units, an SDU costs len + 64.
WINDOW_SDUS_64K = 16
failed = 0


def result(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if not ok:
        failed += 1


def readable(fd, timeout):
    return bool(select.select([fd], [], [], timeout)[0])


def writable(fd, timeout):
    return bool(select.select([], [fd], [], timeout)[1])


def connect(host_path, guest_path, app, reg):
    """A flow guest -> host application `app` registered on `reg`."""
    g = os.open(guest_path, os.O_RDWR)
    h = os.open(host_path, os.O_RDWR)
    out = {}

    def do_alloc():
        try:
            out["ch"] = alloc(g, app, "client")
        except OSError as e:
            out["err"] = e

    t = threading.Thread(target=do_alloc)
    t.start()
    hch = accept(h, app)
    t.join(20)
    if "err" in out:
        raise out["err"]
    return g, h, out.get("ch"), hch


host_path, guest_path = sys.argv[1], sys.argv[2]
channels = int(open("/sys/class/misc/%s/channels" % os.path.basename(host_path)).read())
half = channels // 2

# --- registration and its errors --------------------------------------------
reg = os.open(host_path, os.O_RDWR)
register(reg, "srv")
other = os.open(host_path, os.O_RDWR)
result(errno_of(lambda: register(other, "srv")) == errno.EADDRINUSE, "register a registered name: EADDRINUSE")
result(errno_of(lambda: register(other, "")) == errno.EINVAL, "register an empty name: EINVAL")
result(errno_of(lambda: register(other, "a b")) == errno.EINVAL, "register a name with a space: EINVAL")
result(errno_of(lambda: register(other, b"a\0b")) == errno.EINVAL, "register a name with a NUL inside: EINVAL")
result(errno_of(lambda: accept(other, "nosuch")) == errno.ENOENT, "accept for an unregistered name: ENOENT")
fl = fcntl.fcntl(other, fcntl.F_GETFL)
fcntl.fcntl(other, fcntl.F_SETFL, fl | os.O_NONBLOCK)
result(errno_of(lambda: accept(other, "srv")) == errno.EAGAIN, "non-blocking accept with an empty backlog: EAGAIN")
os.close(other)
result(errno_of(lambda: os.write(reg, b"x")) == errno.ENOTCONN, "write on a registration: ENOTCONN")

g = os.open(guest_path, os.O_RDWR)
result(errno_of(lambda: alloc(g, "srv", reserved=1)) == errno.EINVAL, "alloc with a nonzero reserved field: EINVAL")
result(errno_of(lambda: alloc(g, "srv", timeout_ms=60001)) == errno.EINVAL, "alloc with a timeout above 60 s: EINVAL")
result(errno_of(lambda: alloc(g, "")) == errno.EINVAL, "alloc to an empty name: EINVAL")
result(errno_of(lambda: alloc(g, "nosuch")) == errno.ENOENT, "alloc to an unknown name: ENOENT")
os.close(g)

# --- one flow: allocation, data both ways, credit ---------------------------
g, h, gch, hch = connect(host_path, guest_path, "srv", reg)
result(gch == hch and half <= gch < channels,
       "alloc by name: guest and host agree on channel %s, from the guest's half" % gch)
result(errno_of(lambda: alloc(g, "srv")) == errno.EISCONN, "alloc on an open flow: EISCONN")
result(errno_of(lambda: accept(g, "srv")) == errno.EINVAL, "accept on an open flow: EINVAL")
flows = int(open("/sys/class/misc/%s/flows" % os.path.basename(host_path)).read())
result(flows == 1, "sysfs flows: 1 open flow on the host side (%d)" % flows)

sizes = list(range(0, 4001, 250)) + [1, 4096, 16384, 65535]
bad = []
for src, dst, way in ((g, h, "guest to host"), (h, g, "host to guest")):
    for n in sizes:
        data = os.urandom(n)
        os.write(src, data)
        got = recv(dst)
        if got != data:
            bad.append("%s %d: read %d bytes" % (way, n, len(got)))
for b in bad[:5]:
    print("# " + b)
result(not bad, "flow: SDUs of 0 to 65535 bytes both ways, byte for byte")

# Credit, on a fresh flow (a used one may have credit not yet given back:
# CREDIT goes out per half window): without a reader, the window takes
# exactly WINDOW_SDUS_64K SDUs of 64 KiB.
os.close(g)
os.close(h)
g, h, _, _ = connect(host_path, guest_path, "srv", reg)
fcntl.fcntl(g, fcntl.F_SETFL, fcntl.fcntl(g, fcntl.F_GETFL) | os.O_NONBLOCK)
big = [os.urandom(65535) for _ in range(WINDOW_SDUS_64K + 1)]
sent = 0
for b in big:
    if errno_of(lambda: os.write(g, b)) != 0:
        break
    sent += 1
result(sent == WINDOW_SDUS_64K, "credit: %d SDUs of 64 KiB fit the window, then EAGAIN (%d)" % (WINDOW_SDUS_64K, sent))
result(not writable(g, 0.5), "credit: poll reports no POLLOUT while the window is full")
got = [recv(h) for _ in range(WINDOW_SDUS_64K // 2)]
result(writable(g, 10), "credit: reading half the window gives POLLOUT back (CREDIT message)")
os.write(g, big[sent])
got += [recv(h) for _ in range(sent + 1 - len(got))]
result(got == big[:sent + 1], "credit: every SDU arrives, in order, none dropped")
hd = "/sys/class/misc/%s/" % os.path.basename(host_path)
drops = [int(open(hd + f).read()) for f in ("drops_no_credit", "drops_rx_full")]
result(drops == [0, 0], "credit: no drops (no_credit, rx_full = %s)" % drops)

# --- close and reopen ----------------------------------------------------
os.write(g, b"last words")
os.close(g)
result(recv(h) == b"last words", "close: an SDU written before close is delivered")
result(errno_of(lambda: os.read(h, 100)) == errno.ECONNRESET, "close: then the peer's read says ECONNRESET")
result(errno_of(lambda: os.write(h, b"x")) == errno.EPIPE, "close: and the peer's write says EPIPE")
os.close(h)
g, h, gch2, hch2 = connect(host_path, guest_path, "srv", reg)
os.write(h, b"again")
result(gch2 == hch2 and recv(g) == b"again", "reopen: a new flow to the same name works (channel %s)" % gch2)
os.close(g)
os.close(h)

# --- timeout: a registered name that never accepts ------------------------
slow = os.open(host_path, os.O_RDWR)
register(slow, "slow")
g = os.open(guest_path, os.O_RDWR)
t0 = time.monotonic()
e = errno_of(lambda: alloc(g, "slow", timeout_ms=500))
dt = time.monotonic() - t0
result(e == errno.ETIMEDOUT and 0.45 <= dt < 5, "alloc to a name that never accepts: ETIMEDOUT after %.2f s" % dt)
time.sleep(0.5)
result(not readable(slow, 0.2), "timeout: the peer's pending request was cancelled (backlog empty)")
# The file is idle again: a second allocation works.
out = {}
t = threading.Thread(target=lambda: out.setdefault("ch", alloc(g, "slow", timeout_ms=10000)))
t.start()
acc = os.open(host_path, os.O_RDWR)
result(readable(slow, 10), "registration: poll reports POLLIN while an allocation waits")
ach = accept(acc, "slow")
t.join(20)
result(out.get("ch") == ach, "after a timeout the same file allocates again (channel %s)" % ach)
for fd in (g, acc, slow):
    os.close(fd)

# --- 64 flows at once, interleaved traffic both ways ------------------------
N = 64


def open_flows(n, batch):
    """n flows guest -> "srv", allocated `batch` at a time (non-blocking
    allocs, then the host accepts them all)."""
    gfd, hfd, gchs, hchs = [], [], [], []
    while len(gfd) < n:
        fds = []
        for _ in range(min(batch, n - len(gfd))):
            fd = os.open(guest_path, os.O_RDWR | os.O_NONBLOCK)
            result_e = errno_of(lambda: alloc(fd, "srv"))
            if result_e != errno.EAGAIN:
                print("# non-blocking alloc said %s" % os.strerror(result_e))
            fds.append(fd)
        for _ in fds:
            fd = os.open(host_path, os.O_RDWR)
            hchs.append(accept(fd, "srv"))
            hfd.append(fd)
        for fd in fds:
            writable(fd, 10)
            gchs.append(alloc(fd, "srv"))  # the result: the channel
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
            gfd.append(fd)
    return gfd, hfd, gchs, hchs


def ctrl_dropped():
    return [int(open("/sys/class/misc/%s/ctrl_dropped" % os.path.basename(p)).read())
            for p in (host_path, guest_path)]


gfd, hfd, gchs, hchs = open_flows(N, 16)
flows = int(open(hd + "flows").read())
result(flows == N, "64 flows: all allocated (host flows = %d)" % flows)
result(len(set(gchs)) == N and sorted(gchs) == sorted(hchs) and all(half <= c < channels for c in gchs),
       "64 flows: 64 distinct channels from the guest's half, the same set on both sides")
# Payloads of random bytes, small ones and ones of several 4 KiB receive
# buffers (fragments), interleaved over the flows both ways.
ROUNDS = 8


def payload_len(i, r, way):
    if r % 2 == 0:
        return (r * 97 + i * 7 + way) % 1500
    return 4096 * (1 + (i + r + way) % 4) + (i * 131 + r * 17) % 4096


sent = {}
for r in range(ROUNDS):
    for i in range(N):
        for way, fd in ((0, gfd[i]), (1, hfd[i])):
            data = b"%d.%d.%d:" % (way, i, r) + os.urandom(payload_len(i, r, way))
            sent[way, i, r] = data
            os.write(fd, data)
bad = []
frags = sum(1 for v in sent.values() if len(v) > 4096)
for r in range(ROUNDS):
    for i in range(N):
        for way, fd in ((0, hfd[i]), (1, gfd[i])):
            got = recv(fd)
            if got != sent[way, i, r]:
                bad.append("%s flow %d round %d: %d bytes %r, want %d bytes %r" %
                           ("host" if way == 0 else "guest", i, r, len(got), got[:12],
                            len(sent[way, i, r]), sent[way, i, r][:12]))
for b in bad[:5]:
    print("# " + b)
result(not bad, "64 flows: %d interleaved SDUs each way (%d of the %d over 4 KiB) arrive on their own flow, "
       "in order, byte for byte" % (N * ROUNDS, frags, len(sent)))
# Every flow closed from both ends at once (the closes cross: each side
# queues 64 or more control messages before the peer reads any; an outbox
# of 32 messages dropped some), then 64 allocated again, as many at once
# as the name's backlog takes (16).
# The host's work pass is held 300 ms after a chain it takes (debugfs
# fault injection) while the files close: neither side's messages move
# meanwhile, as on a busy host.
dropped = ctrl_dropped()
delay = "/sys/kernel/debug/vmpi_host/vmpi0/pop_delay_ms"
open(delay, "w").write("300")
for a, b in zip(gfd, hfd):
    os.close(a)
    os.close(b)
open(delay, "w").write("0")
for _ in range(100):
    if int(open(hd + "flows").read()) == 0:
        break
    time.sleep(0.05)
closed = int(open(hd + "flows").read())
gfd, hfd, gchs, hchs = open_flows(N, 16)
flows = int(open(hd + "flows").read())
now = ctrl_dropped()
result(closed == 0 and flows == N and now == dropped and len(set(gchs)) == N and sorted(gchs) == sorted(hchs),
       "64 flows closed from both ends at once, then 64 allocated again: flows %d then %d, "
       "no control message dropped (ctrl_dropped host, guest %s then %s)" % (closed, flows, dropped, now))


# Readers blocked on other flows of the device sleep through one flow's
# traffic: each file waits on its own wait queue (one queue for the device
# woke every reader for every SDU: the CPU per SDU grew with the flows).
def switches(tid):
    for line in open("/proc/self/task/%d/status" % tid):
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return -1


IDLE, BUSY_SDUS = 7, 400
tids, got_idle = {}, {}


def idle_reader(i):
    tids[i] = threading.get_native_id()
    got_idle[i] = recv(gfd[i])


readers = [threading.Thread(target=idle_reader, args=(i,)) for i in range(1, IDLE + 1)]
for t in readers:
    t.start()
while len(tids) < IDLE:
    time.sleep(0.01)
time.sleep(0.2)  # into their read()
before = {i: switches(tid) for i, tid in tids.items()}
for k in range(BUSY_SDUS):
    os.write(hfd[0], b"busy %d" % k)
    recv(gfd[0])
woken = {i: switches(tid) - before[i] for i, tid in tids.items()}
for i in range(1, IDLE + 1):
    os.write(hfd[i], b"wake %d" % i)
for t in readers:
    t.join(10)
result(max(woken.values()) <= 10 and all(got_idle.get(i) == b"wake %d" % i for i in range(1, IDLE + 1)),
       "%d readers blocked on other flows sleep through %d SDUs of one flow (woken at most %d times), "
       "then each gets its own SDU" % (IDLE, BUSY_SDUS, max(woken.values())))


# Writers that found the device's send queue (256 SDUs) full are woken
# when it has room for many, not at each SDU the transport takes: woken
# at each, every blocked writer woke for one slot per SDU sent (64 flows
# host to guest ran at half vsock's rate, 24 context switches per SDU).
# The host's pass sleeps 10 ms after each chain it takes (debugfs fault
# injection), so the writers fill the queue and wait on it.
WRITERS, EACH = 16, 24
rgot = {}


def own_switches():
    for line in open("/proc/self/status"):
        if line.startswith("voluntary_ctxt_switches:"):
            return int(line.split()[1])
    return -1


def reader(i):
    rgot[i] = sum(1 for _ in range(EACH) if recv(gfd[i]).startswith(b"%d " % i))


# Each writer a process of its own (forked before the readers' threads
# start): threads would also switch to hand Python's lock over.
open(delay, "w").write("10")
go_r, go_w = os.pipe()
pipes, pids = [], []
for i in range(WRITERS):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.read(go_r, 1)
        before = own_switches()
        for k in range(EACH):
            os.write(hfd[i], b"%d %d " % (i, k) + bytes(990))
        os.write(w, b"%d" % (own_switches() - before))
        os._exit(0)
    os.close(w)
    pipes.append(r)
    pids.append(pid)
readers = [threading.Thread(target=reader, args=(i,)) for i in range(WRITERS)]
for t in readers:
    t.start()
os.write(go_w, bytes(WRITERS))
wsent = {i: int(os.read(r, 32) or b"-1") for i, r in enumerate(pipes)}
for pid in pids:
    os.waitpid(pid, 0)
for t in readers:
    t.join(60)
open(delay, "w").write("0")
total = sum(wsent.values())
# Woken when the queue is half empty, each writer sleeps a few times (9
# to 26 in all here); woken at each SDU (the old vmpi.ko), 766.
result(len(wsent) == WRITERS and all(rgot.get(i) == EACH for i in range(WRITERS)) and total < 8 * WRITERS,
       "%d writers of %d SDUs each through a full send queue: all arrive, the writers slept %d times "
       "(under %d: not woken at each SDU sent)" % (WRITERS, EACH, total, 8 * WRITERS))
for fd in gfd + hfd:
    os.close(fd)

# --- the guest side goes away under an open flow --------------------------
g, h, _, _ = connect(host_path, guest_path, "srv", reg)
os.write(g, b"before")
recv(h)
rc = subprocess.run(["rmmod", "vmpi_guest"]).returncode
e_guest = errno_of(lambda: os.write(g, b"x"))
e_host = errno_of(lambda: recv(h, 10))
result(rc == 0 and e_guest == errno.ENODEV and e_host == errno.ECONNRESET,
       "guest driver removed under a flow: guest file ENODEV (%s), host flow ECONNRESET (%s)"
       % (errno.errorcode.get(e_guest), errno.errorcode.get(e_host)))
os.close(g)
os.close(h)
subprocess.run(["insmod", sys.argv[3]], check=True)
guest_path = None
for _ in range(200):
    for d in os.listdir("/sys/class/misc"):
        try:
            if d.startswith("vmpi") and open("/sys/class/misc/%s/role" % d).read().strip() == "guest" and \
                    open("/sys/class/misc/%s/link" % d).read().strip() == "up":
                guest_path = "/dev/" + d
        except OSError:
            pass
    if guest_path:
        break
    time.sleep(0.1)
ok = False
if guest_path:
    g, h, _, _ = connect(host_path, guest_path, "srv", reg)
    os.write(g, b"back")
    ok = recv(h) == b"back"
    os.close(g)
    os.close(h)
result(ok, "guest driver reloaded: a new flow to the registered name works (%s)" % guest_path)
os.close(reg)
time.sleep(0.5)
flows = int(open(hd + "flows").read())
apps = int(open(hd + "apps").read())
result(flows == 0 and apps == 0, "closing every file releases every flow and name (flows %d, apps %d)" % (flows, apps))
sys.exit(1 if failed else 0)
