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
                                client process per namespace)
       netfront_traffic.py order SRC DST ADDR N SIZE
                               (N numbered datagrams of SIZE bytes from netns
                                SRC to ADDR in netns DST, sent at once: all
                                arrive, in order)"""
import hashlib
import os
import subprocess
import sys

TCP_SERVER = r'''
import hashlib, socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); print("ready", flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    b = c.recv(1 << 16)
    if not b: break
    h.update(b); n += len(b)
print(n, h.hexdigest(), flush=True)
'''
TCP_CLIENT = r'''
import socket, sys
data = bytes.fromhex(sys.stdin.readline().strip()) * 1024
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30); c.settimeout(120); c.sendall(data); c.close()
'''
UDP_SERVER = r'''
import hashlib, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("10.9.0.1", 5002)); s.settimeout(20)
print("ready", flush=True)
n = int(sys.argv[1])
for _ in range(n):
    b = s.recv(65535)
    print(len(b), hashlib.sha256(b).hexdigest(), flush=True)
'''
UDP_CLIENT = r'''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin:
    s.sendto(bytes.fromhex(line.strip()), ("10.9.0.1", 5002)); time.sleep(0.05)
'''


SIZES_SERVER = r'''
import hashlib, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((sys.argv[1], 5004)); s.settimeout(20)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    b = s.recv(65535)
    print(len(b), hashlib.sha256(b).hexdigest(), flush=True)
'''
SIZES_CLIENT = r'''
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_MTU_DISCOVER, IP_PMTUDISC_DO: no fragments
for line in sys.stdin:
    s.sendto(bytes.fromhex(line.strip()), (sys.argv[1], 5004)); time.sleep(0.05)
'''
# pairs: the bytes from ns A to ns B are a function of (A, B, what).
PAIRS_DATA = r'''
import hashlib
def data(a, b, what, n):
    return hashlib.shake_256(("%s %s %s" % (a, b, what)).encode()).digest(n)
'''
PAIRS_SERVER = PAIRS_DATA + r'''
import socket, sys, threading
me, peers, kib, sizes = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), [int(x) for x in sys.argv[4:]]
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(("10.9.0." + me, 5006)); t.listen(4)
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("10.9.0." + me, 5007))
# A datagram may wait behind a peer's TCP stream to another (tens of
# seconds on a slow TCG host, at 256 KiB).
u.settimeout(90)
print("ready", flush=True)
bad = []
def tcp():
    for _ in peers:
        c, (addr, _) = t.accept(); c.settimeout(60); got = b""
        while True:
            b = c.recv(1 << 16)
            if not b: break
            got += b
        a = addr.rsplit(".", 1)[1]
        if got != data(a, me, "tcp", kib * 1024):
            bad.append("tcp %s -> %s: %d bytes, differ" % (a, me, len(got)))
th = threading.Thread(target=tcp, daemon=True); th.start()
for _ in range(len(peers) * len(sizes)):
    try:
        g, (addr, _) = u.recvfrom(65535)
    except socket.timeout:
        bad.append("udp to %s: a datagram is missing" % me); break
    a = addr.rsplit(".", 1)[1]
    if g != data(a, me, "udp %d" % len(g), len(g)):
        bad.append("udp %s -> %s: %d bytes, differ" % (a, me, len(g)))
th.join(90)
print(" ".join(bad) or "ok", flush=True)
'''
PAIRS_CLIENT = PAIRS_DATA + r'''
import socket, sys, time
me, peers, kib, sizes = sys.argv[1], sys.argv[2].split(","), int(sys.argv[3]), [int(x) for x in sys.argv[4:]]
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.IPPROTO_IP, 10, 2)  # IP_PMTUDISC_DO: no fragments
u.bind(("10.9.0." + me, 0))
for b in peers:
    c = socket.create_connection(("10.9.0." + b, 5006), timeout=60, source_address=("10.9.0." + me, 0))
    c.sendall(data(me, b, "tcp", kib * 1024)); c.close()
    for n in sizes:
        u.sendto(data(me, b, "udp %d" % n, n), ("10.9.0." + b, 5007)); time.sleep(0.05)
'''
ORDER_SERVER = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
# SO_RCVBUFFORCE: room for the whole burst.
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)
s.bind((sys.argv[1], 5003)); s.settimeout(20)
print("ready", flush=True)
got = []
try:
    for _ in range(int(sys.argv[2])):
        got.append(int.from_bytes(s.recv(65535)[:4], "little"))
except socket.timeout:
    pass
print(" ".join(map(str, got)), flush=True)
'''
ORDER_CLIENT = r'''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
pad = b"\x5a" * (int(sys.argv[3]) - 4)
for i in range(int(sys.argv[2])):
    s.sendto(i.to_bytes(4, "little") + pad, (sys.argv[1], 5003))
'''


def ns(n, code, *args, **kw):
    """Python CODE in netns N (ns1.. for a number); without the site module
    (-S), which costs about half a second a process in the debug VM."""
    name = n if isinstance(n, str) else "ns%d" % n
    return subprocess.Popen(["ip", "netns", "exec", name, sys.executable, "-S", "-c", code] + list(args),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, **kw)


def fail(why):
    print(why, file=sys.stderr)
    sys.exit(1)


def tcp(src, dst, addr, kib, conns=1):
    blocks = [os.urandom(4096) for _ in range(conns)]
    srvs = [ns(dst, TCP_SERVER, addr, str(5001 + i)) for i in range(conns)]
    for srv in srvs:
        if srv.stdout.readline().strip() != "ready":
            fail("TCP server did not start")
    clis = [ns(src, TCP_CLIENT.replace("* 1024", "* %d" % (kib // 4)), addr, str(5001 + i))
            for i in range(conns)]
    # All connections send at once: the clients read their block first.
    for cli, block in zip(clis, blocks):
        cli.stdin.write(block.hex() + "\n")
        cli.stdin.close()
    for cli in clis:
        cli.wait(timeout=180)
    for srv, block in zip(srvs, blocks):
        out, _ = srv.communicate(timeout=180)
        data = block * (kib // 4)
        want = "%d %s" % (len(data), hashlib.sha256(data).hexdigest())
        if out.strip() != want:
            fail("TCP: got %r, want %r" % (out.strip(), want))


def order(src, dst, addr, n, size):
    srv = ns(dst, ORDER_SERVER, addr, str(n))
    if srv.stdout.readline().strip() != "ready":
        fail("UDP server did not start")
    cli = ns(src, ORDER_CLIENT, addr, str(n), str(size))
    cli.communicate(timeout=60)
    out, _ = srv.communicate(timeout=60)
    got = [int(x) for x in out.split()]
    if got != list(range(n)):
        late = [b for a, b in zip(got, got[1:]) if b < a]
        fail("UDP: %d of %d datagrams, %d out of order (first: %r)" % (len(got), n, len(late), got[:20]))


def udp_sizes(src, dst, addr, sizes):
    grams = [os.urandom(n) for n in sizes]
    srv = ns(dst, SIZES_SERVER, addr, str(len(grams)))
    if srv.stdout.readline().strip() != "ready":
        fail("UDP server did not start")
    cli = ns(src, SIZES_CLIENT, addr)
    cli.communicate("".join(g.hex() + "\n" for g in grams), timeout=60)
    out, _ = srv.communicate(timeout=60)
    want = ["%d %s" % (len(g), hashlib.sha256(g).hexdigest()) for g in grams]
    got = out.split("\n")[: len(want)]
    if got != want:
        fail("UDP %s -> %s: got sizes %r, want %r" % (src, dst, [l.split()[0] for l in got if l], sizes))


def pairs(kib, sizes):
    names = ["1", "2", "3"]
    args = [str(kib)] + [str(n) for n in sizes]
    srvs = [ns(int(n), PAIRS_SERVER, n, ",".join(p for p in names if p != n), *args) for n in names]
    for srv in srvs:
        if srv.stdout.readline().strip() != "ready":
            fail("pairs: a server did not start")
    clis = [ns(int(n), PAIRS_CLIENT, n, ",".join(p for p in names if p != n), *args) for n in names]
    try:
        for cli in clis:
            cli.communicate(timeout=180)
            if cli.returncode:
                fail("pairs: a client failed")
        for n, srv in zip(names, srvs):
            out, _ = srv.communicate(timeout=180)
            if out.strip() != "ok":
                fail("pairs, into ns%s: %s" % (n, out.strip()))
    finally:
        for p in srvs + clis:
            if p.poll() is None:
                p.kill()


if sys.argv[1:2] == ["pairs"]:
    pairs(int(sys.argv[2]), [int(n) for n in sys.argv[3:]])
    sys.exit(0)
if sys.argv[1:2] == ["udp"]:
    udp_sizes(sys.argv[2], sys.argv[3], sys.argv[4], [int(n) for n in sys.argv[5:]])
    sys.exit(0)
if sys.argv[1:2] == ["order"]:
    order(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    sys.exit(0)
if sys.argv[1:2] == ["tcp"]:
    tcp(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
        int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    sys.exit(0)
tcp(1, 2, "10.9.0.2", 1024)

sizes = [1, 100, 1472, 1473, 9000, 30000, 60000]
grams = [os.urandom(n) for n in sizes]
srv = ns(1, UDP_SERVER, str(len(grams)))
if srv.stdout.readline().strip() != "ready":
    fail("UDP server did not start")
cli = ns(3, UDP_CLIENT)
cli.communicate("".join(g.hex() + "\n" for g in grams), timeout=60)
out, _ = srv.communicate(timeout=60)
want = ["%d %s" % (len(g), hashlib.sha256(g).hexdigest()) for g in grams]
if out.split("\n")[: len(want)] != want:
    fail("UDP: got %r" % out)
