#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""SDUs through raw channels of two /dev/vmpiN (the host and guest sides of
one VMPI device): every size of the issue in both directions, byte for
byte, and the char device's errors. Prints `ok - ...` / `not ok - ...`
lines (raw_io.sh turns them into KTAP) and exits 1 on any failure.

usage: vmpi_raw_io.py HOST_DEV GUEST_DEV"""
import ctypes
import errno
import mmap
import os
import select
import sys

from vmpi_uapi import bind, errno_of, recv

CHANNEL = 5
SIZES = list(range(0, 4001, 250)) + [1, 4096, 16384, 65535]
failed = 0


def result(ok, what):
    global failed
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    if not ok:
        failed += 1


def transfer(src, dst, name):
    bad = []
    for n in SIZES:
        data = os.urandom(n)
        try:
            w = os.write(src, data)
            got = recv(dst)
        except (OSError, TimeoutError) as e:
            bad.append("%d: %s" % (n, e))
            continue
        if w != n or got != data:
            bad.append("%d: wrote %d, read %d bytes%s" % (n, w, len(got), "" if len(got) != n else ", content differs"))
    for b in bad[:5]:
        print("# %s: %s" % (name, b))
    result(not bad, "%s: SDUs of %s bytes arrive byte for byte" % (name, ",".join(map(str, sorted(set(SIZES))))))


libc = ctypes.CDLL(None, use_errno=True)
libc.read.restype = ctypes.c_ssize_t
libc.read.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]


def read_faulting(fd, n, good):
    """read(2) of up to n bytes into a buffer whose first `good` bytes (a
    multiple of the page size) are mapped and the rest not: (result, errno)."""
    size = (n + mmap.PAGESIZE - 1) // mmap.PAGESIZE * mmap.PAGESIZE
    m = mmap.mmap(-1, size)
    buf = (ctypes.c_char * size).from_buffer(m)
    addr = ctypes.addressof(buf)
    if libc.mprotect(addr + good, size - good, 0) != 0:  # PROT_NONE
        raise OSError(ctypes.get_errno(), "mprotect")
    r = libc.read(fd, addr, n)
    e = ctypes.get_errno()
    if libc.mprotect(addr + good, size - good, mmap.PROT_READ | mmap.PROT_WRITE) != 0:
        raise OSError(ctypes.get_errno(), "mprotect")
    del buf
    m.close()
    return r, e


def fault_then_read(src, dst, n, good, name):
    """An SDU of n bytes read first into a buffer that faults after `good`
    bytes: EFAULT, and the whole SDU is read next."""
    data = os.urandom(n)
    os.write(src, data)
    select.select([dst], [], [], 20)
    r, e = read_faulting(dst, 65536, good)
    got = recv(dst)
    print("# %s: faulting read %d (%s), then %d bytes" % (name, r, os.strerror(e), len(got)))
    result(r == -1 and e == errno.EFAULT and got == data,
           "%s: a read of a %d-byte SDU whose buffer faults after %d bytes: EFAULT, "
           "and the SDU stays whole for the next read" % (name, n, good))


host_path, guest_path = sys.argv[1], sys.argv[2]
host = os.open(host_path, os.O_RDWR)
guest = os.open(guest_path, os.O_RDWR)

unbound = os.open(host_path, os.O_RDWR)
result(errno_of(lambda: os.write(unbound, b"x")) == errno.ENOTCONN, "write on an unbound file: ENOTCONN")
result(errno_of(lambda: bind(unbound, 0)) == errno.EINVAL, "bind channel 0 (control): EINVAL")
result(errno_of(lambda: bind(unbound, 1 << 16)) == errno.EINVAL, "bind channel 65536: EINVAL")

bind(host, CHANNEL)
bind(guest, CHANNEL)
result(errno_of(lambda: bind(unbound, CHANNEL)) == errno.EBUSY, "bind a channel bound by another file: EBUSY")
result(errno_of(lambda: bind(host, CHANNEL + 1)) == errno.EINVAL, "bind a file twice: EINVAL")
os.close(unbound)

transfer(host, guest, "host to guest")
transfer(guest, host, "guest to host")

result(errno_of(lambda: os.write(host, bytes(65536))) == errno.EMSGSIZE, "write of 65536 bytes: EMSGSIZE")
os.write(guest, b"0123456789")
select.select([host], [], [], 20)
small = errno_of(lambda: os.read(host, 4))
result(small == errno.EMSGSIZE and recv(host) == b"0123456789",
       "read into a smaller buffer: EMSGSIZE, and the SDU stays for a bigger read")
# Host to guest, a 64 KiB SDU is in the guest's receive buffers' parts (16
# KiB by default), one of 3 x 16 KiB + 100 bytes in three parts and a
# 100-byte copy, a 16 KiB one in its buffer; a buffer that faults part-way
# (in the third part, in the copy) loses nothing.
fault_then_read(host, guest, 65535, 40960, "host to guest")
fault_then_read(host, guest, 3 * 16384 + 100, 49152, "host to guest")
fault_then_read(host, guest, 16384, 8192, "host to guest")
fault_then_read(guest, host, 65535, 40960, "guest to host")
os.set_blocking(host, False)
result(errno_of(lambda: os.read(host, 100)) == errno.EAGAIN, "O_NONBLOCK read with nothing queued: EAGAIN")
os.set_blocking(host, True)
p = select.poll()
p.register(host, select.POLLIN | select.POLLOUT)
ev_idle = dict(p.poll(0)).get(host, 0)
os.write(guest, b"ping")
# Wait for POLLIN alone: POLLOUT is ready all the time.
p_in = select.poll()
p_in.register(host, select.POLLIN)
ev_ready = dict(p_in.poll(20000)).get(host, 0)
print("# poll: idle %#x, after the peer wrote %#x" % (ev_idle, ev_ready))
result(ev_idle & select.POLLOUT and not ev_idle & select.POLLIN and ev_ready & select.POLLIN,
       "poll: POLLOUT when idle, POLLIN once the peer wrote")
os.read(host, 10)

os.close(host)
os.close(guest)
sys.exit(1 if failed else 0)
