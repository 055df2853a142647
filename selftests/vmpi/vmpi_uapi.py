# SPDX-License-Identifier: GPL-2.0
"""The char device ABI of /dev/vmpiN (include/uapi/rvio/vmpi.h) for the
Python tests, in one place: ioctl numbers, application names, and the
calls the tests make. Import it from a test in this directory (or with
PYTHONPATH set to it)."""
import fcntl
import os
import select
import struct

NAME_MAX = 64


def _iow(nr, size):
    return (1 << 30) | (size << 16) | (0xB9 << 8) | nr


BIND_RAW = _iow(1, 4)
REGISTER = _iow(2, NAME_MAX)
ACCEPT = _iow(3, NAME_MAX)
ALLOC = _iow(4, 2 * NAME_MAX + 8)


def name(s):
    """A struct vmpi_name: the name NUL-padded to NAME_MAX bytes."""
    b = s.encode() if isinstance(s, str) else s
    return b.ljust(NAME_MAX, b"\0")


def bind(fd, ch):
    fcntl.ioctl(fd, BIND_RAW, struct.pack("I", ch))


def register(fd, app):
    return fcntl.ioctl(fd, REGISTER, name(app))


def accept(fd, app):
    # A mutable buffer: fcntl.ioctl returns the ioctl's value (the channel).
    return fcntl.ioctl(fd, ACCEPT, bytearray(name(app)))


def alloc(fd, dst, src="", timeout_ms=0, reserved=0):
    return fcntl.ioctl(fd, ALLOC, bytearray(name(dst) + name(src) + struct.pack("II", timeout_ms, reserved)))


def errno_of(fn):
    """The errno fn() fails with, 0 if it does not."""
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0


def recv(fd, timeout=20.0):
    """One SDU, waiting at most timeout seconds."""
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        raise TimeoutError("no SDU within %ss" % timeout)
    return os.read(fd, 65536)
