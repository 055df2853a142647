#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""SDUs in bursts both ways over raw channel 9 of one VMPI device: ROUNDS
bursts of 32 SDUs (sizes 0 to 4000 in steps of 250, around half and whole
guest rxq buffers of 16 and 64 KiB, and 65535), each SDU checked byte for
byte. A burst fills the queues while the other side is
not reading yet, so the rings' notification suppression (kicks off while a
pass runs, callbacks re-enabled with a re-check) is exercised. Prints
`ok - ...` / `not ok - ...` lines (run_py_ktap). With RX_BUF_SIZE (the
path of vmpi_guest's writable `rx_buf_size` parameter), each burst starts
with a new size there: the guest posts buffers of the new size as the old
ones come back, so messages cross buffers of two sizes and buffers read
before come back to the ring in a size it no longer posts.

usage: vmpi_burst.py HOST_DEV GUEST_DEV ROUNDS [RX_BUF_SIZE]"""
import os
import sys

from vmpi_uapi import bind, recv

host_path, guest_path, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rx_buf_size = sys.argv[4] if len(sys.argv) > 4 else None
RX_SIZES = [4096, 65536, 16384, 32768]
SIZES = list(range(0, 4001, 250)) + [8191, 8192, 16384, 16385, 32767, 32768, 65535]
PATTERN = bytes(range(256)) * (65536 // 256 + 1)
BURST = 32
CHANNEL = 9


def sdu(i):
    n = SIZES[i % len(SIZES)]
    return PATTERN[i & 0xFF:(i & 0xFF) + n]


def burst(src, dst, what):
    sent = 0
    for r in range(rounds):
        if rx_buf_size:
            with open(rx_buf_size, "w") as f:
                f.write("%d\n" % RX_SIZES[r % len(RX_SIZES)])
        for i in range(sent, sent + BURST):
            os.write(src, sdu(i))
        for i in range(sent, sent + BURST):
            got = recv(dst)
            if got != sdu(i):
                print("not ok - %s: SDU %d differs (%d bytes, want %d)" % (what, i, len(got), len(sdu(i))))
                return
        sent += BURST
    print("ok - %s: %d SDUs of 0 to 65535 bytes in bursts of %d, byte for byte%s"
          % (what, sent, BURST, ", rxq buffers of %s bytes in turn" % "/".join(map(str, RX_SIZES)) if rx_buf_size else ""))


host = os.open(host_path, os.O_RDWR)
guest = os.open(guest_path, os.O_RDWR)
bind(host, CHANNEL)
bind(guest, CHANNEL)
burst(guest, host, "guest to host")
burst(host, guest, "host to guest")
