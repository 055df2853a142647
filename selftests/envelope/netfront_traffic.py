#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TCP and UDP through envelope netfronts (netfront_lib.sh sets up ns1, ns2,
ns3 with 10.9.0.1-3): 1 MiB over TCP from ns1 to ns2, and UDP datagrams
of 1 to 60000 bytes from ns3 to ns1, each checked byte for byte. Exits 0
when everything arrived intact, 1 otherwise (the reason on stderr).

usage: netfront_traffic.py                      (the above)
       netfront_traffic.py tcp SRC DST ADDR KIB [N]
                               (KiB over TCP from netns SRC to ADDR in netns
                                DST; in N connections at once, each KiB)
       netfront_traffic.py udp SRC DST ADDR SIZE...
                               (one datagram of each SIZE from netns SRC to
                                ADDR in netns DST, never fragmented: each
                                arrives byte for byte)
       netfront_traffic.py pairs KIB SIZE...
                               (between every two of ns1, ns2, ns3, both
                                ways: KiB over TCP and one datagram of each
                                SIZE, never fragmented; one server and one
                                client per namespace, all at once)
       netfront_traffic.py order SRC DST ADDR N SIZE
                               (N numbered datagrams of SIZE bytes from netns
                                SRC to ADDR in netns DST, sent at once: all
                                arrive, in order)
       netfront_traffic.py numbered STOP
                               (numbered UDP datagrams of 1200 bytes from ns1
                                to 10.9.0.2 in ns2, at most 100 a second and
                                6000 at most, until file STOP exists; prints
                                "ready" once the receiver is bound and the
                                sender started, then, when the receiver has
                                heard nothing for 3 s, how many different
                                ones arrived whole and how many were sent)
       STEP -- STEP ...         (the steps above one after the other, in one
                                process; stops at the first that fails)

Every socket is made in its namespace (setns(2) of this thread around
socket(2): a socket stays in the namespace it was made in) and the ends
run as threads of this one process, each checking what arrived against
what was sent: a process costs about a second in the debug VM (`ip netns
exec` and a Python of its own). _socket and _thread, not socket and
threading, and no hashlib: their imports cost about a second more."""
import _socket
import _thread
import ctypes
import os
import sys
import time

CLONE_NEWNET = 0x40000000
AF_INET, SOCK_STREAM, SOCK_DGRAM = _socket.AF_INET, _socket.SOCK_STREAM, _socket.SOCK_DGRAM
SOL_SOCKET, SO_REUSEADDR, SO_RCVBUF = _socket.SOL_SOCKET, _socket.SO_REUSEADDR, _socket.SO_RCVBUF
IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO = _socket.IPPROTO_IP, 10, 2
SO_RCVBUFFORCE = 33
_libc = ctypes.CDLL(None, use_errno=True)
_home = os.open("/proc/self/ns/net", os.O_RDONLY)


def _setns(fd):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def sock(n, kind=SOCK_STREAM):
    """A new IPv4 socket of KIND in netns N (ns1.. for a number)."""
    name = n if isinstance(n, str) else "ns%d" % n
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        _setns(fd)
        try:
            return _socket.socket(AF_INET, kind)
        finally:
            _setns(_home)
    finally:
        os.close(fd)


def udp(n):
    return sock(n, SOCK_DGRAM)


def accept(s, timeout):
    """The next connection to listening socket S, with TIMEOUT."""
    fd, addr = s._accept()
    c = _socket.socket(AF_INET, SOCK_STREAM, 0, fd)
    c.settimeout(timeout)
    return c, addr


def recv_all(c):
    got = bytearray()
    while True:
        b = c.recv(1 << 16)
        if not b:
            break
        got += b
    c.close()
    return bytes(got)


class Fail(Exception):
    pass


def fail(why):
    raise Fail(why)


def start(fns):
    """Starts each of FNS in a thread of its own; returns what waits for
    them all (the first exception one raised is raised there)."""
    errs = []
    left = [len(fns)]
    lock = _thread.allocate_lock()
    done = _thread.allocate_lock()
    done.acquire()

    def wrap(fn):
        try:
            fn()
        except BaseException as e:
            errs.append(e)
        finally:
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    done.release()

    for fn in fns:
        _thread.start_new_thread(wrap, (fn,))

    def wait():
        if not done.acquire(timeout=300):
            fail("a traffic thread did not finish within 300 s")
        if errs:
            raise errs[0]

    return wait


def run(*fns):
    """Runs each of FNS in a thread of its own, at once, and waits for them:
    the first exception one raised is raised here."""
    start(fns)()


def tcp(src, dst, addr, kib, conns=1):
    blocks = [os.urandom(4096) for _ in range(conns)]
    srvs = []
    for i in range(conns):
        s = sock(dst)
        s.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        s.bind((addr, 5001 + i))
        s.listen(1)
        s.settimeout(180)
        srvs.append(s)
    clis = [sock(src) for _ in range(conns)]
    got = [None] * conns

    def server(i):
        got[i] = recv_all(accept(srvs[i], 180)[0])

    def client(i):
        c = clis[i]
        c.settimeout(30)
        c.connect((addr, 5001 + i))
        c.settimeout(120)
        c.sendall(blocks[i] * (kib // 4))
        c.close()

    # All connections send at once.
    run(*[lambda i=i: server(i) for i in range(conns)], *[lambda i=i: client(i) for i in range(conns)])
    for s in srvs:
        s.close()
    for i, block in enumerate(blocks):
        data = block * (kib // 4)
        if got[i] != data:
            fail("TCP: got %d bytes, want %d%s" % (len(got[i]), len(data), ", they differ" * (len(got[i]) == len(data))))


def order(src, dst, addr, n, size):
    s = udp(dst)
    # SO_RCVBUFFORCE: room for the whole burst.
    s.setsockopt(SOL_SOCKET, SO_RCVBUFFORCE, 8 << 20)
    s.bind((addr, 5003))
    s.settimeout(20)
    c = udp(src)
    got = []

    def server():
        try:
            for _ in range(n):
                got.append(int.from_bytes(s.recv(65535)[:4], "little"))
        except TimeoutError:
            pass

    def client():
        pad = b"\x5a" * (size - 4)
        for i in range(n):
            c.sendto(i.to_bytes(4, "little") + pad, (addr, 5003))

    run(server, client)
    s.close()
    c.close()
    if got != list(range(n)):
        late = [b for a, b in zip(got, got[1:]) if b < a]
        fail("UDP: %d of %d datagrams, %d out of order (first: %r)" % (len(got), n, len(late), got[:20]))


def grams_to(src, dst, addr, port, grams, dont_fragment):
    """Datagrams GRAMS from netns SRC to ADDR:PORT in netns DST, 50 ms
    apart: the datagrams that arrived, in order, until one did not (20 s)."""
    s = udp(dst)
    s.bind((addr, port))
    s.settimeout(20)
    c = udp(src)
    if dont_fragment:
        c.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    got = []

    def server():
        try:
            for _ in grams:
                got.append(s.recv(65535))
        except TimeoutError:
            pass

    def client():
        for g in grams:
            c.sendto(g, (addr, port))
            time.sleep(0.05)

    run(server, client)
    s.close()
    c.close()
    return got


def udp_sizes(src, dst, addr, sizes):
    grams = [os.urandom(n) for n in sizes]
    got = grams_to(src, dst, addr, 5004, grams, True)
    if got != grams:
        fail("UDP %s -> %s: got sizes %r, want %r" % (src, dst, [len(g) for g in got], sizes))


def pairs(kib, sizes):
    names = ["1", "2", "3"]
    # The bytes from ns A to ns B: data[A, B, "tcp"], data[A, B, SIZE].
    data = {}
    for a in names:
        for b in names:
            data[a, b, "tcp"] = os.urandom(kib * 1024)
            for n in sizes:
                data[a, b, n] = os.urandom(n)
    bad = []
    fns = []
    for me in names:
        peers = [p for p in names if p != me]
        t = sock(int(me))
        t.setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        t.bind(("10.9.0." + me, 5006))
        t.listen(4)
        t.settimeout(180)
        u = udp(int(me))
        u.bind(("10.9.0." + me, 5007))
        # A datagram may wait behind a peer's TCP stream to another (tens
        # of seconds on a slow TCG host, at 256 KiB).
        u.settimeout(90)

        def tcp_server(me=me, peers=peers, t=t):
            for _ in peers:
                c, (addr, _) = accept(t, 60)
                got = recv_all(c)
                a = addr.rsplit(".", 1)[1]
                if got != data[a, me, "tcp"]:
                    bad.append("tcp %s -> %s: %d bytes, differ" % (a, me, len(got)))
            t.close()

        def udp_server(me=me, peers=peers, u=u):
            for _ in range(len(peers) * len(sizes)):
                try:
                    g, (addr, _) = u.recvfrom(65535)
                except TimeoutError:
                    bad.append("udp to %s: a datagram is missing" % me)
                    break
                a = addr.rsplit(".", 1)[1]
                if g != data.get((a, me, len(g))):
                    bad.append("udp %s -> %s: %d bytes, differ" % (a, me, len(g)))
            u.close()

        fns += [tcp_server, udp_server]
    for me in names:
        peers = [p for p in names if p != me]
        cu = udp(int(me))
        cu.setsockopt(IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)  # no fragments
        cu.bind(("10.9.0." + me, 0))
        ct = [sock(int(me)) for _ in peers]

        def client(me=me, peers=peers, u=cu, ct=ct):
            for b, c in zip(peers, ct):
                c.settimeout(60)
                c.bind(("10.9.0." + me, 0))
                c.connect(("10.9.0." + b, 5006))
                c.sendall(data[me, b, "tcp"])
                c.close()
                for n in sizes:
                    u.sendto(data[me, b, n], ("10.9.0." + b, 5007))
                    time.sleep(0.05)
            u.close()

        fns.append(client)
    run(*fns)
    if bad:
        fail("pairs: " + " ".join(bad))


def numbered(stop):
    r = udp(2)
    r.bind(("10.9.0.2", 5006))
    r.setsockopt(SOL_SOCKET, SO_RCVBUF, 1 << 22)
    r.settimeout(0.2)
    s = udp(1)
    got = set()
    sent = [0]
    done = [False]

    # Until 3 s without a datagram (30 s before the first), or, once the
    # sender is done, every one it sent is here (no later one can change
    # the count).
    def recv():
        quiet, last = 30, time.monotonic()
        while not (done[0] and len(got) == sent[0]):
            try:
                b = r.recv(2048)
            except TimeoutError:
                if time.monotonic() - last > quiet:
                    break
                continue
            quiet, last = 3, time.monotonic()
            if len(b) == 1200 and b[4:] == bytes([b[3]]) * 1196:
                got.add(int.from_bytes(b[:4], "big"))

    def send():
        i = 0
        while not os.path.exists(stop) and i < 6000:
            s.sendto(i.to_bytes(4, "big") + bytes([i & 0xff]) * 1196, ("10.9.0.2", 5006))
            i += 1
            time.sleep(0.01)
        sent[0] = i
        done[0] = True

    wait = start([recv, send])
    print("ready", flush=True)
    wait()
    print(len(got), sent[0], flush=True)


def default():
    tcp(1, 2, "10.9.0.2", 1024)
    grams = [os.urandom(n) for n in [1, 100, 1472, 1473, 9000, 30000, 60000]]
    got = grams_to(3, 1, "10.9.0.1", 5002, grams, False)
    if got != grams:
        fail("UDP: got sizes %r, want %r" % ([len(g) for g in got], [len(g) for g in grams]))


def step(argv):
    if not argv:
        default()
    elif argv[0] == "pairs":
        pairs(int(argv[1]), [int(n) for n in argv[2:]])
    elif argv[0] == "udp":
        udp_sizes(argv[1], argv[2], argv[3], [int(n) for n in argv[4:]])
    elif argv[0] == "order":
        order(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]))
    elif argv[0] == "tcp":
        tcp(argv[1], argv[2], argv[3], int(argv[4]), int(argv[5]) if len(argv) > 5 else 1)
    elif argv[0] == "numbered":
        numbered(argv[1])
    else:
        fail("unknown step %r (see the usage)" % argv[0])


def main():
    args = sys.argv[1:]
    steps = [[]]
    for a in args:
        if a == "--":
            steps.append([])
        else:
            steps[-1].append(a)
    try:
        for s in steps:
            step(s)
    except Fail as e:
        print(e, file=sys.stderr)
        sys.exit(1)


main()
