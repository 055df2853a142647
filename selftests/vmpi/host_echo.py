#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""A host application on a VMPI host side's /dev/vmpiN: registers NAME,
accepts every flow to it and echoes each SDU back byte for byte, until
killed. hostile_ring.sh runs it for vmpi-vmm's hostile guest, whose good
guest checks that it is still served after every case. Prints one line
when it serves, and one per flow that ends (with why).

usage: host_echo.py /dev/vmpiN NAME"""
import os
import sys
import threading
import time

from vmpi_uapi import accept, recv, register


def echo(fd, n):
    try:
        while True:
            os.write(fd, recv(fd, 3600))
    except (OSError, TimeoutError) as e:
        print("host_echo: flow %d ended: %s" % (n, e), flush=True)
    finally:
        os.close(fd)


def main():
    path, name = sys.argv[1], sys.argv[2]
    # The registration: flows to NAME wait in its backlog until accepted.
    reg = os.open(path, os.O_RDWR)
    register(reg, name)
    print("host_echo: serving %s on %s" % (name, path), flush=True)
    n = 0
    while True:
        fd = os.open(path, os.O_RDWR)
        try:
            accept(fd, name)
        except OSError:
            # The device restarting, or deleted: try again shortly.
            os.close(fd)
            time.sleep(0.1)
            continue
        n += 1
        threading.Thread(target=echo, args=(fd, n), daemon=True).start()


if __name__ == "__main__":
    main()
