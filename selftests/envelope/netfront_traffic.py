#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""TCP and UDP through envelope netfronts (netfront_lib.sh sets up ns1, ns2,
ns3 with 10.9.0.1-3): 4 MiB over TCP from ns1 to ns2, and UDP datagrams
of 1 to 60000 bytes from ns3 to ns1, each checked byte for byte. Exits 0
when everything arrived intact, 1 otherwise (the reason on stderr).

usage: netfront_traffic.py                      (the above)
       netfront_traffic.py tcp SRC DST ADDR KIB [N]
                               (KiB over TCP from netns SRC to ADDR in netns
                                DST; in N connections at once, each KiB)
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
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30); c.sendall(data); c.close()
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
    name = n if isinstance(n, str) else "ns%d" % n
    return subprocess.Popen(["ip", "netns", "exec", name, "python3", "-c", code] + list(args),
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


if sys.argv[1:2] == ["order"]:
    order(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
    sys.exit(0)
if sys.argv[1:2] == ["tcp"]:
    tcp(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]),
        int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    sys.exit(0)
tcp(1, 2, "10.9.0.2", 4096)

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
